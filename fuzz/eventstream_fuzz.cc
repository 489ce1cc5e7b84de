// EventStreamDecoder (services/adapter/aws/eventstream.h): the framing of
// Bedrock's ConverseStream answers.
//
// Input: flags:u8 | split:u8 | frames. flags bit 0 rewrites the frames' CRCs
// first (eventstream_crc.h) so mutations reach the headers. The frames are
// decoded whole and cut into pieces of `split` bytes: same messages, same
// error. Every decoded message must encode back to a frame that decodes to
// the same message.

#include <cstdlib>
#include <string>
#include <vector>

#include "eventstream_crc.h"
#include "fuzz_input.h"
#include "tg/adapter/aws/eventstream.h"

namespace {

namespace aws = tg::adapter::aws;

struct Decoded {
  std::vector<aws::EventMessage> messages;
  aws::EventStreamError error = aws::EventStreamError::kNone;
  bool at_boundary = false;
};

Decoded Decode(std::string_view bytes, size_t split) {
  aws::EventStreamDecoder decoder;
  Decoded d;
  tg::fuzz::FeedSplit(bytes, split,
                      [&](std::string_view piece) { d.error = decoder.Feed(piece, &d.messages); });
  d.at_boundary = decoder.AtBoundary();
  if (d.error != decoder.error()) std::abort();
  if (d.error != aws::EventStreamError::kNone && decoder.error_message().empty()) std::abort();
  return d;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  tg::fuzz::FuzzInput in(data, size);
  uint8_t flags = in.Byte();
  size_t split = in.Byte();
  std::string frames(in.Rest());
  if (flags & 1) tg::fuzz::FixEventStreamCrcs(frames);

  Decoded whole = Decode(frames, 0);
  Decoded pieces = Decode(frames, split);
  if (whole.error != pieces.error || whole.at_boundary != pieces.at_boundary ||
      whole.messages.size() != pieces.messages.size()) {
    std::abort();
  }
  for (size_t i = 0; i < whole.messages.size(); ++i) {
    const aws::EventMessage& m = whole.messages[i];
    if (m.headers != pieces.messages[i].headers || m.payload != pieces.messages[i].payload) {
      std::abort();
    }
    (void)m.message_type();
    (void)m.type();
    (void)m.content_type();
    Decoded again = Decode(aws::EncodeEventMessage(m.headers, m.payload), 0);
    if (again.error != aws::EventStreamError::kNone || again.messages.size() != 1 ||
        again.messages[0].headers != m.headers || again.messages[0].payload != m.payload) {
      std::abort();
    }
  }
  return 0;
}
