#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <vector>

#include "tg/v1/balancer.grpc.pb.h"

namespace tg::edge {

// Sends pick outcomes to tg-balancer. An outcome goes out at once when no
// report call is in flight; otherwise it waits, and everything that waited
// goes out in one ReportBatch when the call in flight ends. At rest each
// outcome travels alone with no added delay; under load one call carries
// many, so the proxy makes two RPCs per request (Pick, Invoke) instead of
// three.
//
// Reports are best-effort, as the unary Report was: a batch the balancer
// does not answer is dropped (the balancer releases unreported picks after
// its own timeout). Above max_queued waiting outcomes new ones are dropped
// and counted.
class ReportBatcher {
 public:
  struct Options {
    std::chrono::milliseconds deadline{2000};
    size_t max_batch = 512;
    size_t max_queued = 100000;
  };

  ReportBatcher(tg::v1::BalancerService::Stub* stub, Options options);
  // Sends at most one more batch of what waits, waits for the calls to end
  // (two deadlines at worst) and drops the rest.
  ~ReportBatcher();

  void Add(tg::v1::ReportRequest report);

  uint64_t dropped() const;
  uint64_t batches() const;

 private:
  struct Rpc;
  void SendLocked(std::unique_lock<std::mutex>& lock);
  void OnDone(bool ok);

  tg::v1::BalancerService::Stub* const stub_;
  const Options options_;
  mutable std::mutex mu_;
  std::condition_variable idle_;
  bool in_flight_ = false;
  bool closing_ = false;
  std::vector<tg::v1::ReportRequest> waiting_;
  uint64_t dropped_ = 0;
  uint64_t batches_ = 0;
};

}  // namespace tg::edge
