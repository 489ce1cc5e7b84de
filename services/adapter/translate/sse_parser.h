#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

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
class SseParser {
 public:
  // A line longer than this is treated as a protocol error rather than
  // buffered without bound (a provider's chunk is a few KiB).
  static constexpr size_t kMaxLineBytes = 16 << 20;

  // Appends every event completed by `bytes` to `out`.
  void Feed(std::string_view bytes, std::vector<SseEvent>* out);

  // End of input. An event whose terminating blank line never came is
  // dispatched anyway: a provider that closes right after its last `data:`
  // line has still said it.
  void Finish(std::vector<SseEvent>* out);

  // True once a line exceeded kMaxLineBytes; the parser then ignores input.
  bool overflowed() const { return overflowed_; }

 private:
  void Line(std::string_view line, std::vector<SseEvent>* out);
  void Dispatch(std::vector<SseEvent>* out);

  std::string partial_;   // an unterminated line carried to the next Feed
  bool skip_lf_ = false;  // the previous chunk ended in CR: a leading LF is its CRLF
  bool has_data_ = false;
  SseEvent pending_;
  bool overflowed_ = false;
};

}  // namespace tg::adapter::translate
