// A provider's streamed answer through tg-adapter's stream path: SSE bytes
// into the provider's stream decoder (openai, responses, anthropic, gemini,
// azure), or Bedrock's eventstream frames through the EventStreamDecoder into
// FeedEvent, as services/adapter/service/invocation.cc does; then the
// canonical events through every client's stream encoder.
//
// Input: provider:u8 | split:u8 | flags:u8 | body. The body is fed whole
// and in pieces of `split` bytes: the events must be the same. flags bit 0
// sets include_usage, bit 1 rewrites the eventstream CRCs (bedrock).

#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "codec_targets.h"
#include "eventstream_crc.h"
#include "fuzz_input.h"
#include "tg/adapter/aws/eventstream.h"

namespace translate = tg::adapter::translate;
namespace aws = tg::adapter::aws;

namespace {

translate::StreamEvent Broken(std::string message) {
  translate::StreamEvent e;
  e.type = translate::StreamEvent::Type::kError;
  e.error = translate::AdapterError{translate::ErrorKind::kStreamBroken, 502, true, "bad_response",
                                    std::move(message)};
  return e;
}

translate::StreamEvents Decode(int provider, std::string_view body, size_t split) {
  auto decoder =
      tg::fuzz::ProviderCodecAt(provider).NewStreamDecoder(tg::fuzz::FuzzResponseContext());
  translate::StreamEvents events;
  if (provider != tg::fuzz::kBedrock) {
    tg::fuzz::FeedSplit(body, split,
                        [&](std::string_view piece) { decoder->Feed(piece, &events); });
    decoder->Finish(&events);
    return events;
  }
  aws::EventStreamDecoder frames;
  tg::fuzz::FeedSplit(body, split, [&](std::string_view piece) {
    std::vector<aws::EventMessage> messages;
    aws::EventStreamError err = frames.Feed(piece, &messages);
    for (const auto& m : messages) decoder->FeedEvent(m.type(), m.payload, &events);
    if (err != aws::EventStreamError::kNone && !decoder->done()) {
      events.push_back(Broken("eventstream: " + frames.error_message()));
    }
  });
  if (!frames.AtBoundary() && !decoder->done()) {
    events.push_back(Broken("eventstream truncated mid-frame"));
  } else {
    decoder->Finish(&events);
  }
  return events;
}

// Everything an event carries, for comparing two decodings, up to the first
// kEnd or kError: encoders ignore what follows (a failed eventstream may add
// one error per later read).
std::string Describe(const translate::StreamEvents& events) {
  std::string out;
  for (const auto& e : events) {
    out += std::to_string(static_cast<int>(e.type)) + "|" + e.id + "|" + e.model + "|" +
           std::to_string(e.created) + "|" + std::to_string(e.choice) + "|" + e.content + "|" +
           e.refusal + "|" + e.finish_reason + "|" + std::to_string(e.usage.prompt_tokens) + "," +
           std::to_string(e.usage.completion_tokens) + "," + std::to_string(e.usage.total_tokens) +
           "," + std::to_string(e.usage.cached_tokens) + "," +
           std::to_string(e.usage.reasoning_tokens) + "|" +
           std::to_string(static_cast<int>(e.error.kind)) + "," +
           std::to_string(e.error.http_status) + "," + e.error.type + "," + e.error.message;
    for (const auto& tc : e.tool_calls) {
      out += "|" + std::to_string(tc.index) + "," + tc.id + "," + tc.name + "," + tc.arguments;
    }
    out += "\n";
    if (e.type == translate::StreamEvent::Type::kEnd ||
        e.type == translate::StreamEvent::Type::kError) {
      break;
    }
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  tg::fuzz::FuzzInput in(data, size);
  int provider = in.Byte() % tg::fuzz::kProviderCount;
  size_t split = in.Byte();
  uint8_t flags = in.Byte();
  std::string body(in.Rest());
  if (provider == tg::fuzz::kBedrock && (flags & 2)) tg::fuzz::FixEventStreamCrcs(body);

  translate::StreamEvents events = Decode(provider, body, 0);
  if (split != 0 && Describe(events) != Describe(Decode(provider, body, split))) std::abort();

  for (translate::ClientFormat f : tg::fuzz::kClientFormats) {
    translate::StreamEncoderOptions options;
    options.include_usage = flags & 1;
    options.id = "gw-req-fuzz-1";
    options.model = "ctx-model";
    options.created = 1700000000;
    auto encoder = translate::ClientCodecFor(f).NewStreamEncoder(options);
    std::string out;
    for (const auto& e : events) encoder->Encode(e, &out);
  }
  return 0;
}
