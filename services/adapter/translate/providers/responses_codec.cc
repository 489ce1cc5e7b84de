#include <algorithm>
#include <memory>
#include <string_view>
#include <vector>

#include "tg/adapter/translate/canonical.h"
#include "tg/adapter/translate/provider_codec.h"
#include "tg/adapter/translate/providers/conversation.h"
#include "tg/adapter/translate/providers/provider_util.h"
#include "tg/adapter/translate/providers/providers.h"
#include "tg/adapter/translate/target_url.h"

namespace tg::adapter::translate {

namespace {

// OpenAI Responses API as a provider (openai with provider_options.api =
// "responses"): POST /v1/responses.
//
// Request: system/developer messages → instructions; messages → input items
// (text → input_text / output_text, images → input_image, tool_calls →
// function_call items, tool messages → function_call_output items);
// max_tokens → max_output_tokens; tools flattened; response_format →
// text.format; reasoning_effort → reasoning.effort; store defaults to false
// (Chat semantics: a gateway does not keep conversations unless asked).
// Dropped: n, stop, seed, logprobs, top_logprobs, penalties, logit_bias,
// stream_options, top_k, modalities, audio.

// `event: response.*` stream → canonical events. Ends at response.completed
// or response.incomplete; response.failed and `error` are errors.
class ResponsesStreamDecoder : public SseStreamDecoder {
 public:
  explicit ResponsesStreamDecoder(const ResponseContext& ctx) : ctx_(ctx) {}

 protected:
  void OnEvent(const SseEvent& event, StreamEvents* out) override;
  void OnEof(StreamEvents* out) override;

 private:
  struct Call {
    int tool_index = -1;
    bool had_arguments = false;
  };
  Call* CallAt(int64_t output_index);
  void Complete(const json::Value& response, StreamEvents* out);

  ResponseContext ctx_;
  std::vector<Call> calls_;  // by output_index
  int next_tool_index_ = 0;
};

using json::Allocator;
using json::Value;

constexpr std::string_view kDefaultBaseUrl = "https://api.openai.com";
constexpr std::string_view kDefaultPath = "/v1/responses";

Value InputText(std::string_view type, std::string_view text, Allocator& a) {
  Value part(rapidjson::kObjectType);
  part.AddMember("type", json::Ref(type), a);
  part.AddMember("text", json::Ref(text), a);
  return part;
}

// Chat user content → Responses content (string or input parts).
Value UserContent(const Value* content, Allocator& a) {
  if (content == nullptr) return json::Ref("");
  if (content->IsString()) return json::Ref(json::AsString(content));
  Value parts(rapidjson::kArrayType);
  if (!content->IsArray()) return parts;
  for (const Value& part : content->GetArray()) {
    std::string_view type = json::GetString(part, "type");
    if (type == "text") {
      parts.PushBack(InputText("input_text", json::GetString(part, "text"), a), a);
    } else if (std::string_view url = ImageUrlOf(part); !url.empty()) {
      Value p(rapidjson::kObjectType);
      p.AddMember("type", "input_image", a);
      p.AddMember("image_url", json::Ref(url), a);
      const Value* image = json::GetObject(part, "image_url");
      std::string_view detail = image != nullptr ? json::GetString(*image, "detail") : "";
      p.AddMember("detail", json::Ref(detail.empty() ? "auto" : detail), a);
      parts.PushBack(p, a);
    }
  }
  return parts;
}

void AppendItems(const Value& m, Value* input, Allocator& a) {
  std::string_view role = json::GetString(m, "role");
  if (role == "tool" || role == "function") {
    Value item(rapidjson::kObjectType);
    item.AddMember("type", "function_call_output", a);
    item.AddMember("call_id", json::Ref(json::GetString(m, "tool_call_id")), a);
    item.AddMember("output", json::Str(json::ContentText(json::Find(m, "content"), "\n"), a), a);
    input->PushBack(item, a);
    return;
  }
  if (role == "assistant") {
    std::string text = json::ContentText(json::Find(m, "content"));
    if (!text.empty()) {
      Value part(rapidjson::kObjectType);
      part.AddMember("type", "output_text", a);
      part.AddMember("text", json::Str(text, a), a);
      Value parts(rapidjson::kArrayType);
      parts.PushBack(part, a);
      Value item(rapidjson::kObjectType);
      item.AddMember("role", "assistant", a);
      item.AddMember("content", parts, a);
      input->PushBack(item, a);
    }
    if (const Value* calls = json::GetArray(m, "tool_calls")) {
      for (const Value& call : calls->GetArray()) {
        const Value* fn = json::GetObject(call, "function");
        if (fn == nullptr) continue;
        Value item(rapidjson::kObjectType);
        item.AddMember("type", "function_call", a);
        item.AddMember("call_id", json::Ref(json::GetString(call, "id")), a);
        item.AddMember("name", json::Ref(json::GetString(*fn, "name")), a);
        item.AddMember("arguments", json::Ref(json::GetString(*fn, "arguments")), a);
        input->PushBack(item, a);
      }
    }
    return;
  }
  Value item(rapidjson::kObjectType);
  item.AddMember("role", "user", a);
  item.AddMember("content", UserContent(json::Find(m, "content"), a), a);
  input->PushBack(item, a);
}

Usage ReadResponsesUsage(const Value& u) {
  Usage usage;
  usage.prompt_tokens = json::GetInt(u, "input_tokens");
  usage.completion_tokens = json::GetInt(u, "output_tokens");
  usage.total_tokens =
      json::GetInt(u, "total_tokens", usage.prompt_tokens + usage.completion_tokens);
  if (const Value* d = json::GetObject(u, "input_tokens_details")) {
    usage.cached_tokens = json::GetInt(*d, "cached_tokens");
  }
  if (const Value* d = json::GetObject(u, "output_tokens_details")) {
    usage.reasoning_tokens = json::GetInt(*d, "reasoning_tokens");
  }
  return usage;
}

// status + incomplete_details + whether a function was called → finish_reason.
std::string FinishOf(const Value& response, bool has_calls) {
  std::string_view status = json::GetString(response, "status");
  if (status == "incomplete") {
    const Value* details = json::GetObject(response, "incomplete_details");
    std::string_view reason = details != nullptr ? json::GetString(*details, "reason") : "";
    return reason == "content_filter" ? "content_filter" : "length";
  }
  return has_calls ? "tool_calls" : "stop";
}

AdapterError FailedResponse(const Value& response) {
  const Value* e = json::GetObject(response, "error");
  AdapterError err = e != nullptr ? StreamErrorFromObject(*e) : AdapterError{};
  if (e == nullptr) {
    err.http_status = 500;
    err.retryable = true;
    err.message = "the response failed";
  }
  return err;
}

}  // namespace

static Result<HttpRequestSpec> BuildResponsesRequest(const ChatRequest& request,
                                                     const TargetInfo& target) {
  const Value& in = request.doc;
  json::ScratchDocument scratch;
  json::Document& out = scratch.doc();
  out.SetObject();
  Allocator& a = out.GetAllocator();
  const std::string& model = target.model.empty() ? request.model : target.model;
  out.AddMember("model", json::Ref(model), a);
  Conversation conv = GroupMessages(json::GetArray(in, "messages"));
  std::string instructions;
  for (const std::string& s : conv.system) {
    if (!instructions.empty()) instructions.append("\n\n");
    instructions.append(s);
  }
  if (!instructions.empty()) out.AddMember("instructions", json::Ref(instructions), a);
  Value input(rapidjson::kArrayType);
  for (const Turn& turn : conv.turns) {
    for (const Value* m : turn.messages) AppendItems(*m, &input, a);
  }
  out.AddMember("input", input, a);
  int64_t max_tokens = json::GetInt(in, "max_completion_tokens", 0);
  if (max_tokens <= 0) max_tokens = json::GetInt(in, "max_tokens", 0);
  if (max_tokens > 0) out.AddMember("max_output_tokens", max_tokens, a);
  for (const char* key : {"temperature", "top_p", "parallel_tool_calls", "user", "service_tier",
                          "previous_response_id", "safety_identifier", "prompt_cache_key"}) {
    if (const Value* v = json::Find(in, key); v != nullptr && !v->IsNull()) {
      out.AddMember(rapidjson::StringRef(key), Value(*v, a), a);
    }
  }
  if (const Value* md = json::GetObject(in, "metadata")) {
    bool flat = std::all_of(md->MemberBegin(), md->MemberEnd(),
                            [](const auto& kv) { return kv.value.IsString(); });
    if (flat) out.AddMember("metadata", Value(*md, a), a);
  }
  const Value* store = json::Find(in, "store");
  out.AddMember("store", store != nullptr && store->IsBool() && store->GetBool(), a);
  if (const Value* tools = json::GetArray(in, "tools")) {
    Value flat(rapidjson::kArrayType);
    for (const Value& tool : tools->GetArray()) {
      const Value* fn = json::GetObject(tool, "function");
      if (fn == nullptr) continue;
      Value t(rapidjson::kObjectType);
      t.AddMember("type", "function", a);
      for (const auto& m : fn->GetObject()) t.AddMember(Value(m.name, a), Value(m.value, a), a);
      flat.PushBack(t, a);
    }
    if (!flat.Empty()) out.AddMember("tools", flat, a);
  }
  if (const Value* choice = json::Find(in, "tool_choice")) {
    if (choice->IsString()) {
      out.AddMember("tool_choice", Value(*choice, a), a);
    } else if (const Value* fn = json::GetObject(*choice, "function")) {
      Value c(rapidjson::kObjectType);
      c.AddMember("type", "function", a);
      c.AddMember("name", json::Ref(json::GetString(*fn, "name")), a);
      out.AddMember("tool_choice", c, a);
    }
  }
  if (const Value* rf = json::GetObject(in, "response_format")) {
    std::string_view type = json::GetString(*rf, "type");
    Value format(rapidjson::kObjectType);
    format.AddMember("type", json::Ref(type), a);
    if (type == "json_schema") {
      if (const Value* schema = json::GetObject(*rf, "json_schema")) {
        for (const auto& m : schema->GetObject()) {
          format.AddMember(Value(m.name, a), Value(m.value, a), a);
        }
      }
    }
    if (!type.empty()) {
      Value text(rapidjson::kObjectType);
      text.AddMember("format", format, a);
      out.AddMember("text", text, a);
    }
  }
  if (std::string_view effort = json::GetString(in, "reasoning_effort"); !effort.empty()) {
    Value reasoning(rapidjson::kObjectType);
    reasoning.AddMember("effort", json::Ref(effort), a);
    out.AddMember("reasoning", reasoning, a);
  }
  if (target.stream) out.AddMember("stream", true, a);

  return AssembleCall({.base_url = std::string(kDefaultBaseUrl),
                       .path = ResolvePath(kDefaultPath, target, PathEncode(model)),
                       .auth = AuthScheme::kBearer},
                      target, json::Write(out));
}

static Result<ChatResponse> ParseResponsesAnswer(int status, std::string_view body,
                                                 const ResponseContext& ctx) {
  json::ScratchDocument scratch;
  json::Document& doc = scratch.doc();
  if (auto error = ReadAnswerBody(status, body, &doc)) return *std::move(error);
  if (json::GetString(doc, "status") == "failed") return FailedResponse(doc);
  ResponseDraft d;
  d.id = json::GetString(doc, "id");
  d.model = json::GetString(doc, "model");
  if (d.model.empty()) d.model = ctx.model;
  d.created = json::GetInt(doc, "created_at", ctx.created);
  ChoiceDraft c;
  if (const Value* output = json::GetArray(doc, "output")) {
    for (const Value& item : output->GetArray()) {
      std::string_view type = json::GetString(item, "type");
      if (type == "message") {
        const Value* content = json::GetArray(item, "content");
        if (content == nullptr) continue;
        for (const Value& part : content->GetArray()) {
          std::string_view ptype = json::GetString(part, "type");
          if (ptype == "output_text") {
            c.content.append(json::GetString(part, "text"));
            c.has_content = true;
          } else if (ptype == "refusal") {
            c.refusal.append(json::GetString(part, "refusal"));
          }
        }
      } else if (type == "function_call") {
        std::string_view call_id = json::GetString(item, "call_id");
        c.tool_calls.push_back(
            ToolCall{std::string(call_id.empty() ? json::GetString(item, "id") : call_id),
                     std::string(json::GetString(item, "name")),
                     std::string(json::GetString(item, "arguments"))});
      }
      // reasoning and built-in tool items have no Chat form.
    }
  }
  c.finish_reason = FinishOf(doc, !c.tool_calls.empty());
  d.choices.push_back(std::move(c));
  if (const Value* usage = json::GetObject(doc, "usage")) {
    d.usage = ReadResponsesUsage(*usage);
    d.has_usage = true;
  }
  return AnswerOf(std::move(d));
}

ResponsesStreamDecoder::Call* ResponsesStreamDecoder::CallAt(int64_t output_index) {
  if (output_index < 0 || output_index > 4096) return nullptr;
  if (static_cast<size_t>(output_index) >= calls_.size()) calls_.resize(output_index + 1);
  return &calls_[output_index];
}

void ResponsesStreamDecoder::Complete(const Value& response, StreamEvents* out) {
  StreamEvent finish;
  finish.finish_reason = FinishOf(response, next_tool_index_ > 0);
  out->push_back(std::move(finish));
  if (const Value* usage = json::GetObject(response, "usage")) {
    StreamEvent ev;
    ev.type = StreamEvent::Type::kUsage;
    ev.usage = ReadResponsesUsage(*usage);
    out->push_back(std::move(ev));
  }
  EmitEnd(out);
}

void ResponsesStreamDecoder::OnEvent(const SseEvent& event, StreamEvents* out) {
  if (!ParseData(event.data, out)) return;
  const json::Document& d = data();
  std::string_view type = json::GetString(d, "type");
  if (type.empty()) type = event.event;

  if (type == "response.output_text.delta") {
    StreamEvent ev;
    ev.content = json::GetString(d, "delta");
    if (!ev.content.empty()) out->push_back(std::move(ev));
  } else if (type == "response.function_call_arguments.delta" ||
             type == "response.function_call_arguments.done") {
    Call* call = CallAt(json::GetInt(d, "output_index", -1));
    if (call == nullptr || call->tool_index < 0) return;
    bool done = type == "response.function_call_arguments.done";
    // .done repeats the whole arguments: only needed when no delta came.
    std::string_view args = json::GetString(d, done ? "arguments" : "delta");
    if (args.empty() || (done && call->had_arguments)) return;
    call->had_arguments = true;
    StreamEvent ev;
    ev.tool_calls.push_back(ToolCallDelta{call->tool_index, {}, {}, std::string(args)});
    out->push_back(std::move(ev));
  } else if (type == "response.refusal.delta") {
    StreamEvent ev;
    ev.refusal = json::GetString(d, "delta");
    if (!ev.refusal.empty()) out->push_back(std::move(ev));
  } else if (type == "response.output_item.added") {
    const Value* item = json::GetObject(d, "item");
    Call* call = CallAt(json::GetInt(d, "output_index", -1));
    if (item == nullptr || call == nullptr || json::GetString(*item, "type") != "function_call") {
      return;
    }
    call->tool_index = next_tool_index_++;
    std::string_view call_id = json::GetString(*item, "call_id");
    std::string_view args = json::GetString(*item, "arguments");
    call->had_arguments = !args.empty();
    StreamEvent ev;
    ev.tool_calls.push_back(ToolCallDelta{
        call->tool_index, std::string(call_id.empty() ? json::GetString(*item, "id") : call_id),
        std::string(json::GetString(*item, "name")), std::string(args)});
    out->push_back(std::move(ev));
  } else if (type == "response.created") {
    const Value* response = json::GetObject(d, "response");
    if (response == nullptr) return;
    StreamEvent ev;
    ev.type = StreamEvent::Type::kStart;
    ev.id = json::GetString(*response, "id");
    ev.model = json::GetString(*response, "model");
    if (ev.model.empty()) ev.model = ctx_.model;
    ev.created = json::GetInt(*response, "created_at", ctx_.created);
    out->push_back(std::move(ev));
  } else if (type == "response.completed" || type == "response.incomplete") {
    const Value* response = json::GetObject(d, "response");
    Complete(response != nullptr ? *response : d, out);
  } else if (type == "response.failed") {
    const Value* response = json::GetObject(d, "response");
    EmitError(FailedResponse(response != nullptr ? *response : d), out);
  } else if (type == "error") {
    // Both shapes are seen: {"type":"error","code","message"} and
    // {"type":"error","error":{…}}.
    const Value* e = json::GetObject(d, "error");
    EmitError(StreamErrorFromObject(e != nullptr ? *e : d), out);
  }
}

void ResponsesStreamDecoder::OnEof(StreamEvents* out) {
  EmitBroken("stream ended without response.completed", out);
}

const ProviderCodec& OpenAiResponsesProvider() {
  static const ProviderCodec kCodec{"openai", &BuildResponsesRequest, &ParseResponsesAnswer,
                                    &NewDecoder<ResponsesStreamDecoder>};
  return kCodec;
}

}  // namespace tg::adapter::translate
