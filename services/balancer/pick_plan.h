#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "tg/balancer/algorithm.h"
#include "tg/balancer/least_connections.h"
#include "tg/balancer/random.h"
#include "tg/balancer/smooth_weighted_round_robin.h"
#include "tg/balancer/weighted_random.h"

namespace tg::balancer {

// One target as a plan sees it: what config says plus what health says.
struct PlanTarget {
  std::string id;
  int32_t weight = 1;    // 1..100
  int32_t priority = 1;  // lower is preferred
  std::string default_model;
  std::vector<std::string> models;
  bool assistant_prefill = false;  // Target.assistant_prefill
  // Passive health took the target out of rotation. From ejected_until_ms on
  // its trial is due: the next pick that reaches its priority group tries it.
  bool ejected = false;
  int64_t ejected_until_ms = 0;
  // Counters that outlive the plan (plans are rebuilt on every config or
  // health change; in-flight requests and a trial in progress are not reset
  // by that). nullptr: the plan keeps its own, as tests and benchmarks do.
  std::atomic<int64_t>* in_flight = nullptr;
  std::atomic<bool>* trial_claim = nullptr;
};

struct PickQuery {
  std::string_view model;                     // requested; empty: each target's default
  std::span<const std::string_view> exclude;  // target ids the request already tried
  int64_t now_ms = 0;
  // A target to retry (PickRequest.prefer_target_id): chosen when it serves
  // the model, is not excluded and is not ejected; otherwise ignored.
  std::string_view prefer;
  // Effective models not to pick (PickRequest.exclude_models).
  std::span<const std::string_view> exclude_models;
  // Only targets with assistant_prefill (PickRequest.require_assistant_prefill).
  bool require_assistant_prefill = false;
};

enum class PickStatus {
  kOk,
  kNoEligibleTarget,  // no target serves the model
  kAllExcluded,       // targets serve it, but the request tried every one
};

struct PickChoice {
  PickStatus status = PickStatus::kOk;
  uint32_t target = 0;               // index into targets()
  std::string_view effective_model;  // into the plan, or into PickQuery::model
  bool degraded = false;             // every eligible target that is left is ejected
  bool trial = false;                // the trial of an ejected target: its report decides
};

// The effective model of a request for `model` on `target` (DESIGN §5), or
// nullopt when the target is not eligible:
//   - the target lists the model: the model itself;
//   - else it has a default_model: the default (the seeds' gpt-4 request on an
//     anthropic target with default_model claude-3-sonnet becomes claude-3-sonnet);
//   - else it lists no models at all: the model itself, whatever it is.
// A request without a model gets default_model, or the first listed model
// when there is no default, or nothing (the provider's own default).
std::optional<std::string_view> EffectiveModel(const PlanTarget& target, std::string_view model);

// Everything one upstream's picks need, precomputed from its targets and
// their health: rebuilt whenever either changes, never on the pick path.
//
// Layout. Targets are grouped by priority (ascending). Within a group, a
// request's model decides which targets are eligible; eligibility depends on
// the model only through the "restricted" targets (models listed and no
// default_model), so requests fall into few classes:
//   - no model: every target;
//   - a model some restricted target lists: the unrestricted targets plus the
//     restricted ones listing it;
//   - any other model: the unrestricted targets.
// Each (group, class) has a pool of its healthy targets, and, in groups with
// ejected targets, a pool of all of them (for degraded picks). Each pool holds
// the upstream's algorithm over its members.
//
// A pick: look up the class (one hash lookup), then for each group in order:
// an ejected target whose trial is due (one comparison against the group's
// earliest deadline unless one is), else the healthy pool. If no group has a
// healthy target left, the first group with any eligible target answers,
// degraded. O(groups + log n) and no heap allocation (unless a request
// excludes more than kInlineExcluded targets).
//
// Thread-safe: picks run concurrently. Round robin and random need no lock;
// least-connections serialises picks and load updates on one mutex.
class PickPlan {
 public:
  static constexpr size_t kInlineExcluded = 32;

  PickPlan(Algorithm algorithm, std::vector<PlanTarget> targets);
  PickPlan(const PickPlan&) = delete;
  PickPlan& operator=(const PickPlan&) = delete;

  // Chooses a target and takes an in-flight slot on it (and, for a trial, the
  // trial claim); Release gives them back.
  PickChoice Pick(const PickQuery& query, Random& random);
  void Release(uint32_t target, bool trial);

  Algorithm algorithm() const { return algorithm_; }
  const std::vector<PlanTarget>& targets() const { return targets_; }
  int FindTarget(std::string_view id) const;  // -1 when absent
  int64_t in_flight(uint32_t target) const { return in_flight_[target]->load(); }
  bool trial_claimed(uint32_t target) const { return trial_claim_[target]->load(); }

 private:
  struct Pool {
    std::vector<uint32_t> members;   // target indices, ascending
    std::vector<int32_t> member_of;  // target index -> member index, -1 if not a member
    std::unique_ptr<SmoothWeightedRoundRobin> round_robin;
    std::unique_ptr<LeastConnections> least_connections;
    std::unique_ptr<WeightedRandom> weighted_random;
  };
  struct Group {
    int32_t priority = 1;
    std::vector<uint32_t> targets;  // every target of the group
    std::vector<uint32_t> ejected;  // its ejected targets
    int64_t earliest_trial_ms = std::numeric_limits<int64_t>::max();
    std::vector<Pool> healthy;  // per class
    std::vector<Pool> all;      // per class; empty when nothing in the group is ejected
  };
  struct StringHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  using StringIndex = std::unordered_map<std::string, uint32_t, StringHash, std::equal_to<>>;

  static constexpr uint32_t kClassOtherModel = 0;
  static constexpr uint32_t kClassNoModel = 1;

  bool Eligible(uint32_t target, uint32_t cls) const;
  uint32_t ClassOf(std::string_view model) const;
  void BuildPool(Pool* pool, const std::vector<uint32_t>& members);
  // A member of `pool` chosen by the algorithm, or -1 when every member is in
  // `excluded` (target indices, ascending).
  int64_t PickFrom(Pool& pool, std::span<const uint32_t> excluded, Random& random);
  void Acquire(uint32_t target);
  void SetLoadLocked(uint32_t target);

  const Algorithm algorithm_;
  std::vector<PlanTarget> targets_;
  std::vector<Group> groups_;              // ascending priority
  StringIndex target_index_;               // id -> target
  StringIndex class_of_model_;             // models listed by restricted targets -> class
  std::vector<std::string> class_models_;  // class -> its model ("" for the first two)
  std::vector<bool> unrestricted_;         // per target
  std::vector<std::atomic<int64_t>*> in_flight_;
  std::vector<std::atomic<bool>*> trial_claim_;
  std::unique_ptr<std::atomic<int64_t>[]> own_in_flight_;
  std::unique_ptr<std::atomic<bool>[]> own_trial_claim_;
  // least-connections: every (tree, member) holding a target's load.
  std::vector<std::vector<std::pair<LeastConnections*, uint32_t>>> load_slots_;
  std::mutex load_mu_;
};

}  // namespace tg::balancer
