#pragma once

// Pieces every provider codec shares: header lists, error bodies, options,
// and an SSE-driven stream decoder base.

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tg/adapter/translate/chat.h"
#include "tg/adapter/translate/json.h"
#include "tg/adapter/translate/provider_codec.h"
#include "tg/adapter/translate/sse_parser.h"

namespace tg::adapter::translate {

// `defaults` with the target's headers applied on top: a target header
// replaces a default of the same name (case-insensitive), others are added.
Headers WithTargetHeaders(Headers defaults, const Headers& target_headers);

// How one provider's call goes on the wire, apart from its body. Each codec
// fills one; AssembleCall turns it into the HttpRequestSpec, so URL building,
// the content-type/accept pair, target headers and framing are written once.
struct CallShape {
  std::string base_url;  // the provider's default (target host/port/protocol override it)
  std::string path;      // already resolved (ResolvePath): the target's override or the default
  std::vector<std::pair<std::string, std::string>> query;  // added unless the path has them
  Headers version_headers;                                 // e.g. anthropic-version
  AuthScheme auth = AuthScheme::kNone;
  // What a streamed answer is framed as (and so what `accept` asks for).
  BodyFraming stream_framing = BodyFraming::kSse;
  std::string aws_service;  // SigV4 only
  std::string aws_region;   // SigV4 only
};

// The call for `target` (streamed or not as target.stream says) with `body`.
Result<HttpRequestSpec> AssembleCall(CallShape shape, const TargetInfo& target, std::string body);

// An error status with whatever message the body carries. Understands every
// provider's error shape: {"error":{"message","type"|"status","code"}},
// {"type":"error","error":{"type","message"}}, {"message"} (Bedrock),
// a bare string, or a non-JSON body (truncated).
AdapterError HttpError(int status, std::string_view body);

// Whether a 400/413 answer says the prompt is over the model's context, in
// any provider's words: OpenAI/Azure code context_length_exceeded or "maximum
// context length", Anthropic "prompt is too long", Gemini "exceeds the
// maximum number of tokens", Bedrock "input is too long" / "too many input
// tokens".
bool IsContextLengthError(int status, std::string_view type, std::string_view message);

// A mid-stream error object (the value of "error", or an error event's data)
// → AdapterError. `status` is inferred from the type/code when the object
// has no numeric code; mid-stream errors default to 500, retryable.
AdapterError StreamErrorFromObject(const json::Value& error);

// The HTTP status Anthropic's error types stand for (529 overloaded_error…).
int StatusForErrorType(std::string_view type, int fallback);

// The opening of every ParseResponse: a status outside 2xx is the provider's
// error (HttpError); a 2xx body is parsed into `doc` (bounded, strict) and
// must be an object. The error to answer, or nullopt when `doc` holds the
// answer to read.
std::optional<AdapterError> ReadAnswerBody(int status, std::string_view body, json::Document* doc);

// A piece of a tool call's arguments (Anthropic's input_json_delta, Bedrock's
// toolUse input) as a delta of call `tool_index`; false, and nothing
// appended, when the block is no tool call (index < 0) or the piece is empty.
bool AppendArgumentsDelta(int tool_index, std::string_view fragment, StreamEvents* out);

// A ProviderCodec's decoder factory for a decoder built from the context.
template <typename Decoder>
std::unique_ptr<ProviderStreamDecoder> NewDecoder(const ResponseContext& ctx) {
  return std::make_unique<Decoder>(ctx);
}

// Stream decoder for SSE providers: parses events and hands each to OnEvent.
class SseStreamDecoder : public ProviderStreamDecoder {
 public:
  void Feed(std::string_view bytes, StreamEvents* out) final;
  void Finish(StreamEvents* out) final;

 protected:
  virtual void OnEvent(const SseEvent& event, StreamEvents* out) = 0;
  // Called at end of body if neither kEnd nor kError was emitted: emit kEnd
  // if the provider's stream may end this way, else report it broken.
  virtual void OnEof(StreamEvents* out) = 0;

  // Parses `data` into data() and returns true. An event that is not a JSON
  // object is skipped (false): one in a good stream is noise from a proxy or
  // a provider bug, not a reason to throw the answer away. The stream fails
  // with a protocol error once more than kMaxSkippedEvents were skipped, or
  // from the second one on when the skipped outnumber the good (mostly
  // garbage). An event beyond the parser's bounds (depth, size) always fails it.
  bool ParseData(std::string_view data, StreamEvents* out);
  static constexpr int kMaxSkippedEvents = 3;
  const json::Document& data() const { return data_.doc(); }

 private:
  void Drain(StreamEvents* out);

  SseParser sse_;
  std::vector<SseEvent> events_;
  json::ScratchDocument data_;
  int parsed_events_ = 0;
};

}  // namespace tg::adapter::translate
