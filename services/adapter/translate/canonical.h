#pragma once

// Building and reading canonical (OpenAI Chat) answers, and the small
// conversions every codec needs: usage JSON, data: URLs, tool-call
// arguments, minted ids.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "tg/adapter/translate/chat.h"
#include "tg/adapter/translate/json.h"

namespace tg::adapter::translate {

struct ToolCall {
  std::string id;
  std::string name;
  std::string arguments;  // JSON text
};

struct ChoiceDraft {
  std::string content;
  bool has_content = false;  // false: `content: null` (a pure tool-call answer)
  std::string refusal;
  std::vector<ToolCall> tool_calls;
  std::string finish_reason = "stop";
};

// A canonical answer in typed form, for codecs whose provider is not OpenAI.
struct ResponseDraft {
  std::string id;
  std::string model;
  int64_t created = 0;
  std::vector<ChoiceDraft> choices;
  Usage usage;
  bool has_usage = false;
};

// Draft → `chat.completion` JSON (choices get their index; usage with the
// prompt/completion details OpenAI sends).
ChatResponse BuildChatResponse(const ResponseDraft& draft);

// `chat.completion` JSON → draft (the reverse, for the non-OpenAI client
// encoders). Choices without a message read as empty.
ResponseDraft ReadChatResponse(const json::Value& doc);

// OpenAI usage object ↔ Usage.
Usage ReadOpenAiUsage(const json::Value& usage);
void WriteOpenAiUsage(json::Writer& w, const Usage& usage);
json::Value OpenAiUsageValue(const Usage& usage, json::Allocator& a);

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
