#pragma once

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>

#include "tg/balancer/random.h"
#include "tg/common/config_watcher.h"
#include "tg/edge/health_follower.h"
#include "tg/edge/http_server.h"
#include "tg/edge/key_cache.h"
#include "tg/edge/local_picker.h"
#include "tg/edge/quota/quota_store.h"
#include "tg/edge/rate_limits.h"
#include "tg/edge/report_batcher.h"
#include "tg/edge/spend.h"
#include "tg/v1/adapter.grpc.pb.h"
#include "tg/v1/balancer.grpc.pb.h"

namespace tg::edge {

struct ProxyOptions {
  // Requests whose Host is "<subdomain>.<base_domain>" belong to that gateway,
  // and the key must be one of its keys. Empty: the key alone decides.
  std::string base_domain;
  // Provider attempts per request: the first, then failovers while nothing
  // has reached the client.
  int max_attempts = 3;
  // A ReportBatch call to tg-balancer.
  std::chrono::milliseconds report_deadline{2000};
  // The whole upstream call, first byte to last (long streams included).
  std::chrono::milliseconds invoke_deadline{std::chrono::minutes(10)};
  // Unsent bytes of a streamed answer above which the proxy stops reading
  // from the adapter (gRPC flow control then slows the provider read).
  size_t stream_high_water = 256 * 1024;
  // One JSON line per proxied request (docs/OPERATIONS.md lists the fields).
  bool access_log = true;
  // Where the rate limits' buckets live (RedisQuotaStore: shared by every
  // edge). Null: this edge's own memory (a LocalQuotaStore).
  quota::Store* quota = nullptr;
  // A header a trusted proxy in front of the edge sets to the client's
  // address (X-Forwarded-For, X-Real-IP); its last entry is per_ip's key.
  // Empty: the peer's address.
  std::string client_ip_header;
  // Spend per gateway and key (budgets, GET …/spend). Null: this edge's own
  // memory.
  SpendLedger* spend = nullptr;
};

// The proxy on :8081. Per request: gateway key → gateway (Host subdomain when
// configured) → active rule (snapshot, no RPC) → service → for upstream
// services a local pick (LocalPicker, from tg-balancer's streamed verdicts;
// no RPC) → Invoke (tg-adapter, streamed) → Report (batched, see
// ReportBatcher), with
// failover to another target while nothing was sent to the client; endpoint
// services are reverse-proxied through the adapter without a pick.
// X-Selected-Provider is on every answer that reached a target.
class ProxyHandler : public HttpHandler {
 public:
  ProxyHandler(ProxyOptions options, ConfigWatcher* config, KeyCache* keys,
               std::shared_ptr<grpc::Channel> balancer, std::shared_ptr<grpc::Channel> adapter);
  ~ProxyHandler() override;  // waits for calls in flight (after the HTTP server stopped)

  void Handle(HttpRequest request, HttpResponder respond) override;

  // WatchHealth messages applied (tests).
  uint64_t verdict_updates() const { return picker_.verdict_updates(); }

  class Call;
  class InvokeStream;
  class FirstTokenWatch;

 private:
  friend class Call;
  void CallStarted();
  void CallEnded();

  const ProxyOptions options_;
  ConfigWatcher* const config_;
  KeyCache* const keys_;
  std::unique_ptr<tg::v1::BalancerService::Stub> balancer_;
  std::unique_ptr<tg::v1::ProviderAdapterService::Stub> adapter_;
  balancer::SystemRandom random_;
  LocalPicker picker_;                       // outlives health_, which feeds it
  HealthFollower health_;                    // tg-balancer's WatchHealth
  std::unique_ptr<quota::Store> own_quota_;  // when options_.quota is null
  RateLimits limits_;
  std::unique_ptr<SpendLedger> own_spend_;  // when options_.spend is null
  SpendLedger* spend_;
  ReportBatcher reports_;  // after balancer_: flushed before the stub goes
  // Attempts waiting for their first token, checked by one thread every
  // 100 ms (no timer per request: arming and disarming are a map insert and
  // erase). Declared after reports_: it goes first, after the calls.
  std::unique_ptr<FirstTokenWatch> first_token_watch_;

  std::mutex mu_;
  std::condition_variable idle_;
  int in_flight_ = 0;
};

}  // namespace tg::edge
