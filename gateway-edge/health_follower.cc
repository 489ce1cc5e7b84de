#include "tg/edge/health_follower.h"

#include <algorithm>

#include "tg/common/log.h"

namespace tg::edge {

HealthFollower::HealthFollower(std::shared_ptr<grpc::Channel> channel, LocalPicker* picker,
                               Options options)
    : options_(options),
      stub_(tg::v1::BalancerService::NewStub(std::move(channel))),
      picker_(picker) {}

HealthFollower::~HealthFollower() { Stop(); }

void HealthFollower::Start() {
  std::lock_guard lock(mu_);
  if (thread_.joinable() || stopping_) return;
  thread_ = std::thread([this] { Run(); });
}

void HealthFollower::Stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    if (ctx_ != nullptr) ctx_->TryCancel();
    cv_.notify_all();
  }
  if (thread_.joinable()) thread_.join();
}

void HealthFollower::Run() {
  auto backoff = options_.initial_backoff;
  bool warned = false;  // one warning per outage, not one per reconnect
  while (true) {
    grpc::ClientContext ctx;
    ctx.set_wait_for_ready(true);  // a stream opens as soon as tg-balancer is back
    {
      std::lock_guard lock(mu_);
      if (stopping_) return;
      ctx_ = &ctx;
    }
    tg::v1::WatchHealthRequest request;
    auto reader = stub_->WatchHealth(&ctx, request);
    tg::v1::HealthVerdicts verdicts;
    bool got_one = false;
    while (reader->Read(&verdicts)) {
      picker_->SetVerdicts(verdicts);
      if (!got_one) {
        got_one = true;
        connected_ = true;
        backoff = options_.initial_backoff;
        if (warned) log::Info("tg-balancer health stream back", {});
        warned = false;
      }
    }
    const grpc::Status status = reader->Finish();
    connected_ = false;
    std::unique_lock lock(mu_);
    ctx_ = nullptr;
    if (stopping_) return;
    if (!warned) {
      log::Warn("tg-balancer health stream ended; picking from the last verdicts",
                {{"code", std::to_string(status.error_code())}, {"error", status.error_message()}});
      warned = true;
    }
    cv_.wait_for(lock, backoff, [this] { return stopping_; });
    backoff = std::min(backoff * 2, options_.max_backoff);
  }
}

}  // namespace tg::edge
