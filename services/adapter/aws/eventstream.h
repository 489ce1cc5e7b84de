#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "tg/common/input_limits.h"

namespace tg::adapter::aws {

// application/vnd.amazon.eventstream, the framing of Bedrock's
// ConverseStream (and of every AWS event stream):
//
//   [0,4) total_length   [4,8) headers_length   [8,12) CRC32 of [0,8)
//   headers   payload   [total-4,total) CRC32 of [0,total-4)
//
// all big-endian, CRC32 the IEEE/zlib one. A header is
// name_len:u8 | name | type:u8 | value.

enum class HeaderType : uint8_t {
  kBoolTrue = 0,
  kBoolFalse = 1,
  kByte = 2,
  kInt16 = 3,
  kInt32 = 4,
  kInt64 = 5,
  kBytes = 6,      // u16 length + bytes
  kString = 7,     // u16 length + UTF-8
  kTimestamp = 8,  // i64 milliseconds since the Unix epoch
  kUuid = 9,       // 16 bytes
};

struct HeaderValue {
  HeaderType type = HeaderType::kString;
  int64_t integer = 0;  // kByte .. kInt64, kTimestamp; 1/0 for the bools
  std::string bytes;    // kBytes, kString, kUuid

  static HeaderValue Bool(bool v);
  static HeaderValue Byte(int8_t v);
  static HeaderValue Int16(int16_t v);
  static HeaderValue Int32(int32_t v);
  static HeaderValue Int64(int64_t v);
  static HeaderValue Bytes(std::string_view v);
  static HeaderValue String(std::string_view v);
  static HeaderValue Timestamp(int64_t ms_since_epoch);
  static HeaderValue Uuid(std::string_view sixteen_bytes);

  bool operator==(const HeaderValue&) const = default;
};

struct EventHeader {
  std::string name;
  HeaderValue value;
  bool operator==(const EventHeader&) const = default;
};

struct EventMessage {
  std::vector<EventHeader> headers;
  std::string payload;

  // nullptr when absent.
  const HeaderValue* Find(std::string_view name) const;
  // The value of a string header; "" when absent or not a string.
  std::string_view StringHeader(std::string_view name) const;

  // ":message-type": "event" | "exception" | "error".
  std::string_view message_type() const { return StringHeader(":message-type"); }
  // ":event-type" of an event ("contentBlockDelta"), ":exception-type" of an
  // exception ("throttlingException"), ":error-code" of an error.
  std::string_view type() const;
  std::string_view content_type() const { return StringHeader(":content-type"); }
};

// One whole frame, CRCs included. Headers longer than the format allows
// (name > 255 bytes, value > 65535 bytes) are a programming error and abort.
std::string EncodeEventMessage(const std::vector<EventHeader>& headers, std::string_view payload);
// `:message-type`=event, `:event-type`, `:content-type` — what Bedrock sends.
std::string EncodeEvent(std::string_view event_type, std::string_view payload,
                        std::string_view content_type = "application/json");
// `:message-type`=exception, `:exception-type`, `:content-type`.
std::string EncodeException(std::string_view exception_type, std::string_view payload,
                            std::string_view content_type = "application/json");

enum class EventStreamError {
  kNone = 0,
  kPreludeCrc,  // CRC of the 8 length bytes does not match
  kLength,      // lengths impossible or above the limits
  kMessageCrc,  // CRC of the whole message does not match
  kHeader,      // a header runs past its section or has an unknown type
};
std::string_view EventStreamErrorName(EventStreamError error);

struct EventStreamDecoderOptions {
  // AWS allows a message of 16 MiB with 128 KiB of headers; Bedrock's events
  // are a few KiB, so the gateway accepts 1 MiB (tg/common/input_limits.h).
  // A corrupt or hostile length must not make the decoder buffer more.
  size_t max_message_bytes = limits::kMaxEventStreamFrameBytes;
  size_t max_header_bytes = limits::kMaxEventStreamHeaderBytes;
};

// Incremental decoder: feed the HTTP body as it arrives, split anywhere.
class EventStreamDecoder {
 public:
  explicit EventStreamDecoder(EventStreamDecoderOptions options = {});

  // Consumes `bytes`, appending every message they complete to *out. After
  // an error the framing is lost for good: the decoder stays failed and
  // every later Feed returns the same error.
  EventStreamError Feed(std::string_view bytes, std::vector<EventMessage>* out);

  // No partial message is buffered. At the end of the body, false means the
  // stream was truncated mid-frame.
  bool AtBoundary() const { return buffer_.empty() && error_ == EventStreamError::kNone; }
  size_t buffered_bytes() const { return buffer_.size(); }
  EventStreamError error() const { return error_; }
  const std::string& error_message() const { return error_message_; }

 private:
  // Decodes complete messages at the front of `data`; returns bytes consumed.
  size_t DecodeFrom(std::string_view data, std::vector<EventMessage>* out);
  void SetError(EventStreamError error, std::string message);

  EventStreamDecoderOptions options_;
  std::string buffer_;
  EventStreamError error_ = EventStreamError::kNone;
  std::string error_message_;
};

}  // namespace tg::adapter::aws
