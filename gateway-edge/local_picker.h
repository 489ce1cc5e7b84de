#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "tg/balancer/health_policy.h"
#include "tg/balancer/pick_plan.h"
#include "tg/balancer/random.h"
#include "tg/common/clock.h"
#include "tg/common/config_snapshot.h"
#include "tg/v1/balancer.pb.h"

namespace tg::edge {

// Lookaside balancing: the edge picks a target itself, with tg-balancer's
// algorithm library (PickPlan), from its own config snapshot and the health
// verdicts tg-balancer streams (WatchHealth). A proxied request makes no Pick
// RPC; outcomes still go to tg-balancer (ReportBatch), which stays the
// authority on health and tells every edge what it decided.
//
// What is local to each edge: round-robin position, least-connections
// counts (this edge's requests in flight) and trial claims (each edge may
// send one trial request to a target whose ejection is over). What is shared:
// ejections and their deadlines.
//
// Holds bridge the time a verdict takes to come back (a report's trip to
// tg-balancer and the verdict's back, a millisecond or two; longer when
// tg-balancer is away): on an upstream with passive health checks, a target
// that fails `threshold` times in a row on this edge, or whose trial fails
// here, is held out of rotation on this edge for kTrialHoldMs, as tg-balancer
// is about to decide. tg-balancer's decision about the target replaces the
// hold: a verdict that ejects it (its deadline then rules), or one that no
// longer lists it after listing it (restored, or its count reset: other
// edges' successes count too); a mere change of its failure count does not.
// After kTrialHoldMs without a decision the target gets a trial, whose
// success ends the hold. So a client sending requests one after another sees a failing
// target ejected after exactly `threshold` failures, as with a Pick per
// request, and an edge cut off from tg-balancer still keeps failing targets
// out.
//
// Thread-safe. A pick is one atomic load and PickPlan::Pick; plans are
// rebuilt only when an upstream's config or verdicts change.
class LocalPicker {
 public:
  static constexpr int64_t kTrialHoldMs = 5000;

  LocalPicker(const Clock* clock, balancer::Random* random);
  LocalPicker(const LocalPicker&) = delete;
  LocalPicker& operator=(const LocalPicker&) = delete;

  // Replaces every verdict (one WatchHealth message). Upstreams whose
  // verdicts changed get new plans at once.
  void SetVerdicts(const tg::v1::HealthVerdicts& verdicts);
  // Verdict messages applied so far.
  uint64_t verdict_updates() const { return verdict_updates_.load(); }

  struct Entry;

  // One pick: holds an in-flight slot (and, for a trial, the trial claim)
  // until Release or destruction, and keeps the target alive.
  class Choice {
   public:
    Choice() = default;
    Choice(Choice&& o) noexcept { *this = std::move(o); }
    Choice& operator=(Choice&& o) noexcept;
    ~Choice();  // Release(kNeutral) if still held

    balancer::PickStatus status() const { return status_; }
    bool ok() const { return status_ == balancer::PickStatus::kOk && entry_ != nullptr; }
    const tg::v1::Target& target() const;
    const std::string& effective_model() const { return effective_model_; }
    bool degraded() const { return degraded_; }
    bool trial() const { return trial_; }
    // Gives the slot back and counts the verdict towards a hold (see
    // above). Returns whether tg-balancer needs to hear of the outcome: every
    // failure; a success only where it changes something (the target is
    // ejected or in trial, tg-balancer counts failures for it, or this edge
    // saw it fail since its last success); never a neutral outcome. So in the
    // steady state, every target healthy, a request costs tg-balancer
    // nothing. Idempotent (false after the first call).
    bool Release(balancer::Verdict verdict);

   private:
    friend class LocalPicker;
    LocalPicker* picker_ = nullptr;
    std::shared_ptr<const Entry> entry_;
    uint32_t index_ = 0;
    balancer::PickStatus status_ = balancer::PickStatus::kNoEligibleTarget;
    std::string effective_model_;
    bool degraded_ = false;
    bool trial_ = false;
  };

  // Picks among `upstream`'s targets (from the caller's snapshot, at
  // `revision`) as tg-balancer's Pick would; query.now_ms is the picker's
  // clock. status() tells why nothing was picked.
  Choice Pick(const ConfigSnapshot::Ptr<tg::v1::Upstream>& upstream, int64_t revision,
              const balancer::PickQuery& query);

  // For tests: the plan an upstream is picked from now (nullptr before its
  // first pick).
  std::shared_ptr<balancer::PickPlan> PlanOf(std::string_view upstream_id) const;

 private:
  struct Runtime {
    std::atomic<int64_t> in_flight{0};
    std::atomic<bool> trial_claim{false};
    std::atomic<int32_t> failures{0};  // consecutive, on this edge (towards a hold)
    std::atomic<bool> failed{false};   // a failure here since the last success
  };
  // What tg-balancer says about one target of an upstream.
  struct TargetVerdict {
    int64_t ejected_until_ms = 0;  // 0: in rotation
    int32_t failures = 0;          // consecutive failures counted
    bool operator==(const TargetVerdict&) const = default;
  };
  using Verdicts = std::unordered_map<std::string, TargetVerdict>;  // by target id
  struct StringHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  template <typename T>
  using Map = std::unordered_map<std::string, T, StringHash, std::equal_to<>>;
  using Table = Map<std::shared_ptr<const Entry>>;

  // With mu_ held.
  std::shared_ptr<const Entry> BuildLocked(const ConfigSnapshot::Ptr<tg::v1::Upstream>& upstream,
                                           int64_t revision, const Entry* previous);
  void PublishLocked(const std::shared_ptr<const Entry>& entry);
  bool ReleaseChoice(const Choice& choice, balancer::Verdict verdict);

  const Clock* const clock_;
  balancer::Random* const random_;
  std::atomic<std::shared_ptr<const Table>> table_;
  std::atomic<uint64_t> verdict_updates_{0};

  std::mutex mu_;            // one rebuild at a time; guards what follows
  Map<Verdicts> verdicts_;   // by upstream id, as last streamed
  Map<Map<int64_t>> holds_;  // upstream -> target -> held until
};

struct LocalPicker::Entry {
  ConfigSnapshot::Ptr<tg::v1::Upstream> config;
  int64_t revision = 0;                           // of the snapshot the config came from
  std::vector<std::shared_ptr<Runtime>> runtime;  // by target index
  std::vector<int64_t> ejected_until;             // by target index, as planned
  std::vector<bool> failing;                      // by target index: tg-balancer counts failures
  std::shared_ptr<balancer::PickPlan> plan;
};

}  // namespace tg::edge
