// SseParser (services/adapter/translate/sse_parser.h): the framing of every
// streamed provider answer but Bedrock's.
//
// Input: split:u8 | stream bytes. The bytes are parsed whole and again cut
// into pieces of `split` bytes; both must give the same events, since a
// network read can cut a stream anywhere (a CR at the end of one read and
// its LF at the start of the next included).

#include <cstdlib>
#include <string>
#include <vector>

#include "fuzz_input.h"
#include "tg/adapter/translate/sse_parser.h"

namespace {

using tg::adapter::translate::SseEvent;
using tg::adapter::translate::SseParser;

std::vector<SseEvent> Parse(std::string_view bytes, size_t split, bool* overflowed) {
  SseParser parser;
  std::vector<SseEvent> events;
  tg::fuzz::FeedSplit(bytes, split, [&](std::string_view piece) { parser.Feed(piece, &events); });
  parser.Finish(&events);
  *overflowed = parser.overflowed();
  return events;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  tg::fuzz::FuzzInput in(data, size);
  size_t split = in.Byte();
  std::string_view bytes = in.Rest();

  bool whole_overflowed = false;
  bool split_overflowed = false;
  std::vector<SseEvent> whole = Parse(bytes, 0, &whole_overflowed);
  std::vector<SseEvent> pieces = Parse(bytes, split, &split_overflowed);
  if (whole_overflowed != split_overflowed || whole.size() != pieces.size()) std::abort();
  for (size_t i = 0; i < whole.size(); ++i) {
    if (whole[i].event != pieces[i].event || whole[i].data != pieces[i].data) std::abort();
  }
  return 0;
}
