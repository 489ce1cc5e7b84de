// Size: one Invoke's state machine (translate, call, stream back, resume); split planned.
#include "tg/adapter/service/invocation.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>

#include "tg/adapter/service/adapter_metrics.h"
#include "tg/adapter/translate/json.h"
#include "tg/adapter/translate/target_url.h"
#include "tg/common/egress.h"
#include "tg/common/http_headers.h"
#include "tg/common/json_util.h"
#include "tg/common/log.h"
#include "tg/common/telemetry.h"
#include "tg/common/utf8.h"

namespace tg::adapter {
namespace {

using tg::v1::ProviderError;

translate::ClientFormat ToTranslate(tg::v1::ClientFormat f) {
  switch (f) {
    case tg::v1::CLIENT_FORMAT_ANTHROPIC_MESSAGES:
      return translate::ClientFormat::kAnthropicMessages;
    case tg::v1::CLIENT_FORMAT_OPENAI_RESPONSES:
      return translate::ClientFormat::kOpenAiResponses;
    default:
      return translate::ClientFormat::kOpenAiChat;
  }
}

tg::v1::InvokeEvent HeadEvent(int status, std::string content_type, std::string provider) {
  tg::v1::InvokeEvent e;
  e.mutable_head()->set_status(status);
  e.mutable_head()->set_content_type(std::move(content_type));
  e.mutable_head()->set_provider(std::move(provider));
  return e;
}

tg::v1::InvokeEvent ChunkEvent(std::string data) {
  tg::v1::InvokeEvent e;
  e.set_chunk(std::move(data));
  return e;
}

tg::v1::InvokeEvent EndEvent(bool ok, ProviderError::Kind kind, int status, bool retryable,
                             const std::string& message, bool body_started) {
  tg::v1::InvokeEvent e;
  auto* end = e.mutable_end();
  end->set_ok(ok);
  end->set_body_started(body_started);
  if (!ok) {
    end->mutable_error()->set_kind(kind);
    end->mutable_error()->set_http_status(status);
    end->mutable_error()->set_retryable(retryable);
    // Provider bytes may be anything; a protobuf string must be UTF-8.
    end->mutable_error()->set_message(utf8::Sanitize(message));
  }
  return e;
}

tg::v1::InvokeEvent UsageEvent(const translate::Usage& u, const std::string& model) {
  tg::v1::InvokeEvent e;
  auto* p = e.mutable_usage();
  p->set_input_tokens(u.prompt_tokens);
  p->set_output_tokens(u.completion_tokens);
  p->set_total_tokens(u.total_tokens);
  p->set_cached_tokens(u.cached_tokens);
  p->set_reasoning_tokens(u.reasoning_tokens);
  p->set_model(model);
  return e;
}

ProviderError::Kind KindOf(translate::ErrorKind k) {
  switch (k) {
    case translate::ErrorKind::kProtocol:
      return ProviderError::KIND_PROTOCOL;
    case translate::ErrorKind::kStreamBroken:
      return ProviderError::KIND_STREAM_BROKEN;
    default:
      return ProviderError::KIND_HTTP;
  }
}

// Forwards the HTTP client's callbacks to the invocation, keeping it alive
// for as long as the transfer may call.
class HttpSink final : public http::HttpStreamHandler {
 public:
  explicit HttpSink(std::shared_ptr<Invocation> inv) : inv_(std::move(inv)) {}
  void OnHead(const http::HttpResponseHead& head) override { inv_->OnHttpHead(head); }
  void OnBody(std::string_view chunk) override { inv_->OnHttpBody(chunk); }
  void OnDone(const http::HttpResult& result) override { inv_->OnHttpDone(result); }

 private:
  std::shared_ptr<Invocation> inv_;
};

}  // namespace

Invocation::Invocation(tg::v1::InvokeRequest request, std::shared_ptr<const ResolvedTarget> target,
                       http::HttpClient& client, EntraTokenSource* entra, WorkerPool& workers,
                       InvocationOptions options, EventSink* sink,
                       const std::optional<trace::TraceContext>& trace_parent)
    : req_(std::move(request)),
      target_(std::move(target)),
      client_(client),
      entra_(entra),
      workers_(workers),
      options_(options),
      passthrough_(req_.client_format() == tg::v1::CLIENT_FORMAT_PASSTHROUGH ||
                   (target_ != nullptr && target_->passthrough)),
      sink_(sink) {
  AdapterMetrics::Get().in_flight.Add(1);
  span_ = trace::Span::Start("tg.v1.ProviderAdapterService/Invoke", trace::SpanKind::kServer,
                             trace_parent);
  if (span_.recording()) {
    span_.SetAttribute("rpc.system", "grpc");
    span_.SetAttribute("tg.request_id", req_.request_id());
    if (!req_.upstream_id().empty()) span_.SetAttribute("tg.upstream_id", req_.upstream_id());
    span_.SetAttribute("tg.target_id", req_.target_id());
    if (target_ == nullptr) {
      // Refused at Start.
    } else if (!passthrough_) {
      span_.SetAttribute("gen_ai.system", target_->gen_ai_system);
      if (!req_.effective_model().empty()) {
        span_.SetAttribute("gen_ai.request.model", req_.effective_model());
      }
    } else {
      span_.SetAttribute("server.address", target_->target.host());
    }
  }
}

Invocation::~Invocation() { AdapterMetrics::Get().in_flight.Add(-1); }

std::string Invocation::ProviderLabel() const {
  if (passthrough_) return "passthrough";
  return target_ != nullptr ? target_->provider_label : "unknown";
}

translate::ResponseContext Invocation::Context() const {
  translate::ResponseContext ctx;
  ctx.model = target_info_.model;
  ctx.created = std::chrono::duration_cast<std::chrono::seconds>(
                    std::chrono::system_clock::now().time_since_epoch())
                    .count();
  ctx.id_seed = req_.request_id();
  return ctx;
}

void Invocation::Start() {
  if (target_ == nullptr) {
    // This replica's configuration has no such target (deleted meanwhile, or
    // the config this replica holds is older than the caller's, past the
    // wait): another replica or target may serve the call.
    return FailBeforeBody(
        502, ProviderError::KIND_CONNECT, true, "api_error",
        "target \"" + req_.target_id() + "\" is not in this tg-adapter's configuration");
  }
  if (passthrough_) {
    StartPassthrough();
  } else {
    StartProvider();
  }
}

void Invocation::StartPassthrough() {
  const tg::v1::Target& t = target_->target;
  // Scheme, host, port and path are set apart (CURLU): the client's path
  // stays a path on the configured host, whatever it holds ('@', '..').
  translate::UrlParts parts;
  parts.scheme = t.protocol();
  if (parts.scheme.empty()) parts.scheme = t.has_port() && t.port() == 80 ? "http" : "https";
  std::string error;
  auto hp = egress::ParseHost(t.host(), &error);
  if (!hp) {
    return FailBeforeBody(502, ProviderError::KIND_CONNECT, false, "configuration_error",
                          "target host " + error);
  }
  parts.host = hp->host;
  parts.port = hp->port != 0 ? hp->port : (t.has_port() ? t.port() : 0);
  std::string path = req_.path().empty() ? "/" : req_.path();
  if (!t.path().empty()) {
    // The target's path replaces the client's (its query stays).
    auto q = path.find('?');
    path = t.path() + (q == std::string::npos ? "" : path.substr(q));
  }
  parts.path = std::move(path);
  auto url = translate::BuildUrl(parts);
  if (!url.ok()) {
    return FailBeforeBody(502, ProviderError::KIND_CONNECT, false, url.error().type,
                          url.error().message);
  }

  http::HttpRequest hr;
  hr.method = req_.method().empty() ? "POST" : req_.method();
  hr.url = std::move(url.value());
  hr.body = req_.body();
  hr.timeouts = Timeouts();
  for (const auto& [k, v] : req_.client_headers()) {
    if (!http_headers::IsHopByHop(k)) hr.headers.emplace_back(k, v);
  }
  for (const auto& [k, v] : t.headers()) hr.headers.emplace_back(k, v);
  translate::HttpRequestSpec spec;
  spec.auth = target_->credentials.api_key().empty() ? translate::AuthScheme::kNone
                                                     : translate::AuthScheme::kBearer;
  error.clear();
  ApplyAuth(spec, target_->credentials, "", &hr, &error);
  Send(std::move(hr));
}

void Invocation::StartEmbeddings() {
  // Errors in OpenAI's shape: embeddings are OpenAI's API.
  client_codec_ = &translate::ClientCodecFor(translate::ClientFormat::kOpenAiChat);
  auto decoded = translate::DecodeEmbeddingsRequest(req_.body());
  if (!decoded.ok()) {
    const auto& e = decoded.error();
    return FailBeforeBody(400, ProviderError::KIND_HTTP, false, e.type, e.message);
  }
  embeddings_ = std::make_unique<translate::EmbeddingsRequest>(std::move(decoded.value()));
  target_info_ = target_->info;
  target_info_.model = req_.effective_model().empty() ? embeddings_->model : req_.effective_model();
  target_info_.stream = false;
  // The chat codec reads the provider's error answers: the shapes are the same.
  provider_codec_ = target_->codec;
  if (provider_codec_ == nullptr) return FailUnknownProvider();
  SendSpec(translate::BuildEmbeddingsCall(*embeddings_, target_info_));
}

void Invocation::StartProvider() {
  if (req_.client_format() == tg::v1::CLIENT_FORMAT_OPENAI_EMBEDDINGS) return StartEmbeddings();
  client_codec_ = &translate::ClientCodecFor(ToTranslate(req_.client_format()));
  auto chat = client_codec_->DecodeRequest(req_.body());
  if (!chat.ok()) {
    const auto& e = chat.error();
    return FailBeforeBody(400, ProviderError::KIND_HTTP, false, e.type, e.message);
  }
  client_stream_ = chat.value().stream || req_.stream();
  include_usage_ = chat.value().include_usage;
  resumable_ = req_.resumable() && client_stream_;
  if (req_.has_resume()) {
    if (!client_stream_) {
      return FailBeforeBody(400, ProviderError::KIND_HTTP, false, "invalid_request_error",
                            "only a stream can be resumed");
    }
    translate::StreamEncoderOptions eo;
    eo.include_usage = include_usage_;
    encoder_ = client_codec_->NewStreamEncoder(eo);
    if (!encoder_->RestoreState(req_.resume().encoder_state())) {
      return FailBeforeBody(400, ProviderError::KIND_HTTP, false, "invalid_request_error",
                            "the stream to resume is not one of this client format");
    }
    // The text so far becomes the answer's beginning: an assistant message
    // last, which the provider continues. Providers refuse a prefill that
    // ends in whitespace (Anthropic does), so that is left out, and the
    // continuation's own leading whitespace dropped: the client has it.
    const std::string& text = req_.resume().text();
    const size_t keep = text.find_last_not_of(" \t\r\n");
    const std::string_view prefill =
        keep == std::string::npos ? std::string_view() : std::string_view(text).substr(0, keep + 1);
    skip_leading_space_ = prefill.size() != text.size();
    if (!prefill.empty()) {
      auto& doc = chat.value().doc;
      auto& a = doc.GetAllocator();
      translate::json::Value* messages = translate::json::FindMutable(doc, "messages");
      if (messages == nullptr || !messages->IsArray()) {
        return FailBeforeBody(400, ProviderError::KIND_HTTP, false, "invalid_request_error",
                              "a request without messages cannot be resumed");
      }
      translate::json::Value message(rapidjson::kObjectType);
      message.AddMember("role", "assistant", a);
      message.AddMember("content", translate::json::Str(prefill, a), a);
      messages->PushBack(message, a);
    }
    progress_text_ = text;
  }
  can_resume_ = resumable_;

  target_info_ = target_->info;
  target_info_.model = req_.effective_model().empty() ? chat.value().model : req_.effective_model();
  target_info_.stream = client_stream_;

  provider_codec_ = target_->codec;
  if (provider_codec_ == nullptr) return FailUnknownProvider();
  SendSpec(provider_codec_->BuildRequest(chat.value(), target_info_));
}

void Invocation::FailUnknownProvider() {
  FailBeforeBody(400, ProviderError::KIND_HTTP, false, "invalid_request_error",
                 "unknown provider \"" + target_->target.provider() + "\"");
}

void Invocation::SendSpec(translate::Result<translate::HttpRequestSpec> spec) {
  if (!spec.ok()) {
    const auto& e = spec.error();
    return FailBeforeBody(e.http_status ? e.http_status : 400, ProviderError::KIND_HTTP,
                          e.retryable, e.type, e.message);
  }
  spec_ = std::move(spec.value());
  auto build_and_send = [self = shared_from_this()](const std::string& entra_token) {
    http::HttpRequest hr;
    hr.method = self->spec_.method;
    hr.url = self->spec_.url;
    hr.headers = self->spec_.headers;
    hr.body = self->spec_.body;
    hr.timeouts = self->Timeouts();
    std::string error;
    if (!ApplyAuth(self->spec_, self->target_->credentials, entra_token, &hr, &error)) {
      return self->FailBeforeBody(500, ProviderError::KIND_HTTP, false, "configuration_error",
                                  error);
    }
    self->Send(std::move(hr));
  };
  if (spec_.auth == translate::AuthScheme::kAzureEntraToken) {
    if (entra_ == nullptr) {
      return FailBeforeBody(500, ProviderError::KIND_HTTP, false, "configuration_error",
                            "managed identity is not configured on this adapter");
    }
    // A token miss is a blocking fetch from IMDS: never on a gRPC thread.
    workers_.Post([self = shared_from_this(), build_and_send] {
      std::string error;
      auto token = self->entra_->Get(&error);
      if (!token) {
        return self->FailBeforeBody(502, ProviderError::KIND_CONNECT, true, "api_error", error);
      }
      build_and_send(*token);
    });
    return;
  }
  build_and_send("");
}

void Invocation::Send(http::HttpRequest request) {
  {
    std::lock_guard lock(mu_);
    if (cancelled_) return;
  }
  // GenAI conventions: "{operation} {model}"; a plain proxy call is named
  // after its method.
  const char* operation = embeddings_ ? "embeddings" : "chat";
  provider_span_ =
      trace::Span::Start(passthrough_ ? request.method : operation + (" " + target_info_.model),
                         trace::SpanKind::kClient, span_.context());
  if (provider_span_.recording()) {
    provider_span_.SetAttribute("http.request.method", request.method);
    provider_span_.SetAttribute("server.address", target_->target.host());
    if (!passthrough_) {
      provider_span_.SetAttribute("gen_ai.operation.name", operation);
      provider_span_.SetAttribute("gen_ai.system", target_->gen_ai_system);
      provider_span_.SetAttribute("gen_ai.request.model", target_info_.model);
    }
  }
  // The provider (or host) continues the trace; a client's own traceparent
  // was replaced by the edge's and never reaches it.
  for (auto it = request.headers.begin(); it != request.headers.end();) {
    if (http_headers::NameEquals(it->first, "traceparent")) {
      it = request.headers.erase(it);
    } else {
      ++it;
    }
  }
  request.headers.emplace_back("traceparent", trace::FormatTraceparent(provider_span_.context()));
  provider_started_ = std::chrono::steady_clock::now();
  auto transfer = client_.Start(std::move(request), std::make_shared<HttpSink>(shared_from_this()));
  bool cancel = false;
  {
    std::lock_guard lock(mu_);
    transfer_ = transfer;
    cancel = cancelled_ || too_large_;
  }
  if (cancel) transfer->Cancel();
}

// ---------------------------------------------------------------- HTTP side

void Invocation::OnHttpHead(const http::HttpResponseHead& head) {
  status_ = head.status;
  if (embeddings_) {
    // Bedrock's InvokeModel reports the prompt's tokens in a header (Cohere
    // models say nothing in the body).
    const std::string tokens = head.Header("x-amzn-bedrock-input-token-count");
    char* end = nullptr;
    const long long n = tokens.empty() ? -1 : std::strtoll(tokens.c_str(), &end, 10);
    if (end != nullptr && *end == '\0' && n >= 0) header_tokens_ = n;
  }
  if (status_ == 429 || status_ >= 500) {
    // The names the edge's retry policy reads (edge/retry_policy.h), kept in
    // this spelling; values bounded.
    static constexpr std::string_view kRetryHeaders[] = {
        "retry-after", "retry-after-ms", "x-ratelimit-reset-requests", "x-ratelimit-reset-tokens"};
    for (const auto& [name, value] : head.headers) {
      for (std::string_view wanted : kRetryHeaders) {
        if (http_headers::NameEquals(name, wanted) && value.size() <= 64) {
          retry_headers_.emplace_back(std::string(wanted), utf8::Sanitize(value));
        }
      }
    }
  }
  target_->Ttfb().Observe(
      std::chrono::duration<double>(std::chrono::steady_clock::now() - provider_started_).count());
  provider_span_.SetAttribute("http.response.status_code", static_cast<int64_t>(status_));
  if (!passthrough_ && !(status_ >= 200 && status_ < 300 && client_stream_)) {
    // A whole answer is buffered: one that announces more than the adapter
    // holds is refused before its first byte. (An error body is read only up
    // to max_error_body, whatever it announces: OnHttpChunk.)
    const std::string length = head.Header("content-length");
    char* end = nullptr;
    const unsigned long long announced = std::strtoull(length.c_str(), &end, 10);
    if (status_ < 400 && !length.empty() && end != nullptr && *end == '\0' &&
        announced > options_.max_buffered_body) {
      return RefuseTooLarge();
    }
  }
  if (passthrough_) {
    auto e =
        HeadEvent(status_, utf8::Sanitize(head.Header("content-type")), target_->target.host());
    for (const auto& [k, v] : head.headers) {
      if (http_headers::IsHopByHop(k)) continue;
      (*e.mutable_head()->mutable_headers())[utf8::Sanitize(k)] = utf8::Sanitize(v);
    }
    Emit({std::move(e)}, false);
    return;
  }
  if (status_ >= 200 && status_ < 300 && client_stream_) {
    streaming_answer_ = true;
    auto ctx = Context();
    decoder_ = provider_codec_->NewStreamDecoder(ctx);
    translate::StreamEncoderOptions eo;
    eo.include_usage = include_usage_;
    eo.id = "chatcmpl-" + req_.request_id();
    eo.model = target_info_.model;
    eo.created = ctx.created;
    if (!encoder_) encoder_ = client_codec_->NewStreamEncoder(eo);  // a resumed one exists
    if (spec_.framing == translate::BodyFraming::kAwsEventStream) {
      eventstream_ = std::make_unique<aws::EventStreamDecoder>();
    }
    stream_head_ = HeadEvent(200, "text/event-stream", std::string(provider_codec_->name()));
  }
}

http::HttpTimeouts Invocation::Timeouts() const {
  http::HttpTimeouts t = options_.timeouts;
  const tg::v1::Timeouts& rule = req_.timeouts();
  using std::chrono::milliseconds;
  if (rule.has_connect_ms()) t.connect = milliseconds(rule.connect_ms());
  // The head comes before the first token: it must not take longer.
  if (rule.has_first_token_ms()) t.first_byte = milliseconds(rule.first_token_ms());
  if (rule.has_idle_ms()) t.idle = milliseconds(rule.idle_ms());
  if (rule.has_total_ms()) t.total = milliseconds(rule.total_ms());
  return t;
}

void Invocation::TranslateStreamEvents(translate::StreamEvents& events,
                                       std::vector<tg::v1::InvokeEvent>* out) {
  if (const int skipped = decoder_->skipped_events(); skipped > skipped_events_seen_) {
    target_->SkippedEvents().Inc(skipped - skipped_events_seen_);
    log::Warn("malformed provider stream event skipped", {{"target_id", req_.target_id()},
                                                          {"provider", ProviderLabel()},
                                                          {"skipped", std::to_string(skipped)}});
    skipped_events_seen_ = skipped;
  }
  std::string bytes;
  bool token = false;
  for (auto& ev : events) {
    using Type = translate::StreamEvent::Type;
    if (ev.type == Type::kUsage) {
      if (req_.has_resume()) {
        // A resumed answer's usage is that of every attempt it took.
        const auto& p = req_.resume().usage();
        ev.usage.prompt_tokens += p.input_tokens();
        ev.usage.completion_tokens += p.output_tokens();
        ev.usage.total_tokens += p.total_tokens();
        ev.usage.cached_tokens += p.cached_tokens();
        ev.usage.reasoning_tokens += p.reasoning_tokens();
      }
      usage_ = ev.usage;
    }
    if (ev.type == Type::kStart) start_usage_ = ev.usage;
    if (ev.type == Type::kError) {
      stream_error_ = ev.error;
      if (resumable_ && (body_started_ || !bytes.empty())) {
        // The caller may resume this stream elsewhere: the error event is
        // set apart (End.error_event), and the state before it kept.
        if (can_resume_) saved_state_ = encoder_->SaveState();
        encoder_->Encode(ev, &error_event_);
        continue;
      }
    }
    if (skip_leading_space_ && ev.type == Type::kDelta) {
      if (!ev.content.empty()) {
        const size_t first = ev.content.find_first_not_of(" \t\r\n");
        ev.content.erase(0, first == std::string::npos ? ev.content.size() : first);
      }
      if (!ev.content.empty() || !ev.refusal.empty() || !ev.tool_calls.empty()) {
        skip_leading_space_ = false;
      }
    }
    if (can_resume_) TrackProgress(ev);
    // The first token: content, a refusal or a tool call (a role-only delta
    // is not one), or the end of an answer that had none.
    if ((ev.type == Type::kDelta &&
         (!ev.content.empty() || !ev.refusal.empty() || !ev.tool_calls.empty())) ||
        ev.type == Type::kEnd) {
      token = true;
    }
    encoder_->Encode(ev, &bytes);
  }
  events.clear();
  if (!bytes.empty()) {
    body_started_ = true;
    if (stream_head_) {
      out->push_back(std::move(*stream_head_));
      stream_head_.reset();
    }
    out->push_back(ChunkEvent(std::move(bytes)));
    if (token && !first_token_sent_) {
      first_token_sent_ = true;
      out->back().set_first_token(true);
    }
  }
}

void Invocation::TrackProgress(translate::StreamEvent& ev) {
  if (ev.type != translate::StreamEvent::Type::kDelta) return;
  // Only plain text can be handed to another provider as a prefill: a
  // second choice, a refusal, a tool call or a finished answer cannot.
  if (ev.choice != 0 || !ev.refusal.empty() || !ev.tool_calls.empty() ||
      !ev.finish_reason.empty() ||
      progress_text_.size() + ev.content.size() > options_.max_buffered_body) {
    can_resume_ = false;
    progress_text_.clear();
    progress_text_.shrink_to_fit();
    return;
  }
  progress_text_.append(ev.content);
}

translate::Usage Invocation::PriorUsage() const {
  if (usage_) return *usage_;  // already the sum (TranslateStreamEvents)
  translate::Usage u = start_usage_;
  if (req_.has_resume()) {
    const auto& p = req_.resume().usage();
    u.prompt_tokens += p.input_tokens();
    u.completion_tokens += p.output_tokens();
    u.total_tokens += p.total_tokens();
    u.cached_tokens += p.cached_tokens();
    u.reasoning_tokens += p.reasoning_tokens();
  }
  return u;
}

void Invocation::AttachProgress(tg::v1::InvokeEvent* end_event) {
  if (error_event_.empty()) return;
  auto* end = end_event->mutable_end();
  end->set_error_event(std::move(error_event_));
  error_event_.clear();
  if (!can_resume_ || !saved_state_) return;
  auto* p = end->mutable_progress();
  p->set_text(utf8::Sanitize(progress_text_));
  p->set_encoder_state(std::move(*saved_state_));
  const translate::Usage u = PriorUsage();
  p->mutable_usage()->set_input_tokens(u.prompt_tokens);
  p->mutable_usage()->set_output_tokens(u.completion_tokens);
  p->mutable_usage()->set_total_tokens(u.total_tokens);
  p->mutable_usage()->set_cached_tokens(u.cached_tokens);
  p->mutable_usage()->set_reasoning_tokens(u.reasoning_tokens);
}

void Invocation::OnHttpBody(std::string_view chunk) {
  // Bytes before an HTTP head are not an answer (the HTTP client refuses
  // them too): nothing of theirs may reach the client.
  if (status_ == 0) return;
  if (passthrough_) {
    if (status_ < 400) body_started_ = true;
    auto e = ChunkEvent(std::string(chunk));
    if (!first_token_sent_) {
      first_token_sent_ = true;
      e.set_first_token(true);
    }
    Emit({std::move(e)}, false);
    return;
  }
  if (streaming_answer_) {
    if (stream_ended_) return;  // the transfer is being cancelled
    translate::StreamEvents events;
    if (eventstream_) {
      std::vector<aws::EventMessage> messages;
      auto err = eventstream_->Feed(chunk, &messages);
      for (const auto& m : messages) decoder_->FeedEvent(m.type(), m.payload, &events);
      if (err != aws::EventStreamError::kNone && !decoder_->done()) {
        translate::StreamEvent broken;
        broken.type = translate::StreamEvent::Type::kError;
        broken.error =
            translate::AdapterError{translate::ErrorKind::kStreamBroken, 502, true, "bad_response",
                                    "eventstream: " + eventstream_->error_message()};
        events.push_back(std::move(broken));
      }
    } else {
      decoder_->Feed(chunk, &events);
    }
    std::vector<tg::v1::InvokeEvent> out;
    TranslateStreamEvents(events, &out);
    if (stream_error_) {
      // The stream failed (a parser refused its input, or the provider
      // reported an error): the client gets the end now and the provider's
      // transfer is cancelled, not read on to its end.
      StopReading();
      EndStream(std::move(out));
      return;
    }
    if (!out.empty()) Emit(std::move(out), false);
    return;
  }
  if (too_large_) return;
  if (status_ >= 400 && buffered_.size() + chunk.size() > options_.max_error_body) {
    // An error body is for a message: its beginning says it.
    buffered_.append(chunk.substr(0, options_.max_error_body - buffered_.size()));
    StopReading();
    return;
  }
  if (buffered_.size() + chunk.size() > options_.max_buffered_body) return RefuseTooLarge();
  buffered_.append(chunk);
}

void Invocation::RefuseTooLarge() {
  buffered_.clear();
  buffered_.shrink_to_fit();
  std::shared_ptr<http::HttpTransfer> t;
  {
    std::lock_guard lock(mu_);
    too_large_ = true;  // under mu_: Send cancels a transfer it had not stored yet
    t = transfer_;
  }
  if (t) t->Cancel();  // nothing more is read; OnHttpDone answers
}

void Invocation::FailTooLarge() {
  // Not retryable: another target would be asked (and billed) for the same
  // answer, which would be just as large.
  FailBeforeBody(502, ProviderError::KIND_TOO_LARGE, false, "api_error",
                 "provider answer too large (the gateway accepts at most " +
                     std::to_string(options_.max_buffered_body / limits::kMiB) + " MiB)");
}

void Invocation::OnHttpDone(const http::HttpResult& transfer_result) {
  bool cancelled;
  {
    std::lock_guard lock(mu_);
    cancelled = cancelled_;
  }
  // A transfer we stopped ourselves (StopReading) ended as we wanted: what
  // was read is the answer.
  const http::HttpResult result =
      stopped_reading_ && !cancelled ? http::HttpResult{} : transfer_result;
  target_->Duration().Observe(
      std::chrono::duration<double>(std::chrono::steady_clock::now() - provider_started_).count());
  if (!result.ok()) {
    provider_span_.SetError(http::HttpErrorKindName(result.error));
  } else if (status_ >= 400) {
    provider_span_.SetError("HTTP " + std::to_string(status_));
  }
  provider_span_.End();
  if (stream_ended_) return;
  if (cancelled || result.error == http::HttpErrorKind::kCancelled) {
    if (too_large_) return FailTooLarge();
    Emit({EndEvent(false, ProviderError::KIND_CANCELLED, 499, false, "cancelled", body_started_)},
         true);
    return;
  }
  if (!result.ok()) {
    ProviderError::Kind kind = ProviderError::KIND_PROTOCOL;
    int status = 502;
    if (result.error == http::HttpErrorKind::kConnect) kind = ProviderError::KIND_CONNECT;
    if (result.error == http::HttpErrorKind::kRefused) {
      kind = ProviderError::KIND_CONNECT;
      // The class of the refused address is for the operator, not the client.
      log::Warn("provider call refused by the egress policy",
                {{"target_id", req_.target_id()}, {"detail", result.message}});
    }
    if (result.error == http::HttpErrorKind::kTimeout) {
      kind = ProviderError::KIND_TIMEOUT;
      status = 504;
    }
    std::string message = "provider " + std::string(http::HttpErrorKindName(result.error));
    if (result.error == http::HttpErrorKind::kTimeout) {
      message += " (" + std::string(http::TimeoutPhaseName(result.timeout)) + ")";
    }
    if (streaming_answer_ && body_started_) {
      // Broken midway: the client's format gets an explicit error event.
      translate::StreamEvents events(1);
      events[0].type = translate::StreamEvent::Type::kError;
      events[0].error = translate::AdapterError{translate::ErrorKind::kStreamBroken, status, true,
                                                "api_error", message};
      std::vector<tg::v1::InvokeEvent> out;
      TranslateStreamEvents(events, &out);
      out.push_back(EndEvent(false, kind, status, true, message, true));
      AttachProgress(&out.back());
      Emit(std::move(out), true);
      return;
    }
    if (passthrough_ && result.head_received) {
      Emit({EndEvent(false, kind, status, true, message, body_started_)}, true);
      return;
    }
    return FailBeforeBody(status, kind, true, "api_error", message);
  }

  if (passthrough_) {
    bool ok = status_ < 400;
    Emit({EndEvent(ok, ProviderError::KIND_HTTP, status_, translate::IsRetryableStatus(status_),
                   ok ? "" : "upstream answered " + std::to_string(status_), ok)},
         true);
    return;
  }

  if (streaming_answer_) {
    translate::StreamEvents events;
    if (eventstream_ && !eventstream_->AtBoundary() && !decoder_->done()) {
      translate::StreamEvent broken;
      broken.type = translate::StreamEvent::Type::kError;
      broken.error = translate::AdapterError{translate::ErrorKind::kStreamBroken, 502, true,
                                             "bad_response", "eventstream truncated mid-frame"};
      events.push_back(std::move(broken));
    } else {
      decoder_->Finish(&events);
    }
    std::vector<tg::v1::InvokeEvent> out;
    TranslateStreamEvents(events, &out);
    EndStream(std::move(out));
    return;
  }

  if (status_ < 100) {
    buffered_.clear();
    return FailBeforeBody(502, ProviderError::KIND_PROTOCOL, true, "bad_response",
                          "provider answered without an HTTP response head");
  }
  if (embeddings_ && status_ >= 200 && status_ <= 299) {
    auto answer =
        translate::ParseEmbeddingsAnswer(target_info_, *embeddings_, buffered_, header_tokens_);
    buffered_.clear();
    if (!answer.ok()) {
      const auto& e = answer.error();
      return FailBeforeBody(e.http_status ? e.http_status : 502, KindOf(e.kind), e.retryable,
                            e.type, e.message);
    }
    if (answer.value().body.size() > options_.max_buffered_body) return FailTooLarge();
    std::vector<tg::v1::InvokeEvent> out;
    out.push_back(HeadEvent(200, "application/json", std::string(provider_codec_->name())));
    out.push_back(ChunkEvent(std::move(answer.value().body)));
    out.back().set_first_token(true);
    if (answer.value().prompt_tokens >= 0) {
      translate::Usage usage;
      usage.prompt_tokens = answer.value().prompt_tokens;
      usage.total_tokens = answer.value().prompt_tokens;
      out.push_back(UsageEvent(usage, target_info_.model));
    }
    out.push_back(EndEvent(true, ProviderError::KIND_UNSPECIFIED, 200, false, "", true));
    Emit(std::move(out), true);
    return;
  }
  auto parsed = provider_codec_->ParseResponse(status_, buffered_, Context());
  buffered_.clear();
  if (!parsed.ok()) {
    const auto& e = parsed.error();
    context_length_ = e.context_length;
    return FailBeforeBody(e.http_status ? e.http_status : 502, KindOf(e.kind), e.retryable, e.type,
                          e.message);
  }
  std::string answer = client_codec_->EncodeResponse(parsed.value());
  if (answer.size() > options_.max_buffered_body) return FailTooLarge();
  std::vector<tg::v1::InvokeEvent> out;
  out.push_back(HeadEvent(200, "application/json", std::string(provider_codec_->name())));
  out.push_back(ChunkEvent(std::move(answer)));
  out.back().set_first_token(true);  // a whole answer: all of it at once
  if (parsed.value().has_usage) out.push_back(UsageEvent(parsed.value().usage, target_info_.model));
  out.push_back(EndEvent(true, ProviderError::KIND_UNSPECIFIED, 200, false, "", true));
  Emit(std::move(out), true);
}

void Invocation::EndStream(std::vector<tg::v1::InvokeEvent> out) {
  stream_ended_ = true;
  if (stream_head_) out.insert(out.begin(), std::move(*stream_head_));  // a stream without a byte
  stream_head_.reset();
  if (usage_) out.push_back(UsageEvent(*usage_, target_info_.model));
  if (stream_error_) {
    const auto& e = *stream_error_;
    out.push_back(EndEvent(false, KindOf(e.kind), e.http_status, e.retryable, e.message, true));
    AttachProgress(&out.back());
  } else {
    out.push_back(EndEvent(true, ProviderError::KIND_UNSPECIFIED, 200, false, "", true));
  }
  Emit(std::move(out), true);
}

void Invocation::StopReading() {
  if (stopped_reading_) return;
  stopped_reading_ = true;
  std::shared_ptr<http::HttpTransfer> t;
  {
    std::lock_guard lock(mu_);
    t = transfer_;
  }
  if (t) t->Cancel();
}

std::vector<tg::v1::InvokeEvent> Invocation::FailureAnswer(int status, ProviderError::Kind kind,
                                                           bool retryable, const std::string& type,
                                                           const std::string& message) {
  std::vector<tg::v1::InvokeEvent> out;
  std::string body;
  if (client_codec_ != nullptr && !passthrough_) {
    translate::AdapterError e{translate::ErrorKind::kHttp, status, retryable, utf8::Sanitize(type),
                              utf8::Sanitize(message)};
    body = client_codec_->EncodeError(e);
  } else {
    body = R"({"error":)";
    json::AppendQuoted(body, message);
    body += "}";
  }
  std::string provider;
  if (target_ != nullptr)
    provider = passthrough_ ? target_->target.host() : target_->target.provider();
  out.push_back(HeadEvent(status, "application/json", std::move(provider)));
  // When to try again, as the provider said it: the edge's retry policy
  // reads these, and clients (SDKs honour Retry-After) get them too.
  for (const auto& [name, value] : retry_headers_) {
    (*out.back().mutable_head()->mutable_headers())[name] = value;
  }
  out.push_back(ChunkEvent(std::move(body)));
  out.push_back(EndEvent(false, kind, status, retryable, message, false));
  if (context_length_) out.back().mutable_end()->mutable_error()->set_context_length_exceeded(true);
  return out;
}

void Invocation::FailBeforeBody(int status, ProviderError::Kind kind, bool retryable,
                                const std::string& type, const std::string& message) {
  if (client_codec_ == nullptr && !passthrough_) {
    client_codec_ = &translate::ClientCodecFor(ToTranslate(req_.client_format()));
  }
  Emit(FailureAnswer(status, kind, retryable, type, message), true);
}

// ---------------------------------------------------------------- gRPC side

void Invocation::Observe(const std::vector<tg::v1::InvokeEvent>& last_events) {
  if (observed_) return;
  observed_ = true;
  const tg::v1::InvokeEvent::End* end = nullptr;
  const tg::v1::Usage* usage = nullptr;
  int status = 0;
  for (const auto& e : last_events) {
    if (e.has_head()) status = e.head().status();
    if (e.has_usage()) usage = &e.usage();
    if (e.has_end()) end = &e.end();
  }
  if (status == 0) status = status_ > 0 ? status_ : 200;
  if (end != nullptr && !end->ok() && end->error().http_status() > 0) {
    status = end->error().http_status();
  }
  auto& m = AdapterMetrics::Get();
  const std::string provider = ProviderLabel();
  m.requests.With({provider, std::to_string(status)}).Inc();
  if (usage != nullptr) {
    const std::string& model = usage->model();
    m.tokens.With({provider, model, "input"}).Inc(static_cast<double>(usage->input_tokens()));
    m.tokens.With({provider, model, "output"}).Inc(static_cast<double>(usage->output_tokens()));
  }
  if (!span_.recording()) return;
  span_.SetAttribute("http.response.status_code", static_cast<int64_t>(status));
  if (usage != nullptr) {
    span_.SetAttribute("gen_ai.usage.input_tokens", usage->input_tokens());
    span_.SetAttribute("gen_ai.usage.output_tokens", usage->output_tokens());
  }
  if (end != nullptr && !end->ok()) {
    span_.SetAttribute("tg.outcome", tg::v1::ProviderError::Kind_Name(end->error().kind()));
    span_.SetAttribute("tg.retryable", end->error().retryable());
    // The kind and status only: a provider's message may quote the request.
    span_.SetError(tg::v1::ProviderError::Kind_Name(end->error().kind()) + " " +
                   std::to_string(status));
  } else {
    span_.SetAttribute("tg.outcome", "ok");
    span_.SetOk();
  }
  span_.End();
}

void Invocation::Emit(std::vector<tg::v1::InvokeEvent> events, bool last) {
  std::shared_ptr<http::HttpTransfer> pause;
  std::unique_lock lock(mu_);
  if (finished_ || last_queued_) return;
  if (last) Observe(events);
  for (auto& e : events) {
    if (e.has_chunk()) queued_bytes_ += e.chunk().size();
    queue_.push_back(std::move(e));
  }
  if (last) last_queued_ = true;
  if (!paused_ && !last && queued_bytes_ > options_.pause_above_bytes && transfer_) {
    paused_ = true;
    pause = transfer_;
  }
  PumpLocked(lock);
  lock.unlock();
  if (pause) pause->Pause();
}

namespace {

// The parts of an event in adapter.proto's order: head, chunk, usage, end.
int FirstPart(const tg::v1::InvokeEvent& e) {
  if (e.has_head()) return 0;
  if (e.has_chunk()) return 1;
  if (e.has_usage()) return 2;
  return e.has_end() ? 3 : 4;
}

int LastPart(const tg::v1::InvokeEvent& e) {
  if (e.has_end()) return 3;
  if (e.has_usage()) return 2;
  if (e.has_chunk()) return 1;
  return e.has_head() ? 0 : -1;
}

// Merged messages stay below this much body (a single larger chunk is sent
// as it is).
constexpr size_t kMaxMergedChunk = 64 * 1024;

// Appends `next` to `into` when the parts stay in order (adjacent chunks
// join): what the caller reads is unchanged, in fewer messages.
bool MergeInto(tg::v1::InvokeEvent& into, tg::v1::InvokeEvent& next) {
  const int last = LastPart(into);
  const int first = FirstPart(next);
  const bool join_chunks = first == 1 && last == 1;
  if (!(first > last || join_chunks)) return false;
  if (join_chunks && into.chunk().size() + next.chunk().size() > kMaxMergedChunk) return false;
  if (next.has_head()) *into.mutable_head() = std::move(*next.mutable_head());
  if (next.has_chunk()) {
    if (into.has_chunk()) {
      into.mutable_chunk()->append(next.chunk());
    } else {
      into.set_chunk(std::move(*next.mutable_chunk()));
    }
  }
  if (next.has_usage()) *into.mutable_usage() = std::move(*next.mutable_usage());
  if (next.has_end()) *into.mutable_end() = std::move(*next.mutable_end());
  if (next.first_token()) into.set_first_token(true);
  return true;
}

}  // namespace

void Invocation::PumpLocked(std::unique_lock<std::mutex>& lock) {
  if (writing_ || finished_ || sink_ == nullptr) return;
  if (queue_.empty()) {
    if (!last_queued_) return;
    finished_ = true;
    EventSink* sink = sink_;
    lock.unlock();
    sink->FinishStream(grpc::Status::OK);
    lock.lock();
    return;
  }
  // Everything queued goes out in as few messages as the order allows: a
  // whole answer is one message, and a stream that outpaces the caller
  // sends its waiting chunks together.
  writing_event_ = std::move(queue_.front());
  queue_.pop_front();
  while (!queue_.empty() && MergeInto(writing_event_, queue_.front())) queue_.pop_front();
  EventSink* sink = sink_;
  if (queue_.empty() && last_queued_) {
    finished_ = true;
    lock.unlock();
    sink->WriteLastEvent(&writing_event_, grpc::Status::OK);
    lock.lock();
    return;
  }
  writing_ = true;
  lock.unlock();
  sink->WriteEvent(&writing_event_);
  lock.lock();
}

void Invocation::OnWriteDone(bool ok) {
  std::shared_ptr<http::HttpTransfer> resume, cancel;
  std::unique_lock lock(mu_);
  writing_ = false;
  if (writing_event_.has_chunk())
    queued_bytes_ -= std::min(queued_bytes_, writing_event_.chunk().size());
  if (!ok) {
    // The caller is gone: stop the provider and end the RPC.
    cancelled_ = true;
    cancel = transfer_;
    if (!finished_ && sink_ != nullptr) {
      finished_ = true;
      EventSink* sink = sink_;
      lock.unlock();
      sink->FinishStream(grpc::Status::CANCELLED);
      lock.lock();
    }
  } else {
    if (paused_ && queued_bytes_ < options_.resume_below_bytes && transfer_) {
      paused_ = false;
      resume = transfer_;
    }
    PumpLocked(lock);
  }
  lock.unlock();
  if (resume) resume->Resume();
  if (cancel) cancel->Cancel();
}

void Invocation::OnCancel() {
  std::shared_ptr<http::HttpTransfer> cancel;
  std::unique_lock lock(mu_);
  cancelled_ = true;
  cancel = transfer_;
  if (!writing_ && !finished_ && sink_ != nullptr) {
    finished_ = true;
    EventSink* sink = sink_;
    lock.unlock();
    sink->FinishStream(grpc::Status::CANCELLED);
  } else {
    lock.unlock();
  }
  if (cancel) cancel->Cancel();
}

void Invocation::Detach() {
  std::shared_ptr<http::HttpTransfer> cancel;
  {
    std::lock_guard lock(mu_);
    if (!observed_) {
      observed_ = true;
      span_.SetAttribute("tg.outcome", "cancelled");
      span_.SetError("cancelled by the caller");
      span_.End();
    }
    sink_ = nullptr;
    finished_ = true;
    if (!last_queued_) cancel = transfer_;
  }
  if (cancel) cancel->Cancel();
}

}  // namespace tg::adapter
