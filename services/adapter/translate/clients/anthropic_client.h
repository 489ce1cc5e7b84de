#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "tg/adapter/translate/client_codec.h"

namespace tg::adapter::translate {

// Anthropic Messages clients (…/messages).
//
// Decoding: top-level system → a system message; user tool_result blocks →
// tool messages (ahead of the rest of that user turn); tool_use blocks →
// assistant tool_calls with the input as JSON text; image blocks →
// image_url parts (base64 → data: URL); stop_sequences → stop; tools'
// input_schema → parameters; tool_choice any → required, tool → named
// function, disable_parallel_tool_use → parallel_tool_calls:false;
// metadata.user_id → user; top_k kept for providers that take it. Dropped:
// thinking, service_tier, server tools (typed tools other than custom).
class AnthropicClient : public ClientCodec {
 public:
  Result<ChatRequest> DecodeRequest(std::string_view body) const override;
  std::string EncodeResponse(const ChatResponse& response) const override;
  std::unique_ptr<ClientStreamEncoder> NewStreamEncoder(
      const StreamEncoderOptions& options) const override;
  std::string EncodeError(const AdapterError& error) const override;
};

// message_start, then per block content_block_start / _delta / _stop, then
// message_delta (stop_reason, usage) and message_stop; `event: error` when
// the provider broke. Deltas of a new kind (text after a tool call, or a new
// tool call) close the open block and open the next one.
class AnthropicStreamEncoder : public ClientStreamEncoder {
 public:
  explicit AnthropicStreamEncoder(const StreamEncoderOptions& options) : options_(options) {}
  void Encode(const StreamEvent& event, std::string* out) override;
  std::string SaveState() const override;
  bool RestoreState(std::string_view state) override;

 private:
  void StartMessage(std::string* out);
  void OpenTextBlock(std::string* out);
  void OpenToolBlock(const ToolCallDelta& call, std::string* out);
  void CloseBlock(std::string* out);
  void WriteDelta(int block, bool json_delta, std::string_view text, std::string* out);

  StreamEncoderOptions options_;
  bool started_ = false;
  int open_block_ = -1;
  bool open_is_text_ = false;
  int next_block_ = 0;
  std::vector<int> tool_blocks_;  // canonical tool index → block index (-1 unknown)
  std::string_view stop_reason_ = "end_turn";
  Usage start_usage_;
  Usage usage_;
};

}  // namespace tg::adapter::translate
