#include "tg/adapter/translate/providers/provider_util.h"

#include <strings.h>

#include <cctype>
#include <string>

#include "tg/adapter/translate/target_url.h"
#include "tg/common/utf8.h"

namespace tg::adapter::translate {

using json::Value;

namespace {

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && strncasecmp(json::Data(a), json::Data(b), a.size()) == 0;
}

// The beginning of a body that is not JSON, as valid UTF-8, cut at a
// character boundary.
std::string Truncated(std::string_view s) {
  constexpr size_t kMax = 512;
  if (s.size() <= kMax) return utf8::Sanitize(s);
  return utf8::Sanitize(utf8::TruncateAtBoundary(s, kMax)) + "…";
}

// Reads type and message from an error object of any provider.
void ReadErrorObject(const Value& e, std::string* type, std::string* message) {
  *message = std::string(json::GetString(e, "message"));
  // The most specific name first: OpenAI's code ("rate_limit_exceeded",
  // "invalid_api_key") over its type ("tokens", "invalid_request_error"),
  // then Anthropic's type ("overloaded_error"), then Gemini's status.
  std::string_view t = json::GetString(e, "code");
  if (t.empty()) t = json::GetString(e, "type");
  if (t == "error") t = {};                         // an error event's own type, not the error's
  if (t.empty()) t = json::GetString(e, "status");  // Gemini: RESOURCE_EXHAUSTED
  *type = std::string(t);
}

}  // namespace

Headers WithTargetHeaders(Headers defaults, const Headers& target_headers) {
  for (const auto& [name, value] : target_headers) {
    bool replaced = false;
    for (auto& [dname, dvalue] : defaults) {
      if (EqualsIgnoreCase(dname, name)) {
        dvalue = value;
        replaced = true;
      }
    }
    if (!replaced) defaults.emplace_back(name, value);
  }
  return defaults;
}

int StatusForErrorType(std::string_view type, int fallback) {
  struct Entry {
    std::string_view type;
    int status;
  };
  static constexpr Entry kTable[] = {
      {"invalid_request_error", 400}, {"authentication_error", 401},
      {"permission_error", 403},      {"not_found_error", 404},
      {"request_too_large", 413},     {"rate_limit_error", 429},
      {"rate_limit_exceeded", 429},   {"api_error", 500},
      {"server_error", 500},          {"timeout_error", 504},
      {"overloaded_error", 529},      {"INVALID_ARGUMENT", 400},
      {"PERMISSION_DENIED", 403},     {"NOT_FOUND", 404},
      {"RESOURCE_EXHAUSTED", 429},    {"INTERNAL", 500},
      {"UNAVAILABLE", 503},           {"DEADLINE_EXCEEDED", 504},
  };
  for (const Entry& e : kTable) {
    if (e.type == type) return e.status;
  }
  return fallback;
}

AdapterError HttpError(int status, std::string_view body) {
  AdapterError err;
  err.kind = ErrorKind::kHttp;
  err.http_status = status;
  err.retryable = IsRetryableStatus(status);
  json::Document doc;
  if (json::ParseStrict(body, &doc)) {
    const Value* e = json::Find(doc, "error");
    if (e != nullptr && e->IsObject()) {
      ReadErrorObject(*e, &err.type, &err.message);
      // OpenAI: an exhausted quota is a 429 that no retry will fix.
      if (json::GetString(*e, "code") == "insufficient_quota" ||
          json::GetString(*e, "type") == "insufficient_quota") {
        err.retryable = false;
      }
    } else if (e != nullptr && e->IsString()) {
      err.message = std::string(json::AsString(e));
    } else if (doc.IsObject()) {
      err.message = std::string(json::GetString(doc, "message"));
      if (err.message.empty()) err.message = std::string(json::GetString(doc, "Message"));
      err.type = std::string(json::GetString(doc, "__type"));  // AWS JSON protocol errors
    } else if (doc.IsArray() && doc.Size() > 0) {
      // Gemini sometimes wraps the error in a one-element array.
      if (const Value* inner = json::GetObject(doc[0], "error")) {
        ReadErrorObject(*inner, &err.type, &err.message);
      }
    }
  }
  if (err.message.empty()) err.message = Truncated(body);
  if (err.message.empty()) err.message = "provider answered HTTP " + std::to_string(status);
  err.context_length = IsContextLengthError(status, err.type, err.message);
  return err;
}

bool IsContextLengthError(int status, std::string_view type, std::string_view message) {
  if (status != 400 && status != 413) return false;
  if (type == "context_length_exceeded" || type == "string_above_max_length") return true;
  std::string lower(message.substr(0, 512));
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (std::string_view phrase :
       {"context length", "context_length_exceeded", "context window", "prompt is too long",
        "exceeds the maximum number of tokens", "input is too long", "too many input tokens",
        "maximum context"}) {
    if (lower.find(phrase) != std::string::npos) return true;
  }
  return false;
}

AdapterError StreamErrorFromObject(const Value& e) {
  AdapterError err;
  err.kind = ErrorKind::kHttp;
  ReadErrorObject(e, &err.type, &err.message);
  int code = static_cast<int>(json::GetInt(e, "code", 0));
  err.http_status = code >= 400 && code <= 599 ? code : StatusForErrorType(err.type, 500);
  err.retryable = IsRetryableStatus(err.http_status);
  if (err.message.empty()) err.message = "provider reported an error mid-stream";
  return err;
}

Result<HttpRequestSpec> AssembleCall(CallShape shape, const TargetInfo& target, std::string body) {
  auto url = ProviderUrl(shape.base_url, target, shape.path, shape.query);
  if (!url.ok()) return url.error();
  HttpRequestSpec spec;
  spec.url = std::move(url.value());
  const BodyFraming framing = target.stream ? shape.stream_framing : BodyFraming::kJson;
  std::string_view accept = "application/json";
  if (framing == BodyFraming::kSse) accept = "text/event-stream";
  if (framing == BodyFraming::kAwsEventStream) accept = "application/vnd.amazon.eventstream";
  Headers defaults{{"content-type", "application/json"}, {"accept", std::string(accept)}};
  for (auto& h : shape.version_headers) defaults.push_back(std::move(h));
  spec.headers = WithTargetHeaders(std::move(defaults), target.headers);
  spec.body = std::move(body);
  spec.auth = shape.auth;
  spec.aws_service = std::move(shape.aws_service);
  spec.aws_region = std::move(shape.aws_region);
  spec.framing = framing;
  return spec;
}

std::optional<AdapterError> ReadAnswerBody(int status, std::string_view body, json::Document* doc) {
  if (status < 200 || status > 299) return HttpError(status, body);
  ::tg::json::ParseResult parsed;
  if (!json::ParseStrict(body, doc, &parsed)) {
    std::string why = json::RefusedBeyondSyntax(parsed);
    return ProtocolError(why.empty() ? "provider answered a body that is not a JSON object" : why);
  }
  if (!doc->IsObject()) return ProtocolError("provider answered a body that is not a JSON object");
  return std::nullopt;
}

void ProviderStreamDecoder::FeedEvent(std::string_view, std::string_view, StreamEvents* out) {
  EmitError(ProtocolError("eventstream input for a provider that streams SSE"), out);
}

void ProviderStreamDecoder::EmitEnd(StreamEvents* out) {
  if (done_) return;
  done_ = true;
  StreamEvent ev;
  ev.type = StreamEvent::Type::kEnd;
  out->push_back(std::move(ev));
}

void ProviderStreamDecoder::EmitError(AdapterError error, StreamEvents* out) {
  if (done_) return;
  done_ = true;
  StreamEvent ev;
  ev.type = StreamEvent::Type::kError;
  ev.error = std::move(error);
  out->push_back(std::move(ev));
}

void ProviderStreamDecoder::EmitBroken(std::string message, StreamEvents* out) {
  EmitError(AdapterError{ErrorKind::kStreamBroken, 502, true, "stream_broken", std::move(message)},
            out);
}

void SseStreamDecoder::Feed(std::string_view bytes, StreamEvents* out) {
  if (done_) return;
  sse_.Feed(bytes, &events_);
  Drain(out);
}

void SseStreamDecoder::Finish(StreamEvents* out) {
  if (done_) return;
  sse_.Finish(&events_);
  Drain(out);
  if (!done_) OnEof(out);
}

void SseStreamDecoder::Drain(StreamEvents* out) {
  for (const SseEvent& ev : events_) {
    if (done_) break;
    OnEvent(ev, out);
  }
  events_.clear();
  if (sse_.overflowed()) {
    EmitError(ProtocolError("provider stream event larger than " +
                            std::to_string(sse_.max_event_bytes()) + " bytes"),
              out);
  }
}

bool SseStreamDecoder::ParseData(std::string_view data, StreamEvents* out) {
  ::tg::json::ParseResult parsed;
  const bool syntax_ok = data_.Parse(data, &parsed);
  if (syntax_ok && data_.doc().IsObject()) {
    ++parsed_events_;
    return true;
  }
  if (!syntax_ok) {
    if (std::string why = json::RefusedBeyondSyntax(parsed); !why.empty()) {
      EmitError(ProtocolError(why), out);
      return false;
    }
  }
  ++skipped_events_;
  if (skipped_events_ > kMaxSkippedEvents ||
      (skipped_events_ > 1 && skipped_events_ > parsed_events_)) {
    EmitError(ProtocolError("stream event is not a JSON object (" +
                            std::to_string(skipped_events_) + " malformed events)"),
              out);
  }
  return false;
}

bool AppendArgumentsDelta(int tool_index, std::string_view fragment, StreamEvents* out) {
  if (tool_index < 0 || fragment.empty()) return false;
  StreamEvent ev;
  ev.tool_calls.push_back(ToolCallDelta{tool_index, {}, {}, std::string(fragment)});
  out->push_back(std::move(ev));
  return true;
}

}  // namespace tg::adapter::translate
