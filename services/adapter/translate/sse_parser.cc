#include "tg/adapter/translate/sse_parser.h"

namespace tg::adapter::translate {

void SseParser::Feed(std::string_view bytes, std::vector<SseEvent>* out) {
  if (overflowed_) return;
  size_t pos = 0;
  if (skip_lf_ && !bytes.empty()) {
    if (bytes[0] == '\n') pos = 1;
    skip_lf_ = false;
  }
  while (pos < bytes.size()) {
    // Find the next CR or LF; everything before it belongs to the current line.
    size_t end = pos;
    while (end < bytes.size() && bytes[end] != '\n' && bytes[end] != '\r') ++end;
    if (end == bytes.size()) {
      if (HeldBytes() + (end - pos) > max_event_bytes_) return Overflow();
      partial_.append(bytes.substr(pos));
      return;
    }
    if (HeldBytes() + (end - pos) > max_event_bytes_) return Overflow();
    if (partial_.empty()) {
      Line(bytes.substr(pos, end - pos), out);
    } else {
      partial_.append(bytes.substr(pos, end - pos));
      Line(partial_, out);
      partial_.clear();
    }
    if (bytes[end] == '\r') {
      if (end + 1 < bytes.size()) {
        if (bytes[end + 1] == '\n') ++end;
      } else {
        skip_lf_ = true;  // the LF of a CRLF may be in the next chunk
      }
    }
    pos = end + 1;
  }
}

void SseParser::Overflow() {
  overflowed_ = true;
  partial_.clear();
  partial_.shrink_to_fit();
  pending_ = SseEvent{};
  has_data_ = false;
}

void SseParser::Finish(std::vector<SseEvent>* out) {
  if (overflowed_) return;
  if (!partial_.empty()) {
    Line(partial_, out);
    partial_.clear();
  }
  Dispatch(out);
}

void SseParser::Line(std::string_view line, std::vector<SseEvent>* out) {
  if (line.empty()) {
    Dispatch(out);
    return;
  }
  if (line[0] == ':') return;  // comment (keep-alive)
  size_t colon = line.find(':');
  std::string_view field = line.substr(0, colon);
  std::string_view value;
  if (colon != std::string_view::npos) {
    value = line.substr(colon + 1);
    if (!value.empty() && value[0] == ' ') value.remove_prefix(1);
  }
  if (field == "data") {
    if (has_data_) pending_.data.push_back('\n');
    pending_.data.append(value);
    has_data_ = true;
  } else if (field == "event") {
    pending_.event.assign(value);
  }
  // id and retry matter to browsers reconnecting, not to a proxy: ignored.
}

void SseParser::Dispatch(std::vector<SseEvent>* out) {
  if (has_data_) out->push_back(std::move(pending_));
  pending_ = SseEvent{};
  has_data_ = false;
}

}  // namespace tg::adapter::translate
