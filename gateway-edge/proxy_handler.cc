#include "proxy_handler.h"

#include <rapidjson/document.h>

#include <algorithm>
#include <cctype>
#include <optional>
#include <vector>

#include "proxy_routing.h"
#include "tg/common/http_headers.h"
#include "tg/common/crypto.h"
#include "tg/common/json_util.h"
#include "tg/common/log.h"

namespace tg::edge {
namespace {

using std::chrono::steady_clock;

// The gateway's own credentials: never forwarded upstream.
bool IsGatewayKeyHeader(std::string_view name) {
  using http_headers::NameEquals;
  return NameEquals(name, "x-tg-api-key") || NameEquals(name, "x-api-key") ||
         NameEquals(name, "authorization");
}

const char* ErrorType(int status) {
  switch (status) {
    case 400: return "invalid_request_error";
    case 401: return "authentication_error";
    case 403: return "permission_error";
    case 404: return "not_found_error";
    case 405: return "invalid_request_error";
    case 413: return "request_too_large";
    case 429: return "rate_limit_error";
    default: return "api_error";
  }
}

// An error the gateway itself answers, in the shape the client's SDK parses.
HttpResponse ClientError(tg::v1::ClientFormat format, int status, std::string_view message) {
  std::string body;
  if (format == tg::v1::CLIENT_FORMAT_ANTHROPIC_MESSAGES) {
    body = R"({"type":"error","error":{"type":")" + std::string(ErrorType(status)) + R"(","message":)";
    json::AppendQuoted(body, message);
    body += "}}";
  } else {
    body = R"({"error":{"message":)";
    json::AppendQuoted(body, message);
    body += R"(,"type":")" + std::string(ErrorType(status)) + R"(","code":null}})";
  }
  return JsonResponse(status, std::move(body));
}

tg::v1::Outcome OutcomeOf(const tg::v1::ProviderError& e) {
  switch (e.kind()) {
    case tg::v1::ProviderError::KIND_CONNECT: return tg::v1::OUTCOME_CONNECT_ERROR;
    case tg::v1::ProviderError::KIND_TIMEOUT: return tg::v1::OUTCOME_TIMEOUT;
    case tg::v1::ProviderError::KIND_CANCELLED: return tg::v1::OUTCOME_CANCELLED;
    default: return tg::v1::OUTCOME_HTTP_STATUS;
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
  }
  ~Call() { h_->CallEnded(); }

  void Start();
  void Cancel();

  // From InvokeStream (one gRPC thread at a time per stream).
  void OnEvent(const tg::v1::InvokeEvent& e);
  void OnInvokeDone(const grpc::Status& status);
  size_t PendingBytes();

 private:
  void Answer(HttpResponse r);
  void Fail(int status, std::string_view message) { Answer(ClientError(format_, status, message)); }
  void OnKey(const std::optional<KeyCache::Verified>& v, const grpc::Status& status);
  void PickNext();
  void OnPicked(const grpc::Status& status, const tg::v1::PickResponse& pick);
  void Invoke(const tg::v1::Target& target, const std::string& model);
  void Commit();
  void ReportOutcome(tg::v1::Outcome outcome, int http_status);
  void AnswerHeld();
  HttpResponse HeadResponse() const;
  std::string SelectedProvider() const;

  ProxyHandler* const h_;
  HttpRequest req_;
  HttpResponder respond_;
  const tg::v1::ClientFormat format_;
  const std::string request_id_;
  const steady_clock::time_point started_;

  std::shared_ptr<const ConfigSnapshot> snap_;
  const tg::v1::Service* service_ = nullptr;  // valid while snap_ is held
  std::string upstream_id_;
  std::string forward_path_;
  std::string model_;
  bool stream_ = false;
  int attempts_ = 0;
  std::vector<std::string> tried_;
  // Why the last attempt failed when it left no answer to pass on (the adapter
  // unreachable): what a retry that finds no target left answers.
  int failed_status_ = 0;
  std::string failed_message_;

  // The current attempt. Written by the gRPC thread of its stream; the
  // cancellation (io thread) only reads invoke_ and sets cancelled_.
  std::mutex mu_;
  bool cancelled_ = false;
  std::shared_ptr<InvokeStream> invoke_;
  tg::v1::PickResponse pick_;
  tg::v1::Target target_;
  steady_clock::time_point attempt_started_;
  std::optional<tg::v1::ResponseHead> head_;
  std::vector<std::string> held_;  // body held back while failover is possible
  std::optional<tg::v1::InvokeEvent::End> end_;
  bool committed_ = false;
  std::shared_ptr<HttpBodyStream> body_;
};

// ---------------------------------------------------------------- the stream

// One Invoke: reads events into the call, pausing while the client's socket
// has more than the high-water mark unsent.
class ProxyHandler::InvokeStream : public grpc::ClientReadReactor<tg::v1::InvokeEvent> {
 public:
  InvokeStream(std::shared_ptr<Call> call, size_t high_water)
      : call_(std::move(call)), high_water_(high_water) {}

  void Begin(tg::v1::ProviderAdapterService::Stub* stub, tg::v1::InvokeRequest request,
             std::chrono::milliseconds deadline, std::shared_ptr<InvokeStream> self) {
    self_ = std::move(self);
    request_ = std::move(request);
    context_.set_deadline(std::chrono::system_clock::now() + deadline);
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
  r.headers.emplace_back("X-Request-Id", request_id_);
  respond_(std::move(r));
}

void ProxyHandler::Call::Start() {
  auto key = ExtractApiKey(req_);
  if (key.empty()) return Fail(401, "missing API key (X-TG-API-Key, X-Api-Key or Authorization: Bearer)");
  auto self = shared_from_this();
  // Weak: the responder belongs to this call, a strong reference would be a cycle.
  std::weak_ptr<Call> weak = self;
  respond_.OnCancel([weak] {
    if (auto call = weak.lock()) call->Cancel();
  });
  h_->keys_->Verify(key, [self](std::optional<KeyCache::Verified> v, grpc::Status status) {
    self->OnKey(v, status);
  });
}

void ProxyHandler::Call::Cancel() {
  std::shared_ptr<InvokeStream> invoke;
  {
    std::lock_guard lock(mu_);
    cancelled_ = true;
    invoke = invoke_;
  }
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

  RouteMatch m = MatchRule(*snap_, v->gateway_id, req_.method, req_.path);
  if (m.result == RouteMatch::Result::kWrongMethod) {
    HttpResponse r = ClientError(format_, 405, "method not allowed");
    r.headers.emplace_back("Allow", m.allow);
    return Answer(std::move(r));
  }
  if (m.result != RouteMatch::Result::kMatched) return Fail(404, "no route for " + req_.path);
  service_ = m.service;
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
    attempts_ = h_->options_.max_attempts;  // no failover for a single host
    return Invoke(t, "");
  }

  upstream_id_ = service_->upstream_id();
  if (format_ != tg::v1::CLIENT_FORMAT_UNSPECIFIED) {
    rapidjson::Document doc;
    doc.Parse(req_.body.data(), req_.body.size());
    if (doc.HasParseError() || !doc.IsObject()) {
      return Fail(400, "request body must be a JSON object");
    }
    if (auto it = doc.FindMember("model"); it != doc.MemberEnd() && it->value.IsString()) {
      model_ = it->value.GetString();
    }
    if (auto it = doc.FindMember("stream"); it != doc.MemberEnd() && it->value.IsBool()) {
      stream_ = it->value.GetBool();
    }
  }
  PickNext();
}

void ProxyHandler::Call::PickNext() {
  ++attempts_;
  struct Rpc {
    grpc::ClientContext ctx;
    tg::v1::PickRequest req;
    tg::v1::PickResponse resp;
  };
  auto rpc = std::make_shared<Rpc>();
  rpc->ctx.set_deadline(std::chrono::system_clock::now() + h_->options_.pick_deadline);
  rpc->req.set_upstream_id(upstream_id_);
  rpc->req.set_model(model_);
  for (const auto& t : tried_) rpc->req.add_exclude_target_ids(t);
  rpc->req.set_min_config_revision(snap_->revision());
  rpc->req.set_request_id(request_id_);
  auto self = shared_from_this();
  h_->balancer_->async()->Pick(&rpc->ctx, &rpc->req, &rpc->resp,
                               [self, rpc](grpc::Status status) { self->OnPicked(status, rpc->resp); });
}

void ProxyHandler::Call::OnPicked(const grpc::Status& status, const tg::v1::PickResponse& pick) {
  {
    std::lock_guard lock(mu_);
    if (cancelled_) return;
  }
  if (!status.ok()) {
    // A later attempt that finds nothing left to try answers the last failure
    // (not the balancer's "every target was tried", which is no client error).
    if (attempts_ > 1 && head_) return AnswerHeld();
    if (attempts_ > 1 && failed_status_ != 0) return Fail(failed_status_, failed_message_);
    switch (status.error_code()) {
      case grpc::StatusCode::FAILED_PRECONDITION:
        return Fail(400, status.error_message());
      case grpc::StatusCode::NOT_FOUND:
        return Fail(503, "upstream not available");
      default:
        return Fail(503, "balancer unavailable, retry later");
    }
  }
  pick_ = pick;
  tried_.push_back(pick.target().id());
  Invoke(pick.target(), pick.effective_model());
}

void ProxyHandler::Call::Invoke(const tg::v1::Target& target, const std::string& model) {
  tg::v1::InvokeRequest req;
  req.set_request_id(request_id_);
  req.set_upstream_id(upstream_id_);
  *req.mutable_target() = target;
  req.set_effective_model(model);
  bool passthrough = target.provider().empty();
  if (!passthrough && format_ == tg::v1::CLIENT_FORMAT_UNSPECIFIED) {
    return Fail(400, "provider targets serve /chat/completions, /messages and /responses only");
  }
  req.set_client_format(passthrough ? tg::v1::CLIENT_FORMAT_PASSTHROUGH : format_);
  req.set_body(req_.body);
  req.set_stream(stream_);
  req.set_method(req_.method);
  req.set_path(req_.query.empty() ? forward_path_ : forward_path_ + "?" + req_.query);
  for (const auto& [name, value] : req_.headers) {
    if (http_headers::IsHopByHop(name) || IsGatewayKeyHeader(name)) continue;
    (*req.mutable_client_headers())[name] = value;
  }
  req.set_min_config_revision(snap_->revision());

  auto stream = std::make_shared<InvokeStream>(shared_from_this(), h_->options_.stream_high_water);
  {
    std::lock_guard lock(mu_);
    if (cancelled_) return;
    target_ = target;
    head_.reset();
    held_.clear();
    end_.reset();
    invoke_ = stream;
    attempt_started_ = steady_clock::now();
  }
  stream->Begin(h_->adapter_.get(), std::move(req), h_->options_.invoke_deadline, stream);
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
      if (http_headers::NameEquals(name, "content-type")) has_type = true;
      r.headers.emplace_back(name, value);
    }
    if (!has_type && !head_->content_type().empty()) {
      r.headers.emplace_back("Content-Type", head_->content_type());
    }
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
  body_ = respond_.Stream(HeadResponse());
  for (auto& piece : held_) body_->Write(std::move(piece));
  held_.clear();
}

void ProxyHandler::Call::OnEvent(const tg::v1::InvokeEvent& e) {
  std::lock_guard lock(mu_);
  switch (e.event_case()) {
    case tg::v1::InvokeEvent::kHead:
      head_ = e.head();
      return;
    case tg::v1::InvokeEvent::kChunk: {
      if (committed_) {
        std::weak_ptr<InvokeStream> weak = invoke_;
        body_->Write(e.chunk(), [weak](bool ok) {
          if (auto s = weak.lock(); s && ok) s->OnDrained();
        });
        return;
      }
      held_.push_back(e.chunk());
      // A successful stream is committed at its first byte and flows from then
      // on. A whole answer is held until its end (it then goes out with a
      // Content-Length), and so is an error: another target may serve it.
      bool streaming = stream_ || target_.provider().empty();
      if (streaming && head_ && head_->status() < 400) Commit();
      return;
    }
    case tg::v1::InvokeEvent::kEnd:
      end_ = e.end();
      return;
    default:
      return;  // usage: logged by the adapter, counted by metrics later
  }
}

void ProxyHandler::Call::ReportOutcome(tg::v1::Outcome outcome, int http_status) {
  if (upstream_id_.empty() || pick_.pick_id().empty()) return;  // endpoint services: no balancer
  struct Rpc {
    grpc::ClientContext ctx;
    tg::v1::ReportRequest req;
    tg::v1::ReportResponse resp;
  };
  auto rpc = std::make_shared<Rpc>();
  rpc->ctx.set_deadline(std::chrono::system_clock::now() + h_->options_.pick_deadline);
  rpc->req.set_pick_id(pick_.pick_id());
  rpc->req.set_upstream_id(upstream_id_);
  rpc->req.set_target_id(target_.id());
  rpc->req.set_outcome(outcome);
  rpc->req.set_http_status(http_status);
  auto us = std::chrono::duration_cast<std::chrono::microseconds>(steady_clock::now() -
                                                                  attempt_started_)
                .count();
  rpc->req.mutable_latency()->set_seconds(us / 1000000);
  rpc->req.mutable_latency()->set_nanos(static_cast<int32_t>((us % 1000000) * 1000));
  ProxyHandler* h = h_;
  h->CallStarted();  // the handler (and its stub) outlives the report
  h->balancer_->async()->Report(&rpc->ctx, &rpc->req, &rpc->resp,
                                [h, rpc](grpc::Status) { h->CallEnded(); });
}

void ProxyHandler::Call::AnswerHeld() {
  HttpResponse r = HeadResponse();
  for (auto& piece : held_) r.body += piece;
  held_.clear();
  respond_(std::move(r));
}

void ProxyHandler::Call::OnInvokeDone(const grpc::Status& status) {
  std::unique_lock lock(mu_);
  invoke_.reset();
  if (end_ && end_->ok()) {
    lock.unlock();
    ReportOutcome(tg::v1::OUTCOME_SUCCESS, head_ ? head_->status() : 200);
    lock.lock();
    if (committed_) {
      body_->Finish();
    } else {
      AnswerHeld();
    }
    return;
  }

  if (end_) {
    const auto& err = end_->error();
    lock.unlock();
    ReportOutcome(OutcomeOf(err), err.http_status());
    lock.lock();
    if (committed_) {
      body_->Finish();  // the adapter wrote the client format's error event last
      return;
    }
    bool passthrough = target_.provider().empty();
    // A plain reverse proxy returns what the host said; only an absent answer
    // (connect error, timeout) moves on to another host.
    bool may_retry = err.retryable() && !end_->body_started() && !cancelled_ &&
                     attempts_ < h_->options_.max_attempts && !upstream_id_.empty() &&
                     (!passthrough || err.kind() == tg::v1::ProviderError::KIND_CONNECT ||
                      err.kind() == tg::v1::ProviderError::KIND_TIMEOUT);
    if (may_retry) {
      if (!head_) {
        // What answers if no other target is left (as below when none is).
        head_.emplace();
        head_->set_status(err.kind() == tg::v1::ProviderError::KIND_TIMEOUT ? 504 : 502);
        head_->set_content_type("application/json");
      }
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

  // No End: the adapter itself failed (unreachable, deadline) or we cancelled.
  bool deadline = status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED;
  if (cancelled_) {
    if (committed_) body_->Abort();
    lock.unlock();
    ReportOutcome(tg::v1::OUTCOME_CANCELLED, 0);
    return;
  }
  if (committed_) {
    body_->Abort();  // a truncated body must look truncated
    lock.unlock();
    ReportOutcome(deadline ? tg::v1::OUTCOME_TIMEOUT : tg::v1::OUTCOME_CANCELLED, 0);
    return;
  }
  // Whatever arrived of this attempt is incomplete: never an answer.
  head_.reset();
  held_.clear();
  lock.unlock();
  // Not the target's fault: report it as neither success nor failure.
  ReportOutcome(deadline ? tg::v1::OUTCOME_TIMEOUT : tg::v1::OUTCOME_CANCELLED, 0);
  if (!deadline && attempts_ < h_->options_.max_attempts && !upstream_id_.empty()) {
    failed_status_ = 502;
    failed_message_ = "adapter unavailable";
    PickNext();
    return;
  }
  Fail(deadline ? 504 : 502, deadline ? "upstream timed out" : "adapter unavailable");
}

// ---------------------------------------------------------------- handler

ProxyHandler::ProxyHandler(ProxyOptions options, ConfigWatcher* config, KeyCache* keys,
                           std::shared_ptr<grpc::Channel> balancer,
                           std::shared_ptr<grpc::Channel> adapter)
    : options_(std::move(options)),
      config_(config),
      keys_(keys),
      balancer_(tg::v1::BalancerService::NewStub(std::move(balancer))),
      adapter_(tg::v1::ProviderAdapterService::NewStub(std::move(adapter))) {}

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
