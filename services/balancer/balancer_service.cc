#include "balancer_service.h"

#include <exception>
#include <vector>

#include "tg/common/log.h"

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

BalancerServiceImpl::BalancerServiceImpl(Balancer* balancer, BalancerServiceOptions options)
    : balancer_(balancer), options_(options) {
  housekeeping_ = std::thread([this] { Housekeeping(); });
}

BalancerServiceImpl::~BalancerServiceImpl() { BeginShutdown(); }

bool BalancerServiceImpl::Ready(const tg::v1::PickRequest& request) const {
  return balancer_->loaded() && balancer_->revision() >= request.min_config_revision();
}

void BalancerServiceImpl::FinishPick(const Waiter& w) {
  w.reactor->Finish(Guard("Pick", [&] { return balancer_->Pick(*w.request, w.response); }));
}

grpc::ServerUnaryReactor* BalancerServiceImpl::Pick(grpc::CallbackServerContext* ctx,
                                                    const tg::v1::PickRequest* request,
                                                    tg::v1::PickResponse* response) {
  auto* reactor = ctx->DefaultReactor();
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
      waiters_.push_back(Waiter{deadline, reactor, request, response});
      cv_.notify_all();
      return reactor;
    }
  }
  FinishPick(Waiter{{}, reactor, request, response});
  return reactor;
}

grpc::ServerUnaryReactor* BalancerServiceImpl::Report(grpc::CallbackServerContext* ctx,
                                                      const tg::v1::ReportRequest* request,
                                                      tg::v1::ReportResponse*) {
  auto* reactor = ctx->DefaultReactor();
  reactor->Finish(Guard("Report", [&] { return balancer_->Report(*request); }));
  return reactor;
}

grpc::ServerUnaryReactor* BalancerServiceImpl::GetHealth(grpc::CallbackServerContext* ctx,
                                                         const tg::v1::GetHealthRequest* request,
                                                         tg::v1::GetHealthResponse* response) {
  auto* reactor = ctx->DefaultReactor();
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
  for (const auto& w : ready) FinishPick(w);
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
  if (housekeeping_.joinable()) housekeeping_.join();
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
    if (!expired.empty() || sweep) {
      lock.unlock();
      // Answered by Pick itself, which says UNAVAILABLE (or, had the config
      // arrived in the meantime, picks).
      for (const auto& w : expired) FinishPick(w);
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
