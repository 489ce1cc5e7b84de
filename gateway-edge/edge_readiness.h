#pragma once

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>

#include "tg/common/config_watcher.h"
#include "tg/edge/http_server.h"
#include "tg/edge/key_cache.h"

namespace tg::edge {

// What tg-edge's readiness depends on, at one moment.
struct ReadinessState {
  bool shutting_down = false;
  ConfigWatcher::Health config;
  int64_t config_revision = 0;
  bool keys_watching = true;       // tg-keyauth's revocation stream is up
  bool balancer_reachable = true;  // its channel is not in TRANSIENT_FAILURE
  bool adapter_reachable = true;
  std::chrono::system_clock::time_point now;
};

// GET /healthz: 200 {"status":"ok"} when everything is up; 200
// {"status":"degraded","reasons":[…]} while the edge serves from what it
// holds (the config snapshot, the key cache) with something it follows down;
// 503 only before the first configuration is loaded and while shutting down,
// the two states in which taking the edge out of a load balancer helps.
// Pure, for tests.
HttpResponse ReadinessAnswer(const ReadinessState& state);

// The live inputs of ReadinessAnswer. Thread-safe; every input is an atomic
// read or a channel state query (no RPC).
class EdgeReadiness {
 public:
  EdgeReadiness(const ConfigWatcher* config, const KeyCache* keys,
                std::shared_ptr<grpc::Channel> balancer, std::shared_ptr<grpc::Channel> adapter);

  // SIGTERM: readiness 503 from now on, while the listeners drain.
  void SetShuttingDown() { shutting_down_.store(true); }

  HttpResponse Answer() const;

 private:
  const ConfigWatcher* const config_;
  const KeyCache* const keys_;
  const std::shared_ptr<grpc::Channel> balancer_;
  const std::shared_ptr<grpc::Channel> adapter_;
  std::atomic<bool> shutting_down_{false};
};

}  // namespace tg::edge
