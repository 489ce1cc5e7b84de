#pragma once

#include <grpcpp/support/status.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "tg/balancer/algorithm.h"
#include "tg/balancer/clock.h"
#include "tg/balancer/health_policy.h"
#include "tg/balancer/health_store.h"
#include "tg/balancer/pick_plan.h"
#include "tg/balancer/pick_registry.h"
#include "tg/balancer/random.h"
#include "tg/balancer/upstream_source.h"
#include "tg/v1/balancer.pb.h"

namespace tg::balancer {

struct BalancerOptions {
  // A pick never reported gives back its in-flight slot (and trial claim)
  // after this long. Longer than any provider call, streaming included.
  std::chrono::milliseconds pick_timeout{std::chrono::minutes(5)};
  // health_checks.threshold / .interval when an upstream leaves them unset.
  int32_t default_threshold = 3;
  std::chrono::seconds default_interval{60};
  // Random part of pick ids; 0 draws one.
  uint32_t instance_id = 0;
};

// The counters of one target that outlive plans and config changes.
struct TargetRuntime {
  std::atomic<int64_t> in_flight{0};
  std::atomic<bool> trial_claim{false};
  // The last failure reported to this replica (GetHealth's last_error):
  // outcome (tg.v1.Outcome), HTTP status and when, 0 when none yet.
  std::atomic<int32_t> last_failure_outcome{0};
  std::atomic<int32_t> last_failure_status{0};
  std::atomic<int64_t> last_failure_ms{0};
  // Active probes (this replica's): at most one in flight; when the last
  // one was sent (or left to another replica), and what it found.
  std::atomic<bool> probe_in_flight{false};
  std::atomic<int64_t> last_probe_ms{0};
  std::mutex probe_mu;            // guards last_probe_result
  std::string last_probe_result;  // "healthy", "http_503", "connect", …; "" before the first
  std::atomic<int64_t> last_probe_result_ms{0};
};

// A probe the prober should send now (Balancer::DueProbes).
struct ProbeJob {
  std::string upstream_id;
  tg::v1::Target target;  // public: no credentials (the adapter holds them)
  std::string path;
  std::map<std::string, std::string> headers;
  int64_t probe_interval_ms = 0;
  int64_t config_revision = 0;  // the adapter waits for it, as for an Invoke
  std::shared_ptr<TargetRuntime> runtime;
};

// One upstream as the balancer holds it. Replaced as a whole when its config
// changes (in-flight counters and health carry over by target id).
class UpstreamEntry {
 public:
  std::string id;
  std::shared_ptr<const tg::v1::Upstream> config;
  Algorithm algorithm = Algorithm::kRoundRobin;
  HealthOptions health;
  std::vector<tg::v1::Target> public_targets;  // as PickResponse shows them: no credentials
  std::vector<std::shared_ptr<TargetRuntime>> runtime;
  std::unordered_map<std::string, uint32_t> index;  // target id -> index

  std::mutex mu;                                // guards states and plan rebuilds
  std::vector<TargetHealthState> states;        // passive health, local view
  std::atomic<std::shared_ptr<PickPlan>> plan;  // read lock-free by every pick
};

// tg-balancer's logic without gRPC: upstreams from config, picks, reports,
// passive health (local view, shared through a HealthStore), GetHealth.
//
// Threads: Pick, Report and GetHealth run concurrently on gRPC threads and
// never block on I/O (the store queues). ApplyConfig runs on the config
// source's thread, OnSharedState/LocalState on the store's threads.
//
// Error policy (tg.v1.BalancerService): NOT_FOUND unknown upstream;
// FAILED_PRECONDITION no target serves the model, or every eligible one was
// already tried (retrying cannot help); UNAVAILABLE configuration not loaded
// up to the revision the caller has seen (retry); INVALID_ARGUMENT malformed
// report.
class Balancer final : public HealthSink {
 public:
  Balancer(const Clock* clock, Random* random, HealthStore* store, BalancerOptions options = {});
  ~Balancer() override = default;
  Balancer(const Balancer&) = delete;
  Balancer& operator=(const Balancer&) = delete;

  // Replaces the configuration; an upstream whose config did not change keeps
  // its plan (and round-robin position).
  void ApplyConfig(const UpstreamSet& set);
  bool loaded() const { return directory_.load()->loaded; }
  int64_t revision() const { return directory_.load()->revision; }

  grpc::Status Pick(const tg::v1::PickRequest& request, tg::v1::PickResponse* response);
  grpc::Status Report(const tg::v1::ReportRequest& request);
  grpc::Status GetHealth(const tg::v1::GetHealthRequest& request,
                         tg::v1::GetHealthResponse* response);

  // Gives back the slots of picks older than pick_timeout; returns how many.
  size_t ReleaseExpiredPicks();
  size_t outstanding_picks() const { return picks_.size(); }

  // HealthSink (called by the store).
  void OnSharedState(const std::string& upstream_id, const std::string& target_id,
                     const TargetHealthState& state) override;
  std::optional<TargetHealthState> LocalState(const std::string& upstream_id,
                                              const std::string& target_id) override;

  // Every configured target with its circuit's phase now (kHealthy when
  // its upstream has no passive health checks): what /metrics shows as
  // tg_balancer_target_healthy (not kEjected) and tg_balancer_target_state.
  void VisitTargets(
      const std::function<void(const std::string& upstream_id, const std::string& target_id,
                               HealthPhase phase)>& fn) const;

  // Active probes. The targets due for one at `now_ms`: of upstreams with
  // passive checks and a health_checks.path, those ejected (circuit open,
  // before ejected_until), with no probe in flight and none sent for
  // probe_interval. Allocates; the prober calls it a few times a second.
  std::vector<ProbeJob> DueProbes(int64_t now_ms) const;
  // A probe's answer. Healthy: an open circuit turns half-open now
  // (Verdict::kProbeHealthy, applied locally and through the store like a
  // report's verdict, so every replica follows). Unhealthy: the ejection
  // stays as it is. `result` is what GetHealth shows as last_probe_result.
  void OnProbeResult(const std::string& upstream_id, const std::string& target_id, bool healthy,
                     const std::string& result);
  // Lookaside balancing (WatchHealth). Every target of an upstream with
  // passive checks that is ejected or has failures counted, with the config
  // revision: what a client needs, besides its own config, to pick as Pick
  // would and to know which successes are worth reporting.
  void CollectVerdicts(tg::v1::HealthVerdicts* out) const;
  // Grows whenever a target's ejection changes, or its failure count leaves
  // or returns to zero (or config rebuilds a plan).
  uint64_t health_generation() const { return health_generation_.load(); }
  // Called after each such change, with the balancer's locks held: it must
  // only wake someone (who then calls CollectVerdicts). One listener; set it
  // before serving and clear it (nullptr) before it goes away.
  void SetHealthListener(std::function<void()> listener);

  // Ejections decided by this replica since start.
  uint64_t ejections() const { return ejections_.load(std::memory_order_relaxed); }

  // For tests and benchmarks.
  std::shared_ptr<PickPlan> PlanOf(std::string_view upstream_id) const;

 private:
  struct StringHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  struct Directory {
    bool loaded = false;
    int64_t revision = 0;
    std::unordered_map<std::string, std::shared_ptr<UpstreamEntry>, StringHash, std::equal_to<>>
        upstreams;
  };

  std::shared_ptr<UpstreamEntry> Find(std::string_view upstream_id) const;
  std::shared_ptr<UpstreamEntry> BuildEntry(const std::shared_ptr<const tg::v1::Upstream>& config,
                                            UpstreamEntry* previous);
  HealthOptions HealthOptionsOf(const tg::v1::Upstream& u) const;
  // With entry->mu held.
  void RebuildPlanLocked(UpstreamEntry* entry);
  void NotifyHealthChanged();
  void ReleasePick(const PickRegistry::Record& record);
  void FollowTargets(const Directory& directory);

  const Clock* const clock_;
  Random* const random_;
  HealthStore* const store_;
  const BalancerOptions options_;
  PickRegistry picks_;

  std::atomic<std::shared_ptr<const Directory>> directory_;
  std::mutex config_mu_;  // one ApplyConfig or shared-state update at a time
  std::atomic<uint64_t> ejections_{0};
  std::atomic<uint64_t> health_generation_{0};
  std::mutex listener_mu_;
  std::function<void()> health_listener_;
};

}  // namespace tg::balancer
