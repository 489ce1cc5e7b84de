#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "tg/common/input_limits.h"

namespace tg::adapter::translate {

struct SseEvent {
  std::string event;  // the `event:` field; "" when absent
  std::string data;   // the `data:` lines joined with '\n'
};

// Incremental Server-Sent Events parser (the WHATWG rules the providers
// follow): bytes may be split anywhere across Feed calls, lines end in LF,
// CRLF or CR (Gemini sends CRLF), `data:` with or without the space, several
// data lines are joined with '\n', lines starting with ':' are comments, and
// an event is dispatched at a blank line if it carried data.
//
// Memory is bounded: an event whose lines (data, event name and the line
// being read) together pass `max_event_bytes` is a protocol error, whether
// it is one endless line or endless `data:` lines without the blank line
// that would end it.
class SseParser {
 public:
  explicit SseParser(size_t max_event_bytes = limits::kMaxSseEventBytes)
      : max_event_bytes_(max_event_bytes) {}

  // Appends every event completed by `bytes` to `out`.
  void Feed(std::string_view bytes, std::vector<SseEvent>* out);

  // End of input. An event whose terminating blank line never came is
  // dispatched anyway: a provider that closes right after its last `data:`
  // line has still said it.
  void Finish(std::vector<SseEvent>* out);

  // True once an event exceeded the limit; the parser then ignores input.
  bool overflowed() const { return overflowed_; }
  size_t max_event_bytes() const { return max_event_bytes_; }

 private:
  void Line(std::string_view line, std::vector<SseEvent>* out);
  void Dispatch(std::vector<SseEvent>* out);
  // Bytes held for the event being read (its fields and the unfinished line).
  size_t HeldBytes() const {
    return pending_.data.size() + pending_.event.size() + partial_.size();
  }
  void Overflow();

  const size_t max_event_bytes_;
  std::string partial_;   // an unterminated line carried to the next Feed
  bool skip_lf_ = false;  // the previous chunk ended in CR: a leading LF is its CRLF
  bool has_data_ = false;
  SseEvent pending_;
  bool overflowed_ = false;
};

}  // namespace tg::adapter::translate
