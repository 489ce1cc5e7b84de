#pragma once

#include <memory>
#include <set>
#include <string_view>

#include "tg/adapter/translate/provider_codec.h"
#include "tg/adapter/translate/providers/provider_util.h"

namespace tg::adapter::translate {

// OpenAI Chat Completions (and every OpenAI-compatible server reached through
// a host override). The canonical form is this API's, so the request keeps
// the client's fields minus those OpenAI rejects (it answers 400
// "Unrecognized request argument" to unknown ones).
// What Azure OpenAI shares with it (its codec is OpenAiChatProvider()):
// the Chat Completions body for `target` (`include_stream_options`: whether
// the server accepts stream_options), the answer and the stream decoder.
std::string OpenAiChatBody(const ChatRequest& request, const TargetInfo& target,
                           bool include_stream_options);
Result<ChatResponse> ParseOpenAiChatAnswer(int status, std::string_view body,
                                           const ResponseContext& ctx);
std::unique_ptr<ProviderStreamDecoder> NewOpenAiChatStreamDecoder(const ResponseContext& ctx);

// Decodes a Chat Completions stream (`data: {chunk}` … `data: [DONE]`);
// tolerant of Azure's extras (a first chunk with id "" and no choices,
// chunks without `delta`, content filter results).
// Chat Completions chunks. A stream ends with `data: [DONE]`; one whose body
// ends cleanly without it is complete all the same when every choice it
// opened has a finish_reason (some compatible servers never send [DONE]),
// and broken otherwise.
class OpenAiChatStreamDecoder : public SseStreamDecoder {
 protected:
  void OnEvent(const SseEvent& event, StreamEvents* out) override;
  void OnEof(StreamEvents* out) override;

 private:
  bool started_ = false;
  std::set<int> open_choices_;      // choices seen without a finish_reason yet
  std::set<int> finished_choices_;  // choices that have one
};

}  // namespace tg::adapter::translate
