#include "tg/adapter/translate/providers/openai_codec.h"

#include <algorithm>
#include <array>

#include "tg/adapter/translate/canonical.h"
#include "tg/adapter/translate/providers/providers.h"
#include "tg/adapter/translate/target_url.h"

namespace tg::adapter::translate {

using json::Value;

namespace {

constexpr std::string_view kDefaultBaseUrl = "https://api.openai.com";
constexpr std::string_view kDefaultPath = "/v1/chat/completions";

// Every top-level parameter of POST /v1/chat/completions (sorted). Anything
// else — the seeds' `system` (already a message), Anthropic's `top_k`,
// `metadata.user_id`-style extras — would be a 400.
constexpr std::array<std::string_view, 33> kChatParams = {
    "audio",
    "frequency_penalty",
    "function_call",
    "functions",
    "logit_bias",
    "logprobs",
    "max_completion_tokens",
    "max_tokens",
    "messages",
    "metadata",
    "modalities",
    "n",
    "parallel_tool_calls",
    "prediction",
    "presence_penalty",
    "prompt_cache_key",
    "reasoning_effort",
    "response_format",
    "safety_identifier",
    "seed",
    "service_tier",
    "stop",
    "store",
    "stream",
    "stream_options",
    "temperature",
    "tool_choice",
    "tools",
    "top_logprobs",
    "top_p",
    "user",
    "verbosity",
    "web_search_options",
};

static_assert(std::is_sorted(kChatParams.begin(), kChatParams.end()));

bool IsChatParam(std::string_view name) {
  return std::binary_search(kChatParams.begin(), kChatParams.end(), name);
}

}  // namespace

std::string OpenAiChatBody(const ChatRequest& request, const TargetInfo& target,
                           bool include_stream_options) {
  rapidjson::StringBuffer buf;
  json::Writer w(buf);
  w.StartObject();
  w.Key("model");
  json::WriteString(w, target.model.empty() ? request.model : target.model);
  for (const auto& m : request.doc.GetObject()) {
    std::string_view key(m.name.GetString(), m.name.GetStringLength());
    if (key == "model" || key == "stream" || key == "stream_options" || !IsChatParam(key)) {
      continue;
    }
    // `metadata` is OpenAI's string map; an Anthropic-style object with
    // non-string values would be rejected, so only a flat string map passes.
    if (key == "metadata") {
      if (!m.value.IsObject()) continue;
      bool flat = std::all_of(m.value.MemberBegin(), m.value.MemberEnd(),
                              [](const auto& kv) { return kv.value.IsString(); });
      if (!flat) continue;
    }
    json::WriteKey(w, key);
    m.value.Accept(w);
  }
  if (target.stream) {
    w.Key("stream");
    w.Bool(true);
    // Usage is needed for metering whatever the client asked; the client
    // encoder shows the usage chunk only to clients that asked for it.
    if (include_stream_options) {
      w.Key("stream_options");
      w.StartObject();
      w.Key("include_usage");
      w.Bool(true);
      w.EndObject();
    }
  }
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

static Result<HttpRequestSpec> BuildOpenAiChatRequest(const ChatRequest& request,
                                                      const TargetInfo& target) {
  std::string model = target.model.empty() ? request.model : target.model;
  return AssembleCall({.base_url = std::string(kDefaultBaseUrl),
                       .path = ResolvePath(kDefaultPath, target, PathEncode(model)),
                       .auth = AuthScheme::kBearer},
                      target, OpenAiChatBody(request, target, /*include_stream_options=*/true));
}

Result<ChatResponse> ParseOpenAiChatAnswer(int status, std::string_view body,
                                           const ResponseContext& ctx) {
  ChatResponse out;
  out.completion = std::make_unique<CompletionDocument>();
  json::Document& doc = out.completion->doc;
  if (auto error = ReadAnswerBody(status, body, &doc)) return *std::move(error);
  if (json::Find(doc, "error") != nullptr && json::Find(doc, "choices") == nullptr) {
    return HttpError(500, body);  // some compatible servers answer errors with 200
  }
  if (json::GetArray(doc, "choices") == nullptr) {
    return ProtocolError("chat completion without choices");
  }
  json::Allocator& a = doc.GetAllocator();
  if (json::Find(doc, "model") == nullptr) json::Set(doc, "model", json::Str(ctx.model, a), a);
  if (json::Find(doc, "created") == nullptr) json::Set(doc, "created", Value(ctx.created), a);
  if (const Value* usage = json::GetObject(doc, "usage")) {
    out.usage = ReadOpenAiUsage(*usage);
    out.has_usage = true;
  }
  return out;
}

std::unique_ptr<ProviderStreamDecoder> NewOpenAiChatStreamDecoder(const ResponseContext&) {
  return std::make_unique<OpenAiChatStreamDecoder>();
}

void OpenAiChatStreamDecoder::OnEvent(const SseEvent& event, StreamEvents* out) {
  if (event.data == "[DONE]") {
    EmitEnd(out);
    return;
  }
  if (!ParseData(event.data, out)) return;
  const json::Document& chunk = data();
  if (const Value* e = json::Find(chunk, "error"); e != nullptr && e->IsObject()) {
    EmitError(StreamErrorFromObject(*e), out);
    return;
  }
  const Value* choices = json::GetArray(chunk, "choices");
  std::string_view id = json::GetString(chunk, "id");
  if (!started_ && (!id.empty() || (choices != nullptr && !choices->Empty()))) {
    started_ = true;
    StreamEvent start;
    start.type = StreamEvent::Type::kStart;
    start.id = id;
    start.model = json::GetString(chunk, "model");
    start.created = json::GetInt(chunk, "created");
    out->push_back(std::move(start));
  }
  if (choices != nullptr) {
    for (const Value& choice : choices->GetArray()) {
      StreamEvent ev;
      ev.choice = static_cast<int>(json::GetInt(choice, "index"));
      if (const Value* delta = json::GetObject(choice, "delta")) {
        ev.content = json::GetString(*delta, "content");
        ev.refusal = json::GetString(*delta, "refusal");
        if (const Value* calls = json::GetArray(*delta, "tool_calls")) {
          for (const Value& call : calls->GetArray()) {
            ToolCallDelta tc;
            tc.index = static_cast<int>(json::GetInt(call, "index"));
            tc.id = json::GetString(call, "id");
            if (const Value* fn = json::GetObject(call, "function")) {
              tc.name = json::GetString(*fn, "name");
              tc.arguments = json::GetString(*fn, "arguments");
            }
            ev.tool_calls.push_back(std::move(tc));
          }
        }
      }
      ev.finish_reason = json::GetString(choice, "finish_reason");
      if (ev.finish_reason.empty()) {
        if (finished_choices_.count(ev.choice) == 0) open_choices_.insert(ev.choice);
      } else {
        open_choices_.erase(ev.choice);
        finished_choices_.insert(ev.choice);
      }
      if (!ev.content.empty() || !ev.refusal.empty() || !ev.tool_calls.empty() ||
          !ev.finish_reason.empty()) {
        out->push_back(std::move(ev));
      }
    }
  }
  if (const Value* usage = json::GetObject(chunk, "usage")) {
    StreamEvent ev;
    ev.type = StreamEvent::Type::kUsage;
    ev.usage = ReadOpenAiUsage(*usage);
    out->push_back(std::move(ev));
  }
}

void OpenAiChatStreamDecoder::OnEof(StreamEvents* out) {
  if (!finished_choices_.empty() && open_choices_.empty()) {
    EmitEnd(out);  // complete: the usage chunk, if any, came before
    return;
  }
  EmitBroken("stream ended before [DONE]", out);
}

const ProviderCodec& OpenAiChatProvider() {
  static const ProviderCodec kCodec{"openai", &BuildOpenAiChatRequest, &ParseOpenAiChatAnswer,
                                    &NewOpenAiChatStreamDecoder};
  return kCodec;
}

}  // namespace tg::adapter::translate
