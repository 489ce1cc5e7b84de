// Size: one proxied request's state machine (attempts, failover, rescue, streaming).
#include "tg/edge/proxy_handler.h"

#include <grpcpp/alarm.h>
#include <rapidjson/document.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <map>
#include <optional>
#include <random>
#include <span>
#include <thread>
#include <utility>
#include <vector>

#include "tg/balancer/health_policy.h"
#include "tg/common/bounded_json.h"
#include "tg/common/client_error.h"
#include "tg/common/crypto.h"
#include "tg/common/http_headers.h"
#include "tg/common/input_limits.h"
#include "tg/common/json_util.h"
#include "tg/common/log.h"
#include "tg/common/telemetry.h"
#include "tg/common/trace.h"
#include "tg/common/utf8.h"
#include "tg/edge/attempt_verdict.h"
#include "tg/edge/model_catalog.h"
#include "tg/edge/proxy_metrics.h"
#include "tg/edge/proxy_routing.h"
#include "tg/edge/retry_policy.h"
#include "tg/edge/token_estimate.h"

namespace tg::edge {
namespace {

using std::chrono::steady_clock;

// The gateway's own credentials: never forwarded upstream.
bool IsGatewayKeyHeader(std::string_view name) {
  using http_headers::NameEquals;
  return NameEquals(name, "x-tg-api-key") || NameEquals(name, "x-api-key") ||
         NameEquals(name, "authorization");
}

// x-ratelimit-*: a provider's quota headers.
bool IsRateLimitHeader(std::string_view name) {
  constexpr std::string_view kPrefix = "x-ratelimit-";
  return name.size() > kPrefix.size() &&
         http_headers::NameEquals(name.substr(0, kPrefix.size()), kPrefix);
}

// How long a provider's answer says its quota is spent: x-ratelimit-remaining-
// requests or -tokens at 0, until the matching x-ratelimit-reset-*.
std::optional<milliseconds> ProviderQuotaSpent(
    const google::protobuf::Map<std::string, std::string>& headers) {
  std::optional<milliseconds> spent;
  for (std::string_view kind : {"requests", "tokens"}) {
    std::string remaining;
    std::string reset;
    for (const auto& [name, value] : headers) {
      if (http_headers::NameEquals(name, "x-ratelimit-remaining-" + std::string(kind)))
        remaining = value;
      if (http_headers::NameEquals(name, "x-ratelimit-reset-" + std::string(kind))) reset = value;
    }
    if (remaining != "0") continue;
    if (auto d = ParseResetDuration(reset); d && (!spent || *d > *spent)) spent = d;
  }
  return spent;
}

// The client's trace context: the gateway's own spans continue it, and the
// provider gets the adapter's span as its parent, not the client's.
bool IsTraceHeader(std::string_view name) {
  return http_headers::NameEquals(name, "traceparent") ||
         http_headers::NameEquals(name, "tracestate");
}

// The first part of the request that is not valid UTF-8 ("header User-Agent",
// "request path"), or "". Names are tokens (ASCII), so naming one is safe.
std::string InvalidUtf8Part(const HttpRequest& r) {
  if (!utf8::IsValid(r.path)) return "request path";
  if (!utf8::IsValid(r.query)) return "request query";
  for (const auto& [name, value] : r.headers) {
    if (!utf8::IsValid(value)) return "header " + utf8::Sanitize(name);
  }
  return {};
}

double SecondsSince(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

// Per-thread randomness for retry jitter (never shared across threads).
std::mt19937_64& ThreadRandom() {
  thread_local std::mt19937_64 rng(std::random_device{}());
  return rng;
}

// A bounded label for why an attempt was abandoned.
std::string FailoverReason(const tg::v1::ProviderError& e) {
  switch (e.kind()) {
    case tg::v1::ProviderError::KIND_CONNECT:
      return "connect";
    case tg::v1::ProviderError::KIND_TIMEOUT:
      return "timeout";
    case tg::v1::ProviderError::KIND_PROTOCOL:
      return "protocol";
    case tg::v1::ProviderError::KIND_TOO_LARGE:
      return "too_large";
    default:
      return e.http_status() > 0 ? std::to_string(e.http_status()) : "error";
  }
}

// An error the gateway itself answers, in the shape the client's SDK parses.
// `code`: OpenAI's error.code (model_not_found), which Anthropic's shape
// has no place for. A 503 says when to come back: the service behind it is
// unreachable for now.
HttpResponse ClientError(tg::v1::ClientFormat format, int status, std::string_view message,
                         std::string_view code = "") {
  HttpResponse r = JsonResponse(status, format == tg::v1::CLIENT_FORMAT_ANTHROPIC_MESSAGES
                                            ? client_error::AnthropicBody(status, message)
                                            : client_error::OpenAiBody(status, message, code));
  if (status == 503) r.headers.emplace_back("Retry-After", "1");
  return r;
}

tg::v1::Outcome OutcomeOf(const tg::v1::ProviderError& e) {
  switch (e.kind()) {
    case tg::v1::ProviderError::KIND_CONNECT:
      return tg::v1::OUTCOME_CONNECT_ERROR;
    case tg::v1::ProviderError::KIND_TIMEOUT:
      return tg::v1::OUTCOME_TIMEOUT;
    case tg::v1::ProviderError::KIND_CANCELLED:
      return tg::v1::OUTCOME_CANCELLED;
    // The target answered; the answer was too large for the gateway.
    case tg::v1::ProviderError::KIND_TOO_LARGE:
      return tg::v1::OUTCOME_CANCELLED;
    default:
      return tg::v1::OUTCOME_HTTP_STATUS;
  }
}

}  // namespace

// ---------------------------------------------------------------- the call

class ProxyHandler::Call : public std::enable_shared_from_this<Call> {
 public:
  Call(ProxyHandler* h, HttpRequest r, HttpResponder respond)
      : h_(h),
        req_(std::move(r)),
        respond_(std::move(respond)),
        format_(ClientFormatOf(req_.path)),
        request_id_(crypto::HexEncode(crypto::RandomBytes(8))),
        started_(steady_clock::now()) {
    h_->CallStarted();
    ProxyMetrics::Get().in_flight.Add(1);
    span_ = trace::Span::Start(req_.method, trace::SpanKind::kServer,
                               trace::ParseTraceparent(req_.Header("traceparent")));
    if (span_.recording()) {
      span_.SetAttribute("http.request.method", req_.method);
      span_.SetAttribute("url.path", req_.path);  // never the query: it may hold a key
      span_.SetAttribute("tg.request_id", request_id_);
    }
  }
  ~Call() {
    Finished();
    ProxyMetrics::Get().in_flight.Add(-1);
    h_->CallEnded();
  }

  void Start();
  void Cancel();

  // From InvokeStream (one gRPC thread at a time per stream).
  void OnEvent(const tg::v1::InvokeEvent& e);
  void OnInvokeDone(const grpc::Status& status);
  size_t PendingBytes();

 private:
  void Answer(HttpResponse r);
  void Fail(int status, std::string_view message, std::string_view code = "") {
    Answer(ClientError(format_, status, message, code));
  }
  void OnKey(const std::optional<KeyCache::Verified>& v, const grpc::Status& status);
  // The gateway's and the rule's rate limits (RateLimits::Admit): true when
  // the request was refused (a 429 went out).
  bool RefusedByLimits(const tg::v1::Rule& rule);
  // The gateway's budget (and each key's): true when it is spent for this
  // period (a 429 went out).
  bool RefusedByBudget();
  // What the answer cost, into the spend ledger and the metrics (Finished).
  void RecordSpend();
  // Whether a picked target must be passed over for now: its own quota is
  // spent, or its provider asked for a pause (*wait: how long).
  bool TargetAtLimit(const tg::v1::Target& target, milliseconds* wait);
  int64_t PromptEstimate();
  // The limits' settlement with the answer's usage (Finished).
  void SettleLimits();
  // GET …/models[/{id}] under a rule whose upstream has provider targets:
  // answered from the snapshot (model_catalog). False: route it as usual.
  bool AnswerModels(const std::string& gateway_id);
  void PickNext();
  void RetryLater(milliseconds wait);

  void ArmFirstTokenLocked();     // this attempt's first-token deadline; mu_ held
  void DisarmFirstTokenLocked();  // mu_ held
 public:
  void OnFirstTokenDeadline(int attempt);  // from the FirstTokenWatch thread
 private:
  // No target was picked: the last failure, or why not.
  void OnPickRefused(int status, const std::string& why, std::string_view code = "");
  void Invoke(const tg::v1::Target& target, const std::string& model);
  void Commit();
  // A committed stream broke, or a continuation of it failed: continue it on
  // another target that takes a prefill, or end it. mu_ held; returns with
  // it released.
  void RescueOrEnd(std::unique_lock<std::mutex>& lock);
  // Ends a broken stream with the first break's error event. mu_ held.
  void EndBrokenLocked();
  void ReportOutcome(tg::v1::Outcome outcome, int http_status);
  void AnswerHeld();
  HttpResponse HeadResponse() const;
  std::string SelectedProvider() const;
  // The call is over (all references gone): metrics, span, access log.
  void Finished();

  ProxyHandler* const h_;
  HttpRequest req_;
  HttpResponder respond_;
  const tg::v1::ClientFormat format_;
  const std::string request_id_;
  const steady_clock::time_point started_;

  // Observability: the request's server span (continuing a client's
  // traceparent), the current attempt's Invoke span, and what the access
  // log and metrics report when the call is over.
  trace::Span span_;
  trace::Span attempt_span_;
  std::string gateway_id_;
  std::string rule_id_;
  int answered_status_ = 0;
  int64_t tokens_in_ = -1;
  int64_t tokens_out_ = -1;

  // Rate limits: what this request took (settled in Finished), the output
  // counted from a stream in case its usage never arrives, the targets
  // whose own token quota an attempt took from (and how much).
  std::string key_id_;
  Admission admission_;
  std::optional<OutputTokenCounter> out_counter_;  // under mu_
  int64_t prompt_estimate_ = -1;
  std::vector<std::pair<const tg::v1::Target*, int64_t>> target_takes_;
  bool quota_skipped_ = false;  // a target was passed over for its quota
  milliseconds quota_wait_{0};  // the soonest such target is free again

  std::shared_ptr<const ConfigSnapshot> snap_;
  const tg::v1::Service* service_ = nullptr;  // valid while snap_ is held
  std::string upstream_id_;
  std::string forward_path_;
  std::string model_;
  bool stream_ = false;
  int attempts_ = 0;
  std::vector<std::string> tried_;
  // The matched rule's retry policy; same-target retries spent on the
  // current target; the target the next Pick should prefer (a retry), and
  // the alarm that waits before it.
  RetrySettings retry_;
  int same_target_done_ = 0;
  std::string prefer_target_;
  // gRPC may run an alarm's callback inside Set, Cancel or its destructor,
  // on the calling thread; the callback takes mu_, so none of the three is
  // ever done with mu_ held: the alarm is shared, copied under the lock and
  // cancelled (or dropped) after it.
  std::shared_ptr<grpc::Alarm> retry_alarm_;
  // Effective models whose context the prompt exceeded: never picked again.
  std::vector<std::string> excluded_models_;
  // The rule's timeouts (sent to the adapter) and the edge's own deadline
  // for an attempt's first token (first_token_ms + a second, so that the
  // adapter's own timeout normally answers first): a stuck adapter or a
  // provider that never starts cannot hold the request longer.
  // The matched rule's timeouts, when it has any; valid while snap_ is held.
  const tg::v1::Timeouts* timeouts_ = nullptr;
  milliseconds first_token_deadline_{61000};
  // Why the last attempt failed when it left no answer to pass on (the adapter
  // unreachable): what a retry that finds no target left answers.
  int failed_status_ = 0;
  std::string failed_message_;

  // The current attempt. Written by the gRPC thread of its stream; the
  // cancellation (io thread) only reads invoke_ and sets cancelled_.
  std::mutex mu_;
  bool cancelled_ = false;
  std::shared_ptr<InvokeStream> invoke_;
  LocalPicker::Choice choice_;  // the current attempt's pick (upstream services)
  tg::v1::Target target_;
  steady_clock::time_point attempt_started_;
  std::optional<tg::v1::ResponseHead> head_;
  bool got_event_ = false;         // this attempt received an event (the adapter had the request)
  std::vector<std::string> held_;  // body held back while failover is possible
  size_t held_bytes_ = 0;
  std::optional<tg::v1::InvokeEvent::End> end_;
  bool committed_ = false;
  std::shared_ptr<HttpBodyStream> body_;
  bool first_token_ = false;         // this attempt delivered its first token (or its end)
  bool attempt_timed_out_ = false;   // the first-token alarm cancelled this attempt
  uint64_t first_token_ticket_ = 0;  // this attempt's entry in the FirstTokenWatch; 0: none

  // Mid-stream rescue. rescuable_: the request is a provider stream and its
  // upstream has a target with assistant_prefill (the adapter then reports
  // how far a broken stream got). Once a committed stream breaks,
  // resuming_: each further attempt continues it from progress_ on a
  // prefill target; its chunks are held until its first token
  // (resume_started_), so a continuation that fails before one leaves no
  // trace in the client's stream. broken_event_ (the first break's error
  // event) ends the stream if no continuation succeeds: the client learns the
  // original cause, never a continuation's.
  bool rescuable_ = false;
  bool resuming_ = false;
  bool resume_started_ = false;
  std::optional<tg::v1::StreamProgress> progress_;
  std::string broken_event_;
  std::string broken_provider_;  // who broke it (metrics)
};

// ---------------------------------------------------------------- the stream

// One Invoke: reads events into the call, pausing while the client's socket
// has more than the high-water mark unsent.
class ProxyHandler::InvokeStream : public grpc::ClientReadReactor<tg::v1::InvokeEvent> {
 public:
  InvokeStream(std::shared_ptr<Call> call, size_t high_water)
      : call_(std::move(call)), high_water_(high_water) {}

  void Begin(tg::v1::ProviderAdapterService::Stub* stub, tg::v1::InvokeRequest request,
             std::chrono::milliseconds deadline, const trace::TraceContext& trace,
             std::shared_ptr<InvokeStream> self) {
    self_ = std::move(self);
    request_ = std::move(request);
    context_.set_deadline(std::chrono::system_clock::now() + deadline);
    trace::Inject(trace, &context_);
    stub->async()->Invoke(&context_, &request_, this);
    StartRead(&event_);
    StartCall();
  }

  void Cancel() { context_.TryCancel(); }

  // A piece was written to the client: read on if we were waiting for room.
  void OnDrained() {
    bool resume = false;
    {
      std::lock_guard lock(mu_);
      if (paused_ && !done_ && call_->PendingBytes() <= high_water_) {
        paused_ = false;
        resume = true;
      }
    }
    if (resume) StartRead(&event_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) return;  // the stream is over; OnDone follows
    call_->OnEvent(event_);
    event_.Clear();
    bool go;
    {
      std::lock_guard lock(mu_);
      go = call_->PendingBytes() <= high_water_;
      paused_ = !go;
    }
    if (go) StartRead(&event_);
  }

  void OnDone(const grpc::Status& status) override {
    {
      std::lock_guard lock(mu_);
      done_ = true;
    }
    call_->OnInvokeDone(status);
    call_.reset();
    auto self = std::move(self_);  // may destroy this: nothing after
  }

 private:
  std::shared_ptr<Call> call_;
  const size_t high_water_;
  grpc::ClientContext context_;
  tg::v1::InvokeRequest request_;
  tg::v1::InvokeEvent event_;
  std::shared_ptr<InvokeStream> self_;
  std::mutex mu_;
  bool paused_ = false;
  bool done_ = false;
};

// ---------------------------------------------------------------- call steps

void ProxyHandler::Call::Answer(HttpResponse r) {
  answered_status_ = r.status;
  r.headers.emplace_back("X-Request-Id", request_id_);
  respond_(std::move(r));
}

void ProxyHandler::Call::Start() {
  // What goes into protobuf string fields (the key, forwarded headers, the
  // path) must be UTF-8: refused here, not later as a failed RPC.
  if (std::string bad = InvalidUtf8Part(req_); !bad.empty()) {
    return Fail(400, bad + " is not valid UTF-8");
  }
  auto key = ExtractApiKey(req_);
  if (key.empty())
    return Fail(401, "missing API key (X-TG-API-Key, X-Api-Key or Authorization: Bearer)");
  auto self = shared_from_this();
  // Weak: the responder belongs to this call, a strong reference would be a cycle.
  std::weak_ptr<Call> weak = self;
  respond_.OnCancel([weak] {
    if (auto call = weak.lock()) call->Cancel();
  });
  h_->keys_->Verify(
      key,
      [self](std::optional<KeyCache::Verified> v, grpc::Status status) { self->OnKey(v, status); },
      span_.context());
}

void ProxyHandler::Call::Cancel() {
  std::shared_ptr<InvokeStream> invoke;
  std::shared_ptr<grpc::Alarm> retry;
  {
    std::lock_guard lock(mu_);
    cancelled_ = true;
    invoke = invoke_;
    retry = retry_alarm_;
    DisarmFirstTokenLocked();
  }
  if (retry) retry->Cancel();  // its callback then does nothing
  if (invoke) invoke->Cancel();
}

void ProxyHandler::Call::OnKey(const std::optional<KeyCache::Verified>& v,
                               const grpc::Status& status) {
  if (status.error_code() == grpc::StatusCode::UNAVAILABLE) {
    return Fail(503, "key service unavailable, retry later");
  }
  if (!v) return Fail(401, "invalid API key");
  snap_ = h_->config_->snapshot();
  const std::string subdomain = SubdomainOf(req_.Header("Host"), h_->options_.base_domain);
  if (!subdomain.empty()) {
    const tg::v1::Gateway* host_gateway = snap_->FindGatewayBySubdomain(subdomain);
    if (host_gateway == nullptr) return Fail(404, "unknown gateway");
    if (host_gateway->id() != v->gateway_id) return Fail(401, "API key not valid for this gateway");
  }
  if (snap_->FindGateway(v->gateway_id) == nullptr) return Fail(401, "invalid API key");
  gateway_id_ = v->gateway_id;
  key_id_ = v->key_id;
  span_.SetAttribute("tg.gateway_id", gateway_id_);

  if (req_.method == "GET" && AnswerModels(v->gateway_id)) return;
  if (RefusedByBudget()) return;
  RouteMatch m = MatchRule(*snap_, v->gateway_id, req_.method, req_.path);
  if (m.result == RouteMatch::Result::kWrongMethod) {
    HttpResponse r = ClientError(format_, 405, "method not allowed");
    r.headers.emplace_back("Allow", m.allow);
    return Answer(std::move(r));
  }
  if (m.result != RouteMatch::Result::kMatched) return Fail(404, "no route for " + req_.path);
  service_ = m.service;
  rule_id_ = m.rule->id();
  retry_ = ResolveRetry(*m.rule, h_->options_.max_attempts);
  timeouts_ = m.rule->has_timeouts() ? &m.rule->timeouts() : nullptr;
  if (timeouts_ != nullptr && timeouts_->has_first_token_ms()) {
    first_token_deadline_ = milliseconds(timeouts_->first_token_ms()) + milliseconds(1000);
  }
  if (span_.recording()) {
    span_.SetName(req_.method + " " + m.rule->path());  // low cardinality: the rule's path
    span_.SetAttribute("http.route", m.rule->path());
    span_.SetAttribute("tg.rule_id", rule_id_);
    span_.SetAttribute("tg.service_id", service_->id());
    if (!service_->upstream_id().empty())
      span_.SetAttribute("tg.upstream_id", service_->upstream_id());
  }
  forward_path_ = ForwardPath(*m.rule, req_.path);

  if (service_->type() == "endpoint") {
    // A plain reverse proxy to the service's own host: no pick, one attempt.
    tg::v1::Target t;
    t.set_id(service_->id());
    t.set_host(service_->host());
    if (service_->has_port()) t.set_port(service_->port());
    t.set_protocol(service_->protocol());
    t.set_path(service_->path());
    *t.mutable_headers() = service_->headers();
    attempts_ = 1;
    retry_.max_attempts = 1;  // no failover for a single host
    if (RefusedByLimits(*m.rule)) return;
    return Invoke(t, "");
  }

  upstream_id_ = service_->upstream_id();
  if (format_ != tg::v1::CLIENT_FORMAT_UNSPECIFIED) {
    // One pass, no document: the whole body is checked (syntax, depth,
    // UTF-8), only what routing needs is kept. tg-adapter parses it for real.
    json::RoutingFields fields;
    json::ParseResult parsed = json::ScanRoutingFields(req_.body, &fields);
    if (!parsed.ok() && parsed.failure != json::ParseFailure::kSyntax) {
      return Fail(400, "request body refused: " + parsed.message);
    }
    if (!parsed.ok() || !fields.object) return Fail(400, "request body must be a JSON object");
    if (fields.model) model_ = std::move(*fields.model);
    if (fields.stream) stream_ = *fields.stream;
    if (!model_.empty()) span_.SetAttribute("gen_ai.request.model", model_);
  }
  if (RefusedByLimits(*m.rule)) return;
  if (stream_) {
    if (const tg::v1::Upstream* u = snap_->FindUpstream(upstream_id_)) {
      for (const auto& t : u->targets()) rescuable_ = rescuable_ || t.assistant_prefill();
    }
  }
  PickNext();
}

bool ProxyHandler::Call::AnswerModels(const std::string& gateway_id) {
  auto models = ParseModelsPath(req_.path);
  if (!models) return false;
  // The rule that serves this path for any method: the chat rules are
  // usually POST only, and their models are what a client may ask for.
  RouteMatch m = MatchRule(*snap_, gateway_id, "", req_.path);
  if (m.result != RouteMatch::Result::kMatched || m.service->type() != "upstream") return false;
  const tg::v1::Upstream* upstream = snap_->FindUpstream(m.service->upstream_id());
  if (upstream == nullptr || !HasProviderTargets(*upstream)) return false;
  rule_id_ = m.rule->id();
  if (span_.recording()) {
    span_.SetName(req_.method + " " + m.rule->path());
    span_.SetAttribute("http.route", m.rule->path());
    span_.SetAttribute("tg.rule_id", rule_id_);
    span_.SetAttribute("tg.upstream_id", upstream->id());
  }
  const bool anthropic = !req_.Header("anthropic-version").empty();
  Answer(ModelsAnswer(ModelsOf(*upstream), *models, anthropic, upstream->created_at().seconds()));
  return true;
}

void ProxyHandler::Call::PickNext() {
  bool resuming;
  {
    std::lock_guard lock(mu_);  // the first-token alarm reads it under mu_
    ++attempts_;
    resuming = resuming_;
  }
  // Local pick (lookaside balancing): the snapshot's targets, tg-balancer's
  // verdicts, the request's exclusions. No RPC.
  LocalPicker::Choice choice;
  auto u = snap_->upstreams().find(upstream_id_);
  if (u == snap_->upstreams().end()) return OnPickRefused(503, "upstream not available");
  for (;;) {
    std::array<std::string_view, balancer::PickPlan::kInlineExcluded> inline_tried;
    std::vector<std::string_view> many_tried;
    std::span<const std::string_view> tried;
    if (tried_.size() <= inline_tried.size()) {
      std::copy(tried_.begin(), tried_.end(), inline_tried.begin());
      tried = std::span(inline_tried.data(), tried_.size());
    } else {
      many_tried.assign(tried_.begin(), tried_.end());
      tried = many_tried;
    }
    std::vector<std::string_view> excluded_models(excluded_models_.begin(), excluded_models_.end());
    choice = h_->picker_.Pick(
        u->second, snap_->revision(),
        balancer::PickQuery{model_, tried, 0, prefer_target_, excluded_models, resuming});
    milliseconds wait{0};
    if (!choice.ok() || !TargetAtLimit(choice.target(), &wait)) break;
    // At its quota: passed over as if tried, with no attempt spent and
    // nothing reported (the choice goes back neutral).
    if (!quota_skipped_ || wait < quota_wait_) quota_wait_ = wait;
    quota_skipped_ = true;
    span_.AddEvent("target_at_limit", {{"tg.target_id", choice.target().id()},
                                       {"tg.wait_ms", std::to_string(wait.count())}});
    tried_.push_back(choice.target().id());
    choice = LocalPicker::Choice();
  }
  prefer_target_.clear();
  if (span_.recording()) {
    if (choice.ok()) {
      span_.AddEvent("pick", {{"tg.attempt", std::to_string(attempts_)},
                              {"tg.target_id", choice.target().id()},
                              {"tg.degraded", choice.degraded() ? "true" : "false"},
                              {"tg.trial", choice.trial() ? "true" : "false"}});
    } else {
      span_.AddEvent("pick", {{"tg.attempt", std::to_string(attempts_)}, {"tg.target_id", ""}});
    }
  }
  if (!choice.ok()) {
    if (quota_skipped_ && choice.status() == balancer::PickStatus::kAllExcluded) {
      return OnPickRefused(429,
                           "every target of upstream " + upstream_id_ +
                               " is at its rate limit; retry after " +
                               std::to_string((quota_wait_.count() + 999) / 1000) + " s",
                           "rate_limit_exceeded");
    }
    if (choice.status() == balancer::PickStatus::kNoEligibleTarget && !model_.empty()) {
      // What OpenAI answers for a model it does not have, and what SDKs and
      // retry logic understand: not worth retrying.
      return OnPickRefused(404,
                           "The model '" + model_ + "' does not exist (no target of upstream " +
                               upstream_id_ + " serves it; GET …/models lists those that do)",
                           "model_not_found");
    }
    return OnPickRefused(
        400, choice.status() == balancer::PickStatus::kAllExcluded
                 ? "every eligible target of upstream " + upstream_id_ + " was already tried"
                 : "upstream " + upstream_id_ + " has no target");
  }
  if (choice.trial()) {
    log::Info("trial request for an ejected target",
              {{"upstream_id", upstream_id_}, {"target_id", choice.target().id()}});
  }
  choice_ = std::move(choice);
  tried_.push_back(choice_.target().id());
  Invoke(choice_.target(), choice_.effective_model());
}

// A same-target retry's wait is a grpc::Alarm (rare: only after a failure).
// Its callback holds the call and runs exactly once (fired or cancelled); it
// takes its alarm out of retry_alarm_, if still there, so that no call keeps
// a spent alarm (and, through it, itself) alive. An alarm whose callback ran
// before it could be stored (a zero wait) is never stored. Set, Cancel and
// the last reference are never done under mu_ (gRPC may run the callback
// inline there).
void ProxyHandler::Call::RetryLater(milliseconds wait) {
  {
    std::lock_guard lock(mu_);
    if (cancelled_) return;
    // The target that just failed goes back in: not excluded, preferred.
    if (!tried_.empty() && tried_.back() == target_.id()) tried_.pop_back();
    prefer_target_ = target_.id();
  }
  auto alarm = std::make_shared<grpc::Alarm>();
  auto ran = std::make_shared<bool>(false);  // written and read under mu_
  alarm->Set(std::chrono::system_clock::now() + wait,
             [self = shared_from_this(), me = alarm.get(), ran](bool fired) {
               std::shared_ptr<grpc::Alarm> done;  // dropped after the lock, at the end
               {
                 std::lock_guard lock(self->mu_);
                 *ran = true;
                 if (self->retry_alarm_.get() == me) done = std::move(self->retry_alarm_);
                 if (self->cancelled_) fired = false;
               }
               if (fired) self->PickNext();
             });
  bool cancel_now = false;
  {
    std::lock_guard lock(mu_);
    if (cancelled_) cancel_now = true;
    if (!*ran && !cancelled_) retry_alarm_ = alarm;
  }
  if (cancel_now) alarm->Cancel();
}

void ProxyHandler::Call::OnFirstTokenDeadline(int attempt) {
  std::shared_ptr<InvokeStream> invoke;
  {
    std::lock_guard lock(mu_);
    first_token_ticket_ = 0;  // the watch dropped it
    if (attempts_ != attempt || cancelled_ || first_token_ || (committed_ && !resuming_)) return;
    attempt_timed_out_ = true;
    invoke = invoke_;
  }
  if (invoke) invoke->Cancel();  // OnInvokeDone then fails over or answers 504
}

void ProxyHandler::Call::OnPickRefused(int status, const std::string& why, std::string_view code) {
  {
    std::unique_lock lock(mu_);
    if (cancelled_) return;
    if (committed_) {
      // A broken stream and no target left to continue it.
      EndBrokenLocked();
      return;
    }
  }
  // A later attempt that finds nothing left to try answers the last failure
  // (not "every target was tried", which is no client error).
  if (attempts_ > 1 && head_) return AnswerHeld();
  if (attempts_ > 1 && failed_status_ != 0) return Fail(failed_status_, failed_message_);
  if (status == 429) {
    // Every target at its own quota: come back when the first is free.
    HttpResponse r = ClientError(format_, 429, why, code);
    if (admission_.limited) {
      for (auto& h : admission_.Headers(false)) r.headers.push_back(std::move(h));
    }
    const int64_t ms = std::max<int64_t>(1, quota_wait_.count());
    r.headers.emplace_back("Retry-After", std::to_string((ms + 999) / 1000));
    r.headers.emplace_back("retry-after-ms", std::to_string(ms));
    return Answer(std::move(r));
  }
  return Fail(status, why, code);
}

bool ProxyHandler::Call::RefusedByLimits(const tg::v1::Rule& rule) {
  const tg::v1::Gateway* gateway = snap_->FindGateway(gateway_id_);
  if (!RateLimits::Applies(gateway, &rule)) return false;
  const std::string& ip_header = h_->options_.client_ip_header;
  const std::string ip =
      ClientIp(req_.remote, ip_header.empty() ? std::string_view() : req_.Header(ip_header));
  std::string_view user = req_.Header("x-user-id");
  if (user.empty()) user = req_.Header("x-userid");
  if (user.empty()) user = req_.Header("user-id");
  LimitSubject subject;
  subject.gateway = gateway;
  subject.rule = &rule;
  subject.revision = snap_->revision();
  subject.key_id = key_id_;
  subject.client_ip = ip;
  subject.user_id = user;
  subject.model = model_;
  subject.body = req_.body;
  subject.format = format_;
  admission_ = h_->limits_.Admit(subject);
  if (admission_.admitted) {
    if (!admission_.token_buckets.empty()) {
      prompt_estimate_ = admission_.estimated_tokens;
      if (stream_ && format_ != tg::v1::CLIENT_FORMAT_UNSPECIFIED) {
        std::lock_guard lock(mu_);
        out_counter_.emplace(format_, true);
      }
    }
    return false;
  }
  ProxyMetrics::Get().rate_limited.With({gateway_id_, admission_.limit_type}).Inc();
  span_.AddEvent("rate_limited", {{"tg.limit_type", admission_.limit_type}});
  std::string message = admission_.message;
  if (admission_.can_retry) {
    const int64_t after = admission_.configured_retry_after
                              ? admission_.configured_retry_after->count()
                              : (admission_.retry_after.count() + 999) / 1000;
    message += "; retry after " + std::to_string(std::max<int64_t>(1, after)) + " s";
  }
  HttpResponse r = ClientError(format_, 429, message, "rate_limit_exceeded");
  for (auto& h : admission_.Headers(true)) r.headers.push_back(std::move(h));
  Answer(std::move(r));
  return true;
}

bool ProxyHandler::Call::RefusedByBudget() {
  const tg::v1::Gateway* gateway = snap_->FindGateway(gateway_id_);
  if (gateway == nullptr || !gateway->has_budget()) return false;
  const tg::v1::Budget& budget = gateway->budget();
  if (!budget.has_limit_usd() && !budget.has_per_key_limit_usd()) return false;
  const Period period = PeriodOf(budget.period(), std::chrono::system_clock::now());
  std::string who;
  double limit = 0;
  int64_t spent = 0;
  if (budget.has_limit_usd()) {
    spent = h_->spend_->GatewaySpent(gateway_id_, period.id).usd_micros;
    if (static_cast<double>(spent) >= budget.limit_usd() * 1e6) {
      who = "this gateway";
      limit = budget.limit_usd();
    }
  }
  if (who.empty() && budget.has_per_key_limit_usd()) {
    spent = h_->spend_->KeySpent(gateway_id_, key_id_, period.id).usd_micros;
    if (static_cast<double>(spent) >= budget.per_key_limit_usd() * 1e6) {
      who = "this API key";
      limit = budget.per_key_limit_usd();
    }
  }
  if (who.empty()) return false;
  const auto left =
      std::chrono::ceil<std::chrono::seconds>(period.end - std::chrono::system_clock::now());
  char amount[96];
  std::snprintf(amount, sizeof amount, "$%.2f of its $%.2f", static_cast<double>(spent) / 1e6,
                limit);
  const std::string message = "budget exhausted: " + who + " spent " + amount + " " +
                              (budget.period() == "daily" ? "daily" : "monthly") +
                              " budget; it renews in " + std::to_string(left.count()) + " s";
  ProxyMetrics::Get().rate_limited.With({gateway_id_, "budget"}).Inc();
  span_.AddEvent("budget_exhausted", {{"tg.who", who}});
  // OpenAI's answer for a spent quota: 429 insufficient_quota, which no
  // retry within the SDK's patience fixes.
  HttpResponse r = ClientError(format_, 429, message, "insufficient_quota");
  r.headers.emplace_back("Retry-After", std::to_string(std::max<int64_t>(1, left.count())));
  r.headers.emplace_back("x-should-retry", "false");
  Answer(std::move(r));
  return true;
}

void ProxyHandler::Call::RecordSpend() {
  if (tokens_in_ < 0 && tokens_out_ < 0) return;
  if (gateway_id_.empty() || !snap_) return;
  const tg::v1::Gateway* gateway = snap_->FindGateway(gateway_id_);
  if (gateway == nullptr) return;
  const std::string& model = choice_.effective_model().empty() ? model_ : choice_.effective_model();
  const int64_t in = std::max<int64_t>(0, tokens_in_);
  const int64_t out = std::max<int64_t>(0, tokens_out_);
  int64_t cost = 0;
  if (auto price = PriceOf(*gateway, model)) cost = CostMicros(*price, in, out);
  const std::string period = PeriodOf(gateway->has_budget() ? gateway->budget().period() : "",
                                      std::chrono::system_clock::now())
                                 .id;
  h_->spend_->Add(gateway_id_, key_id_, period, SpendTotals{cost, in, out, 1});
  const std::string provider = target_.id().empty() ? "none" : SelectedProvider();
  const std::string& model_label = model.empty() ? std::string("unknown") : model;
  auto& m = ProxyMetrics::Get();
  m.usage_tokens.With({gateway_id_, key_id_, model_label, provider, "input"})
      .Inc(static_cast<double>(in));
  m.usage_tokens.With({gateway_id_, key_id_, model_label, provider, "output"})
      .Inc(static_cast<double>(out));
  m.cost.With({gateway_id_, key_id_, model_label, provider}).Inc(static_cast<double>(cost) / 1e6);
}

int64_t ProxyHandler::Call::PromptEstimate() {
  if (prompt_estimate_ < 0) {
    prompt_estimate_ = std::max<int64_t>(1, EstimateRequestTokens(req_.body, format_).prompt);
  }
  return prompt_estimate_;
}

bool ProxyHandler::Call::TargetAtLimit(const tg::v1::Target& target, milliseconds* wait) {
  if (h_->limits_.TargetCooling(upstream_id_, target.id(), wait)) return true;
  if (!target.has_requests_per_minute() && !target.has_tokens_per_minute()) return false;
  const int64_t tokens = target.has_tokens_per_minute() ? PromptEstimate() : 0;
  if (auto w = h_->limits_.TakeTarget(upstream_id_, target, tokens)) {
    *wait = *w;
    return true;
  }
  if (target.has_tokens_per_minute()) target_takes_.emplace_back(&target, tokens);
  return false;
}

void ProxyHandler::Call::SettleLimits() {
  if (!admission_.limited && target_takes_.empty()) return;
  // The tokens this request used: the provider's usage, else (a stream cut
  // or broken before its usage) the prompt estimate plus the output counted
  // so far; a request no provider answered used none.
  int64_t actual = 0;
  if (tokens_in_ >= 0 || tokens_out_ >= 0) {
    actual = std::max<int64_t>(0, tokens_in_) + std::max<int64_t>(0, tokens_out_);
  } else if (committed_ || (answered_status_ >= 200 && answered_status_ < 300)) {
    actual = PromptEstimate();
    std::lock_guard lock(mu_);
    if (out_counter_) actual += out_counter_->Finish();
  }
  if (admission_.limited) h_->limits_.Settle(admission_, actual);
  for (size_t i = 0; i < target_takes_.size(); ++i) {
    const auto& [target, taken] = target_takes_[i];
    // Only the last attempt's target served the answer; the others used nothing.
    const bool served = i + 1 == target_takes_.size() && target->id() == target_.id();
    h_->limits_.SettleTarget(upstream_id_, *target, taken, served ? actual : 0);
  }
}

void ProxyHandler::Call::Invoke(const tg::v1::Target& target, const std::string& model) {
  tg::v1::InvokeRequest req;
  req.set_request_id(request_id_);
  req.set_upstream_id(upstream_id_);
  req.set_target_id(target.id());
  req.set_effective_model(model);
  bool passthrough = target.provider().empty();
  if (!passthrough && format_ == tg::v1::CLIENT_FORMAT_UNSPECIFIED) {
    return Fail(404,
                "no such endpoint: provider targets serve POST …/chat/completions, …/messages, "
                "…/responses and …/embeddings, and GET …/models");
  }
  req.set_client_format(passthrough ? tg::v1::CLIENT_FORMAT_PASSTHROUGH : format_);
  req.set_body(req_.body);
  req.set_stream(stream_);
  req.set_method(req_.method);
  req.set_path(req_.query.empty() ? forward_path_ : forward_path_ + "?" + req_.query);
  for (const auto& [name, value] : req_.headers) {
    if (http_headers::IsHopByHop(name) || IsGatewayKeyHeader(name) || IsTraceHeader(name)) continue;
    (*req.mutable_client_headers())[name] = value;
  }
  req.set_min_config_revision(snap_->revision());
  if (timeouts_ != nullptr) *req.mutable_timeouts() = *timeouts_;
  req.set_resumable(rescuable_ && !passthrough);

  auto stream = std::make_shared<InvokeStream>(shared_from_this(), h_->options_.stream_high_water);
  {
    std::lock_guard lock(mu_);
    if (cancelled_) return;
    if (resuming_ && progress_) *req.mutable_resume() = *progress_;
    resume_started_ = false;
    target_ = target;
    if (!committed_) head_.reset();  // a committed stream's head went out
    got_event_ = false;
    held_.clear();
    held_bytes_ = 0;
    end_.reset();
    invoke_ = stream;
    attempt_started_ = steady_clock::now();
    first_token_ = false;
    attempt_timed_out_ = false;
    ArmFirstTokenLocked();
    attempt_span_ = trace::Span::Start("tg.v1.ProviderAdapterService/Invoke",
                                       trace::SpanKind::kClient, span_.context());
    if (attempt_span_.recording()) {
      attempt_span_.SetAttribute("tg.attempt", attempts_);
      attempt_span_.SetAttribute("tg.target_id", target.id());
      if (!target.provider().empty()) {
        attempt_span_.SetAttribute("gen_ai.system", GenAiSystemName(target.provider()));
        if (!model.empty()) attempt_span_.SetAttribute("gen_ai.request.model", model);
      } else {
        attempt_span_.SetAttribute("server.address", target.host());
      }
    }
  }
  stream->Begin(h_->adapter_.get(), std::move(req), h_->options_.invoke_deadline,
                attempt_span_.context(), stream);
}

std::string ProxyHandler::Call::SelectedProvider() const {
  return target_.provider().empty() ? target_.host() : target_.provider();
}

HttpResponse ProxyHandler::Call::HeadResponse() const {
  HttpResponse r;
  r.status = head_ ? head_->status() : 502;
  bool has_type = false;
  if (head_) {
    for (const auto& [name, value] : head_->headers()) {
      if (http_headers::IsHopByHop(name)) continue;
      // The gateway's own limits speak for the quota the client has.
      if (admission_.limited && IsRateLimitHeader(name)) continue;
      if (http_headers::NameEquals(name, "content-type")) has_type = true;
      r.headers.emplace_back(name, value);
    }
    if (!has_type && !head_->content_type().empty()) {
      r.headers.emplace_back("Content-Type", head_->content_type());
    }
  }
  if (admission_.limited) {
    for (auto& h : admission_.Headers(false)) r.headers.push_back(std::move(h));
  }
  r.headers.emplace_back("X-Selected-Provider", SelectedProvider());
  r.headers.emplace_back("X-Request-Id", request_id_);
  return r;
}

size_t ProxyHandler::Call::PendingBytes() {
  std::lock_guard lock(mu_);
  return body_ ? body_->pending_bytes() : 0;
}

void ProxyHandler::Call::Commit() {
  // Called with mu_ held: from here on the answer belongs to this attempt.
  committed_ = true;
  HttpResponse head = HeadResponse();
  answered_status_ = head.status;
  if (stream_) ProxyMetrics::Get().ttfb.With({SelectedProvider()}).Observe(SecondsSince(started_));
  body_ = respond_.Stream(std::move(head));
  if (out_counter_) {
    for (const auto& piece : held_) out_counter_->Feed(piece);
  }
  for (auto& piece : held_) body_->Write(std::move(piece));
  held_.clear();
  held_bytes_ = 0;
}

void ProxyHandler::Call::OnEvent(const tg::v1::InvokeEvent& e) {
  // One event may carry several parts (adapter.proto): head, chunk, usage, end.
  std::lock_guard lock(mu_);
  got_event_ = true;
  if (e.has_head() && !committed_) head_ = e.head();  // a continuation's is not the client's
  if ((e.first_token() || e.has_end()) && !first_token_) {
    first_token_ = true;
    DisarmFirstTokenLocked();
  }
  if (resuming_ && e.first_token()) resume_started_ = true;
  if (e.has_chunk()) {
    if (committed_ && resuming_ && !resume_started_ &&
        held_bytes_ + e.chunk().size() <= limits::kMaxHeldAnswerBytes) {
      // A continuation before its first token: it may still fail quietly.
      held_.push_back(e.chunk());
      held_bytes_ += e.chunk().size();
    } else if (committed_) {
      if (out_counter_) {
        for (const auto& piece : held_) out_counter_->Feed(piece);
        out_counter_->Feed(e.chunk());
      }
      for (auto& piece : held_) body_->Write(std::move(piece));
      held_.clear();
      held_bytes_ = 0;
      std::weak_ptr<InvokeStream> weak = invoke_;
      body_->Write(e.chunk(), [weak](bool ok) {
        if (auto s = weak.lock(); s && ok) s->OnDrained();
      });
    } else {
      held_.push_back(e.chunk());
      held_bytes_ += e.chunk().size();
      // A successful stream is committed at its first token and flows from
      // then on. A whole answer is held until its end (it then goes out with a
      // Content-Length), and so is an error: another target may serve it;
      // but never more than the limit of what the edge holds per request.
      bool streaming = stream_ || target_.provider().empty();
      // A stream is held until its first token (a role-only chunk is not
      // one): until then it may still fail over.
      if (head_ && ((streaming && head_->status() < 400 && first_token_) ||
                    held_bytes_ > limits::kMaxHeldAnswerBytes)) {
        Commit();
      }
    }
  }
  if (e.has_usage()) {
    tokens_in_ = e.usage().input_tokens();
    tokens_out_ = e.usage().output_tokens();
  }
  if (e.has_end()) end_ = e.end();
}

void ProxyHandler::Call::ReportOutcome(tg::v1::Outcome outcome, int http_status) {
  if (upstream_id_.empty() || !choice_.ok()) return;  // endpoint services: no balancer
  // Only what can change health goes to tg-balancer (LocalPicker::Choice::Release).
  if (!choice_.Release(
          balancer::Classify(static_cast<balancer::ReportOutcome>(outcome), http_status))) {
    return;
  }
  tg::v1::ReportRequest report;
  report.set_upstream_id(upstream_id_);
  report.set_target_id(target_.id());
  report.set_outcome(outcome);
  report.set_http_status(http_status);
  auto us =
      std::chrono::duration_cast<std::chrono::microseconds>(steady_clock::now() - attempt_started_)
          .count();
  report.mutable_latency()->set_seconds(us / 1000000);
  report.mutable_latency()->set_nanos(static_cast<int32_t>((us % 1000000) * 1000));
  h_->reports_.Add(std::move(report));
}

void ProxyHandler::Call::AnswerHeld() {
  HttpResponse r = HeadResponse();
  answered_status_ = r.status;
  for (auto& piece : held_) r.body += piece;
  held_.clear();
  respond_(std::move(r));
}

void ProxyHandler::Call::OnInvokeDone(const grpc::Status& status) {
  std::unique_lock lock(mu_);
  invoke_.reset();
  DisarmFirstTokenLocked();  // this attempt's deadline is moot now
  ProxyMetrics::Get().upstream.With({SelectedProvider()}).Observe(SecondsSince(attempt_started_));
  if (attempt_span_.recording()) {
    if (head_) attempt_span_.SetAttribute("http.response.status_code", head_->status());
    if (end_ && end_->ok()) {
      attempt_span_.SetAttribute("tg.outcome", "ok");
      attempt_span_.SetOk();
    } else if (end_) {
      attempt_span_.SetAttribute("tg.outcome", FailoverReason(end_->error()));
      attempt_span_.SetError(FailoverReason(end_->error()));
    } else {
      attempt_span_.SetAttribute("tg.outcome", cancelled_ ? "cancelled" : "adapter");
      attempt_span_.SetError(status.error_message());
    }
  }
  attempt_span_.End();
  if (end_ && end_->ok()) {
    std::optional<milliseconds> spent;
    if (head_ && !upstream_id_.empty()) spent = ProviderQuotaSpent(head_->headers());
    lock.unlock();
    if (spent) h_->limits_.CoolTarget(upstream_id_, target_.id(), *spent);
    ReportOutcome(tg::v1::OUTCOME_SUCCESS, head_ ? head_->status() : 200);
    lock.lock();
    if (committed_) {
      for (auto& piece : held_) body_->Write(std::move(piece));
      held_.clear();
      if (resuming_) {
        ProxyMetrics::Get().rescues.With({gateway_id_, broken_provider_, "resumed"}).Inc();
        span_.AddEvent("rescue_completed", {{"tg.target_id", target_.id()}});
      }
      body_->Finish();
    } else {
      AnswerHeld();
    }
    return;
  }

  if (end_) {
    const auto& err = end_->error();
    // A provider's 429 with a "not before": its target is passed over
    // until then, by this request's failover and by every other request.
    std::optional<milliseconds> provider_pause;
    if (err.http_status() == 429 && head_ && !upstream_id_.empty()) {
      provider_pause = ProviderRetryAfter(head_->headers(), std::chrono::system_clock::now());
    }
    lock.unlock();
    if (provider_pause) h_->limits_.BlockTarget(upstream_id_, target_, *provider_pause);
    ReportOutcome(OutcomeOf(err), err.http_status());
    lock.lock();
    if (committed_) {
      if (!resuming_) {
        // The stream broke after reaching the client. It may be continued
        // where it stopped if the adapter said how far it got and the cause
        // is the provider's (not a refusal of the request).
        broken_event_ = end_->error_event();
        broken_provider_ = SelectedProvider();
        const bool provider_fault =
            err.kind() == tg::v1::ProviderError::KIND_STREAM_BROKEN ||
            err.kind() == tg::v1::ProviderError::KIND_TIMEOUT ||
            err.kind() == tg::v1::ProviderError::KIND_PROTOCOL ||
            (err.kind() == tg::v1::ProviderError::KIND_HTTP && err.retryable());
        if (end_->has_progress() && provider_fault) progress_ = end_->progress();
        // Without a rescue the stream just ends as the adapter wrote it.
        if (!progress_) return EndBrokenLocked();
      } else if (end_->has_progress()) {
        progress_ = end_->progress();  // the continuation got further before it broke
      }
      return RescueOrEnd(lock);
    }
    bool passthrough = target_.provider().empty();
    // A plain reverse proxy returns what the host said; only an absent answer
    // (connect error, timeout) moves on to another host.
    // A prompt over this model's context: no retry of that model helps, but
    // a target with another model (a larger context) may serve it. The
    // provider's 400 is held: it answers if no such target is left.
    if (err.context_length_exceeded() && !end_->body_started() && !cancelled_ &&
        !upstream_id_.empty() && attempts_ < retry_.max_attempts &&
        steady_clock::now() - started_ < retry_.budget) {
      if (!choice_.effective_model().empty()) excluded_models_.push_back(choice_.effective_model());
      ProxyMetrics::Get().failovers.With({gateway_id_, SelectedProvider(), "context_length"}).Inc();
      span_.AddEvent("failover", {{"tg.target_id", target_.id()}, {"tg.reason", "context_length"}});
      lock.unlock();
      log::Info("failing over to another model: prompt over the context",
                {{"request_id", request_id_},
                 {"target", target_.id()},
                 {"model", choice_.effective_model()}});
      PickNext();
      return;
    }
    RetryDecision decision;
    // Nothing reached the client (the edge held it): a stream that broke
    // before its first token may still fail over.
    if (MayFailOver(err, false, passthrough) && !cancelled_ && !upstream_id_.empty()) {
      std::optional<milliseconds> retry_after;
      if (head_)
        retry_after = ProviderRetryAfter(head_->headers(), std::chrono::system_clock::now());
      AttemptState state;
      state.attempts_made = attempts_;
      state.same_target_done = same_target_done_;
      state.elapsed = std::chrono::duration_cast<milliseconds>(steady_clock::now() - started_);
      state.jitter = std::uniform_real_distribution<double>(0.0, 1.0)(ThreadRandom());
      decision = DecideRetry(retry_, err, retry_after, state);
    }
    if (decision.step == NextStep::kSameTarget) {
      ++same_target_done_;
      ProxyMetrics::Get().retries.With({gateway_id_, SelectedProvider(), decision.reason}).Inc();
      span_.AddEvent("retry", {{"tg.target_id", target_.id()},
                               {"tg.reason", decision.reason},
                               {"tg.wait_ms", std::to_string(decision.wait.count())}});
      lock.unlock();
      log::Info("retrying the same target", {{"request_id", request_id_},
                                             {"target", target_.id()},
                                             {"status", std::to_string(err.http_status())},
                                             {"wait_ms", std::to_string(decision.wait.count())},
                                             {"reason", decision.reason}});
      RetryLater(decision.wait);
      return;
    }
    if (decision.step == NextStep::kFailOver) {
      same_target_done_ = 0;
      if (!head_) {
        // What answers if no other target is left (as below when none is).
        head_.emplace();
        head_->set_status(err.kind() == tg::v1::ProviderError::KIND_TIMEOUT ? 504 : 502);
        head_->set_content_type("application/json");
      }
      const std::string reason = FailoverReason(err);
      ProxyMetrics::Get().failovers.With({gateway_id_, SelectedProvider(), reason}).Inc();
      span_.AddEvent("failover", {{"tg.target_id", target_.id()}, {"tg.reason", reason}});
      lock.unlock();
      log::Info("failing over", {{"request_id", request_id_},
                                 {"target", target_.id()},
                                 {"status", std::to_string(err.http_status())}});
      PickNext();
      return;
    }
    if (cancelled_) return;
    if (!head_) {
      head_.emplace();
      head_->set_status(err.kind() == tg::v1::ProviderError::KIND_TIMEOUT ? 504 : 502);
      head_->set_content_type("application/json");
    }
    AnswerHeld();
    return;
  }

  // The first-token deadline cancelled this attempt: a provider that never
  // started, or an adapter that does not answer. Nothing reached the client.
  if (attempt_timed_out_ && !cancelled_ && committed_ && resuming_) {
    lock.unlock();
    ReportOutcome(tg::v1::OUTCOME_TIMEOUT, 0);
    lock.lock();
    return RescueOrEnd(lock);
  }
  if (attempt_timed_out_ && !cancelled_ && !committed_) {
    head_.reset();
    held_.clear();
    held_bytes_ = 0;
    const std::string message =
        "no first token within " + std::to_string(first_token_deadline_.count() - 1000) + " ms";
    lock.unlock();
    ReportOutcome(tg::v1::OUTCOME_TIMEOUT, 0);
    if (attempts_ < retry_.max_attempts && !upstream_id_.empty() &&
        steady_clock::now() - started_ < retry_.budget) {
      ProxyMetrics::Get().failovers.With({gateway_id_, SelectedProvider(), "first_token"}).Inc();
      span_.AddEvent("failover", {{"tg.target_id", target_.id()}, {"tg.reason", "first_token"}});
      log::Info("failing over: no first token",
                {{"request_id", request_id_}, {"target", target_.id()}});
      failed_status_ = 504;
      failed_message_ = message;
      PickNext();
      return;
    }
    return Fail(504, message);
  }

  // No End: the adapter itself failed (unreachable, deadline, a local error)
  // or we cancelled. AttemptVerdict says whether another target may be tried.
  if (cancelled_) {
    if (committed_) body_->Abort();
    lock.unlock();
    ReportOutcome(tg::v1::OUTCOME_CANCELLED, 0);
    return;
  }
  const AttemptVerdict verdict = ClassifyInvokeStatus(status, got_event_);
  if (committed_ && resuming_) {
    // The continuation's adapter failed: another may continue from the same
    // point if this one wrote nothing yet; else the stream ends here.
    lock.unlock();
    ReportOutcome(verdict.outcome, 0);
    lock.lock();
    if (resume_started_) progress_.reset();
    return RescueOrEnd(lock);
  }
  if (committed_) {
    body_->Abort();  // a truncated body must look truncated
    lock.unlock();
    ReportOutcome(verdict.outcome, 0);
    return;
  }
  // Whatever arrived of this attempt is incomplete: never an answer.
  head_.reset();
  held_.clear();
  held_bytes_ = 0;
  lock.unlock();
  ReportOutcome(verdict.outcome, 0);
  if (verdict.fail_over && attempts_ < retry_.max_attempts && !upstream_id_.empty() &&
      steady_clock::now() - started_ < retry_.budget) {
    ProxyMetrics::Get().failovers.With({gateway_id_, SelectedProvider(), verdict.reason}).Inc();
    span_.AddEvent("failover", {{"tg.target_id", target_.id()}, {"tg.reason", verdict.reason}});
    failed_status_ = verdict.http_status;
    failed_message_ = verdict.message;
    PickNext();
    return;
  }
  if (!verdict.fail_over && verdict.reason != "timeout") {
    log::Warn("invoke failed; not failing over",
              {{"request_id", request_id_},
               {"target", target_.id()},
               {"code", std::to_string(static_cast<int>(status.error_code()))},
               {"reason", verdict.reason}});
  }
  Fail(verdict.http_status, verdict.message);
}

void ProxyHandler::Call::RescueOrEnd(std::unique_lock<std::mutex>& lock) {
  held_.clear();  // a failed continuation's unsent bytes
  held_bytes_ = 0;
  const bool go_on = progress_ && !cancelled_ && !upstream_id_.empty() &&
                     attempts_ < retry_.max_attempts &&
                     steady_clock::now() - started_ < retry_.budget;
  if (!go_on) {
    if (!cancelled_) EndBrokenLocked();
    return;
  }
  const bool first = !resuming_;
  resuming_ = true;
  const std::string failed = target_.id();
  const size_t text_bytes = progress_->text().size();
  ProxyMetrics::Get().failovers.With({gateway_id_, SelectedProvider(), "rescue"}).Inc();
  span_.AddEvent(first ? "stream_broken" : "rescue_failed",
                 {{"tg.target_id", failed}, {"tg.text_bytes", std::to_string(text_bytes)}});
  lock.unlock();
  log::Info(first ? "stream broken after its first bytes; continuing it on another target"
                  : "stream continuation failed; trying another target",
            {{"request_id", request_id_},
             {"target", failed},
             {"text_bytes", std::to_string(text_bytes)}});
  PickNext();
}

void ProxyHandler::Call::EndBrokenLocked() {
  if (!body_) return;
  if (resuming_) ProxyMetrics::Get().rescues.With({gateway_id_, broken_provider_, "failed"}).Inc();
  if (!broken_event_.empty()) body_->Write(std::move(broken_event_));
  broken_event_.clear();
  body_->Finish();
}

void ProxyHandler::Call::Finished() {
  SettleLimits();
  RecordSpend();
  const int status = answered_status_ != 0 ? answered_status_ : 499;  // no answer: client left
  const std::string provider = target_.id().empty() ? "none" : SelectedProvider();
  const std::string& gateway = gateway_id_.empty() ? std::string("none") : gateway_id_;
  const double seconds = SecondsSince(started_);
  auto& m = ProxyMetrics::Get();
  m.requests.With({gateway, provider, std::to_string(status)}).Inc();
  m.duration.With({gateway, provider}).Observe(seconds);
  if (tokens_in_ >= 0)
    m.tokens.With({gateway, provider, "input"}).Inc(static_cast<double>(tokens_in_));
  if (tokens_out_ >= 0) {
    m.tokens.With({gateway, provider, "output"}).Inc(static_cast<double>(tokens_out_));
  }

  if (span_.recording()) {
    span_.SetAttribute("http.response.status_code", status);
    span_.SetAttribute("tg.attempts", attempts_);
    if (!target_.id().empty()) {
      span_.SetAttribute("tg.target_id", target_.id());
      if (!target_.provider().empty()) {
        span_.SetAttribute("gen_ai.system", GenAiSystemName(target_.provider()));
      }
      if (!choice_.effective_model().empty()) {
        span_.SetAttribute("gen_ai.response.model", choice_.effective_model());
      }
    }
    if (tokens_in_ >= 0) span_.SetAttribute("gen_ai.usage.input_tokens", tokens_in_);
    if (tokens_out_ >= 0) span_.SetAttribute("gen_ai.usage.output_tokens", tokens_out_);
    if (status >= 500) {
      span_.SetError("HTTP " + std::to_string(status));
    }
  }
  const std::string trace_id = span_.context().TraceIdHex();
  span_.End();

  if (!h_->options_.access_log) return;
  const std::string attempts = std::to_string(attempts_);
  const std::string status_s = std::to_string(status);
  const std::string latency = std::to_string(static_cast<int64_t>(seconds * 1000.0));
  const std::string in = tokens_in_ >= 0 ? std::to_string(tokens_in_) : "";
  const std::string out = tokens_out_ >= 0 ? std::to_string(tokens_out_) : "";
  log::Info("access",
            {{"request_id", request_id_},
             {"trace_id", trace_id},
             {"method", req_.method},
             {"path", req_.path},
             {"gateway", gateway_id_},
             {"rule", rule_id_},
             {"target", target_.id()},
             {"provider", target_.id().empty() ? "" : provider},
             {"model", choice_.effective_model().empty() ? model_ : choice_.effective_model()},
             {"status", status_s},
             {"attempts", attempts},
             {"latency_ms", latency},
             {"tokens_in", in},
             {"tokens_out", out}});
}

// ---------------------------------------------------------------- handler

// ---------------------------------------------------------------- first-token deadlines

class ProxyHandler::FirstTokenWatch {
 public:
  FirstTokenWatch() : thread_([this] { Run(); }) {}
  ~FirstTokenWatch() {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

  uint64_t Arm(steady_clock::time_point deadline, std::weak_ptr<Call> call, int attempt) {
    std::lock_guard lock(mu_);
    const uint64_t ticket = next_++;
    entries_.emplace(ticket, Entry{deadline, std::move(call), attempt});
    return ticket;
  }
  void Disarm(uint64_t ticket) {
    std::lock_guard lock(mu_);
    entries_.erase(ticket);
  }

 private:
  struct Entry {
    steady_clock::time_point deadline;
    std::weak_ptr<Call> call;  // never keeps a call alive
    int attempt;
  };

  void Run() {
    std::unique_lock lock(mu_);
    while (!stop_) {
      cv_.wait_for(lock, std::chrono::milliseconds(100));
      if (stop_) break;
      const auto now = steady_clock::now();
      std::vector<Entry> due;
      for (auto it = entries_.begin(); it != entries_.end();) {
        if (it->second.deadline <= now) {
          due.push_back(std::move(it->second));
          it = entries_.erase(it);
        } else {
          ++it;
        }
      }
      if (due.empty()) continue;
      lock.unlock();  // calls take their own mutex, which may be waiting for ours
      for (auto& e : due) {
        if (auto call = e.call.lock()) call->OnFirstTokenDeadline(e.attempt);
      }
      lock.lock();
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::map<uint64_t, Entry> entries_;  // by ticket: attempts waiting for a first token
  uint64_t next_ = 1;
  std::thread thread_;  // last: starts after the members it reads
};

void ProxyHandler::Call::ArmFirstTokenLocked() {
  DisarmFirstTokenLocked();
  first_token_ticket_ = h_->first_token_watch_->Arm(steady_clock::now() + first_token_deadline_,
                                                    weak_from_this(), attempts_);
}

void ProxyHandler::Call::DisarmFirstTokenLocked() {
  if (first_token_ticket_ != 0) h_->first_token_watch_->Disarm(first_token_ticket_);
  first_token_ticket_ = 0;
}

ProxyHandler::ProxyHandler(ProxyOptions options, ConfigWatcher* config, KeyCache* keys,
                           std::shared_ptr<grpc::Channel> balancer,
                           std::shared_ptr<grpc::Channel> adapter)
    : options_(std::move(options)),
      config_(config),
      keys_(keys),
      balancer_(tg::v1::BalancerService::NewStub(balancer)),
      adapter_(tg::v1::ProviderAdapterService::NewStub(std::move(adapter))),
      picker_(&SystemClock::Get(), &random_),
      health_(std::move(balancer), &picker_),
      own_quota_(options_.quota ? nullptr : std::make_unique<quota::LocalQuotaStore>()),
      limits_(options_.quota ? options_.quota : own_quota_.get()),
      own_spend_(options_.spend ? nullptr : std::make_unique<SpendLedger>(SpendLedger::Options{})),
      spend_(options_.spend ? options_.spend : own_spend_.get()),
      reports_(balancer_.get(), ReportBatcher::Options{options_.report_deadline}),
      first_token_watch_(std::make_unique<FirstTokenWatch>()) {
  health_.Start();
}

ProxyHandler::~ProxyHandler() {
  std::unique_lock lock(mu_);
  idle_.wait(lock, [this] { return in_flight_ == 0; });
}

void ProxyHandler::CallStarted() {
  std::lock_guard lock(mu_);
  ++in_flight_;
}

void ProxyHandler::CallEnded() {
  std::lock_guard lock(mu_);
  if (--in_flight_ == 0) idle_.notify_all();
}

void ProxyHandler::Handle(HttpRequest request, HttpResponder respond) {
  auto call = std::make_shared<Call>(this, std::move(request), std::move(respond));
  call->Start();
}

}  // namespace tg::edge
