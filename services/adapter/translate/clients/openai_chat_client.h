#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "tg/adapter/translate/client_codec.h"

namespace tg::adapter::translate {

// OpenAI Chat Completions clients: the canonical form itself. Decoding only
// normalises the seeds' mixed body: a top-level `system` (string or text
// blocks) becomes a leading system message unless one exists, Anthropic's
// `stop_sequences` becomes `stop` unless `stop` is set.
class OpenAiChatClient : public ClientCodec {
 public:
  Result<ChatRequest> DecodeRequest(std::string_view body) const override;
  std::string EncodeResponse(const ChatResponse& response) const override;
  std::unique_ptr<ClientStreamEncoder> NewStreamEncoder(
      const StreamEncoderOptions& options) const override;
  std::string EncodeError(const AdapterError& error) const override;

  // {"error":{"message","type","param","code"}} — shared with Responses clients.
  static std::string ErrorBody(const AdapterError& error);
};

// `data: {chat.completion.chunk}` per delta, the usage chunk (choices: [])
// when the client asked for include_usage, then `data: [DONE]`; an error
// mid-stream is `data: {"error":{…}}` and no [DONE].
class OpenAiChatStreamEncoder : public ClientStreamEncoder {
 public:
  explicit OpenAiChatStreamEncoder(const StreamEncoderOptions& options);
  void Encode(const StreamEvent& event, std::string* out) override;
  std::string SaveState() const override;
  bool RestoreState(std::string_view state) override;

 private:
  void WriteChunk(const StreamEvent& delta, std::string* out);
  void WriteUsageChunk(std::string* out);

  StreamEncoderOptions options_;
  bool started_ = false;         // a chunk has been written: the id is fixed
  std::vector<bool> role_sent_;  // per choice index
  Usage usage_;
  bool usage_sent_ = false;
};

}  // namespace tg::adapter::translate
