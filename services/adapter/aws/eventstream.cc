#include "tg/adapter/aws/eventstream.h"

#include <zlib.h>

#include <cstdio>
#include <cstdlib>

namespace tg::adapter::aws {
namespace {

constexpr size_t kPreludeBytes = 12;   // total_length, headers_length, prelude CRC
constexpr size_t kOverheadBytes = 16;  // prelude + message CRC

uint32_t Crc32(std::string_view data) {
  return static_cast<uint32_t>(
      crc32(0L, reinterpret_cast<const Bytef*>(data.data()), static_cast<uInt>(data.size())));
}

uint32_t ReadU32(const char* p) {
  auto b = [p](int i) { return static_cast<uint32_t>(static_cast<unsigned char>(p[i])); };
  return (b(0) << 24) | (b(1) << 16) | (b(2) << 8) | b(3);
}

uint64_t ReadBE(const char* p, int n) {
  uint64_t v = 0;
  for (int i = 0; i < n; ++i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

void AppendBE(std::string& out, uint64_t v, int n) {
  for (int i = n - 1; i >= 0; --i) out += static_cast<char>((v >> (8 * i)) & 0xff);
}

[[noreturn]] void Die(const char* what) {
  std::fprintf(stderr, "fatal: eventstream: %s\n", what);
  std::abort();
}

void AppendHeader(std::string& out, const EventHeader& h) {
  if (h.name.empty() || h.name.size() > 255) Die("header name length");
  out += static_cast<char>(h.name.size());
  out += h.name;
  out += static_cast<char>(h.value.type);
  switch (h.value.type) {
    case HeaderType::kBoolTrue:
    case HeaderType::kBoolFalse:
      break;
    case HeaderType::kByte:
      AppendBE(out, static_cast<uint64_t>(h.value.integer), 1);
      break;
    case HeaderType::kInt16:
      AppendBE(out, static_cast<uint64_t>(h.value.integer), 2);
      break;
    case HeaderType::kInt32:
      AppendBE(out, static_cast<uint64_t>(h.value.integer), 4);
      break;
    case HeaderType::kInt64:
    case HeaderType::kTimestamp:
      AppendBE(out, static_cast<uint64_t>(h.value.integer), 8);
      break;
    case HeaderType::kBytes:
    case HeaderType::kString:
      if (h.value.bytes.size() > 0xffff) Die("header value length");
      AppendBE(out, h.value.bytes.size(), 2);
      out += h.value.bytes;
      break;
    case HeaderType::kUuid:
      if (h.value.bytes.size() != 16) Die("uuid header must be 16 bytes");
      out += h.value.bytes;
      break;
    default:
      Die("unknown header type");
  }
}

// Parses the header section; false when it is malformed.
bool ParseHeaders(std::string_view s, std::vector<EventHeader>* out, std::string* error) {
  size_t pos = 0;
  auto need = [&](size_t n) { return pos + n <= s.size(); };
  while (pos < s.size()) {
    size_t name_len = static_cast<unsigned char>(s[pos++]);
    if (name_len == 0 || !need(name_len + 1)) {
      *error = "header name runs past the header section";
      return false;
    }
    EventHeader h;
    h.name.assign(s.substr(pos, name_len));
    pos += name_len;
    uint8_t type = static_cast<uint8_t>(s[pos++]);
    h.value.type = static_cast<HeaderType>(type);
    auto fixed = [&](int n, bool is_signed) {
      if (!need(n)) return false;
      uint64_t raw = ReadBE(s.data() + pos, n);
      if (is_signed && n < 8 && (raw >> (8 * n - 1)) & 1) raw |= ~uint64_t{0} << (8 * n);
      h.value.integer = static_cast<int64_t>(raw);
      pos += n;
      return true;
    };
    bool ok = true;
    switch (h.value.type) {
      case HeaderType::kBoolTrue:
        h.value.integer = 1;
        break;
      case HeaderType::kBoolFalse:
        h.value.integer = 0;
        break;
      case HeaderType::kByte:
        ok = fixed(1, true);
        break;
      case HeaderType::kInt16:
        ok = fixed(2, true);
        break;
      case HeaderType::kInt32:
        ok = fixed(4, true);
        break;
      case HeaderType::kInt64:
      case HeaderType::kTimestamp:
        ok = fixed(8, true);
        break;
      case HeaderType::kBytes:
      case HeaderType::kString: {
        if (!need(2)) {
          ok = false;
          break;
        }
        size_t len = ReadBE(s.data() + pos, 2);
        pos += 2;
        if (!need(len)) {
          ok = false;
          break;
        }
        h.value.bytes.assign(s.substr(pos, len));
        pos += len;
        break;
      }
      case HeaderType::kUuid:
        if (!need(16)) {
          ok = false;
          break;
        }
        h.value.bytes.assign(s.substr(pos, 16));
        pos += 16;
        break;
      default:
        *error = "unknown header type " + std::to_string(type) + " for '" + h.name + "'";
        return false;
    }
    if (!ok) {
      *error = "header '" + h.name + "' runs past the header section";
      return false;
    }
    out->push_back(std::move(h));
  }
  return true;
}

}  // namespace

HeaderValue HeaderValue::Bool(bool v) {
  return {v ? HeaderType::kBoolTrue : HeaderType::kBoolFalse, v ? 1 : 0, {}};
}
HeaderValue HeaderValue::Byte(int8_t v) { return {HeaderType::kByte, v, {}}; }
HeaderValue HeaderValue::Int16(int16_t v) { return {HeaderType::kInt16, v, {}}; }
HeaderValue HeaderValue::Int32(int32_t v) { return {HeaderType::kInt32, v, {}}; }
HeaderValue HeaderValue::Int64(int64_t v) { return {HeaderType::kInt64, v, {}}; }
HeaderValue HeaderValue::Bytes(std::string_view v) {
  return {HeaderType::kBytes, 0, std::string(v)};
}
HeaderValue HeaderValue::String(std::string_view v) {
  return {HeaderType::kString, 0, std::string(v)};
}
HeaderValue HeaderValue::Timestamp(int64_t ms) { return {HeaderType::kTimestamp, ms, {}}; }
HeaderValue HeaderValue::Uuid(std::string_view v) { return {HeaderType::kUuid, 0, std::string(v)}; }

const HeaderValue* EventMessage::Find(std::string_view name) const {
  for (const auto& h : headers) {
    if (h.name == name) return &h.value;
  }
  return nullptr;
}

std::string_view EventMessage::StringHeader(std::string_view name) const {
  const HeaderValue* v = Find(name);
  if (v == nullptr || v->type != HeaderType::kString) return {};
  return v->bytes;
}

std::string_view EventMessage::type() const {
  std::string_view mt = message_type();
  if (mt == "exception") return StringHeader(":exception-type");
  if (mt == "error") return StringHeader(":error-code");
  return StringHeader(":event-type");
}

std::string EncodeEventMessage(const std::vector<EventHeader>& headers, std::string_view payload) {
  std::string header_bytes;
  for (const auto& h : headers) AppendHeader(header_bytes, h);
  const size_t total = kOverheadBytes + header_bytes.size() + payload.size();
  std::string out;
  out.reserve(total);
  AppendBE(out, total, 4);
  AppendBE(out, header_bytes.size(), 4);
  AppendBE(out, Crc32(out), 4);
  out += header_bytes;
  out += payload;
  AppendBE(out, Crc32(out), 4);
  return out;
}

std::string EncodeEvent(std::string_view event_type, std::string_view payload,
                        std::string_view content_type) {
  return EncodeEventMessage({{":event-type", HeaderValue::String(event_type)},
                             {":content-type", HeaderValue::String(content_type)},
                             {":message-type", HeaderValue::String("event")}},
                            payload);
}

std::string EncodeException(std::string_view exception_type, std::string_view payload,
                            std::string_view content_type) {
  return EncodeEventMessage({{":exception-type", HeaderValue::String(exception_type)},
                             {":content-type", HeaderValue::String(content_type)},
                             {":message-type", HeaderValue::String("exception")}},
                            payload);
}

std::string_view EventStreamErrorName(EventStreamError error) {
  switch (error) {
    case EventStreamError::kNone:
      return "none";
    case EventStreamError::kPreludeCrc:
      return "prelude_crc";
    case EventStreamError::kLength:
      return "length";
    case EventStreamError::kMessageCrc:
      return "message_crc";
    case EventStreamError::kHeader:
      return "header";
  }
  return "unknown";
}

EventStreamDecoder::EventStreamDecoder(EventStreamDecoderOptions options) : options_(options) {}

void EventStreamDecoder::SetError(EventStreamError error, std::string message) {
  error_ = error;
  error_message_ = std::move(message);
  buffer_.clear();
}

size_t EventStreamDecoder::DecodeFrom(std::string_view data, std::vector<EventMessage>* out) {
  size_t pos = 0;
  while (error_ == EventStreamError::kNone && data.size() - pos >= kPreludeBytes) {
    const char* p = data.data() + pos;
    const uint32_t total = ReadU32(p);
    const uint32_t headers_len = ReadU32(p + 4);
    if (Crc32(std::string_view(p, 8)) != ReadU32(p + 8)) {
      SetError(EventStreamError::kPreludeCrc, "prelude CRC mismatch");
      break;
    }
    if (total > options_.max_message_bytes) {
      SetError(EventStreamError::kLength, "frame of " + std::to_string(total) +
                                              " bytes above the limit of " +
                                              std::to_string(options_.max_message_bytes));
      break;
    }
    if (total < kOverheadBytes || headers_len > total - kOverheadBytes ||
        headers_len > options_.max_header_bytes) {
      SetError(EventStreamError::kLength, "impossible lengths: total " + std::to_string(total) +
                                              ", headers " + std::to_string(headers_len));
      break;
    }
    if (data.size() - pos < total) break;  // wait for the rest
    if (Crc32(std::string_view(p, total - 4)) != ReadU32(p + total - 4)) {
      SetError(EventStreamError::kMessageCrc, "message CRC mismatch");
      break;
    }
    EventMessage message;
    std::string error;
    if (!ParseHeaders(std::string_view(p + kPreludeBytes, headers_len), &message.headers, &error)) {
      SetError(EventStreamError::kHeader, std::move(error));
      break;
    }
    message.payload.assign(p + kPreludeBytes + headers_len, total - kOverheadBytes - headers_len);
    out->push_back(std::move(message));
    pos += total;
  }
  return pos;
}

EventStreamError EventStreamDecoder::Feed(std::string_view bytes, std::vector<EventMessage>* out) {
  if (error_ != EventStreamError::kNone) return error_;
  if (buffer_.empty()) {
    // Fast path: whole frames straight from the caller's bytes, only the
    // incomplete tail is copied.
    size_t used = DecodeFrom(bytes, out);
    if (error_ == EventStreamError::kNone) buffer_.assign(bytes.substr(used));
    return error_;
  }
  buffer_.append(bytes);
  size_t used = DecodeFrom(buffer_, out);
  if (error_ == EventStreamError::kNone) buffer_.erase(0, used);
  return error_;
}

}  // namespace tg::adapter::aws
