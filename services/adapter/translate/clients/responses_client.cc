// Size: the Responses format both ways (requests, answers, stream encoder and its state).

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

using json::Allocator;
using json::Value;
using Item = ResponsesStreamEncoder::Item;

// ---- decoding -----------------------------------------------------------------

Value TextPart(std::string_view text, Allocator& a) {
  Value part(rapidjson::kObjectType);
  part.AddMember("type", "text", a);
  part.AddMember("text", json::Str(text, a), a);
  return part;
}

// Responses content (string or parts) → Chat content (string or parts).
Value ChatContent(Value& content, bool assistant, Allocator& a) {
  if (content.IsString()) return Value(std::move(content));
  if (!content.IsArray()) return Value();
  if (assistant) {
    // Assistant history is replayed as text; Chat takes no images there.
    return json::Str(json::ContentText(&content), a);
  }
  Value parts(rapidjson::kArrayType);
  for (Value& part : content.GetArray()) {
    std::string_view type = json::GetString(part, "type");
    if (type == "input_text" || type == "output_text" || type == "text") {
      parts.PushBack(TextPart(json::GetString(part, "text"), a), a);
    } else if (type == "input_image") {
      std::string_view url = json::GetString(part, "image_url");
      if (url.empty()) continue;  // file_id images have no Chat form
      Value image(rapidjson::kObjectType);
      image.AddMember("url", json::Str(url, a), a);
      if (Value* detail = json::FindMutable(part, "detail"); detail && detail->IsString()) {
        image.AddMember("detail", *detail, a);
      }
      Value p(rapidjson::kObjectType);
      p.AddMember("type", "image_url", a);
      p.AddMember("image_url", image, a);
      parts.PushBack(p, a);
    }
  }
  if (parts.Size() == 1 && json::GetString(parts[0], "type") == "text") {
    return Value(std::move(parts[0]["text"]));
  }
  return parts;
}

Value Message(std::string_view role, Value content, Allocator& a) {
  Value m(rapidjson::kObjectType);
  m.AddMember("role", json::Str(role, a), a);
  m.AddMember("content", content, a);
  return m;
}

void DecodeInputItem(Value& item, Value* messages, Allocator& a) {
  std::string_view type = json::GetString(item, "type");
  std::string_view role = json::GetString(item, "role");
  if (type == "function_call") {
    Value fn(rapidjson::kObjectType);
    fn.AddMember("name", json::Str(json::GetString(item, "name"), a), a);
    fn.AddMember("arguments", json::Str(json::GetString(item, "arguments"), a), a);
    Value call(rapidjson::kObjectType);
    std::string_view call_id = json::GetString(item, "call_id");
    call.AddMember("id", json::Str(call_id.empty() ? json::GetString(item, "id") : call_id, a), a);
    call.AddMember("type", "function", a);
    call.AddMember("function", fn, a);
    // Consecutive calls (and a call right after the assistant's text) belong
    // to one assistant message in Chat.
    Value* last = messages->Empty() ? nullptr : &(*messages)[messages->Size() - 1];
    if (last == nullptr || json::GetString(*last, "role") != "assistant") {
      messages->PushBack(Message("assistant", Value(), a), a);
      last = &(*messages)[messages->Size() - 1];
    }
    Value* calls = json::FindMutable(*last, "tool_calls");
    if (calls == nullptr) {
      last->AddMember("tool_calls", Value(rapidjson::kArrayType), a);
      calls = json::FindMutable(*last, "tool_calls");
    }
    calls->PushBack(call, a);
  } else if (type == "function_call_output") {
    const Value* output = json::Find(item, "output");
    Value m(rapidjson::kObjectType);
    m.AddMember("role", "tool", a);
    m.AddMember("tool_call_id", json::Str(json::GetString(item, "call_id"), a), a);
    m.AddMember("content", json::Str(json::ContentText(output, "\n"), a), a);
    messages->PushBack(m, a);
  } else if (!role.empty() && (type.empty() || type == "message")) {
    Value* content = json::FindMutable(item, "content");
    if (content == nullptr) return;
    bool assistant = role == "assistant";
    messages->PushBack(Message(role, ChatContent(*content, assistant, a), a), a);
  }
  // reasoning, item_reference, built-in tool calls: no Chat form.
}

// ---- encoding -----------------------------------------------------------------

std::string ResponseId(std::string_view id) {
  if (id.starts_with("resp_")) return std::string(id);
  return "resp_" + std::string(id);
}

void WriteUsage(json::Writer& w, const Usage& u) {
  w.StartObject();
  w.Key("input_tokens");
  w.Int64(u.prompt_tokens);
  w.Key("input_tokens_details");
  w.StartObject();
  w.Key("cached_tokens");
  w.Int64(u.cached_tokens);
  w.EndObject();
  w.Key("output_tokens");
  w.Int64(u.completion_tokens);
  w.Key("output_tokens_details");
  w.StartObject();
  w.Key("reasoning_tokens");
  w.Int64(u.reasoning_tokens);
  w.EndObject();
  w.Key("total_tokens");
  w.Int64(u.total_tokens);
  w.EndObject();
}

// A message's one content part: {"type":"output_text","text":…,"annotations":[]}.
void WriteTextPart(json::Writer& w, std::string_view text) {
  w.StartObject();
  w.Key("type");
  w.String("output_text");
  w.Key("text");
  json::WriteString(w, text);
  w.Key("annotations");
  w.StartArray();
  w.EndArray();
  w.EndObject();
}

void WriteItem(json::Writer& w, const Item& item, bool done) {
  w.StartObject();
  w.Key("id");
  json::WriteString(w, item.id);
  if (item.is_message) {
    w.Key("type");
    w.String("message");
    w.Key("status");
    w.String(done ? "completed" : "in_progress");
    w.Key("role");
    w.String("assistant");
    w.Key("content");
    w.StartArray();
    if (done) WriteTextPart(w, item.text);
    w.EndArray();
  } else {
    w.Key("type");
    w.String("function_call");
    w.Key("status");
    w.String(done ? "completed" : "in_progress");
    w.Key("arguments");
    json::WriteString(w, done ? std::string_view(item.arguments) : "");
    w.Key("call_id");
    json::WriteString(w, item.call_id);
    w.Key("name");
    json::WriteString(w, item.name);
  }
  w.EndObject();
}

struct ResponseMeta {
  std::string id;
  std::string model;
  int64_t created = 0;
};

// The response object; `usage` null while in progress.
void WriteResponse(json::Writer& w, const ResponseMeta& meta, const std::vector<Item>& items,
                   bool done, std::string_view finish_reason, const Usage* usage) {
  ResponsesOutcome outcome = ResponsesOutcomeFromFinish(finish_reason);
  w.StartObject();
  w.Key("id");
  json::WriteString(w, meta.id);
  w.Key("object");
  w.String("response");
  w.Key("created_at");
  w.Int64(meta.created);
  w.Key("status");
  json::WriteString(w, done ? outcome.status : "in_progress");
  w.Key("error");
  w.Null();
  w.Key("incomplete_details");
  if (done && !outcome.incomplete_reason.empty()) {
    w.StartObject();
    w.Key("reason");
    json::WriteString(w, outcome.incomplete_reason);
    w.EndObject();
  } else {
    w.Null();
  }
  w.Key("model");
  json::WriteString(w, meta.model);
  w.Key("output");
  w.StartArray();
  for (const Item& item : items) WriteItem(w, item, true);
  w.EndArray();
  w.Key("parallel_tool_calls");
  w.Bool(true);
  w.Key("tool_choice");
  w.String("auto");
  w.Key("tools");
  w.StartArray();
  w.EndArray();
  w.Key("usage");
  if (usage != nullptr) {
    WriteUsage(w, *usage);
  } else {
    w.Null();
  }
  w.EndObject();
}

}  // namespace

static Result<ChatRequest> DecodeResponsesRequest(std::string_view body) {
  ChatRequest req;
  json::Document& out = req.doc;
  out.SetObject();
  Allocator& a = out.GetAllocator();
  json::Document in(&a);  // values move across uncopied (same allocator)
  std::string error;
  if (!json::Parse(body, &in, &error)) return InvalidRequest(error);
  if (!in.IsObject()) return InvalidRequest("the request body must be a JSON object");
  Value* input = json::FindMutable(in, "input");
  if (input == nullptr || !(input->IsString() || input->IsArray())) {
    return InvalidRequest("`input` must be a string or an array of items");
  }
  req.model = json::GetString(in, "model");
  req.stream = json::GetBool(in, "stream");
  out.AddMember("model", json::Str(req.model, a), a);

  Value messages(rapidjson::kArrayType);
  if (std::string_view instructions = json::GetString(in, "instructions"); !instructions.empty()) {
    messages.PushBack(Message("system", json::Str(instructions, a), a), a);
  }
  if (input->IsString()) {
    messages.PushBack(Message("user", Value(std::move(*input)), a), a);
  } else {
    for (Value& item : input->GetArray()) DecodeInputItem(item, &messages, a);
  }
  out.AddMember("messages", messages, a);

  if (Value* v = json::FindMutable(in, "max_output_tokens"); v != nullptr && v->IsNumber()) {
    out.AddMember("max_tokens", *v, a);
  }
  for (const char* key : {"temperature", "top_p", "parallel_tool_calls", "user", "metadata",
                          "store", "previous_response_id", "service_tier"}) {
    if (Value* v = json::FindMutable(in, key); v != nullptr && !v->IsNull()) {
      out.AddMember(rapidjson::StringRef(key), *v, a);
    }
  }
  if (req.stream) out.AddMember("stream", true, a);
  if (Value* tools = json::FindMutable(in, "tools"); tools != nullptr && tools->IsArray()) {
    Value chat_tools(rapidjson::kArrayType);
    for (Value& tool : tools->GetArray()) {
      if (json::GetString(tool, "type") != "function") continue;  // built-in tools
      Value fn(rapidjson::kObjectType);
      for (const char* key : {"name", "description", "parameters", "strict"}) {
        if (Value* v = json::FindMutable(tool, key); v != nullptr && !v->IsNull()) {
          fn.AddMember(rapidjson::StringRef(key), *v, a);
        }
      }
      Value t(rapidjson::kObjectType);
      t.AddMember("type", "function", a);
      t.AddMember("function", fn, a);
      chat_tools.PushBack(t, a);
    }
    if (!chat_tools.Empty()) out.AddMember("tools", chat_tools, a);
  }
  if (Value* choice = json::FindMutable(in, "tool_choice")) {
    if (choice->IsString()) {
      out.AddMember("tool_choice", *choice, a);
    } else if (json::GetString(*choice, "type") == "function") {
      Value fn(rapidjson::kObjectType);
      fn.AddMember("name", json::Str(json::GetString(*choice, "name"), a), a);
      Value c(rapidjson::kObjectType);
      c.AddMember("type", "function", a);
      c.AddMember("function", fn, a);
      out.AddMember("tool_choice", c, a);
    }
  }
  if (Value* text = json::FindMutable(in, "text")) {
    if (Value* format = json::FindMutable(*text, "format"); format && format->IsObject()) {
      std::string_view type = json::GetString(*format, "type");
      Value rf(rapidjson::kObjectType);
      if (type == "json_schema") {
        Value schema(rapidjson::kObjectType);
        for (const char* key : {"name", "description", "schema", "strict"}) {
          if (Value* v = json::FindMutable(*format, key); v != nullptr && !v->IsNull()) {
            schema.AddMember(rapidjson::StringRef(key), *v, a);
          }
        }
        rf.AddMember("type", "json_schema", a);
        rf.AddMember("json_schema", schema, a);
        out.AddMember("response_format", rf, a);
      } else if (type == "json_object") {
        rf.AddMember("type", "json_object", a);
        out.AddMember("response_format", rf, a);
      }
    }
  }
  if (const Value* reasoning = json::GetObject(in, "reasoning")) {
    std::string_view effort = json::GetString(*reasoning, "effort");
    if (!effort.empty()) out.AddMember("reasoning_effort", json::Str(effort, a), a);
  }
  return req;
}

static std::string EncodeResponsesAnswer(const ChatResponse& response) {
  ResponseDraft read;
  const ResponseDraft& d = ReadAnswer(response, &read);
  const ChoiceDraft& c = FirstChoice(d);
  ResponseMeta meta{ResponseId(d.id), d.model, d.created};
  std::vector<Item> items;
  std::string_view text = !c.content.empty() ? std::string_view(c.content) : c.refusal;
  if (!text.empty()) {
    Item item;
    item.id = MintId("msg_", meta.id, 0);
    item.text = text;
    items.push_back(std::move(item));
  }
  uint64_t n = 1;
  for (const ToolCall& tc : c.tool_calls) {
    Item item;
    item.is_message = false;
    item.id = MintId("fc_", meta.id, n++);
    item.call_id = tc.id;
    item.name = tc.name;
    item.arguments = tc.arguments;
    items.push_back(std::move(item));
  }
  rapidjson::StringBuffer buf;
  json::Writer w(buf);
  WriteResponse(w, meta, items, true, c.finish_reason, &d.usage);
  return std::string(buf.GetString(), buf.GetSize());
}

static std::unique_ptr<ClientStreamEncoder> NewResponsesStreamEncoder(
    const StreamEncoderOptions& options) {
  return std::make_unique<ResponsesStreamEncoder>(options);
}

static std::string EncodeResponsesError(const AdapterError& error) {
  return client_error::OpenAiBody(error.http_status, error.message, error.type);
}

// ---- stream encoder -------------------------------------------------------------

template <typename Fields>
void ResponsesStreamEncoder::Emit(std::string_view type, Fields&& fields, std::string* out) {
  rapidjson::StringBuffer buf;
  json::Writer w(buf);
  w.StartObject();
  w.Key("type");
  json::WriteString(w, type);
  fields(w);
  w.Key("sequence_number");
  w.Int64(sequence_++);
  w.EndObject();
  AppendSse(out, type, std::string_view(buf.GetString(), buf.GetSize()));
}

template <typename Fields>
void ResponsesStreamEncoder::EmitForItem(std::string_view type, int index, Fields&& fields,
                                         std::string* out) {
  const Item& it = items_[static_cast<size_t>(index)];
  Emit(
      type,
      [&](json::Writer& w) {
        w.Key("item_id");
        json::WriteString(w, it.id);
        w.Key("output_index");
        w.Int(index);
        if (it.is_message) {
          w.Key("content_index");
          w.Int(0);
        }
        fields(w);
      },
      out);
}

void ResponsesStreamEncoder::EmitOutputItem(std::string_view type, int index, bool done,
                                            std::string* out) {
  const Item& it = items_[static_cast<size_t>(index)];
  Emit(
      type,
      [&](json::Writer& w) {
        w.Key("output_index");
        w.Int(index);
        w.Key("item");
        WriteItem(w, it, done);
      },
      out);
}

void ResponsesStreamEncoder::Start(std::string* out) {
  if (started_) return;
  started_ = true;
  options_.id = ResponseId(options_.id);
  ResponseMeta meta{options_.id, options_.model, options_.created};
  for (std::string_view type : {"response.created", "response.in_progress"}) {
    Emit(
        type,
        [&](json::Writer& w) {
          w.Key("response");
          WriteResponse(w, meta, {}, false, "", nullptr);
        },
        out);
  }
}

void ResponsesStreamEncoder::OpenMessage(std::string* out) {
  CloseItem(out);
  Item item;
  item.id = MintId("msg_", options_.id, items_.size());
  items_.push_back(std::move(item));
  open_item_ = static_cast<int>(items_.size()) - 1;
  EmitOutputItem("response.output_item.added", open_item_, false, out);
  EmitForItem(
      "response.content_part.added", open_item_,
      [&](json::Writer& w) {
        w.Key("part");
        WriteTextPart(w, "");
      },
      out);
}

void ResponsesStreamEncoder::OpenToolCall(const ToolCallDelta& call, std::string* out) {
  CloseItem(out);
  Item item;
  item.is_message = false;
  item.id = MintId("fc_", options_.id, items_.size());
  item.call_id = call.id;
  item.name = call.name;
  items_.push_back(std::move(item));
  open_item_ = static_cast<int>(items_.size()) - 1;
  size_t i = static_cast<size_t>(call.index);
  if (tool_items_.size() <= i) tool_items_.resize(i + 1, -1);
  tool_items_[i] = open_item_;
  EmitOutputItem("response.output_item.added", open_item_, false, out);
}

void ResponsesStreamEncoder::CloseItem(std::string* out) {
  if (open_item_ < 0) return;
  const Item& it = items_[open_item_];
  int index = open_item_;
  open_item_ = -1;
  if (it.is_message) {
    EmitForItem(
        "response.output_text.done", index,
        [&](json::Writer& w) {
          w.Key("text");
          json::WriteString(w, it.text);
        },
        out);
    EmitForItem(
        "response.content_part.done", index,
        [&](json::Writer& w) {
          w.Key("part");
          WriteTextPart(w, it.text);
        },
        out);
  } else {
    EmitForItem(
        "response.function_call_arguments.done", index,
        [&](json::Writer& w) {
          w.Key("arguments");
          json::WriteString(w, it.arguments);
        },
        out);
  }
  EmitOutputItem("response.output_item.done", index, true, out);
}

void ResponsesStreamEncoder::Encode(const StreamEvent& event, std::string* out) {
  if (finished_) return;
  switch (event.type) {
    case StreamEvent::Type::kStart:
      if (!started_) {
        if (!event.id.empty()) options_.id = event.id;
        if (!event.model.empty()) options_.model = event.model;
        if (event.created != 0) options_.created = event.created;
        Start(out);
      }
      break;
    case StreamEvent::Type::kDelta: {
      if (event.choice != 0) break;  // one answer per response
      Start(out);
      std::string_view text = !event.content.empty() ? event.content : event.refusal;
      if (!text.empty()) {
        if (open_item_ < 0 || !items_[open_item_].is_message) OpenMessage(out);
        items_[open_item_].text.append(text);
        EmitForItem(
            "response.output_text.delta", open_item_,
            [&](json::Writer& w) {
              w.Key("delta");
              json::WriteString(w, text);
            },
            out);
      }
      for (const ToolCallDelta& tc : event.tool_calls) {
        if (tc.index < 0 || tc.index > 1024) continue;
        if (!tc.id.empty() || !tc.name.empty()) OpenToolCall(tc, out);
        size_t i = static_cast<size_t>(tc.index);
        if (tc.arguments.empty() || i >= tool_items_.size() || tool_items_[i] < 0) continue;
        int index = tool_items_[i];
        items_[index].arguments.append(tc.arguments);
        EmitForItem(
            "response.function_call_arguments.delta", index,
            [&](json::Writer& w) {
              w.Key("delta");
              json::WriteString(w, tc.arguments);
            },
            out);
      }
      if (!event.finish_reason.empty()) finish_reason_ = event.finish_reason;
      break;
    }
    case StreamEvent::Type::kUsage:
      usage_ = event.usage;
      break;
    case StreamEvent::Type::kEnd: {
      Start(out);
      CloseItem(out);
      ResponseMeta meta{options_.id, options_.model, options_.created};
      std::string_view status = ResponsesOutcomeFromFinish(finish_reason_).status;
      std::string type = std::string("response.") + std::string(status);
      Emit(
          type,
          [&](json::Writer& w) {
            w.Key("response");
            WriteResponse(w, meta, items_, true, finish_reason_, &usage_);
          },
          out);
      finished_ = true;
      break;
    }
    case StreamEvent::Type::kError:
      Emit(
          "error",
          [&](json::Writer& w) {
            w.Key("code");
            if (event.error.type.empty()) {
              w.Null();
            } else {
              json::WriteString(w, event.error.type);
            }
            w.Key("message");
            json::WriteString(w, event.error.message);
            w.Key("param");
            w.Null();
          },
          out);
      finished_ = true;
      break;
  }
}

std::string ResponsesStreamEncoder::SaveState() const {
  rapidjson::StringBuffer buf;
  json::Writer w(buf);
  stream_state::Begin(w, "responses", options_, started_, finished_, usage_);
  w.Key("sequence");
  w.Int64(sequence_);
  w.Key("items");
  w.StartArray();
  for (const Item& it : items_) {
    w.StartObject();
    w.Key("message");
    w.Bool(it.is_message);
    for (const auto& [key, value] : {std::pair{"id", &it.id},
                                     {"text", &it.text},
                                     {"call_id", &it.call_id},
                                     {"name", &it.name},
                                     {"arguments", &it.arguments}}) {
      w.Key(key);
      json::WriteString(w, *value);
    }
    w.EndObject();
  }
  w.EndArray();
  w.Key("open_item");
  w.Int(open_item_);
  stream_state::WriteInts(w, "tool_items", tool_items_);
  w.Key("finish_reason");
  json::WriteString(w, finish_reason_);
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

bool ResponsesStreamEncoder::RestoreState(std::string_view state) {
  json::Document doc;
  stream_state::Common common;
  if (!stream_state::Read(state, "responses", &doc, &common)) return false;
  const json::Value* items = json::GetArray(doc, "items");
  if (items == nullptr || items->Size() > stream_state::kMaxIndex) return false;
  const int64_t n = items->Size();
  auto sequence = stream_state::Int(doc, "sequence", 0, INT64_MAX / 2);
  auto open_item = stream_state::Int(doc, "open_item", -1, n - 1);
  auto tool_items = stream_state::Ints(doc, "tool_items", -1, n - 1);
  if (!sequence || !open_item || !tool_items || tool_items->size() > 1025) return false;
  std::vector<Item> restored;
  restored.reserve(items->Size());
  for (const auto& v : items->GetArray()) {
    if (!v.IsObject()) return false;
    Item it;
    it.is_message = json::GetBool(v, "message", true);
    for (auto [key, value] : {std::pair{"id", &it.id},
                              {"text", &it.text},
                              {"call_id", &it.call_id},
                              {"name", &it.name},
                              {"arguments", &it.arguments}}) {
      *value = std::string(json::GetString(v, key));
    }
    restored.push_back(std::move(it));
  }
  stream_state::Apply(common, &options_);
  started_ = common.started;
  finished_ = common.finished;
  usage_ = common.usage;
  sequence_ = *sequence;
  items_ = std::move(restored);
  open_item_ = static_cast<int>(*open_item);
  tool_items_ = std::move(*tool_items);
  finish_reason_ = std::string(json::GetString(doc, "finish_reason"));
  if (finish_reason_.empty()) finish_reason_ = "stop";
  return true;
}

const ClientCodec& ResponsesClientCodec() {
  static const ClientCodec kCodec{&DecodeResponsesRequest, &EncodeResponsesAnswer,
                                  &NewResponsesStreamEncoder, &EncodeResponsesError};
  return kCodec;
}

}  // namespace tg::adapter::translate
