// Size: one provider, whole: its declarations, the generateContent request and answer, and the
// stream decoder.

#include <algorithm>
#include <cctype>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "tg/adapter/translate/canonical.h"
#include "tg/adapter/translate/finish_reason.h"
#include "tg/adapter/translate/provider_codec.h"
#include "tg/adapter/translate/providers/conversation.h"
#include "tg/adapter/translate/providers/gemini_schema.h"
#include "tg/adapter/translate/providers/provider_util.h"
#include "tg/adapter/translate/providers/providers.h"
#include "tg/adapter/translate/target_url.h"

namespace tg::adapter::translate {

namespace {

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

using json::Allocator;
using json::Value;

// fileData needs a MIME type; the URL's extension is the only hint there is.
std::string_view GuessMimeType(std::string_view url) {
  std::string_view path = url.substr(0, url.find_first_of("?#"));
  auto ends = [&](std::string_view ext) {
    if (path.size() < ext.size()) return false;
    std::string_view tail = path.substr(path.size() - ext.size());
    for (size_t i = 0; i < ext.size(); ++i) {
      if (std::tolower(static_cast<unsigned char>(tail[i])) != ext[i]) return false;
    }
    return true;
  };
  if (ends(".png")) return "image/png";
  if (ends(".gif")) return "image/gif";
  if (ends(".webp")) return "image/webp";
  if (ends(".heic")) return "image/heic";
  if (ends(".pdf")) return "application/pdf";
  return "image/jpeg";
}

Value TextPart(std::string_view text, Allocator& a) {
  Value part(rapidjson::kObjectType);
  part.AddMember("text", json::Ref(text), a);
  return part;
}

Value ImagePart(std::string_view url, Allocator& a) {
  Value part(rapidjson::kObjectType);
  DataUrl data;
  Value inner(rapidjson::kObjectType);
  if (ParseDataUrl(url, &data)) {
    inner.AddMember("mimeType", json::Ref(data.media_type), a);
    inner.AddMember("data", json::Ref(data.data), a);
    part.AddMember("inlineData", inner, a);
  } else {
    inner.AddMember("mimeType", json::Ref(GuessMimeType(url)), a);
    inner.AddMember("fileUri", json::Ref(url), a);
    part.AddMember("fileData", inner, a);
  }
  return part;
}

void AppendUserParts(const Value* content, Value* parts, Allocator& a) {
  ForEachContentPart(
      content, [&](std::string_view text) { parts->PushBack(TextPart(text, a), a); },
      [&](std::string_view url) {
        parts->PushBack(ImagePart(url, a), a);
        return true;
      });
}

// functionResponse.response must be an object: a JSON object result is
// passed as it is, anything else is wrapped as {"content": text}.
Value FunctionResponse(const Value& m, const Conversation& conv, Allocator& a) {
  std::string_view id = json::GetString(m, "tool_call_id");
  auto it = conv.tool_names.find(id);
  std::string_view name = it != conv.tool_names.end() ? it->second : json::GetString(m, "name");
  std::string text = json::ContentText(json::Find(m, "content"), "\n");
  json::Document parsed(&a);  // into the caller's pool: no copy
  const bool parsed_ok = json::ParseStrict(text, &parsed);
  Value response(rapidjson::kObjectType);
  if (parsed_ok && parsed.IsObject()) {
    response.Swap(parsed);
  } else {
    response.AddMember("content", json::Str(text, a), a);
  }
  Value fr(rapidjson::kObjectType);
  fr.AddMember("name", json::Ref(name), a);
  fr.AddMember("response", response, a);
  Value part(rapidjson::kObjectType);
  part.AddMember("functionResponse", fr, a);
  return part;
}

void AppendModelParts(const Value& m, Value* parts, Allocator& a) {
  const Value* content = json::Find(m, "content");
  if (content != nullptr && content->IsString()) {
    if (content->GetStringLength() > 0) parts->PushBack(TextPart(json::AsString(content), a), a);
  } else if (content != nullptr && content->IsArray()) {
    for (const Value& part : content->GetArray()) {
      std::string_view text = json::GetString(part, "text");
      if (!text.empty()) parts->PushBack(TextPart(text, a), a);
    }
  }
  if (const Value* calls = json::GetArray(m, "tool_calls")) {
    for (const Value& call : calls->GetArray()) {
      const Value* fn = json::GetObject(call, "function");
      if (fn == nullptr) continue;
      Value fc(rapidjson::kObjectType);
      fc.AddMember("name", json::Ref(json::GetString(*fn, "name")), a);
      fc.AddMember("args", ArgumentsObject(json::GetString(*fn, "arguments"), a), a);
      Value part(rapidjson::kObjectType);
      part.AddMember("functionCall", fc, a);
      parts->PushBack(part, a);
    }
  }
}

Value GenerationConfig(const Value& in, Allocator& a) {
  Value gc(rapidjson::kObjectType);
  int64_t max_tokens = json::GetInt(in, "max_completion_tokens", 0);
  if (max_tokens <= 0) max_tokens = json::GetInt(in, "max_tokens", 0);
  if (max_tokens > 0) gc.AddMember("maxOutputTokens", max_tokens, a);
  struct Mapping {
    const char* from;
    const char* to;
  };
  static constexpr Mapping kNumbers[] = {{"temperature", "temperature"},
                                         {"top_p", "topP"},
                                         {"top_k", "topK"},
                                         {"n", "candidateCount"},
                                         {"seed", "seed"},
                                         {"presence_penalty", "presencePenalty"},
                                         {"frequency_penalty", "frequencyPenalty"}};
  for (const Mapping& m : kNumbers) {
    if (const Value* v = json::Find(in, m.from); v != nullptr && v->IsNumber()) {
      gc.AddMember(rapidjson::StringRef(m.to), Value(*v, a), a);
    }
  }
  if (const Value* stop = json::Find(in, "stop")) {
    Value seqs(rapidjson::kArrayType);
    if (stop->IsString()) seqs.PushBack(Value(*stop, a), a);
    if (stop->IsArray()) {
      for (const Value& s : stop->GetArray()) {
        if (s.IsString()) seqs.PushBack(Value(s, a), a);
      }
    }
    if (!seqs.Empty()) gc.AddMember("stopSequences", seqs, a);
  }
  if (const Value* rf = json::GetObject(in, "response_format")) {
    std::string_view type = json::GetString(*rf, "type");
    if (type == "json_object" || type == "json_schema") {
      gc.AddMember("responseMimeType", "application/json", a);
      const Value* js = json::GetObject(*rf, "json_schema");
      const Value* schema = js != nullptr ? json::GetObject(*js, "schema") : nullptr;
      if (schema != nullptr)
        gc.AddMember("responseSchema", CleanGeminiSchema(*schema, *schema, a), a);
    }
  }
  return gc;
}

bool HasProperties(const Value& schema) {
  const Value* props = json::GetObject(schema, "properties");
  return props != nullptr && props->MemberCount() > 0;
}

Value Tools(const Value& tools, Allocator& a) {
  Value decls(rapidjson::kArrayType);
  for (const Value& tool : tools.GetArray()) {
    const Value* fn = json::GetObject(tool, "function");
    if (fn == nullptr) continue;
    Value d(rapidjson::kObjectType);
    d.AddMember("name", json::Ref(json::GetString(*fn, "name")), a);
    if (std::string_view desc = json::GetString(*fn, "description"); !desc.empty()) {
      d.AddMember("description", json::Ref(desc), a);
    }
    // An OBJECT schema without properties is a 400 for Gemini: a function
    // without parameters simply has none.
    if (const Value* params = json::GetObject(*fn, "parameters");
        params && HasProperties(*params)) {
      d.AddMember("parameters", CleanGeminiSchema(*params, *params, a), a);
    }
    decls.PushBack(d, a);
  }
  Value out(rapidjson::kArrayType);
  if (decls.Empty()) return out;
  Value t(rapidjson::kObjectType);
  t.AddMember("functionDeclarations", decls, a);
  out.PushBack(t, a);
  return out;
}

Value ToolConfig(const Value& in, Allocator& a) {
  const Value* choice = json::Find(in, "tool_choice");
  if (choice == nullptr) return Value();
  Value fcc(rapidjson::kObjectType);
  std::string_view mode = json::AsString(choice);
  if (mode == "none") {
    fcc.AddMember("mode", "NONE", a);
  } else if (mode == "auto") {
    fcc.AddMember("mode", "AUTO", a);
  } else if (mode == "required") {
    fcc.AddMember("mode", "ANY", a);
  } else if (const Value* fn = json::GetObject(*choice, "function")) {
    fcc.AddMember("mode", "ANY", a);
    Value names(rapidjson::kArrayType);
    names.PushBack(json::Ref(json::GetString(*fn, "name")), a);
    fcc.AddMember("allowedFunctionNames", names, a);
  } else {
    return Value();
  }
  Value config(rapidjson::kObjectType);
  config.AddMember("functionCallingConfig", fcc, a);
  return config;
}

Usage ReadGeminiUsage(const Value& u) {
  Usage usage;
  int64_t thoughts = json::GetInt(u, "thoughtsTokenCount");
  usage.prompt_tokens = json::GetInt(u, "promptTokenCount");
  usage.completion_tokens = json::GetInt(u, "candidatesTokenCount") + thoughts;
  usage.total_tokens =
      json::GetInt(u, "totalTokenCount", usage.prompt_tokens + usage.completion_tokens);
  usage.cached_tokens = json::GetInt(u, "cachedContentTokenCount");
  usage.reasoning_tokens = thoughts;
  return usage;
}

}  // namespace

const std::string_view kGeminiBaseUrl = "https://generativelanguage.googleapis.com";

std::string GeminiModelPath(std::string_view model) {
  if (model.starts_with("models/")) model.remove_prefix(7);
  if (model.starts_with("tunedModels/"))
    return "/v1beta/tunedModels/" + PathEncode(model.substr(12));
  return "/v1beta/models/" + PathEncode(model);
}

static Result<HttpRequestSpec> BuildGeminiRequest(const ChatRequest& request,
                                                  const TargetInfo& target) {
  const Value& in = request.doc;
  json::ScratchDocument scratch;
  json::Document& out = scratch.doc();
  out.SetObject();
  Allocator& a = out.GetAllocator();
  std::string model = target.model.empty() ? request.model : target.model;
  Conversation conv = GroupMessages(json::GetArray(in, "messages"));

  Value contents(rapidjson::kArrayType);
  for (const Turn& turn : conv.turns) {
    Value parts(rapidjson::kArrayType);
    for (const Value* m : turn.messages) {
      std::string_view role = json::GetString(*m, "role");
      if (turn.assistant) {
        AppendModelParts(*m, &parts, a);
      } else if (role == "tool" || role == "function") {
        parts.PushBack(FunctionResponse(*m, conv, a), a);
      } else {
        AppendUserParts(json::Find(*m, "content"), &parts, a);
      }
    }
    if (parts.Empty()) continue;
    Value content(rapidjson::kObjectType);
    content.AddMember("role", json::Ref(turn.assistant ? "model" : "user"), a);
    content.AddMember("parts", parts, a);
    contents.PushBack(content, a);
  }
  if (contents.Empty()) return InvalidRequest("gemini needs at least one non-system message");
  out.AddMember("contents", contents, a);
  if (!conv.system.empty()) {
    Value parts(rapidjson::kArrayType);
    for (const std::string& text : conv.system) parts.PushBack(TextPart(text, a), a);
    Value si(rapidjson::kObjectType);
    si.AddMember("parts", parts, a);
    out.AddMember("systemInstruction", si, a);
  }
  Value gc = GenerationConfig(in, a);
  if (gc.MemberCount() > 0) out.AddMember("generationConfig", gc, a);
  if (const Value* tools = json::GetArray(in, "tools")) {
    Value converted = Tools(*tools, a);
    if (!converted.Empty()) {
      out.AddMember("tools", converted, a);
      Value tc = ToolConfig(in, a);
      if (!tc.IsNull()) out.AddMember("toolConfig", tc, a);
    }
  }

  // `{model}` in a path override keeps the '/' of `tunedModels/x`.
  std::string encoded;
  for (size_t start = 0; start <= model.size();) {
    size_t slash = std::min(model.find('/', start), model.size());
    if (start > 0) encoded.push_back('/');
    encoded.append(PathEncode(std::string_view(model).substr(start, slash - start)));
    start = slash + 1;
  }
  std::string path =
      ResolvePath(GeminiModelPath(model) +
                      (target.stream ? ":streamGenerateContent?alt=sse" : ":generateContent"),
                  target, encoded);
  CallShape shape{.base_url = std::string(kGeminiBaseUrl), .path = std::move(path)};
  // Without alt=sse Gemini streams one JSON array instead of SSE events.
  if (target.stream) shape.query.emplace_back("alt", "sse");
  shape.auth = AuthScheme::kGoogleApiKey;
  return AssembleCall(std::move(shape), target, json::Write(out));
}

static Result<ChatResponse> ParseGeminiAnswer(int status, std::string_view body,
                                              const ResponseContext& ctx) {
  json::ScratchDocument scratch;
  json::Document& doc = scratch.doc();
  if (auto error = ReadAnswerBody(status, body, &doc)) return *std::move(error);
  if (json::GetObject(doc, "error") != nullptr) return HttpError(500, body);
  ResponseDraft d;
  d.id = json::GetString(doc, "responseId");
  if (d.id.empty()) d.id = MintId("chatcmpl-", ctx.id_seed, 0);
  d.model = json::GetString(doc, "modelVersion");
  if (d.model.empty()) d.model = ctx.model;
  d.created = ctx.created;
  uint64_t minted = 0;
  if (const Value* candidates = json::GetArray(doc, "candidates")) {
    for (const Value& candidate : candidates->GetArray()) {
      ChoiceDraft c;
      const Value* content = json::GetObject(candidate, "content");
      const Value* parts = content != nullptr ? json::GetArray(*content, "parts") : nullptr;
      if (parts != nullptr) {
        for (const Value& part : parts->GetArray()) {
          if (const Value* fc = json::GetObject(part, "functionCall")) {
            const Value* args = json::Find(*fc, "args");
            std::string_view id = json::GetString(*fc, "id");
            c.tool_calls.push_back(ToolCall{
                id.empty() ? MintId("call_", ctx.id_seed, ++minted) : std::string(id),
                std::string(json::GetString(*fc, "name")), args ? json::Write(*args) : "{}"});
          } else if (!json::GetBool(part, "thought")) {
            std::string_view text = json::GetString(part, "text");
            if (json::Find(part, "text") != nullptr) {
              c.content.append(text);
              c.has_content = true;
            }
          }
        }
      }
      c.finish_reason =
          FinishFromGemini(json::GetString(candidate, "finishReason"), !c.tool_calls.empty());
      d.choices.push_back(std::move(c));
    }
  }
  if (d.choices.empty()) {
    // The prompt itself was blocked (promptFeedback.blockReason): no candidates.
    ChoiceDraft c;
    c.finish_reason = "content_filter";
    d.choices.push_back(std::move(c));
  }
  if (const Value* usage = json::GetObject(doc, "usageMetadata")) {
    d.usage = ReadGeminiUsage(*usage);
    d.has_usage = true;
  }
  return AnswerOf(std::move(d));
}

void GeminiStreamDecoder::OnEvent(const SseEvent& event, StreamEvents* out) {
  if (!ParseData(event.data, out)) return;
  const json::Document& d = data();
  if (const Value* e = json::GetObject(d, "error")) {
    EmitError(StreamErrorFromObject(*e), out);
    return;
  }
  if (!started_) {
    started_ = true;
    StreamEvent start;
    start.type = StreamEvent::Type::kStart;
    start.id = json::GetString(d, "responseId");
    if (start.id.empty()) start.id = MintId("chatcmpl-", ctx_.id_seed, 0);
    start.model = json::GetString(d, "modelVersion");
    if (start.model.empty()) start.model = ctx_.model;
    start.created = ctx_.created;
    out->push_back(std::move(start));
  }
  const Value* candidates = json::GetArray(d, "candidates");
  if (candidates != nullptr) {
    for (const Value& candidate : candidates->GetArray()) {
      int64_t index = json::GetInt(candidate, "index", 0);
      if (index < 0 || index > 128) continue;
      if (choices_.size() <= static_cast<size_t>(index)) choices_.resize(index + 1);
      Choice& choice = choices_[index];
      const Value* content = json::GetObject(candidate, "content");
      const Value* parts = content != nullptr ? json::GetArray(*content, "parts") : nullptr;
      if (parts != nullptr) {
        for (const Value& part : parts->GetArray()) {
          StreamEvent ev;
          ev.choice = static_cast<int>(index);
          if (const Value* fc = json::GetObject(part, "functionCall")) {
            // Gemini sends each call whole: one delta with id, name and arguments.
            choice.has_function_call = true;
            const Value* args = json::Find(*fc, "args");
            std::string_view id = json::GetString(*fc, "id");
            ev.tool_calls.push_back(ToolCallDelta{
                choice.next_tool_index++,
                id.empty() ? MintId("call_", ctx_.id_seed, ++minted_) : std::string(id),
                std::string(json::GetString(*fc, "name")), args ? json::Write(*args) : "{}"});
          } else if (!json::GetBool(part, "thought")) {
            ev.content = json::GetString(part, "text");
          }
          if (!ev.content.empty() || !ev.tool_calls.empty()) out->push_back(std::move(ev));
        }
      }
      std::string_view finish = json::GetString(candidate, "finishReason");
      if (!finish.empty()) choice.finish = finish;
    }
  }
  if (const Value* feedback = json::GetObject(d, "promptFeedback")) {
    if (!json::GetString(*feedback, "blockReason").empty()) blocked_ = true;
  }
  if (const Value* usage = json::GetObject(d, "usageMetadata")) {
    usage_ = ReadGeminiUsage(*usage);
    has_usage_ = true;
  }
}

void GeminiStreamDecoder::OnEof(StreamEvents* out) {
  bool finished = blocked_;
  for (const Choice& c : choices_) finished = finished || !c.finish.empty();
  if (!finished) {
    EmitBroken("stream ended without a finishReason", out);
    return;
  }
  if (choices_.empty()) choices_.resize(1);
  for (size_t i = 0; i < choices_.size(); ++i) {
    StreamEvent ev;
    ev.choice = static_cast<int>(i);
    ev.finish_reason = choices_[i].finish.empty() && blocked_
                           ? "content_filter"
                           : FinishFromGemini(choices_[i].finish, choices_[i].has_function_call);
    out->push_back(std::move(ev));
  }
  if (has_usage_) {
    StreamEvent ev;
    ev.type = StreamEvent::Type::kUsage;
    ev.usage = usage_;
    out->push_back(std::move(ev));
  }
  EmitEnd(out);
}

const ProviderCodec& GeminiProvider() {
  static const ProviderCodec kCodec{"gemini", &BuildGeminiRequest, &ParseGeminiAnswer,
                                    &NewDecoder<GeminiStreamDecoder>};
  return kCodec;
}

}  // namespace tg::adapter::translate
