#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "tg/adapter/translate/canonical.h"
#include "tg/adapter/translate/json.h"
#include "tg/adapter/translate/provider_codec.h"
#include "tg/adapter/translate/providers/provider_util.h"

namespace tg::adapter::translate {

// AWS Bedrock Runtime Converse / ConverseStream:
//   POST {base}/model/{modelId}/converse  |  /converse-stream
// base = https://bedrock-runtime.{aws_region}.amazonaws.com unless the target
// overrides it; modelId is path-encoded (`:` → `%3A`); SigV4, service
// "bedrock". The caller signs the exact body and the URL's (encoded) path.
//
// Request: system/developer messages → system; messages → user/assistant
// turns of content blocks (text, image from data: URLs, toolUse with parsed
// input, toolResult for tool messages, consecutive ones in one user turn);
// max_tokens, temperature, top_p, stop → inferenceConfig; top_k →
// additionalModelRequestFields.top_k (Anthropic and most Bedrock models use
// that name); tools → toolConfig (required → any, named → tool; none keeps
// the tools but sets no choice, since Converse has no "none" and toolConfig
// must be present when the history holds tool blocks). Image URLs other than
// data: cannot be expressed (Converse takes bytes or S3): a 400.
// Dropped: n, seed, logprobs, penalties, response_format, user, metadata,
// parallel_tool_calls, reasoning_effort, stream_options.
class BedrockCodec : public ProviderCodec {
 public:
  // The region signed and called when the credentials name none.
  static constexpr std::string_view kDefaultRegion = "us-east-1";

  std::string_view name() const override { return "bedrock"; }
  Result<HttpRequestSpec> BuildRequest(const ChatRequest& request,
                                       const TargetInfo& target) const override;
  Result<ChatResponse> ParseResponse(int status, std::string_view body,
                                     const ResponseContext& ctx) const override;
  std::unique_ptr<ProviderStreamDecoder> NewStreamDecoder(
      const ResponseContext& ctx) const override;
};

// ConverseStream events, fed one decoded eventstream message at a time:
// messageStart, contentBlockStart (tool use), contentBlockDelta (text |
// toolUse.input fragment), contentBlockStop, messageStop (stopReason), then
// metadata (usage), which completes the stream; exception messages are
// errors.
class BedrockStreamDecoder : public ProviderStreamDecoder {
 public:
  explicit BedrockStreamDecoder(const ResponseContext& ctx) : ctx_(ctx) {}
  void Feed(std::string_view bytes, StreamEvents* out) override;
  void FeedEvent(std::string_view type, std::string_view payload, StreamEvents* out) override;
  void Finish(StreamEvents* out) override;

 private:
  struct Block {
    int tool_index = -1;
    bool had_arguments = false;
  };
  Block* BlockAt(int64_t index);
  void Complete(StreamEvents* out);

  ResponseContext ctx_;
  json::ScratchDocument payload_;
  bool started_ = false;
  std::vector<Block> blocks_;
  int next_tool_index_ = 0;
  std::string stop_reason_;
  bool stopped_ = false;
  Usage usage_;
  bool has_usage_ = false;
};

// An exception's `:exception-type` → the HTTP status AWS gives it.
int BedrockExceptionStatus(std::string_view exception_type);

}  // namespace tg::adapter::translate
