#include "tg/adapter/translate/canonical.h"

namespace tg::adapter::translate {

using json::Allocator;
using json::Value;

namespace {

void WriteChoice(json::Writer& w, int index, const ChoiceDraft& c) {
  w.StartObject();
  w.Key("index");
  w.Int(index);
  w.Key("message");
  w.StartObject();
  w.Key("role");
  w.String("assistant");
  w.Key("content");
  if (c.has_content) {
    json::WriteString(w, c.content);
  } else {
    w.Null();
  }
  w.Key("refusal");
  if (!c.refusal.empty()) {
    json::WriteString(w, c.refusal);
  } else {
    w.Null();
  }
  if (!c.tool_calls.empty()) {
    w.Key("tool_calls");
    w.StartArray();
    for (const ToolCall& tc : c.tool_calls)
      WriteOpenAiToolCall(w, std::nullopt, tc.id, tc.name, tc.arguments);
    w.EndArray();
  }
  w.EndObject();
  w.Key("logprobs");
  w.Null();
  w.Key("finish_reason");
  json::WriteString(w, c.finish_reason);
  w.EndObject();
}

}  // namespace

std::string WriteChatCompletion(const ChatResponse& response) {
  if (response.completion) return json::Write(response.completion->doc);
  const ResponseDraft& d = response.draft;
  rapidjson::StringBuffer buf;
  json::Writer w(buf);
  w.StartObject();
  w.Key("id");
  json::WriteString(w, d.id);
  w.Key("object");
  w.String("chat.completion");
  w.Key("created");
  w.Int64(d.created);
  w.Key("model");
  json::WriteString(w, d.model);
  w.Key("choices");
  w.StartArray();
  int index = 0;
  for (const ChoiceDraft& c : d.choices) WriteChoice(w, index++, c);
  w.EndArray();
  if (d.has_usage) {
    w.Key("usage");
    WriteOpenAiUsage(w, d.usage);
  }
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

ChatResponse AnswerOf(ResponseDraft draft) {
  ChatResponse out;
  out.usage = draft.usage;
  out.has_usage = draft.has_usage;
  out.draft = std::move(draft);
  return out;
}

const ResponseDraft& ReadAnswer(const ChatResponse& response, ResponseDraft* scratch) {
  if (!response.completion) return response.draft;
  *scratch = ReadChatResponse(response.completion->doc);
  return *scratch;
}

const ChoiceDraft& FirstChoice(const ResponseDraft& draft) {
  static const ChoiceDraft kNone;
  return draft.choices.empty() ? kNone : draft.choices[0];
}

ResponseDraft ReadChatResponse(const Value& doc) {
  ResponseDraft d;
  d.id = json::GetString(doc, "id");
  d.model = json::GetString(doc, "model");
  d.created = json::GetInt(doc, "created");
  if (const Value* choices = json::GetArray(doc, "choices")) {
    for (const Value& choice : choices->GetArray()) {
      ChoiceDraft c;
      const Value* message = json::GetObject(choice, "message");
      if (message != nullptr) {
        const Value* content = json::Find(*message, "content");
        c.has_content = json::IsNonNull(content);
        c.content = json::ContentText(content);
        c.refusal = json::GetString(*message, "refusal");
        if (const Value* calls = json::GetArray(*message, "tool_calls")) {
          for (const Value& call : calls->GetArray()) {
            const Value* fn = json::GetObject(call, "function");
            ToolCall tc;
            tc.id = json::GetString(call, "id");
            if (fn != nullptr) {
              tc.name = json::GetString(*fn, "name");
              tc.arguments = json::GetString(*fn, "arguments");
            }
            c.tool_calls.push_back(std::move(tc));
          }
        }
      }
      std::string_view finish = json::GetString(choice, "finish_reason");
      c.finish_reason = finish.empty() ? (c.tool_calls.empty() ? "stop" : "tool_calls") : finish;
      d.choices.push_back(std::move(c));
    }
  }
  if (const Value* usage = json::GetObject(doc, "usage")) {
    d.usage = ReadOpenAiUsage(*usage);
    d.has_usage = true;
  }
  return d;
}

Usage ReadOpenAiUsage(const Value& usage) {
  Usage u;
  u.prompt_tokens = json::GetInt(usage, "prompt_tokens");
  u.completion_tokens = json::GetInt(usage, "completion_tokens");
  u.total_tokens = json::GetInt(usage, "total_tokens", u.prompt_tokens + u.completion_tokens);
  if (const Value* d = json::GetObject(usage, "prompt_tokens_details")) {
    u.cached_tokens = json::GetInt(*d, "cached_tokens");
  }
  if (const Value* d = json::GetObject(usage, "completion_tokens_details")) {
    u.reasoning_tokens = json::GetInt(*d, "reasoning_tokens");
  }
  return u;
}

void WriteOpenAiToolCall(json::Writer& w, std::optional<int> delta_index, std::string_view id,
                         std::string_view name, std::string_view arguments) {
  const bool delta = delta_index.has_value();
  w.StartObject();
  if (delta) {
    w.Key("index");
    w.Int(*delta_index);
  }
  if (!delta || !id.empty()) {
    w.Key("id");
    json::WriteString(w, id);
    w.Key("type");
    w.String("function");
  }
  w.Key("function");
  w.StartObject();
  if (!delta || !name.empty()) {
    w.Key("name");
    json::WriteString(w, name);
  }
  w.Key("arguments");
  json::WriteString(w, arguments);
  w.EndObject();
  w.EndObject();
}

void WriteOpenAiUsage(json::Writer& w, const Usage& u) {
  w.StartObject();
  w.Key("prompt_tokens");
  w.Int64(u.prompt_tokens);
  w.Key("completion_tokens");
  w.Int64(u.completion_tokens);
  w.Key("total_tokens");
  w.Int64(u.total_tokens);
  w.Key("prompt_tokens_details");
  w.StartObject();
  w.Key("cached_tokens");
  w.Int64(u.cached_tokens);
  w.EndObject();
  w.Key("completion_tokens_details");
  w.StartObject();
  w.Key("reasoning_tokens");
  w.Int64(u.reasoning_tokens);
  w.EndObject();
  w.EndObject();
}

bool ParseDataUrl(std::string_view url, DataUrl* out) {
  constexpr std::string_view kPrefix = "data:";
  if (url.substr(0, kPrefix.size()) != kPrefix) return false;
  size_t comma = url.find(',');
  if (comma == std::string_view::npos) return false;
  std::string_view meta = url.substr(kPrefix.size(), comma - kPrefix.size());
  constexpr std::string_view kBase64 = ";base64";
  if (meta.size() < kBase64.size() || meta.substr(meta.size() - kBase64.size()) != kBase64) {
    return false;  // percent-encoded data URLs are not images anyone sends
  }
  out->media_type = meta.substr(0, meta.size() - kBase64.size());
  out->data = url.substr(comma + 1);
  return true;
}

Value ArgumentsObject(std::string_view arguments, Allocator& a) {
  json::Document parsed(&a);  // parsed straight into the caller's pool: no copy
  const bool parsed_ok = json::ParseStrict(arguments, &parsed);
  Value out(rapidjson::kObjectType);
  if (parsed_ok && parsed.IsObject()) out.Swap(parsed);
  return out;
}

std::string MintId(std::string_view prefix, std::string_view seed, uint64_t n) {
  // FNV-1a over seed and n, twice with different offsets for 96 bits.
  auto fnv = [&](uint64_t h) {
    for (char c : seed) h = (h ^ static_cast<unsigned char>(c)) * 0x100000001b3ULL;
    for (int i = 0; i < 8; ++i) h = (h ^ ((n >> (8 * i)) & 0xff)) * 0x100000001b3ULL;
    return h;
  };
  uint64_t h1 = fnv(0xcbf29ce484222325ULL);
  uint64_t h2 = fnv(0x84222325cbf29ce4ULL);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(prefix);
  for (int i = 15; i >= 0; --i) out.push_back(kHex[(h1 >> (4 * i)) & 0xf]);
  for (int i = 7; i >= 0; --i) out.push_back(kHex[(h2 >> (4 * i)) & 0xf]);
  return out;
}

}  // namespace tg::adapter::translate
