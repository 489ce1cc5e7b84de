#include <algorithm>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "tg/adapter/translate/canonical.h"
#include "tg/adapter/translate/finish_reason.h"
#include "tg/adapter/translate/provider_codec.h"
#include "tg/adapter/translate/providers/conversation.h"
#include "tg/adapter/translate/providers/provider_util.h"
#include "tg/adapter/translate/providers/providers.h"
#include "tg/adapter/translate/target_url.h"

namespace tg::adapter::translate {

namespace {

// Anthropic Messages (POST /v1/messages, x-api-key, anthropic-version).
//
// Request: system/developer messages → top-level `system`; consecutive tool
// messages (and a user message right after them) → ONE user message whose
// tool_result blocks come first; assistant tool_calls → tool_use blocks with
// parsed arguments; image_url parts → image blocks (data: URL → base64
// source, other URLs → url source); stop → stop_sequences; tools →
// input_schema; tool_choice required → any, a named function → tool;
// parallel_tool_calls:false → disable_parallel_tool_use; user →
// metadata.user_id; temperature clamped to Anthropic's 0..1; max_tokens
// defaulted to kDefaultMaxTokens. Dropped: n, seed, logprobs, penalties,
// response_format, reasoning_effort, logit_bias, stream_options.
// max_tokens is required by Anthropic; this is what a request without one
// gets (every current Claude model can produce at least this much).
constexpr int kDefaultMaxTokens = 4096;
constexpr std::string_view kApiVersion = "2023-06-01";

// message_start → content_block_start/delta/stop … → message_delta →
// message_stop, `ping` anywhere, `error` mid-stream. Tool calls get OpenAI
// indexes 0,1,… in tool_use order, not Anthropic's block index.
class AnthropicStreamDecoder : public SseStreamDecoder {
 public:
  explicit AnthropicStreamDecoder(const ResponseContext& ctx) : ctx_(ctx) {}

 protected:
  void OnEvent(const SseEvent& event, StreamEvents* out) override;
  void OnEof(StreamEvents* out) override;

 private:
  struct Block {
    int tool_index = -1;  // -1: not a tool_use block
    bool had_arguments = false;
  };
  Block* BlockAt(int64_t index);
  void ReadUsage(const json::Value& usage);

  ResponseContext ctx_;
  std::vector<Block> blocks_;
  int next_tool_index_ = 0;
  std::string stop_reason_;
  int64_t input_tokens_ = 0;
  int64_t cache_creation_tokens_ = 0;
  int64_t cache_read_tokens_ = 0;
  int64_t output_tokens_ = 0;
};

using json::Allocator;
using json::Value;

constexpr std::string_view kDefaultBaseUrl = "https://api.anthropic.com";
constexpr std::string_view kDefaultPath = "/v1/messages";

Value TextBlock(std::string_view text, Allocator& a) {
  Value block(rapidjson::kObjectType);
  block.AddMember("type", "text", a);
  block.AddMember("text", json::Ref(text), a);
  return block;
}

Value ImageBlock(std::string_view url, Allocator& a) {
  Value source(rapidjson::kObjectType);
  DataUrl data;
  if (ParseDataUrl(url, &data)) {
    source.AddMember("type", "base64", a);
    source.AddMember("media_type", json::Ref(data.media_type), a);
    source.AddMember("data", json::Ref(data.data), a);
  } else {
    source.AddMember("type", "url", a);
    source.AddMember("url", json::Ref(url), a);
  }
  Value block(rapidjson::kObjectType);
  block.AddMember("type", "image", a);
  block.AddMember("source", source, a);
  return block;
}

// Text and image blocks of a user (or tool) message's content.
void AppendContentBlocks(const Value* content, Value* blocks, Allocator& a) {
  ForEachContentPart(
      content, [&](std::string_view text) { blocks->PushBack(TextBlock(text, a), a); },
      [&](std::string_view url) {
        blocks->PushBack(ImageBlock(url, a), a);
        return true;
      });
}

Value ToolResultBlock(const Value& m, Allocator& a) {
  Value block(rapidjson::kObjectType);
  block.AddMember("type", "tool_result", a);
  block.AddMember("tool_use_id", json::Ref(json::GetString(m, "tool_call_id")), a);
  const Value* content = json::Find(m, "content");
  if (content != nullptr && content->IsString()) {
    if (content->GetStringLength() > 0)
      block.AddMember("content", json::Ref(json::AsString(content)), a);
  } else {
    Value blocks(rapidjson::kArrayType);
    AppendContentBlocks(content, &blocks, a);
    if (!blocks.Empty()) block.AddMember("content", blocks, a);
  }
  return block;
}

void AppendAssistantBlocks(const Value& m, Value* blocks, Allocator& a) {
  const Value* content = json::Find(m, "content");
  if (content != nullptr && content->IsString()) {
    if (content->GetStringLength() > 0) blocks->PushBack(TextBlock(json::AsString(content), a), a);
  } else if (content != nullptr && content->IsArray()) {
    for (const Value& part : content->GetArray()) {
      std::string_view text = json::GetString(part, "text");  // refusal parts are not replayed
      if (!text.empty()) blocks->PushBack(TextBlock(text, a), a);
    }
  }
  if (const Value* calls = json::GetArray(m, "tool_calls")) {
    for (const Value& call : calls->GetArray()) {
      const Value* fn = json::GetObject(call, "function");
      if (fn == nullptr) continue;
      Value block(rapidjson::kObjectType);
      block.AddMember("type", "tool_use", a);
      block.AddMember("id", json::Ref(json::GetString(call, "id")), a);
      block.AddMember("name", json::Ref(json::GetString(*fn, "name")), a);
      block.AddMember("input", ArgumentsObject(json::GetString(*fn, "arguments"), a), a);
      blocks->PushBack(block, a);
    }
  }
}

Value Tools(const Value& tools, Allocator& a) {
  Value out(rapidjson::kArrayType);
  for (const Value& tool : tools.GetArray()) {
    const Value* fn = json::GetObject(tool, "function");
    if (fn == nullptr) continue;  // only function tools translate
    Value t(rapidjson::kObjectType);
    t.AddMember("name", json::Ref(json::GetString(*fn, "name")), a);
    if (const Value* d = json::Find(*fn, "description"); d != nullptr && d->IsString()) {
      t.AddMember("description", json::Ref(json::AsString(d)), a);
    }
    if (const Value* params = json::GetObject(*fn, "parameters")) {
      t.AddMember("input_schema", Value(*params, a), a);
    } else {
      Value schema(rapidjson::kObjectType);
      schema.AddMember("type", "object", a);
      schema.AddMember("properties", Value(rapidjson::kObjectType), a);
      t.AddMember("input_schema", schema, a);
    }
    out.PushBack(t, a);
  }
  return out;
}

// OpenAI tool_choice (+ parallel_tool_calls) → Anthropic tool_choice, or null.
Value ToolChoice(const Value& in, Allocator& a) {
  const Value* choice = json::Find(in, "tool_choice");
  const Value* parallel = json::Find(in, "parallel_tool_calls");
  bool no_parallel = parallel != nullptr && parallel->IsBool() && !parallel->GetBool();
  Value out(rapidjson::kObjectType);
  std::string_view mode = json::AsString(choice);
  if (mode == "none") {
    out.AddMember("type", "none", a);
    return out;
  }
  if (mode == "required") {
    out.AddMember("type", "any", a);
  } else if (const Value* fn = choice != nullptr ? json::GetObject(*choice, "function") : nullptr) {
    out.AddMember("type", "tool", a);
    out.AddMember("name", json::Ref(json::GetString(*fn, "name")), a);
  } else if (mode == "auto" || no_parallel) {
    out.AddMember("type", "auto", a);
  } else {
    return Value();
  }
  if (no_parallel) out.AddMember("disable_parallel_tool_use", true, a);
  return out;
}

}  // namespace

static Result<std::string> MessagesBody(const ChatRequest& request, const TargetInfo& target) {
  const Value& in = request.doc;
  json::ScratchDocument scratch;
  json::Document& out = scratch.doc();
  out.SetObject();
  Allocator& a = out.GetAllocator();
  const std::string& model = target.model.empty() ? request.model : target.model;
  out.AddMember("model", json::Ref(model), a);
  int64_t max_tokens = json::GetInt(in, "max_completion_tokens", 0);
  if (max_tokens <= 0) max_tokens = json::GetInt(in, "max_tokens", 0);
  if (max_tokens <= 0) max_tokens = kDefaultMaxTokens;
  out.AddMember("max_tokens", max_tokens, a);

  Conversation conv = GroupMessages(json::GetArray(in, "messages"));
  if (conv.system.size() == 1) {
    out.AddMember("system", json::Ref(conv.system[0]), a);
  } else if (conv.system.size() > 1) {
    Value system(rapidjson::kArrayType);
    for (const std::string& text : conv.system) system.PushBack(TextBlock(text, a), a);
    out.AddMember("system", system, a);
  }

  Value messages(rapidjson::kArrayType);
  for (const Turn& turn : conv.turns) {
    Value message(rapidjson::kObjectType);
    message.AddMember("role", json::Ref(turn.assistant ? "assistant" : "user"), a);
    // A lone user message with string content stays a string (the common case).
    if (!turn.assistant && turn.messages.size() == 1 &&
        json::GetString(*turn.messages[0], "role") == "user") {
      const Value* content = json::Find(*turn.messages[0], "content");
      if (content != nullptr && content->IsString() && content->GetStringLength() > 0) {
        message.AddMember("content", json::Ref(json::AsString(content)), a);
        messages.PushBack(message, a);
        continue;
      }
    }
    Value blocks(rapidjson::kArrayType);
    for (const Value* m : turn.messages) {
      std::string_view role = json::GetString(*m, "role");
      if (turn.assistant) {
        AppendAssistantBlocks(*m, &blocks, a);
      } else if (role == "tool" || role == "function") {
        blocks.PushBack(ToolResultBlock(*m, a), a);
      } else {
        AppendContentBlocks(json::Find(*m, "content"), &blocks, a);
      }
    }
    if (blocks.Empty()) continue;  // Anthropic rejects empty content
    message.AddMember("content", blocks, a);
    messages.PushBack(message, a);
  }
  if (messages.Empty()) return InvalidRequest("anthropic needs at least one non-system message");
  out.AddMember("messages", messages, a);

  if (const Value* t = json::Find(in, "temperature"); t != nullptr && t->IsNumber()) {
    out.AddMember("temperature", std::clamp(t->GetDouble(), 0.0, 1.0), a);
  }
  if (const Value* p = json::Find(in, "top_p"); p != nullptr && p->IsNumber()) {
    out.AddMember("top_p", Value(*p, a), a);
  }
  if (const Value* k = json::Find(in, "top_k"); k != nullptr && k->IsNumber()) {
    out.AddMember("top_k", Value(*k, a), a);
  }
  if (const Value* stop = json::Find(in, "stop")) {
    Value seqs(rapidjson::kArrayType);
    if (stop->IsString()) {
      seqs.PushBack(Value(*stop, a), a);
    } else if (stop->IsArray()) {
      for (const Value& s : stop->GetArray()) {
        if (s.IsString()) seqs.PushBack(Value(s, a), a);
      }
    }
    if (!seqs.Empty()) out.AddMember("stop_sequences", seqs, a);
  }
  if (target.stream) out.AddMember("stream", true, a);
  const Value* tools = json::GetArray(in, "tools");
  if (tools != nullptr && !tools->Empty()) {
    Value converted = Tools(*tools, a);
    if (!converted.Empty()) {
      out.AddMember("tools", converted, a);
      Value choice = ToolChoice(in, a);
      if (!choice.IsNull()) out.AddMember("tool_choice", choice, a);
    }
  }
  std::string_view user = json::GetString(in, "user");
  if (user.empty()) {
    if (const Value* md = json::GetObject(in, "metadata")) user = json::GetString(*md, "user_id");
  }
  if (!user.empty()) {
    Value metadata(rapidjson::kObjectType);
    metadata.AddMember("user_id", json::Ref(user), a);
    out.AddMember("metadata", metadata, a);
  }
  return json::Write(out);
}

static Result<HttpRequestSpec> BuildAnthropicRequest(const ChatRequest& request,
                                                     const TargetInfo& target) {
  Result<std::string> body = MessagesBody(request, target);
  if (!body.ok()) return body.error();
  return AssembleCall({.base_url = std::string(kDefaultBaseUrl),
                       .path = ResolvePath(kDefaultPath, target, PathEncode(target.model)),
                       .version_headers = {{"anthropic-version", std::string(kApiVersion)}},
                       .auth = AuthScheme::kAnthropicApiKey},
                      target, std::move(body).value());
}

static Result<ChatResponse> ParseAnthropicAnswer(int status, std::string_view body,
                                                 const ResponseContext& ctx) {
  json::ScratchDocument scratch;
  json::Document& doc = scratch.doc();
  if (auto error = ReadAnswerBody(status, body, &doc)) return *std::move(error);
  if (json::GetString(doc, "type") == "error") return HttpError(500, body);
  ResponseDraft d;
  d.id = json::GetString(doc, "id");
  d.model = json::GetString(doc, "model");
  if (d.model.empty()) d.model = ctx.model;
  d.created = ctx.created;
  ChoiceDraft c;
  if (const Value* content = json::GetArray(doc, "content")) {
    for (const Value& block : content->GetArray()) {
      std::string_view type = json::GetString(block, "type");
      if (type == "text") {
        c.content.append(json::GetString(block, "text"));
        c.has_content = true;
      } else if (type == "tool_use") {
        const Value* input = json::Find(block, "input");
        c.tool_calls.push_back(ToolCall{std::string(json::GetString(block, "id")),
                                        std::string(json::GetString(block, "name")),
                                        input != nullptr ? json::Write(*input) : "{}"});
      }
      // thinking / redacted_thinking and server tool blocks have no Chat form.
    }
  }
  c.finish_reason = FinishFromAnthropic(json::GetString(doc, "stop_reason"));
  d.choices.push_back(std::move(c));
  if (const Value* usage = json::GetObject(doc, "usage")) {
    int64_t input = json::GetInt(*usage, "input_tokens");
    int64_t creation = json::GetInt(*usage, "cache_creation_input_tokens");
    int64_t read = json::GetInt(*usage, "cache_read_input_tokens");
    d.usage.prompt_tokens = input + creation + read;
    d.usage.completion_tokens = json::GetInt(*usage, "output_tokens");
    d.usage.total_tokens = d.usage.prompt_tokens + d.usage.completion_tokens;
    d.usage.cached_tokens = read;
    d.has_usage = true;
  }
  return AnswerOf(std::move(d));
}

AnthropicStreamDecoder::Block* AnthropicStreamDecoder::BlockAt(int64_t index) {
  if (index < 0 || index > 4096) return nullptr;  // a block index beyond this is garbage
  if (static_cast<size_t>(index) >= blocks_.size()) blocks_.resize(index + 1);
  return &blocks_[index];
}

void AnthropicStreamDecoder::ReadUsage(const Value& usage) {
  // message_delta's usage is cumulative; newer API versions repeat the input
  // counts there, older ones send only output_tokens.
  if (const Value* v = json::Find(usage, "input_tokens"); v != nullptr && v->IsInt64()) {
    input_tokens_ = v->GetInt64();
  }
  if (const Value* v = json::Find(usage, "cache_creation_input_tokens"); v && v->IsInt64()) {
    cache_creation_tokens_ = v->GetInt64();
  }
  if (const Value* v = json::Find(usage, "cache_read_input_tokens"); v && v->IsInt64()) {
    cache_read_tokens_ = v->GetInt64();
  }
  if (const Value* v = json::Find(usage, "output_tokens"); v != nullptr && v->IsInt64()) {
    output_tokens_ = v->GetInt64();
  }
}

void AnthropicStreamDecoder::OnEvent(const SseEvent& event, StreamEvents* out) {
  if (event.event == "ping") return;
  if (!ParseData(event.data, out)) return;
  const json::Document& d = data();
  std::string_view type = json::GetString(d, "type");
  if (type.empty()) type = event.event;

  if (type == "content_block_delta") {
    const Value* delta = json::GetObject(d, "delta");
    if (delta == nullptr) return;
    std::string_view delta_type = json::GetString(*delta, "type");
    if (delta_type == "text_delta") {
      StreamEvent ev;
      ev.content = json::GetString(*delta, "text");
      if (!ev.content.empty()) out->push_back(std::move(ev));
    } else if (delta_type == "input_json_delta") {
      Block* block = BlockAt(json::GetInt(d, "index", -1));
      std::string_view fragment = json::GetString(*delta, "partial_json");
      if (block == nullptr || !AppendArgumentsDelta(block->tool_index, fragment, out)) return;
      block->had_arguments = true;
    }
    // thinking_delta, signature_delta, citations_delta: no Chat form.
  } else if (type == "content_block_start") {
    const Value* block_json = json::GetObject(d, "content_block");
    Block* block = BlockAt(json::GetInt(d, "index", -1));
    if (block_json == nullptr || block == nullptr) return;
    std::string_view block_type = json::GetString(*block_json, "type");
    if (block_type == "tool_use") {
      block->tool_index = next_tool_index_++;
      StreamEvent ev;
      ev.tool_calls.push_back(ToolCallDelta{block->tool_index,
                                            std::string(json::GetString(*block_json, "id")),
                                            std::string(json::GetString(*block_json, "name")), ""});
      out->push_back(std::move(ev));
    } else if (block_type == "text") {
      StreamEvent ev;
      ev.content = json::GetString(*block_json, "text");
      if (!ev.content.empty()) out->push_back(std::move(ev));
    }
  } else if (type == "content_block_stop") {
    // A tool without arguments streams no input_json_delta (or an empty
    // one); Chat clients expect the arguments to be JSON, so send "{}".
    Block* block = BlockAt(json::GetInt(d, "index", -1));
    if (block != nullptr && block->tool_index >= 0 && !block->had_arguments) {
      block->had_arguments = true;
      StreamEvent ev;
      ev.tool_calls.push_back(ToolCallDelta{block->tool_index, {}, {}, "{}"});
      out->push_back(std::move(ev));
    }
  } else if (type == "message_start") {
    const Value* message = json::GetObject(d, "message");
    if (message == nullptr) return;
    if (const Value* usage = json::GetObject(*message, "usage")) ReadUsage(*usage);
    StreamEvent ev;
    ev.type = StreamEvent::Type::kStart;
    ev.id = json::GetString(*message, "id");
    ev.model = json::GetString(*message, "model");
    if (ev.model.empty()) ev.model = ctx_.model;
    ev.created = ctx_.created;
    ev.usage.prompt_tokens = input_tokens_ + cache_creation_tokens_ + cache_read_tokens_;
    ev.usage.cached_tokens = cache_read_tokens_;
    out->push_back(std::move(ev));
  } else if (type == "message_delta") {
    if (const Value* delta = json::GetObject(d, "delta")) {
      std::string_view reason = json::GetString(*delta, "stop_reason");
      if (!reason.empty()) stop_reason_ = reason;
    }
    if (const Value* usage = json::GetObject(d, "usage")) ReadUsage(*usage);
  } else if (type == "message_stop") {
    StreamEvent finish;
    finish.finish_reason = FinishFromAnthropic(stop_reason_);
    out->push_back(std::move(finish));
    StreamEvent usage;
    usage.type = StreamEvent::Type::kUsage;
    usage.usage.prompt_tokens = input_tokens_ + cache_creation_tokens_ + cache_read_tokens_;
    usage.usage.completion_tokens = output_tokens_;
    usage.usage.total_tokens = usage.usage.prompt_tokens + output_tokens_;
    usage.usage.cached_tokens = cache_read_tokens_;
    out->push_back(std::move(usage));
    EmitEnd(out);
  } else if (type == "error") {
    const Value* e = json::GetObject(d, "error");
    EmitError(e != nullptr ? StreamErrorFromObject(*e) : StreamErrorFromObject(d), out);
  }
  // Unknown event types are ignored: Anthropic adds new ones with new features.
}

void AnthropicStreamDecoder::OnEof(StreamEvents* out) {
  EmitBroken("stream ended without message_stop", out);
}

const ProviderCodec& AnthropicProvider() {
  static const ProviderCodec kCodec{"anthropic", &BuildAnthropicRequest, &ParseAnthropicAnswer,
                                    &NewDecoder<AnthropicStreamDecoder>};
  return kCodec;
}

}  // namespace tg::adapter::translate
