#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "tg/balancer/health_policy.h"

namespace tg::balancer {

// One target whose shared health a balancer follows.
struct FollowedTarget {
  std::string upstream_id;
  std::string target_id;
  int64_t interval_ms = 60'000;  // its upstream's ejection interval (for key TTLs)
};

// A verdict a replica applied to its local view, to be applied to the shared
// state as well.
struct HealthEvent {
  std::string upstream_id;
  std::string target_id;
  Verdict verdict = Verdict::kNeutral;
  int64_t now_ms = 0;
  HealthOptions options;
};

// Where shared states land: the balancer's local view.
class HealthSink {
 public:
  virtual ~HealthSink() = default;
  // The shared state of a target (written by any replica, or loaded). The
  // sink adopts it unless it holds a newer version.
  virtual void OnSharedState(const std::string& upstream_id, const std::string& target_id,
                             const TargetHealthState& state) = 0;
  // The local state of a target, for resynchronisation (nullopt: not followed).
  virtual std::optional<TargetHealthState> LocalState(const std::string& upstream_id,
                                                      const std::string& target_id) = 0;
};

struct HealthStoreStatus {
  bool degraded = false;  // shared state unreachable: the balancer runs on its local view
  std::string reason;
};

// Passive-health state shared by every balancer replica. Implementations
// never block their callers: Record and Follow queue work for the store's own
// threads, and a store that cannot reach its backend says so in status()
// while the balancer carries on from its local view.
class HealthStore {
 public:
  virtual ~HealthStore() = default;

  // Starts following; `sink` outlives the store's Stop.
  virtual void Start(HealthSink* sink) = 0;
  // Joins the store's threads; the sink is not called afterwards. Idempotent.
  virtual void Stop() = 0;

  // Apply one verdict to the shared state and publish the result.
  virtual void Record(HealthEvent event) = 0;
  // The targets to follow from now on (replaces the previous set); the shared
  // states of targets new to the set are loaded.
  virtual void Follow(std::vector<FollowedTarget> targets) = 0;

  // Active probes: whether this replica should probe the target now, so
  // that replicas together probe it about once per `ttl_ms` (the first to ask
  // gets it for that long). Blocks for at most one round trip to the backend:
  // call it from the prober's thread only. A store that cannot tell (Redis
  // away) answers true: a probe too many is cheap, a probe too few is a
  // target left out for nothing.
  virtual bool ClaimProbe(const std::string& upstream_id, const std::string& target_id,
                          int64_t ttl_ms) = 0;

  virtual HealthStoreStatus status() const = 0;
  // Called (from a store thread) whenever status() changes.
  virtual void SetStatusListener(std::function<void(const HealthStoreStatus&)> listener) = 0;
};

// Keeps nothing: each replica on its own (tg-balancer without --redis-url).
class LocalOnlyHealthStore final : public HealthStore {
 public:
  void Start(HealthSink*) override {}
  void Stop() override {}
  void Record(HealthEvent) override {}
  void Follow(std::vector<FollowedTarget>) override {}
  bool ClaimProbe(const std::string&, const std::string&, int64_t) override { return true; }
  HealthStoreStatus status() const override { return {}; }
  void SetStatusListener(std::function<void(const HealthStoreStatus&)>) override {}
};

}  // namespace tg::balancer
