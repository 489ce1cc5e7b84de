#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "tg/adapter/translate/canonical.h"
#include "tg/adapter/translate/client_codec.h"

namespace tg::adapter::translate {

// OpenAI Responses clients (…/responses).
//
// Decoding: instructions → a system message; `input` (a string or items):
// messages → chat messages (input_text/output_text → text parts,
// input_image → image_url parts), function_call items → tool_calls of an
// assistant message (consecutive calls share one), function_call_output →
// tool messages; max_output_tokens → max_tokens; flat function tools →
// Chat tools; text.format → response_format; reasoning.effort →
// reasoning_effort; previous_response_id and store kept for an openai
// responses target. Dropped: built-in tools (web_search, file_search, …),
// reasoning items, item references, include, truncation.
class ResponsesClient : public ClientCodec {
 public:
  Result<ChatRequest> DecodeRequest(std::string_view body) const override;
  std::string EncodeResponse(const ChatResponse& response) const override;
  std::unique_ptr<ClientStreamEncoder> NewStreamEncoder(
      const StreamEncoderOptions& options) const override;
  std::string EncodeError(const AdapterError& error) const override;
};

// response.created / response.in_progress, then per output item
// output_item.added → (content_part.added → output_text.delta … →
// output_text.done → content_part.done | function_call_arguments.delta … →
// function_call_arguments.done) → output_item.done, and finally
// response.completed (response.incomplete for length / content_filter) with
// the whole response and usage; `error` when the provider broke.
class ResponsesStreamEncoder : public ClientStreamEncoder {
 public:
  explicit ResponsesStreamEncoder(const StreamEncoderOptions& options) : options_(options) {}
  void Encode(const StreamEvent& event, std::string* out) override;
  std::string SaveState() const override;
  bool RestoreState(std::string_view state) override;

  // One output item, as the final response lists it.
  struct Item {
    bool is_message = true;
    std::string id;
    std::string text;       // message
    std::string call_id;    // function_call
    std::string name;       // function_call
    std::string arguments;  // function_call
  };

 private:
  void Start(std::string* out);
  void OpenMessage(std::string* out);
  void OpenToolCall(const ToolCallDelta& call, std::string* out);
  void CloseItem(std::string* out);
  // Writes `event: type` with {"type", <fields>, "sequence_number"}.
  template <typename Fields>
  void Emit(std::string_view type, Fields&& fields, std::string* out);
  // An event about items_[index]: its item_id, output_index (and a message's
  // content_index), then `fields`.
  template <typename Fields>
  void EmitForItem(std::string_view type, int index, Fields&& fields, std::string* out);
  // response.output_item.added / .done: the output_index and the whole item.
  void EmitOutputItem(std::string_view type, int index, bool done, std::string* out);

  StreamEncoderOptions options_;
  bool started_ = false;
  int64_t sequence_ = 0;
  std::vector<Item> items_;
  int open_item_ = -1;
  std::vector<int> tool_items_;  // canonical tool index → item index
  std::string finish_reason_ = "stop";
  Usage usage_;
};

}  // namespace tg::adapter::translate
