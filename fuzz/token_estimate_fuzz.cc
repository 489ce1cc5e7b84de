// tg-edge's token estimates (gateway-edge/token_estimate.h) on any bytes:
// the payload as a request body of every client format, as text, and as the
// answer of every format, streamed and whole, to the output counter.
//
// Input: split:u8 | payload. The output counter is fed the payload once
// whole and once in pieces of 1..split+1 bytes (lengths drawn from a
// generator seeded with `split`), and must count the same both ways.
//
// Checked: no crash, leak or sanitizer report; counts are never negative;
// max_output is within [0, 10^9]; a text's estimate is at most 2 tokens per
// byte (+1); where the bytes are cut never changes the output count.

#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "fuzz_input.h"
#include "tg/edge/token_estimate.h"

namespace {

using tg::v1::ClientFormat;

constexpr ClientFormat kFormats[] = {
    tg::v1::CLIENT_FORMAT_OPENAI_CHAT,      tg::v1::CLIENT_FORMAT_ANTHROPIC_MESSAGES,
    tg::v1::CLIENT_FORMAT_OPENAI_RESPONSES, tg::v1::CLIENT_FORMAT_OPENAI_EMBEDDINGS,
    tg::v1::CLIENT_FORMAT_PASSTHROUGH,      tg::v1::CLIENT_FORMAT_UNSPECIFIED,
};

int64_t CountWhole(ClientFormat format, bool stream, std::string_view bytes) {
  tg::edge::OutputTokenCounter counter(format, stream);
  counter.Feed(bytes);
  return counter.Finish();
}

int64_t CountInPieces(ClientFormat format, bool stream, std::string_view bytes, uint8_t split) {
  tg::edge::OutputTokenCounter counter(format, stream);
  uint32_t state = 0x9E3779B9u ^ split;
  size_t pos = 0;
  while (pos < bytes.size()) {
    state = state * 1664525u + 1013904223u;
    const size_t len = 1 + (state >> 16) % (static_cast<size_t>(split) + 1);
    counter.Feed(bytes.substr(pos, len));
    pos += len;
  }
  return counter.Finish();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  tg::fuzz::FuzzInput in(data, size);
  const uint8_t split = in.Byte();
  const std::string_view payload = in.Rest();

  const int64_t text = tg::edge::EstimateTextTokens(payload);
  if (text < 0 || text > 2 * static_cast<int64_t>(payload.size()) + 1) std::abort();

  for (ClientFormat format : kFormats) {
    const tg::edge::RequestTokens request = tg::edge::EstimateRequestTokens(payload, format);
    if (request.prompt < 0 || request.max_output < 0 || request.max_output > 1'000'000'000) {
      std::abort();
    }
    for (bool stream : {true, false}) {
      const int64_t whole = CountWhole(format, stream, payload);
      if (whole < 0) std::abort();
      if (CountInPieces(format, stream, payload, split) != whole) std::abort();
    }
  }
  return 0;
}
