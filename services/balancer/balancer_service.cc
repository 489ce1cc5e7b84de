#include "tg/balancer/balancer_service.h"

#include <exception>
#include <vector>

#include "tg/common/internal_authz.h"
#include "tg/common/log.h"
#include "tg/common/telemetry.h"

namespace tg::balancer {
namespace {

using grpc::Status;
using grpc::StatusCode;

// The one place where an unexpected exception (allocation failure) becomes a
// status: nothing may escape into the reactor.
template <typename Fn>
Status Guard(const char* rpc, Fn fn) {
  try {
    return fn();
  } catch (const std::exception& e) {
    log::Error("internal error", {{"rpc", rpc}, {"error", e.what()}});
  } catch (...) {
    log::Error("internal error", {{"rpc", rpc}});
  }
  return Status(StatusCode::INTERNAL, "internal error");
}

}  // namespace

// One WatchHealth stream: writes the newest verdicts it was offered, one write
// at a time; verdicts offered during a write replace each other, so a slow
// client gets the latest state, never a backlog.
class BalancerServiceImpl::HealthWatch final
    : public grpc::ServerWriteReactor<tg::v1::HealthVerdicts> {
 public:
  explicit HealthWatch(BalancerServiceImpl* service) : service_(service) {}

  void Offer(std::shared_ptr<const Verdicts> v) {
    {
      std::lock_guard lock(mu_);
      const uint64_t have = next_ ? next_->generation : sent_generation_;
      if (started_ && v->generation <= have) return;
      next_ = std::move(v);
      started_ = true;
    }
    TryWrite();
  }
  // The server is shutting down: end the stream (after a write in flight).
  void Close() {
    {
      std::lock_guard lock(mu_);
      closing_ = true;
    }
    TryWrite();
  }

  void OnWriteDone(bool ok) override {
    {
      std::lock_guard lock(mu_);
      writing_ = false;
      current_.reset();
      if (!ok) gone_ = true;
    }
    TryWrite();
  }
  void OnCancel() override {
    {
      std::lock_guard lock(mu_);
      gone_ = true;
    }
    TryWrite();
  }
  void OnDone() override {
    service_->RemoveWatch(this);
    delete this;
  }

 private:
  // The one place that writes or finishes: one write in flight at most, and
  // Finish exactly once, never during a write.
  void TryWrite() {
    grpc::Status finish_status;
    const tg::v1::HealthVerdicts* message = nullptr;
    {
      std::lock_guard lock(mu_);
      if (writing_ || finished_) return;
      if (gone_ || closing_) {
        finished_ = true;
        finish_status = gone_ ? Status::CANCELLED
                              : Status(StatusCode::UNAVAILABLE, "tg-balancer is shutting down");
      } else if (next_) {
        current_ = std::move(next_);
        sent_generation_ = current_->generation;
        writing_ = true;
        message = &current_->message;
      } else {
        return;
      }
    }
    if (message != nullptr) {
      StartWrite(message);
    } else {
      Finish(finish_status);
    }
  }

  BalancerServiceImpl* const service_;
  std::mutex mu_;
  bool started_ = false;
  bool writing_ = false;
  bool finished_ = false;
  bool gone_ = false;
  bool closing_ = false;
  uint64_t sent_generation_ = 0;
  std::shared_ptr<const Verdicts> current_;  // being written
  std::shared_ptr<const Verdicts> next_;     // to write next
};

BalancerServiceImpl::BalancerServiceImpl(Balancer* balancer, BalancerServiceOptions options)
    : balancer_(balancer), options_(options) {
  balancer_->SetHealthListener([this] {
    std::lock_guard lock(mu_);
    health_dirty_ = true;
    cv_.notify_all();
  });
  housekeeping_ = std::thread([this] { Housekeeping(); });
}

BalancerServiceImpl::~BalancerServiceImpl() { BeginShutdown(); }

std::shared_ptr<const BalancerServiceImpl::Verdicts> BalancerServiceImpl::CollectVerdicts() const {
  auto v = std::make_shared<Verdicts>();
  // The generation first: a change after it bumps it again and is collected
  // by the next round.
  v->generation = balancer_->health_generation();
  balancer_->CollectVerdicts(&v->message);
  return v;
}

grpc::ServerWriteReactor<tg::v1::HealthVerdicts>* BalancerServiceImpl::WatchHealth(
    grpc::CallbackServerContext* ctx, const tg::v1::WatchHealthRequest*) {
  auto* watch = new HealthWatch(this);
  if (Status denied = AuthorizeCaller(*ctx, InternalRpc::kBalancerPick); !denied.ok()) {
    watch->Finish(denied);  // OnDone deletes it; RemoveWatch finds nothing
    return watch;
  }
  bool stopping;
  {
    std::lock_guard lock(mu_);
    stopping = stopping_;
    if (!stopping) watches_.push_back(watch);
  }
  if (stopping) {
    watch->Close();
    return watch;
  }
  // Registered first, collected second: a change in between is offered again
  // by housekeeping.
  watch->Offer(CollectVerdicts());
  return watch;
}

void BalancerServiceImpl::RemoveWatch(HealthWatch* watch) {
  std::lock_guard lock(mu_);
  watches_.remove(watch);
}

size_t BalancerServiceImpl::health_watchers() const {
  std::lock_guard lock(mu_);
  return watches_.size();
}

bool BalancerServiceImpl::Ready(const tg::v1::PickRequest& request) const {
  return balancer_->loaded() && balancer_->revision() >= request.min_config_revision();
}

void BalancerServiceImpl::FinishPick(const Waiter& w, trace::Span* span) {
  Status status = Guard("Pick", [&] { return balancer_->Pick(*w.request, w.response); });
  if (span->recording()) {
    if (status.ok()) {
      const auto& t = w.response->target();
      span->SetAttribute("tg.target_id", t.id());
      if (!t.provider().empty()) span->SetAttribute("gen_ai.system", GenAiSystemName(t.provider()));
      if (!w.response->effective_model().empty()) {
        span->SetAttribute("gen_ai.request.model", w.response->effective_model());
      }
      span->SetAttribute("tg.degraded", w.response->degraded());
      span->SetOk();
    } else {
      span->SetAttribute("rpc.grpc.status_code", static_cast<int64_t>(status.error_code()));
      span->SetError(status.error_message());
    }
  }
  span->End();
  w.reactor->Finish(status);
}

grpc::ServerUnaryReactor* BalancerServiceImpl::Pick(grpc::CallbackServerContext* ctx,
                                                    const tg::v1::PickRequest* request,
                                                    tg::v1::PickResponse* response) {
  auto* reactor = ctx->DefaultReactor();
  if (Status denied = AuthorizeCaller(*ctx, InternalRpc::kBalancerPick); !denied.ok()) {
    reactor->Finish(denied);
    return reactor;
  }
  trace::Span span = trace::Span::Start("tg.v1.BalancerService/Pick", trace::SpanKind::kServer,
                                        trace::Extract(ctx));
  if (span.recording()) {
    span.SetAttribute("rpc.system", "grpc");
    span.SetAttribute("tg.upstream_id", request->upstream_id());
    span.SetAttribute("tg.request_id", request->request_id());
    span.SetAttribute("tg.excluded_targets", request->exclude_target_ids_size());
  }
  if (!Ready(*request)) {
    const auto now = std::chrono::steady_clock::now();
    auto deadline = now + options_.revision_wait;
    const auto call_deadline = ctx->deadline();
    if (call_deadline != std::chrono::system_clock::time_point::max()) {
      deadline = std::min(deadline, now + (call_deadline - std::chrono::system_clock::now()));
    }
    std::unique_lock lock(mu_);
    // Checked again under the lock: OnConfigApplied takes it after the
    // balancer moved on, so either this sees the new revision or that sees
    // this waiter.
    if (!stopping_ && !Ready(*request)) {
      waiters_.push_back(Waiter{deadline, reactor, request, response,
                                std::make_shared<trace::Span>(std::move(span))});
      cv_.notify_all();
      return reactor;
    }
  }
  FinishPick(Waiter{{}, reactor, request, response, nullptr}, &span);
  return reactor;
}

grpc::ServerUnaryReactor* BalancerServiceImpl::Report(grpc::CallbackServerContext* ctx,
                                                      const tg::v1::ReportRequest* request,
                                                      tg::v1::ReportResponse*) {
  auto* reactor = ctx->DefaultReactor();
  if (Status denied = AuthorizeCaller(*ctx, InternalRpc::kBalancerPick); !denied.ok()) {
    reactor->Finish(denied);
    return reactor;
  }
  reactor->Finish(Guard("Report", [&] { return balancer_->Report(*request); }));
  return reactor;
}

grpc::ServerUnaryReactor* BalancerServiceImpl::ReportBatch(
    grpc::CallbackServerContext* ctx, const tg::v1::ReportBatchRequest* request,
    tg::v1::ReportBatchResponse* response) {
  auto* reactor = ctx->DefaultReactor();
  if (Status denied = AuthorizeCaller(*ctx, InternalRpc::kBalancerPick); !denied.ok()) {
    reactor->Finish(denied);
    return reactor;
  }
  reactor->Finish(Guard("ReportBatch", [&] {
    int32_t applied = 0;
    for (const auto& report : request->reports()) {
      if (balancer_->Report(report).ok()) ++applied;
    }
    response->set_applied(applied);
    return Status::OK;
  }));
  return reactor;
}

grpc::ServerUnaryReactor* BalancerServiceImpl::GetHealth(grpc::CallbackServerContext* ctx,
                                                         const tg::v1::GetHealthRequest* request,
                                                         tg::v1::GetHealthResponse* response) {
  auto* reactor = ctx->DefaultReactor();
  if (Status denied = AuthorizeCaller(*ctx, InternalRpc::kBalancerHealth); !denied.ok()) {
    reactor->Finish(denied);
    return reactor;
  }
  reactor->Finish(Guard("GetHealth", [&] { return balancer_->GetHealth(*request, response); }));
  return reactor;
}

void BalancerServiceImpl::OnConfigApplied() {
  std::vector<Waiter> ready;
  {
    std::lock_guard lock(mu_);
    for (auto it = waiters_.begin(); it != waiters_.end();) {
      if (Ready(*it->request)) {
        ready.push_back(*it);
        it = waiters_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (const auto& w : ready) FinishPick(w, w.span.get());
}

void BalancerServiceImpl::BeginShutdown() {
  std::list<Waiter> left;
  {
    std::lock_guard lock(mu_);
    if (stopping_) return;
    stopping_ = true;
    left.swap(waiters_);
    cv_.notify_all();
  }
  balancer_->SetHealthListener(nullptr);
  if (housekeeping_.joinable()) housekeeping_.join();
  {
    // Each stream ends (OnDone removes it) after this; Close only marks and
    // finishes, it never waits, so holding mu_ is safe.
    std::lock_guard lock(mu_);
    for (HealthWatch* w : watches_) w->Close();
  }
  for (const auto& w : left) {
    w.reactor->Finish(Status(StatusCode::UNAVAILABLE, "tg-balancer is shutting down"));
  }
}

void BalancerServiceImpl::Housekeeping() {
  auto next_sweep = std::chrono::steady_clock::now() + options_.sweep_interval;
  std::unique_lock lock(mu_);
  while (!stopping_) {
    const auto now = std::chrono::steady_clock::now();
    std::vector<Waiter> expired;
    for (auto it = waiters_.begin(); it != waiters_.end();) {
      if (it->deadline <= now) {
        expired.push_back(*it);
        it = waiters_.erase(it);
      } else {
        ++it;
      }
    }
    const bool sweep = now >= next_sweep;
    const bool offer = health_dirty_ && !watches_.empty();
    health_dirty_ = false;
    if (offer) {
      lock.unlock();
      auto verdicts = CollectVerdicts();
      lock.lock();
      for (HealthWatch* w : watches_) w->Offer(verdicts);
      continue;
    }
    if (!expired.empty() || sweep) {
      lock.unlock();
      // Answered by Pick itself, which says UNAVAILABLE (or, had the config
      // arrived in the meantime, picks).
      for (const auto& w : expired) FinishPick(w, w.span.get());
      if (sweep) {
        balancer_->ReleaseExpiredPicks();
        next_sweep = now + options_.sweep_interval;
      }
      lock.lock();
      continue;
    }
    auto wake = next_sweep;
    for (const auto& w : waiters_) wake = std::min(wake, w.deadline);
    cv_.wait_until(lock, wake);
  }
}

}  // namespace tg::balancer
