// Size: the Messages format both ways (requests, answers, stream encoder and its state).

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "tg/adapter/translate/canonical.h"
#include "tg/adapter/translate/client_codec.h"
#include "tg/adapter/translate/clients/clients.h"
#include "tg/adapter/translate/clients/stream_state.h"
#include "tg/adapter/translate/finish_reason.h"
#include "tg/adapter/translate/json.h"
#include "tg/adapter/translate/sse_writer.h"
#include "tg/common/client_error.h"

namespace tg::adapter::translate {

namespace {

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

using json::Allocator;
using json::Value;

std::string ErrorBody(const AdapterError& error) {
  return client_error::AnthropicBody(error.http_status, error.message);
}

// An Anthropic image block → an OpenAI image_url part, or null.
Value ImagePart(const Value& block, Allocator& a) {
  const Value* source = json::GetObject(block, "source");
  if (source == nullptr) return Value();
  std::string url;
  std::string_view type = json::GetString(*source, "type");
  if (type == "base64") {
    url.append("data:").append(json::GetString(*source, "media_type")).append(";base64,");
    url.append(json::GetString(*source, "data"));
  } else if (type == "url") {
    url = json::GetString(*source, "url");
  } else {
    return Value();  // file ids have no Chat form
  }
  Value image(rapidjson::kObjectType);
  image.AddMember("url", json::Str(url, a), a);
  Value part(rapidjson::kObjectType);
  part.AddMember("type", "image_url", a);
  part.AddMember("image_url", image, a);
  return part;
}

Value TextPart(Value& text, Allocator& a) {
  Value part(rapidjson::kObjectType);
  part.AddMember("type", "text", a);
  part.AddMember("text", text, a);  // moves
  return part;
}

// Content of a tool_result block → the text of a tool message.
std::string ToolResultText(const Value& block) {
  const Value* content = json::Find(block, "content");
  return json::ContentText(content, "\n");
}

void DecodeUserMessage(Value& m, Value* messages, Allocator& a) {
  Value* content = json::FindMutable(m, "content");
  if (content == nullptr) return;
  if (content->IsString()) {
    Value msg(rapidjson::kObjectType);
    msg.AddMember("role", "user", a);
    msg.AddMember("content", *content, a);
    messages->PushBack(msg, a);
    return;
  }
  if (!content->IsArray()) return;
  Value parts(rapidjson::kArrayType);
  for (Value& block : content->GetArray()) {
    std::string_view type = json::GetString(block, "type");
    if (type == "tool_result") {
      Value msg(rapidjson::kObjectType);
      msg.AddMember("role", "tool", a);
      msg.AddMember("tool_call_id", json::Str(json::GetString(block, "tool_use_id"), a), a);
      msg.AddMember("content", json::Str(ToolResultText(block), a), a);
      messages->PushBack(msg, a);
    } else if (type == "text") {
      if (Value* text = json::FindMutable(block, "text"); text != nullptr && text->IsString()) {
        parts.PushBack(TextPart(*text, a), a);
      }
    } else if (type == "image") {
      Value part = ImagePart(block, a);
      if (!part.IsNull()) parts.PushBack(part, a);
    }
    // document, search_result, … blocks: no Chat form.
  }
  if (parts.Empty()) return;
  Value msg(rapidjson::kObjectType);
  msg.AddMember("role", "user", a);
  if (parts.Size() == 1 && json::GetString(parts[0], "type") == "text") {
    msg.AddMember("content", parts[0]["text"], a);
  } else {
    msg.AddMember("content", parts, a);
  }
  messages->PushBack(msg, a);
}

void DecodeAssistantMessage(Value& m, Value* messages, Allocator& a) {
  Value* content = json::FindMutable(m, "content");
  if (content == nullptr) return;
  Value msg(rapidjson::kObjectType);
  msg.AddMember("role", "assistant", a);
  if (content->IsString()) {
    msg.AddMember("content", *content, a);
    messages->PushBack(msg, a);
    return;
  }
  if (!content->IsArray()) return;
  std::string text;
  bool has_text = false;
  Value calls(rapidjson::kArrayType);
  for (Value& block : content->GetArray()) {
    std::string_view type = json::GetString(block, "type");
    if (type == "text") {
      text.append(json::GetString(block, "text"));
      has_text = true;
    } else if (type == "tool_use") {
      const Value* input = json::Find(block, "input");
      Value fn(rapidjson::kObjectType);
      fn.AddMember("name", json::Str(json::GetString(block, "name"), a), a);
      fn.AddMember("arguments", json::Str(input != nullptr ? json::Write(*input) : "{}", a), a);
      Value call(rapidjson::kObjectType);
      call.AddMember("id", json::Str(json::GetString(block, "id"), a), a);
      call.AddMember("type", "function", a);
      call.AddMember("function", fn, a);
      calls.PushBack(call, a);
    }
    // thinking blocks are the provider's own; they are not replayed.
  }
  if (has_text) {
    msg.AddMember("content", json::Str(text, a), a);
  } else {
    msg.AddMember("content", Value(), a);
  }
  bool has_calls = !calls.Empty();
  if (!has_text && !has_calls) return;
  if (has_calls) msg.AddMember("tool_calls", calls, a);  // moves `calls`
  messages->PushBack(msg, a);
}

Value DecodeTools(Value& tools, Allocator& a) {
  Value out(rapidjson::kArrayType);
  for (Value& tool : tools.GetArray()) {
    std::string_view type = json::GetString(tool, "type");
    if (!type.empty() && type != "custom") continue;  // server tools (web_search_…)
    Value fn(rapidjson::kObjectType);
    fn.AddMember("name", json::Str(json::GetString(tool, "name"), a), a);
    if (Value* d = json::FindMutable(tool, "description"); d != nullptr && d->IsString()) {
      fn.AddMember("description", *d, a);
    }
    if (Value* schema = json::FindMutable(tool, "input_schema"); schema && schema->IsObject()) {
      fn.AddMember("parameters", *schema, a);
    }
    Value t(rapidjson::kObjectType);
    t.AddMember("type", "function", a);
    t.AddMember("function", fn, a);
    out.PushBack(t, a);
  }
  return out;
}

}  // namespace

static Result<ChatRequest> DecodeAnthropicRequest(std::string_view body) {
  ChatRequest req;
  json::Document& out = req.doc;
  out.SetObject();
  Allocator& a = out.GetAllocator();
  // Parsed into the output's allocator, so subtrees move across uncopied.
  json::Document in(&a);
  std::string error;
  if (!json::Parse(body, &in, &error)) return InvalidRequest(error);
  if (!in.IsObject()) return InvalidRequest("the request body must be a JSON object");
  Value* in_messages = json::FindMutable(in, "messages");
  if (in_messages == nullptr || !in_messages->IsArray()) {
    return InvalidRequest("`messages` must be an array of messages");
  }
  req.model = json::GetString(in, "model");
  req.stream = json::GetBool(in, "stream");
  out.AddMember("model", json::Str(req.model, a), a);

  Value messages(rapidjson::kArrayType);
  if (const Value* system = json::Find(in, "system")) {
    std::string text = json::ContentText(system, "\n");
    if (!text.empty()) {
      Value msg(rapidjson::kObjectType);
      msg.AddMember("role", "system", a);
      msg.AddMember("content", json::Str(text, a), a);
      messages.PushBack(msg, a);
    }
  }
  for (Value& m : in_messages->GetArray()) {
    std::string_view role = json::GetString(m, "role");
    if (role == "user") {
      DecodeUserMessage(m, &messages, a);
    } else if (role == "assistant") {
      DecodeAssistantMessage(m, &messages, a);
    } else {
      return InvalidRequest("message role must be user or assistant");
    }
  }
  out.AddMember("messages", messages, a);

  if (Value* v = json::FindMutable(in, "max_tokens"); v != nullptr && v->IsNumber()) {
    out.AddMember("max_tokens", *v, a);
  }
  for (const char* key : {"temperature", "top_p", "top_k"}) {
    if (Value* v = json::FindMutable(in, key); v != nullptr && v->IsNumber()) {
      out.AddMember(rapidjson::StringRef(key), *v, a);
    }
  }
  if (Value* v = json::FindMutable(in, "stop_sequences"); v != nullptr && v->IsArray()) {
    if (!v->Empty()) out.AddMember("stop", *v, a);
  }
  if (req.stream) out.AddMember("stream", true, a);

  const Value* choice = json::GetObject(in, "tool_choice");
  std::string_view choice_type = choice != nullptr ? json::GetString(*choice, "type") : "";
  if (Value* tools = json::FindMutable(in, "tools"); tools != nullptr && tools->IsArray()) {
    Value decoded = DecodeTools(*tools, a);
    if (!decoded.Empty()) out.AddMember("tools", decoded, a);
  }
  if (choice_type == "auto") {
    out.AddMember("tool_choice", "auto", a);
  } else if (choice_type == "any") {
    out.AddMember("tool_choice", "required", a);
  } else if (choice_type == "none") {
    out.AddMember("tool_choice", "none", a);
  } else if (choice_type == "tool") {
    Value fn(rapidjson::kObjectType);
    fn.AddMember("name", json::Str(json::GetString(*choice, "name"), a), a);
    Value c(rapidjson::kObjectType);
    c.AddMember("type", "function", a);
    c.AddMember("function", fn, a);
    out.AddMember("tool_choice", c, a);
  }
  if (choice != nullptr && json::GetBool(*choice, "disable_parallel_tool_use")) {
    out.AddMember("parallel_tool_calls", false, a);
  }
  if (const Value* md = json::GetObject(in, "metadata")) {
    std::string_view user = json::GetString(*md, "user_id");
    if (!user.empty()) out.AddMember("user", json::Str(user, a), a);
  }
  return req;
}

static std::string EncodeAnthropicAnswer(const ChatResponse& response) {
  ResponseDraft read;
  const ResponseDraft& d = ReadAnswer(response, &read);
  const ChoiceDraft& c = FirstChoice(d);
  json::ScratchDocument scratch;
  json::Document& out = scratch.doc();
  out.SetObject();
  Allocator& a = out.GetAllocator();
  out.AddMember("id", json::Ref(d.id), a);
  out.AddMember("type", "message", a);
  out.AddMember("role", "assistant", a);
  out.AddMember("model", json::Ref(d.model), a);
  Value content(rapidjson::kArrayType);
  std::string_view text = !c.content.empty() ? std::string_view(c.content) : c.refusal;
  if (!text.empty()) {
    Value block(rapidjson::kObjectType);
    block.AddMember("type", "text", a);
    block.AddMember("text", json::Ref(text), a);
    content.PushBack(block, a);
  }
  for (const ToolCall& tc : c.tool_calls) {
    Value block(rapidjson::kObjectType);
    block.AddMember("type", "tool_use", a);
    block.AddMember("id", json::Ref(tc.id), a);
    block.AddMember("name", json::Ref(tc.name), a);
    block.AddMember("input", ArgumentsObject(tc.arguments, a), a);
    content.PushBack(block, a);
  }
  out.AddMember("content", content, a);
  out.AddMember("stop_reason", json::Ref(AnthropicStopReason(c.finish_reason)), a);
  out.AddMember("stop_sequence", Value(), a);
  Value usage(rapidjson::kObjectType);
  usage.AddMember("input_tokens", d.usage.prompt_tokens - d.usage.cached_tokens, a);
  usage.AddMember("cache_creation_input_tokens", 0, a);
  usage.AddMember("cache_read_input_tokens", d.usage.cached_tokens, a);
  usage.AddMember("output_tokens", d.usage.completion_tokens, a);
  out.AddMember("usage", usage, a);
  return json::Write(out);
}

static std::unique_ptr<ClientStreamEncoder> NewAnthropicStreamEncoder(
    const StreamEncoderOptions& options) {
  return std::make_unique<AnthropicStreamEncoder>(options);
}

static std::string EncodeAnthropicError(const AdapterError& error) { return ErrorBody(error); }

void AnthropicStreamEncoder::Encode(const StreamEvent& event, std::string* out) {
  if (finished_) return;
  switch (event.type) {
    case StreamEvent::Type::kStart:
      if (!started_) {
        if (!event.id.empty()) options_.id = event.id;
        if (!event.model.empty()) options_.model = event.model;
        start_usage_ = event.usage;
        StartMessage(out);
      }
      break;
    case StreamEvent::Type::kDelta: {
      if (event.choice != 0) break;  // Messages has one answer per request
      StartMessage(out);
      std::string_view text = !event.content.empty() ? event.content : event.refusal;
      if (!text.empty()) {
        if (open_block_ < 0 || !open_is_text_) OpenTextBlock(out);
        WriteDelta(open_block_, false, text, out);
      }
      for (const ToolCallDelta& tc : event.tool_calls) {
        if (tc.index < 0 || tc.index > 1024) continue;
        if (!tc.id.empty() || !tc.name.empty()) OpenToolBlock(tc, out);
        if (tc.arguments.empty()) continue;
        size_t i = static_cast<size_t>(tc.index);
        if (i < tool_blocks_.size() && tool_blocks_[i] >= 0) {
          WriteDelta(tool_blocks_[i], true, tc.arguments, out);
        }
      }
      if (!event.finish_reason.empty()) stop_reason_ = AnthropicStopReason(event.finish_reason);
      break;
    }
    case StreamEvent::Type::kUsage:
      usage_ = event.usage;
      break;
    case StreamEvent::Type::kEnd: {
      StartMessage(out);
      CloseBlock(out);
      rapidjson::StringBuffer buf;
      json::Writer w(buf);
      w.StartObject();
      w.Key("type");
      w.String("message_delta");
      w.Key("delta");
      w.StartObject();
      w.Key("stop_reason");
      json::WriteString(w, stop_reason_);
      w.Key("stop_sequence");
      w.Null();
      w.EndObject();
      w.Key("usage");
      w.StartObject();
      w.Key("input_tokens");
      w.Int64(usage_.prompt_tokens - usage_.cached_tokens);
      w.Key("cache_read_input_tokens");
      w.Int64(usage_.cached_tokens);
      w.Key("output_tokens");
      w.Int64(usage_.completion_tokens);
      w.EndObject();
      w.EndObject();
      AppendSse(out, "message_delta", std::string_view(buf.GetString(), buf.GetSize()));
      AppendSse(out, "message_stop", R"({"type":"message_stop"})");
      finished_ = true;
      break;
    }
    case StreamEvent::Type::kError:
      AppendSse(out, "error", ErrorBody(event.error));
      finished_ = true;
      break;
  }
}

void AnthropicStreamEncoder::StartMessage(std::string* out) {
  if (started_) return;
  started_ = true;
  rapidjson::StringBuffer buf;
  json::Writer w(buf);
  w.StartObject();
  w.Key("type");
  w.String("message_start");
  w.Key("message");
  w.StartObject();
  w.Key("id");
  json::WriteString(w, options_.id);
  w.Key("type");
  w.String("message");
  w.Key("role");
  w.String("assistant");
  w.Key("model");
  json::WriteString(w, options_.model);
  w.Key("content");
  w.StartArray();
  w.EndArray();
  w.Key("stop_reason");
  w.Null();
  w.Key("stop_sequence");
  w.Null();
  w.Key("usage");
  w.StartObject();
  w.Key("input_tokens");
  w.Int64(start_usage_.prompt_tokens - start_usage_.cached_tokens);
  w.Key("cache_creation_input_tokens");
  w.Int64(0);
  w.Key("cache_read_input_tokens");
  w.Int64(start_usage_.cached_tokens);
  w.Key("output_tokens");
  w.Int64(0);
  w.EndObject();
  w.EndObject();
  w.EndObject();
  AppendSse(out, "message_start", std::string_view(buf.GetString(), buf.GetSize()));
}

void AnthropicStreamEncoder::OpenTextBlock(std::string* out) {
  CloseBlock(out);
  open_block_ = next_block_++;
  open_is_text_ = true;
  std::string data = R"({"type":"content_block_start","index":)" + std::to_string(open_block_) +
                     R"(,"content_block":{"type":"text","text":""}})";
  AppendSse(out, "content_block_start", data);
}

void AnthropicStreamEncoder::OpenToolBlock(const ToolCallDelta& call, std::string* out) {
  CloseBlock(out);
  open_block_ = next_block_++;
  open_is_text_ = false;
  size_t i = static_cast<size_t>(call.index);
  if (tool_blocks_.size() <= i) tool_blocks_.resize(i + 1, -1);
  tool_blocks_[i] = open_block_;
  rapidjson::StringBuffer buf;
  json::Writer w(buf);
  w.StartObject();
  w.Key("type");
  w.String("content_block_start");
  w.Key("index");
  w.Int(open_block_);
  w.Key("content_block");
  w.StartObject();
  w.Key("type");
  w.String("tool_use");
  w.Key("id");
  json::WriteString(w, call.id);
  w.Key("name");
  json::WriteString(w, call.name);
  w.Key("input");
  w.StartObject();
  w.EndObject();
  w.EndObject();
  w.EndObject();
  AppendSse(out, "content_block_start", std::string_view(buf.GetString(), buf.GetSize()));
}

void AnthropicStreamEncoder::CloseBlock(std::string* out) {
  if (open_block_ < 0) return;
  AppendSse(out, "content_block_stop",
            R"({"type":"content_block_stop","index":)" + std::to_string(open_block_) + "}");
  open_block_ = -1;
}

void AnthropicStreamEncoder::WriteDelta(int block, bool json_delta, std::string_view text,
                                        std::string* out) {
  rapidjson::StringBuffer buf;
  json::Writer w(buf);
  w.StartObject();
  w.Key("type");
  w.String("content_block_delta");
  w.Key("index");
  w.Int(block);
  w.Key("delta");
  w.StartObject();
  w.Key("type");
  w.String(json_delta ? "input_json_delta" : "text_delta");
  w.Key(json_delta ? "partial_json" : "text");
  json::WriteString(w, text);
  w.EndObject();
  w.EndObject();
  AppendSse(out, "content_block_delta", std::string_view(buf.GetString(), buf.GetSize()));
}

std::string AnthropicStreamEncoder::SaveState() const {
  rapidjson::StringBuffer buf;
  json::Writer w(buf);
  stream_state::Begin(w, "anthropic", options_, started_, finished_, usage_);
  w.Key("open_block");
  w.Int(open_block_);
  w.Key("open_is_text");
  w.Bool(open_is_text_);
  w.Key("next_block");
  w.Int(next_block_);
  stream_state::WriteInts(w, "tool_blocks", tool_blocks_);
  w.Key("stop_reason");
  json::WriteString(w, stop_reason_);
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

bool AnthropicStreamEncoder::RestoreState(std::string_view state) {
  json::Document doc;
  stream_state::Common common;
  if (!stream_state::Read(state, "anthropic", &doc, &common)) return false;
  auto next_block = stream_state::Int(doc, "next_block", 0, stream_state::kMaxIndex);
  if (!next_block) return false;
  auto open_block = stream_state::Int(doc, "open_block", -1, *next_block - 1);
  auto tool_blocks = stream_state::Ints(doc, "tool_blocks", -1, *next_block - 1);
  if (!open_block || !tool_blocks || tool_blocks->size() > 1025) return false;
  stream_state::Apply(common, &options_);
  started_ = common.started;
  finished_ = common.finished;
  usage_ = common.usage;
  open_block_ = static_cast<int>(*open_block);
  open_is_text_ = json::GetBool(doc, "open_is_text");
  next_block_ = static_cast<int>(*next_block);
  tool_blocks_ = std::move(*tool_blocks);
  // Back to one of the static names (any unknown one reads as end_turn).
  stop_reason_ = AnthropicStopReason(FinishFromAnthropic(json::GetString(doc, "stop_reason")));
  return true;
}

const ClientCodec& AnthropicClientCodec() {
  static const ClientCodec kCodec{&DecodeAnthropicRequest, &EncodeAnthropicAnswer,
                                  &NewAnthropicStreamEncoder, &EncodeAnthropicError};
  return kCodec;
}

}  // namespace tg::adapter::translate
