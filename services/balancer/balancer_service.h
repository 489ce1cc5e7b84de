#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <thread>

#include "tg/balancer/balancer.h"
#include "tg/common/trace.h"
#include "tg/v1/balancer.grpc.pb.h"

namespace tg::balancer {

struct BalancerServiceOptions {
  // A Pick naming a config revision this replica has not applied yet waits
  // this long for it (bounded by the call's deadline), then gets UNAVAILABLE.
  // Waiting beats failing: the edge's revision comes from the same feed and
  // is usually milliseconds ahead.
  std::chrono::milliseconds revision_wait{1000};
  // How often picks that were never reported are looked for.
  std::chrono::milliseconds sweep_interval{1000};
};

// tg.v1.BalancerService on gRPC's callback API. Every RPC is answered on the
// reactor thread that received it: the Balancer never blocks (Redis I/O is on
// the store's threads), so there is nothing to hand off. The one exception is
// a Pick waiting for a config revision, which is finished later from the
// config thread (or from the housekeeping thread when its wait runs out).
// WatchHealth streams are fed by the housekeeping thread, which collects the
// verdicts once per change and offers the same message to every stream.
class BalancerServiceImpl final : public tg::v1::BalancerService::CallbackService {
 public:
  explicit BalancerServiceImpl(Balancer* balancer, BalancerServiceOptions options = {});
  ~BalancerServiceImpl() override;  // BeginShutdown()

  // Call after every Balancer::ApplyConfig: answers the picks waiting for it.
  void OnConfigApplied();
  // Answers waiting picks with UNAVAILABLE and stops housekeeping. Call
  // before GrpcServer::Shutdown. Idempotent.
  void BeginShutdown();

  grpc::ServerUnaryReactor* Pick(grpc::CallbackServerContext* ctx,
                                 const tg::v1::PickRequest* request,
                                 tg::v1::PickResponse* response) override;
  grpc::ServerUnaryReactor* Report(grpc::CallbackServerContext* ctx,
                                   const tg::v1::ReportRequest* request,
                                   tg::v1::ReportResponse* response) override;
  grpc::ServerUnaryReactor* ReportBatch(grpc::CallbackServerContext* ctx,
                                        const tg::v1::ReportBatchRequest* request,
                                        tg::v1::ReportBatchResponse* response) override;
  grpc::ServerUnaryReactor* GetHealth(grpc::CallbackServerContext* ctx,
                                      const tg::v1::GetHealthRequest* request,
                                      tg::v1::GetHealthResponse* response) override;
  grpc::ServerWriteReactor<tg::v1::HealthVerdicts>* WatchHealth(
      grpc::CallbackServerContext* ctx, const tg::v1::WatchHealthRequest* request) override;

  size_t health_watchers() const;

  class HealthWatch;
  // The verdicts as of one health generation, shared by every stream.
  struct Verdicts {
    uint64_t generation = 0;
    tg::v1::HealthVerdicts message;
  };

 private:
  struct Waiter {
    std::chrono::steady_clock::time_point deadline;
    grpc::ServerUnaryReactor* reactor;
    const tg::v1::PickRequest* request;
    tg::v1::PickResponse* response;
    // The Pick's server span while it waits (only then allocated).
    std::shared_ptr<trace::Span> span;
  };

  bool Ready(const tg::v1::PickRequest& request) const;
  std::shared_ptr<const Verdicts> CollectVerdicts() const;
  void RemoveWatch(HealthWatch* watch);
  void FinishPick(const Waiter& w, trace::Span* span);
  void Housekeeping();

  Balancer* const balancer_;
  const BalancerServiceOptions options_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::list<Waiter> waiters_;
  bool stopping_ = false;
  // WatchHealth streams, and whether the balancer's verdicts changed since
  // housekeeping last sent them (it collects and offers them off the
  // reporting thread: the balancer's listener runs under its locks).
  std::list<HealthWatch*> watches_;
  bool health_dirty_ = false;
  std::thread housekeeping_;
};

}  // namespace tg::balancer
