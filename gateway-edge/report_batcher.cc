#include "tg/edge/report_batcher.h"

#include <grpcpp/grpcpp.h>

#include <memory>

namespace tg::edge {

struct ReportBatcher::Rpc {
  grpc::ClientContext ctx;
  tg::v1::ReportBatchRequest req;
  tg::v1::ReportBatchResponse resp;
};

ReportBatcher::ReportBatcher(tg::v1::BalancerService::Stub* stub, Options options)
    : stub_(stub), options_(options) {}

ReportBatcher::~ReportBatcher() {
  // One more batch at most after the one in flight, so that a balancer that
  // hangs holds shutdown for two deadlines, not one per queued batch; the
  // rest is dropped (the balancer releases unreported picks on its own).
  std::unique_lock lock(mu_);
  closing_ = true;
  idle_.wait(lock, [this] { return !in_flight_; });
  if (!waiting_.empty()) {
    SendLocked(lock);
    idle_.wait(lock, [this] { return !in_flight_; });
  }
  dropped_ += waiting_.size();
  waiting_.clear();
}

void ReportBatcher::Add(tg::v1::ReportRequest report) {
  std::unique_lock lock(mu_);
  if (closing_ || waiting_.size() >= options_.max_queued) {
    ++dropped_;
    return;
  }
  waiting_.push_back(std::move(report));
  if (!in_flight_) SendLocked(lock);
}

void ReportBatcher::SendLocked(std::unique_lock<std::mutex>& lock) {
  auto rpc = std::make_shared<Rpc>();
  const size_t n = std::min(waiting_.size(), options_.max_batch);
  rpc->req.mutable_reports()->Reserve(static_cast<int>(n));
  for (size_t i = 0; i < n; ++i) *rpc->req.add_reports() = std::move(waiting_[i]);
  waiting_.erase(waiting_.begin(), waiting_.begin() + static_cast<std::ptrdiff_t>(n));
  in_flight_ = true;
  ++batches_;
  lock.unlock();
  rpc->ctx.set_deadline(std::chrono::system_clock::now() + options_.deadline);
  stub_->async()->ReportBatch(&rpc->ctx, &rpc->req, &rpc->resp,
                              [this, rpc](const grpc::Status& status) { OnDone(status.ok()); });
  lock.lock();
}

void ReportBatcher::OnDone(bool) {
  std::unique_lock lock(mu_);
  in_flight_ = false;
  if (!waiting_.empty() && !closing_) {
    SendLocked(lock);
    return;
  }
  idle_.notify_all();
}

uint64_t ReportBatcher::dropped() const {
  std::lock_guard lock(mu_);
  return dropped_;
}

uint64_t ReportBatcher::batches() const {
  std::lock_guard lock(mu_);
  return batches_;
}

}  // namespace tg::edge
