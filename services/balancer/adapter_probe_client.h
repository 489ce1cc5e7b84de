#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <memory>
#include <mutex>
#include <unordered_set>

#include "tg/balancer/probe_client.h"
#include "tg/v1/adapter.grpc.pb.h"

namespace tg::balancer {

// Probes through tg-adapter's Probe RPC (the adapter holds the credentials
// and the egress policy). Callback API: no thread waits for an answer.
class AdapterProbeClient final : public ProbeClient {
 public:
  // `timeout`: the deadline of one Probe call (longer than the adapter's
  // own 5 s limit on the provider call).
  AdapterProbeClient(std::shared_ptr<grpc::Channel> channel,
                     std::chrono::milliseconds timeout = std::chrono::milliseconds(7000));
  ~AdapterProbeClient() override;  // CancelAll(); the caller has waited for the answers

  void Probe(const ProbeTask& task, std::function<void(ProbeOutcome)> done) override;
  void CancelAll() override;

 private:
  struct Call;

  std::unique_ptr<tg::v1::ProviderAdapterService::Stub> stub_;
  const std::chrono::milliseconds timeout_;
  std::mutex mu_;
  std::unordered_set<Call*> calls_;
};

}  // namespace tg::balancer
