// Size: one provider, whole: its declarations, the Converse request and answer, and the eventstream
// decoder.

#include <algorithm>
#include <cctype>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "tg/adapter/translate/canonical.h"
#include "tg/adapter/translate/finish_reason.h"
#include "tg/adapter/translate/json.h"
#include "tg/adapter/translate/provider_codec.h"
#include "tg/adapter/translate/providers/conversation.h"
#include "tg/adapter/translate/providers/provider_util.h"
#include "tg/adapter/translate/providers/providers.h"
#include "tg/adapter/translate/target_url.h"

namespace tg::adapter::translate {

namespace {

// AWS Bedrock Runtime Converse / ConverseStream:
//   POST {base}/model/{modelId}/converse  |  /converse-stream
// base = https://bedrock-runtime.{aws_region}.amazonaws.com unless the target
// overrides it; modelId is path-encoded (`:` → `%3A`); SigV4, service
// "bedrock". The caller signs the exact body and the URL's (encoded) path.
//
// Request: system/developer messages → system; messages → user/assistant
// turns of content blocks (text, image from data: URLs, toolUse with parsed
// input, toolResult for tool messages, consecutive ones in one user turn);
// max_tokens, temperature, top_p, stop → inferenceConfig; top_k →
// additionalModelRequestFields.top_k (Anthropic and most Bedrock models use
// that name); tools → toolConfig (required → any, named → tool; none keeps
// the tools but sets no choice, since Converse has no "none" and toolConfig
// must be present when the history holds tool blocks). Image URLs other than
// data: cannot be expressed (Converse takes bytes or S3): a 400.
// Dropped: n, seed, logprobs, penalties, response_format, user, metadata,
// parallel_tool_calls, reasoning_effort, stream_options.
// The region signed and called when the credentials name none.
constexpr std::string_view kDefaultRegion = "us-east-1";

// ConverseStream events, fed one decoded eventstream message at a time:
// messageStart, contentBlockStart (tool use), contentBlockDelta (text |
// toolUse.input fragment), contentBlockStop, messageStop (stopReason), then
// metadata (usage), which completes the stream; exception messages are
// errors.
class BedrockStreamDecoder : public ProviderStreamDecoder {
 public:
  explicit BedrockStreamDecoder(const ResponseContext& ctx) : ctx_(ctx) {}
  void Feed(std::string_view bytes, StreamEvents* out) override;
  void FeedEvent(std::string_view type, std::string_view payload, StreamEvents* out) override;
  void Finish(StreamEvents* out) override;

 private:
  struct Block {
    int tool_index = -1;
    bool had_arguments = false;
  };
  Block* BlockAt(int64_t index);
  void Complete(StreamEvents* out);

  ResponseContext ctx_;
  json::ScratchDocument payload_;
  bool started_ = false;
  std::vector<Block> blocks_;
  int next_tool_index_ = 0;
  std::string stop_reason_;
  bool stopped_ = false;
  Usage usage_;
  bool has_usage_ = false;
};

using json::Allocator;
using json::Value;

Value TextBlock(std::string_view text, Allocator& a) {
  Value block(rapidjson::kObjectType);
  block.AddMember("text", json::Ref(text), a);
  return block;
}

// image/png → png …; "" when Converse does not take the type.
std::string_view ImageFormat(std::string_view media_type) {
  if (media_type == "image/png") return "png";
  if (media_type == "image/jpeg" || media_type == "image/jpg") return "jpeg";
  if (media_type == "image/gif") return "gif";
  if (media_type == "image/webp") return "webp";
  return "";
}

// Appends the text/image blocks of a user message; false (with *error set)
// for an image Converse cannot take.
bool AppendUserBlocks(const Value* content, Value* blocks, Allocator& a, std::string* error) {
  return ForEachContentPart(
      content, [&](std::string_view text) { blocks->PushBack(TextBlock(text, a), a); },
      [&](std::string_view url) {
        DataUrl data;
        std::string_view format;
        if (!ParseDataUrl(url, &data) || (format = ImageFormat(data.media_type)).empty()) {
          *error = "bedrock Converse takes images only as data: URLs (png, jpeg, gif, webp)";
          return false;
        }
        Value source(rapidjson::kObjectType);
        source.AddMember("bytes", json::Ref(data.data), a);
        Value image(rapidjson::kObjectType);
        image.AddMember("format", json::Ref(format), a);
        image.AddMember("source", source, a);
        Value block(rapidjson::kObjectType);
        block.AddMember("image", image, a);
        blocks->PushBack(block, a);
        return true;
      });
}

Value ToolResultBlock(const Value& m, Allocator& a) {
  std::string text = json::ContentText(json::Find(m, "content"), "\n");
  Value content(rapidjson::kArrayType);
  if (!text.empty()) {
    Value t(rapidjson::kObjectType);
    t.AddMember("text", json::Str(text, a), a);
    content.PushBack(t, a);
  }
  Value result(rapidjson::kObjectType);
  result.AddMember("toolUseId", json::Ref(json::GetString(m, "tool_call_id")), a);
  result.AddMember("content", content, a);
  Value block(rapidjson::kObjectType);
  block.AddMember("toolResult", result, a);
  return block;
}

void AppendAssistantBlocks(const Value& m, Value* blocks, Allocator& a) {
  std::string_view text;
  const Value* content = json::Find(m, "content");
  std::string joined;
  if (content != nullptr && content->IsString()) {
    text = json::AsString(content);
  } else if (content != nullptr && content->IsArray()) {
    joined = json::ContentText(content);
    text = joined;
  }
  if (!text.empty()) {
    Value block(rapidjson::kObjectType);
    block.AddMember("text", json::Str(text, a), a);  // `joined` dies with this call
    blocks->PushBack(block, a);
  }
  if (const Value* calls = json::GetArray(m, "tool_calls")) {
    for (const Value& call : calls->GetArray()) {
      const Value* fn = json::GetObject(call, "function");
      if (fn == nullptr) continue;
      Value use(rapidjson::kObjectType);
      use.AddMember("toolUseId", json::Ref(json::GetString(call, "id")), a);
      use.AddMember("name", json::Ref(json::GetString(*fn, "name")), a);
      use.AddMember("input", ArgumentsObject(json::GetString(*fn, "arguments"), a), a);
      Value block(rapidjson::kObjectType);
      block.AddMember("toolUse", use, a);
      blocks->PushBack(block, a);
    }
  }
}

Value ToolConfig(const Value& in, const Value& tools, Allocator& a) {
  Value specs(rapidjson::kArrayType);
  for (const Value& tool : tools.GetArray()) {
    const Value* fn = json::GetObject(tool, "function");
    if (fn == nullptr) continue;
    Value spec(rapidjson::kObjectType);
    spec.AddMember("name", json::Ref(json::GetString(*fn, "name")), a);
    if (std::string_view d = json::GetString(*fn, "description"); !d.empty()) {
      spec.AddMember("description", json::Ref(d), a);
    }
    Value schema(rapidjson::kObjectType);
    if (const Value* params = json::GetObject(*fn, "parameters")) {
      schema.AddMember("json", Value(*params, a), a);
    } else {
      Value empty(rapidjson::kObjectType);
      empty.AddMember("type", "object", a);
      empty.AddMember("properties", Value(rapidjson::kObjectType), a);
      schema.AddMember("json", empty, a);
    }
    spec.AddMember("inputSchema", schema, a);
    Value t(rapidjson::kObjectType);
    t.AddMember("toolSpec", spec, a);
    specs.PushBack(t, a);
  }
  if (specs.Empty()) return Value();
  Value config(rapidjson::kObjectType);
  config.AddMember("tools", specs, a);
  const Value* choice = json::Find(in, "tool_choice");
  std::string_view mode = json::AsString(choice);
  Value tc(rapidjson::kObjectType);
  if (mode == "auto") {
    tc.AddMember("auto", Value(rapidjson::kObjectType), a);
  } else if (mode == "required") {
    tc.AddMember("any", Value(rapidjson::kObjectType), a);
  } else if (const Value* fn = choice != nullptr ? json::GetObject(*choice, "function") : nullptr) {
    Value named(rapidjson::kObjectType);
    named.AddMember("name", json::Ref(json::GetString(*fn, "name")), a);
    tc.AddMember("tool", named, a);
  }
  if (tc.MemberCount() > 0) config.AddMember("toolChoice", tc, a);
  return config;
}

Usage ReadBedrockUsage(const Value& u) {
  Usage usage;
  int64_t read = json::GetInt(u, "cacheReadInputTokens");
  int64_t write = json::GetInt(u, "cacheWriteInputTokens");
  usage.prompt_tokens = json::GetInt(u, "inputTokens") + read + write;
  usage.completion_tokens = json::GetInt(u, "outputTokens");
  usage.total_tokens = usage.prompt_tokens + usage.completion_tokens;
  usage.cached_tokens = read;
  return usage;
}

// An exception's `:exception-type` → the HTTP status AWS gives it.
int BedrockExceptionStatus(std::string_view type) {
  std::string lower(type);
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  struct Entry {
    std::string_view type;
    int status;
  };
  static constexpr Entry kTable[] = {
      {"throttlingexception", 429},           {"modelnotreadyexception", 429},
      {"servicequotaexceededexception", 429}, {"validationexception", 400},
      {"accessdeniedexception", 403},         {"resourcenotfoundexception", 404},
      {"modeltimeoutexception", 408},         {"modelerrorexception", 424},
      {"modelstreamerrorexception", 424},     {"internalserverexception", 500},
      {"serviceunavailableexception", 503},
  };
  for (const Entry& e : kTable) {
    if (e.type == lower) return e.status;
  }
  return 500;
}

}  // namespace

Result<CallShape> BedrockCallShape(const TargetInfo& target) {
  std::string region = target.aws_region.empty() ? std::string(kDefaultRegion) : target.aws_region;
  // The region becomes part of a host name: letters, digits and '-' only.
  if (region.size() > 32 || !std::all_of(region.begin(), region.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
      })) {
    return ConfigurationError("credentials.aws_region must be an AWS region name (us-east-1)");
  }
  return CallShape{.base_url = "https://bedrock-runtime." + region + ".amazonaws.com",
                   .auth = AuthScheme::kAwsSigV4,
                   .stream_framing = BodyFraming::kAwsEventStream,
                   .aws_service = "bedrock",
                   .aws_region = region};
}

static Result<HttpRequestSpec> BuildBedrockRequest(const ChatRequest& request,
                                                   const TargetInfo& target) {
  const Value& in = request.doc;
  json::ScratchDocument scratch;
  json::Document& out = scratch.doc();
  out.SetObject();
  Allocator& a = out.GetAllocator();
  Conversation conv = GroupMessages(json::GetArray(in, "messages"));

  Value messages(rapidjson::kArrayType);
  std::string error;
  for (const Turn& turn : conv.turns) {
    Value blocks(rapidjson::kArrayType);
    for (const Value* m : turn.messages) {
      std::string_view role = json::GetString(*m, "role");
      if (turn.assistant) {
        AppendAssistantBlocks(*m, &blocks, a);
      } else if (role == "tool" || role == "function") {
        blocks.PushBack(ToolResultBlock(*m, a), a);
      } else if (!AppendUserBlocks(json::Find(*m, "content"), &blocks, a, &error)) {
        return InvalidRequest(error);
      }
    }
    if (blocks.Empty()) continue;  // Converse rejects empty content
    Value message(rapidjson::kObjectType);
    message.AddMember("role", json::Ref(turn.assistant ? "assistant" : "user"), a);
    message.AddMember("content", blocks, a);
    messages.PushBack(message, a);
  }
  if (messages.Empty()) return InvalidRequest("bedrock needs at least one non-system message");
  out.AddMember("messages", messages, a);
  if (!conv.system.empty()) {
    Value system(rapidjson::kArrayType);
    for (const std::string& text : conv.system) system.PushBack(TextBlock(text, a), a);
    out.AddMember("system", system, a);
  }
  Value inference(rapidjson::kObjectType);
  int64_t max_tokens = json::GetInt(in, "max_completion_tokens", 0);
  if (max_tokens <= 0) max_tokens = json::GetInt(in, "max_tokens", 0);
  if (max_tokens > 0) inference.AddMember("maxTokens", max_tokens, a);
  if (const Value* t = json::Find(in, "temperature"); t != nullptr && t->IsNumber()) {
    inference.AddMember("temperature", Value(*t, a), a);
  }
  if (const Value* p = json::Find(in, "top_p"); p != nullptr && p->IsNumber()) {
    inference.AddMember("topP", Value(*p, a), a);
  }
  if (const Value* stop = json::Find(in, "stop")) {
    Value seqs(rapidjson::kArrayType);
    if (stop->IsString()) seqs.PushBack(Value(*stop, a), a);
    if (stop->IsArray()) {
      for (const Value& s : stop->GetArray()) {
        if (s.IsString()) seqs.PushBack(Value(s, a), a);
      }
    }
    if (!seqs.Empty()) inference.AddMember("stopSequences", seqs, a);
  }
  if (inference.MemberCount() > 0) out.AddMember("inferenceConfig", inference, a);
  if (const Value* tools = json::GetArray(in, "tools")) {
    Value config = ToolConfig(in, *tools, a);
    if (!config.IsNull()) out.AddMember("toolConfig", config, a);
  }
  if (const Value* k = json::Find(in, "top_k"); k != nullptr && k->IsNumber()) {
    Value extra(rapidjson::kObjectType);
    extra.AddMember("top_k", Value(*k, a), a);
    out.AddMember("additionalModelRequestFields", extra, a);
  }

  std::string model = target.model.empty() ? request.model : target.model;
  std::string encoded = PathEncode(model);
  auto shape = BedrockCallShape(target);
  if (!shape.ok()) return shape.error();
  shape.value().path = ResolvePath(
      "/model/" + encoded + (target.stream ? "/converse-stream" : "/converse"), target, encoded);
  return AssembleCall(std::move(shape.value()), target, json::Write(out));
}

static Result<ChatResponse> ParseBedrockAnswer(int status, std::string_view body,
                                               const ResponseContext& ctx) {
  json::ScratchDocument scratch;
  json::Document& doc = scratch.doc();
  if (auto error = ReadAnswerBody(status, body, &doc)) return *std::move(error);
  ResponseDraft d;
  d.id = MintId("chatcmpl-", ctx.id_seed, 0);  // Converse names no answer
  d.model = ctx.model;
  d.created = ctx.created;
  ChoiceDraft c;
  const Value* output = json::GetObject(doc, "output");
  const Value* message = output != nullptr ? json::GetObject(*output, "message") : nullptr;
  const Value* content = message != nullptr ? json::GetArray(*message, "content") : nullptr;
  if (content == nullptr) return ProtocolError("converse answer without output.message.content");
  for (const Value& block : content->GetArray()) {
    if (const Value* text = json::Find(block, "text"); text != nullptr && text->IsString()) {
      c.content.append(json::AsString(text));
      c.has_content = true;
    } else if (const Value* use = json::GetObject(block, "toolUse")) {
      const Value* input = json::Find(*use, "input");
      c.tool_calls.push_back(ToolCall{std::string(json::GetString(*use, "toolUseId")),
                                      std::string(json::GetString(*use, "name")),
                                      input != nullptr ? json::Write(*input) : "{}"});
    }
    // reasoningContent, citations, guardContent: no Chat form.
  }
  c.finish_reason = FinishFromBedrock(json::GetString(doc, "stopReason"));
  d.choices.push_back(std::move(c));
  if (const Value* usage = json::GetObject(doc, "usage")) {
    d.usage = ReadBedrockUsage(*usage);
    d.has_usage = true;
  }
  return AnswerOf(std::move(d));
}

void BedrockStreamDecoder::Feed(std::string_view, StreamEvents* out) {
  EmitError(ProtocolError("bedrock streams are eventstream: decode frames and use FeedEvent"), out);
}

BedrockStreamDecoder::Block* BedrockStreamDecoder::BlockAt(int64_t index) {
  if (index < 0 || index > 4096) return nullptr;
  if (static_cast<size_t>(index) >= blocks_.size()) blocks_.resize(index + 1);
  return &blocks_[index];
}

void BedrockStreamDecoder::Complete(StreamEvents* out) {
  StreamEvent finish;
  finish.finish_reason = FinishFromBedrock(stop_reason_);
  out->push_back(std::move(finish));
  if (has_usage_) {
    StreamEvent ev;
    ev.type = StreamEvent::Type::kUsage;
    ev.usage = usage_;
    out->push_back(std::move(ev));
  }
  EmitEnd(out);
}

void BedrockStreamDecoder::FeedEvent(std::string_view type, std::string_view payload,
                                     StreamEvents* out) {
  if (done_) return;
  ::tg::json::ParseResult parsed;
  if (!payload_.Parse(payload.empty() ? std::string_view("{}") : payload, &parsed)) {
    std::string why = json::RefusedBeyondSyntax(parsed);
    EmitError(ProtocolError(why.empty() ? "eventstream payload is not a JSON object" : why), out);
    return;
  }
  if (!payload_.doc().IsObject()) {
    EmitError(ProtocolError("eventstream payload is not a JSON object"), out);
    return;
  }
  const json::Document& d = payload_.doc();
  if (!started_ && type != "metadata" && !type.ends_with("Exception") &&
      !type.ends_with("exception")) {
    started_ = true;
    StreamEvent start;
    start.type = StreamEvent::Type::kStart;
    start.id = MintId("chatcmpl-", ctx_.id_seed, 0);
    start.model = ctx_.model;
    start.created = ctx_.created;
    out->push_back(std::move(start));
  }
  if (type == "contentBlockDelta") {
    const Value* delta = json::GetObject(d, "delta");
    if (delta == nullptr) return;
    if (const Value* text = json::Find(*delta, "text"); text != nullptr && text->IsString()) {
      StreamEvent ev;
      ev.content = json::AsString(text);
      if (!ev.content.empty()) out->push_back(std::move(ev));
    } else if (const Value* use = json::GetObject(*delta, "toolUse")) {
      Block* block = BlockAt(json::GetInt(d, "contentBlockIndex", -1));
      std::string_view fragment = json::GetString(*use, "input");
      if (block == nullptr || !AppendArgumentsDelta(block->tool_index, fragment, out)) return;
      block->had_arguments = true;
    }
    // reasoningContent deltas have no Chat form.
  } else if (type == "contentBlockStart") {
    const Value* start = json::GetObject(d, "start");
    const Value* use = start != nullptr ? json::GetObject(*start, "toolUse") : nullptr;
    Block* block = BlockAt(json::GetInt(d, "contentBlockIndex", -1));
    if (use == nullptr || block == nullptr) return;
    block->tool_index = next_tool_index_++;
    StreamEvent ev;
    ev.tool_calls.push_back(ToolCallDelta{block->tool_index,
                                          std::string(json::GetString(*use, "toolUseId")),
                                          std::string(json::GetString(*use, "name")), ""});
    out->push_back(std::move(ev));
  } else if (type == "contentBlockStop") {
    Block* block = BlockAt(json::GetInt(d, "contentBlockIndex", -1));
    if (block != nullptr && block->tool_index >= 0 && !block->had_arguments) {
      block->had_arguments = true;
      StreamEvent ev;
      ev.tool_calls.push_back(ToolCallDelta{block->tool_index, {}, {}, "{}"});
      out->push_back(std::move(ev));
    }
  } else if (type == "messageStop") {
    stop_reason_ = json::GetString(d, "stopReason");
    stopped_ = true;
  } else if (type == "metadata") {
    if (const Value* usage = json::GetObject(d, "usage")) {
      usage_ = ReadBedrockUsage(*usage);
      has_usage_ = true;
    }
    // Usage comes only here, after messageStop: this is the real end.
    if (stopped_) Complete(out);
  } else if (type.ends_with("Exception") || type.ends_with("exception") ||
             type.ends_with("Error") || type.ends_with("Failure")) {
    AdapterError err;
    err.kind = ErrorKind::kHttp;
    err.http_status = BedrockExceptionStatus(type);
    err.retryable = IsRetryableStatus(err.http_status);
    err.type = type;
    err.message = json::GetString(d, "message");
    if (err.message.empty()) err.message = json::GetString(d, "Message");
    if (err.message.empty()) err.message = std::string(type);
    EmitError(std::move(err), out);
  }
  // messageStart needs nothing beyond the kStart above; unknown events are
  // ignored (AWS adds fields and events over time).
}

void BedrockStreamDecoder::Finish(StreamEvents* out) {
  if (done_) return;
  if (stopped_) {
    // messageStop without the metadata event: the answer is complete, only
    // its usage is missing.
    Complete(out);
    return;
  }
  EmitBroken("stream ended without messageStop", out);
}

const ProviderCodec& BedrockProvider() {
  static const ProviderCodec kCodec{"bedrock", &BuildBedrockRequest, &ParseBedrockAnswer,
                                    &NewDecoder<BedrockStreamDecoder>};
  return kCodec;
}

}  // namespace tg::adapter::translate
