#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "tg/adapter/translate/canonical.h"
#include "tg/adapter/translate/client_codec.h"
#include "tg/adapter/translate/clients/clients.h"
#include "tg/adapter/translate/clients/stream_state.h"
#include "tg/adapter/translate/json.h"
#include "tg/adapter/translate/sse_writer.h"
#include "tg/common/client_error.h"

namespace tg::adapter::translate {

namespace {

// OpenAI Chat Completions clients: the canonical form itself. Decoding only
// normalises the seeds' mixed body: a top-level `system` (string or text
// blocks) becomes a leading system message unless one exists, Anthropic's
// `stop_sequences` becomes `stop` unless `stop` is set.

// `data: {chat.completion.chunk}` per delta, the usage chunk (choices: [])
// when the client asked for include_usage, then `data: [DONE]`; an error
// mid-stream is `data: {"error":{…}}` and no [DONE].
class OpenAiChatStreamEncoder : public ClientStreamEncoder {
 public:
  explicit OpenAiChatStreamEncoder(const StreamEncoderOptions& options);
  void Encode(const StreamEvent& event, std::string* out) override;
  std::string SaveState() const override;
  bool RestoreState(std::string_view state) override;

 private:
  void WriteChunk(const StreamEvent& delta, std::string* out);
  void WriteUsageChunk(std::string* out);

  StreamEncoderOptions options_;
  bool started_ = false;         // a chunk has been written: the id is fixed
  std::vector<bool> role_sent_;  // per choice index
  Usage usage_;
  bool usage_sent_ = false;
};

using json::Allocator;
using json::Value;

bool HasSystemMessage(const Value& messages) {
  for (const Value& m : messages.GetArray()) {
    std::string_view role = json::GetString(m, "role");
    if (role == "system" || role == "developer") return true;
  }
  return false;
}

}  // namespace

static Result<ChatRequest> DecodeOpenAiChatRequest(std::string_view body) {
  ChatRequest req;
  json::Document& doc = req.doc;
  std::string error;
  if (!json::Parse(body, &doc, &error)) return InvalidRequest(error);
  if (!doc.IsObject()) return InvalidRequest("the request body must be a JSON object");
  Value* messages = json::FindMutable(doc, "messages");
  if (messages == nullptr || !messages->IsArray()) {
    return InvalidRequest("`messages` must be an array of messages");
  }
  Allocator& a = doc.GetAllocator();
  if (auto it = doc.FindMember("system"); it != doc.MemberEnd()) {
    std::string text = json::ContentText(&it->value, "\n");
    if (!text.empty() && !HasSystemMessage(*messages)) {
      Value with_system(rapidjson::kArrayType);
      with_system.Reserve(messages->Size() + 1, a);
      Value system(rapidjson::kObjectType);
      system.AddMember("role", "system", a);
      system.AddMember("content", json::Str(text, a), a);
      with_system.PushBack(system, a);
      for (Value& m : messages->GetArray()) with_system.PushBack(m, a);  // moves
      *messages = std::move(with_system);
    }
    doc.EraseMember(it);  // EraseMember keeps the other members' order
  }
  if (auto it = doc.FindMember("stop_sequences"); it != doc.MemberEnd()) {
    if (json::Find(doc, "stop") == nullptr && it->value.IsArray()) {
      it->name.SetString("stop", a);
    } else {
      doc.EraseMember(it);
    }
  }
  req.model = json::GetString(doc, "model");
  req.stream = json::GetBool(doc, "stream");
  if (const Value* so = json::GetObject(doc, "stream_options")) {
    req.include_usage = json::GetBool(*so, "include_usage");
  }
  return req;
}

static std::string EncodeOpenAiChatAnswer(const ChatResponse& response) {
  return WriteChatCompletion(response);
}

static std::unique_ptr<ClientStreamEncoder> NewOpenAiChatStreamEncoder(
    const StreamEncoderOptions& options) {
  return std::make_unique<OpenAiChatStreamEncoder>(options);
}

static std::string ErrorBody(const AdapterError& error) {
  return client_error::OpenAiBody(error.http_status, error.message, error.type);
}

static std::string EncodeOpenAiChatError(const AdapterError& error) { return ErrorBody(error); }

OpenAiChatStreamEncoder::OpenAiChatStreamEncoder(const StreamEncoderOptions& options)
    : options_(options) {}

void OpenAiChatStreamEncoder::Encode(const StreamEvent& event, std::string* out) {
  if (finished_) return;
  switch (event.type) {
    case StreamEvent::Type::kStart:
      if (!started_) {
        if (!event.id.empty()) options_.id = event.id;
        if (!event.model.empty()) options_.model = event.model;
        if (event.created != 0) options_.created = event.created;
      }
      break;
    case StreamEvent::Type::kDelta:
      WriteChunk(event, out);
      break;
    case StreamEvent::Type::kUsage:
      usage_ = event.usage;
      if (options_.include_usage && !usage_sent_) WriteUsageChunk(out);
      break;
    case StreamEvent::Type::kEnd:
      // Every provider's usage reaches a client that asked for it, zeros if
      // the provider gave none.
      if (options_.include_usage && !usage_sent_) WriteUsageChunk(out);
      AppendSse(out, "", "[DONE]");
      finished_ = true;
      break;
    case StreamEvent::Type::kError:
      AppendSse(out, "", ErrorBody(event.error));
      finished_ = true;
      break;
  }
}

namespace {

void WriteChunkHeader(json::Writer& w, const StreamEncoderOptions& o) {
  w.Key("id");
  json::WriteString(w, o.id);
  w.Key("object");
  w.String("chat.completion.chunk");
  w.Key("created");
  w.Int64(o.created);
  w.Key("model");
  json::WriteString(w, o.model);
}

}  // namespace

void OpenAiChatStreamEncoder::WriteChunk(const StreamEvent& d, std::string* out) {
  started_ = true;
  if (d.choice < 0 || d.choice > 128) return;
  if (role_sent_.size() <= static_cast<size_t>(d.choice)) role_sent_.resize(d.choice + 1);
  rapidjson::StringBuffer buf;
  json::Writer w(buf);
  w.StartObject();
  WriteChunkHeader(w, options_);
  w.Key("choices");
  w.StartArray();
  w.StartObject();
  w.Key("index");
  w.Int(d.choice);
  w.Key("delta");
  w.StartObject();
  if (!role_sent_[d.choice]) {
    role_sent_[d.choice] = true;
    w.Key("role");
    w.String("assistant");
  }
  if (!d.content.empty()) {
    w.Key("content");
    json::WriteString(w, d.content);
  }
  if (!d.refusal.empty()) {
    w.Key("refusal");
    json::WriteString(w, d.refusal);
  }
  if (!d.tool_calls.empty()) {
    w.Key("tool_calls");
    w.StartArray();
    for (const ToolCallDelta& tc : d.tool_calls) {
      WriteOpenAiToolCall(w, tc.index, tc.id, tc.name, tc.arguments);
    }
    w.EndArray();
  }
  w.EndObject();
  w.Key("logprobs");
  w.Null();
  w.Key("finish_reason");
  if (d.finish_reason.empty()) {
    w.Null();
  } else {
    json::WriteString(w, d.finish_reason);
  }
  w.EndObject();
  w.EndArray();
  w.EndObject();
  AppendSse(out, "", std::string_view(buf.GetString(), buf.GetSize()));
}

void OpenAiChatStreamEncoder::WriteUsageChunk(std::string* out) {
  started_ = true;
  usage_sent_ = true;
  rapidjson::StringBuffer buf;
  json::Writer w(buf);
  w.StartObject();
  WriteChunkHeader(w, options_);
  w.Key("choices");
  w.StartArray();
  w.EndArray();
  w.Key("usage");
  WriteOpenAiUsage(w, usage_);
  w.EndObject();
  AppendSse(out, "", std::string_view(buf.GetString(), buf.GetSize()));
}

std::string OpenAiChatStreamEncoder::SaveState() const {
  rapidjson::StringBuffer buf;
  json::Writer w(buf);
  stream_state::Begin(w, "openai_chat", options_, started_, finished_, usage_);
  stream_state::WriteInts(w, "roles", std::vector<int>(role_sent_.begin(), role_sent_.end()));
  w.Key("usage_sent");
  w.Bool(usage_sent_);
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

bool OpenAiChatStreamEncoder::RestoreState(std::string_view state) {
  json::Document doc;
  stream_state::Common common;
  if (!stream_state::Read(state, "openai_chat", &doc, &common)) return false;
  auto roles = stream_state::Ints(doc, "roles", 0, 1);
  if (!roles || roles->size() > 129) return false;
  stream_state::Apply(common, &options_);
  started_ = common.started;
  finished_ = common.finished;
  usage_ = common.usage;
  role_sent_.assign(roles->begin(), roles->end());
  usage_sent_ = json::GetBool(doc, "usage_sent");
  return true;
}

const ClientCodec& OpenAiChatClientCodec() {
  static const ClientCodec kCodec{&DecodeOpenAiChatRequest, &EncodeOpenAiChatAnswer,
                                  &NewOpenAiChatStreamEncoder, &EncodeOpenAiChatError};
  return kCodec;
}

}  // namespace tg::adapter::translate
