#pragma once

#include <memory>
#include <string_view>
#include <vector>

#include "tg/adapter/translate/provider_codec.h"
#include "tg/adapter/translate/providers/provider_util.h"

namespace tg::adapter::translate {

// OpenAI Responses API as a provider (openai with provider_options.api =
// "responses"): POST /v1/responses.
//
// Request: system/developer messages → instructions; messages → input items
// (text → input_text / output_text, images → input_image, tool_calls →
// function_call items, tool messages → function_call_output items);
// max_tokens → max_output_tokens; tools flattened; response_format →
// text.format; reasoning_effort → reasoning.effort; store defaults to false
// (Chat semantics: a gateway does not keep conversations unless asked).
// Dropped: n, stop, seed, logprobs, top_logprobs, penalties, logit_bias,
// stream_options, top_k, modalities, audio.
class ResponsesCodec : public ProviderCodec {
 public:
  std::string_view name() const override { return "openai"; }
  Result<HttpRequestSpec> BuildRequest(const ChatRequest& request,
                                       const TargetInfo& target) const override;
  Result<ChatResponse> ParseResponse(int status, std::string_view body,
                                     const ResponseContext& ctx) const override;
  std::unique_ptr<ProviderStreamDecoder> NewStreamDecoder(
      const ResponseContext& ctx) const override;
};

// `event: response.*` stream → canonical events. Ends at response.completed
// or response.incomplete; response.failed and `error` are errors.
class ResponsesStreamDecoder : public SseStreamDecoder {
 public:
  explicit ResponsesStreamDecoder(const ResponseContext& ctx) : ctx_(ctx) {}

 protected:
  void OnEvent(const SseEvent& event, StreamEvents* out) override;
  void OnEof(StreamEvents* out) override;

 private:
  struct Call {
    int tool_index = -1;
    bool had_arguments = false;
  };
  Call* CallAt(int64_t output_index);
  void Complete(const json::Value& response, StreamEvents* out);

  ResponseContext ctx_;
  std::vector<Call> calls_;  // by output_index
  int next_tool_index_ = 0;
};

}  // namespace tg::adapter::translate
