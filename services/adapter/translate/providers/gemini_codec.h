#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "tg/adapter/translate/canonical.h"
#include "tg/adapter/translate/provider_codec.h"
#include "tg/adapter/translate/providers/provider_util.h"

namespace tg::adapter::translate {

// Google Gemini (generativelanguage.googleapis.com, `gemini` or `google`):
//   POST /v1beta/models/{model}:generateContent
//   POST /v1beta/models/{model}:streamGenerateContent?alt=sse
// with x-goog-api-key.
//
// Request: system/developer messages → systemInstruction; messages →
// contents (assistant → role "model", tool results → functionResponse parts
// named after the call they answer, images → inlineData for data: URLs and
// fileData otherwise); max_tokens, temperature, top_p, top_k, stop, n,
// seed, penalties, response_format → generationConfig; tools →
// functionDeclarations with the schema cleaned (gemini_schema.h);
// tool_choice → toolConfig.functionCallingConfig. Dropped: logprobs,
// logit_bias, user, metadata, parallel_tool_calls, reasoning_effort,
// stream_options.
//
// Answer: Gemini names no tool call, so ids are minted (`call_…`) from the
// ResponseContext's id_seed; thought parts are dropped.
class GeminiCodec : public ProviderCodec {
 public:
  std::string_view name() const override { return "gemini"; }
  Result<HttpRequestSpec> BuildRequest(const ChatRequest& request,
                                       const TargetInfo& target) const override;
  Result<ChatResponse> ParseResponse(int status, std::string_view body,
                                     const ResponseContext& ctx) const override;
  std::unique_ptr<ProviderStreamDecoder> NewStreamDecoder(
      const ResponseContext& ctx) const override;
};

// Each `data:` is a whole GenerateContentResponse; there is no terminator:
// the stream is complete when the connection closes after a chunk that
// carried a finishReason (CRLF line endings are normal here).
class GeminiStreamDecoder : public SseStreamDecoder {
 public:
  explicit GeminiStreamDecoder(const ResponseContext& ctx) : ctx_(ctx) {}

 protected:
  void OnEvent(const SseEvent& event, StreamEvents* out) override;
  void OnEof(StreamEvents* out) override;

 private:
  struct Choice {
    std::string finish;  // Gemini's finishReason, "" until seen
    bool has_function_call = false;
    int next_tool_index = 0;
  };

  ResponseContext ctx_;
  bool started_ = false;
  bool blocked_ = false;
  std::vector<Choice> choices_;
  uint64_t minted_ = 0;
  Usage usage_;
  bool has_usage_ = false;
};

}  // namespace tg::adapter::translate
