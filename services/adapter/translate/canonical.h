#pragma once

// Building and reading canonical (OpenAI Chat) answers, and the small
// conversions every codec needs: usage JSON, data: URLs, tool-call
// arguments, minted ids.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tg/adapter/translate/chat.h"
#include "tg/adapter/translate/json.h"

namespace tg::adapter::translate {

// The answer for an OpenAI Chat client: the `chat.completion` JSON text
// (the provider's own document as it is, or the draft with each choice's
// index and usage with the details OpenAI sends).
std::string WriteChatCompletion(const ChatResponse& response);
// The answer from a draft (usage copied for the Invoke Usage event).
ChatResponse AnswerOf(ResponseDraft draft);
// The answer in typed form, for the encoders of other client formats: the
// draft itself, or the provider's `chat.completion` read into *scratch.
const ResponseDraft& ReadAnswer(const ChatResponse& response, ResponseDraft* scratch);
// The first choice, or an empty one: what the single-choice client formats
// (Anthropic Messages, Responses) answer with.
const ChoiceDraft& FirstChoice(const ResponseDraft& draft);
// `chat.completion` JSON → draft. Choices without a message read as empty.
ResponseDraft ReadChatResponse(const json::Value& doc);

// OpenAI usage object ↔ Usage.
Usage ReadOpenAiUsage(const json::Value& usage);
void WriteOpenAiUsage(json::Writer& w, const Usage& usage);
// One entry of an OpenAI `tool_calls` array: {id, type, function: {name,
// arguments}} in a message; in a chunk's delta (`delta_index` set) the index
// first, and id (with its type) and name only when set, as they come with a
// call's first delta only.
void WriteOpenAiToolCall(json::Writer& w, std::optional<int> delta_index, std::string_view id,
                         std::string_view name, std::string_view arguments);

// `data:<media type>;base64,<data>`. Returns false for anything else.
struct DataUrl {
  std::string_view media_type;
  std::string_view data;  // still base64
};
bool ParseDataUrl(std::string_view url, DataUrl* out);

// Tool-call arguments text → a JSON object. Providers that take arguments as
// an object (Anthropic, Gemini, Bedrock) cannot accept a string; anything
// that is not an object becomes {} (empty arguments are common and mean {}).
json::Value ArgumentsObject(std::string_view arguments, json::Allocator& a);

// A deterministic id `<prefix><24 hex>` from (seed, n): Gemini and Bedrock
// name neither answers nor tool calls, and tests need stable output.
std::string MintId(std::string_view prefix, std::string_view seed, uint64_t n);

}  // namespace tg::adapter::translate
