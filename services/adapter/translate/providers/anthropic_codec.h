#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "tg/adapter/translate/provider_codec.h"
#include "tg/adapter/translate/providers/provider_util.h"

namespace tg::adapter::translate {

// Anthropic Messages (POST /v1/messages, x-api-key, anthropic-version).
//
// Request: system/developer messages → top-level `system`; consecutive tool
// messages (and a user message right after them) → ONE user message whose
// tool_result blocks come first; assistant tool_calls → tool_use blocks with
// parsed arguments; image_url parts → image blocks (data: URL → base64
// source, other URLs → url source); stop → stop_sequences; tools →
// input_schema; tool_choice required → any, a named function → tool;
// parallel_tool_calls:false → disable_parallel_tool_use; user →
// metadata.user_id; temperature clamped to Anthropic's 0..1; max_tokens
// defaulted to kDefaultMaxTokens. Dropped: n, seed, logprobs, penalties,
// response_format, reasoning_effort, logit_bias, stream_options.
class AnthropicCodec : public ProviderCodec {
 public:
  // max_tokens is required by Anthropic; this is what a request without one
  // gets (every current Claude model can produce at least this much).
  static constexpr int kDefaultMaxTokens = 4096;
  static constexpr std::string_view kApiVersion = "2023-06-01";

  std::string_view name() const override { return "anthropic"; }
  Result<HttpRequestSpec> BuildRequest(const ChatRequest& request,
                                       const TargetInfo& target) const override;
  Result<ChatResponse> ParseResponse(int status, std::string_view body,
                                     const ResponseContext& ctx) const override;
  std::unique_ptr<ProviderStreamDecoder> NewStreamDecoder(
      const ResponseContext& ctx) const override;

  // Just the Messages body (also what Bedrock's Anthropic models would need).
  static Result<std::string> MessagesBody(const ChatRequest& request, const TargetInfo& target);
};

// message_start → content_block_start/delta/stop … → message_delta →
// message_stop, `ping` anywhere, `error` mid-stream. Tool calls get OpenAI
// indexes 0,1,… in tool_use order, not Anthropic's block index.
class AnthropicStreamDecoder : public SseStreamDecoder {
 public:
  explicit AnthropicStreamDecoder(const ResponseContext& ctx) : ctx_(ctx) {}

 protected:
  void OnEvent(const SseEvent& event, StreamEvents* out) override;
  void OnEof(StreamEvents* out) override;

 private:
  struct Block {
    int tool_index = -1;  // -1: not a tool_use block
    bool had_arguments = false;
  };
  Block* BlockAt(int64_t index);
  void ReadUsage(const json::Value& usage);

  ResponseContext ctx_;
  std::vector<Block> blocks_;
  int next_tool_index_ = 0;
  std::string stop_reason_;
  int64_t input_tokens_ = 0;
  int64_t cache_creation_tokens_ = 0;
  int64_t cache_read_tokens_ = 0;
  int64_t output_tokens_ = 0;
};

}  // namespace tg::adapter::translate
