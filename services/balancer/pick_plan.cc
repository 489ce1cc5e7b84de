#include "tg/balancer/pick_plan.h"

#include <algorithm>
#include <array>
#include <map>

namespace tg::balancer {
namespace {

bool Lists(const PlanTarget& t, std::string_view model) {
  return std::find(t.models.begin(), t.models.end(), model) != t.models.end();
}

// The excluded target indices of one pick: on the stack unless a request
// excludes an unusual number of targets.
class ExcludedTargets {
 public:
  void Add(uint32_t target) {
    if (size_ < inline_.size()) {
      inline_[size_++] = target;
      return;
    }
    if (overflow_.empty()) overflow_.assign(inline_.begin(), inline_.end());
    overflow_.push_back(target);
    ++size_;
  }
  // Sorted and unique.
  std::span<const uint32_t> Finish() {
    uint32_t* begin = overflow_.empty() ? inline_.data() : overflow_.data();
    std::sort(begin, begin + size_);
    size_ = static_cast<size_t>(std::unique(begin, begin + size_) - begin);
    return {begin, size_};
  }

 private:
  std::array<uint32_t, PickPlan::kInlineExcluded> inline_;
  std::vector<uint32_t> overflow_;
  size_t size_ = 0;
};

}  // namespace

std::optional<std::string_view> EffectiveModel(const PlanTarget& t, std::string_view model) {
  if (model.empty()) {
    if (!t.default_model.empty()) return std::string_view(t.default_model);
    if (!t.models.empty()) return std::string_view(t.models.front());
    return std::string_view();
  }
  if (Lists(t, model)) return model;
  if (!t.default_model.empty()) return std::string_view(t.default_model);
  if (t.models.empty()) return model;
  return std::nullopt;
}

PickPlan::PickPlan(Algorithm algorithm, std::vector<PlanTarget> targets)
    : algorithm_(algorithm), targets_(std::move(targets)) {
  const size_t n = targets_.size();
  own_in_flight_ = std::make_unique<std::atomic<int64_t>[]>(n);
  own_trial_claim_ = std::make_unique<std::atomic<bool>[]>(n);
  in_flight_.resize(n);
  trial_claim_.resize(n);
  unrestricted_.resize(n);
  load_slots_.resize(n);
  for (uint32_t i = 0; i < n; ++i) {
    PlanTarget& t = targets_[i];
    t.weight = std::clamp(t.weight, 1, 100);
    in_flight_[i] = t.in_flight != nullptr ? t.in_flight : &own_in_flight_[i];
    trial_claim_[i] = t.trial_claim != nullptr ? t.trial_claim : &own_trial_claim_[i];
    target_index_.emplace(t.id, i);
    unrestricted_[i] = !t.default_model.empty() || t.models.empty();
  }

  // Classes: 0 = a model no restricted target lists, 1 = no model, then one
  // per model that restricted targets list (sorted, so plans are reproducible).
  class_models_ = {"", ""};
  std::map<std::string, uint32_t> listed;
  for (uint32_t i = 0; i < n; ++i) {
    if (unrestricted_[i]) continue;
    for (const auto& m : targets_[i].models) listed.emplace(m, 0);
  }
  for (auto& [model, cls] : listed) {
    cls = static_cast<uint32_t>(class_models_.size());
    class_models_.push_back(model);
    class_of_model_.emplace(model, cls);
  }
  const size_t classes = class_models_.size();

  std::map<int32_t, std::vector<uint32_t>> by_priority;
  for (uint32_t i = 0; i < n; ++i) by_priority[targets_[i].priority].push_back(i);
  groups_.reserve(by_priority.size());
  for (auto& [priority, members] : by_priority) {
    Group& g = groups_.emplace_back();
    g.priority = priority;
    g.targets = members;
    for (uint32_t t : members) {
      if (!targets_[t].ejected) continue;
      g.ejected.push_back(t);
      g.earliest_trial_ms = std::min(g.earliest_trial_ms, targets_[t].ejected_until_ms);
    }
    g.healthy.resize(classes);
    if (!g.ejected.empty()) g.all.resize(classes);
    for (uint32_t cls = 0; cls < classes; ++cls) {
      std::vector<uint32_t> healthy, all;
      for (uint32_t t : members) {
        if (!Eligible(t, cls)) continue;
        all.push_back(t);
        if (!targets_[t].ejected) healthy.push_back(t);
      }
      BuildPool(&g.healthy[cls], healthy);
      if (!g.ejected.empty()) BuildPool(&g.all[cls], all);
    }
  }
}

bool PickPlan::Eligible(uint32_t target, uint32_t cls) const {
  if (cls == kClassNoModel || unrestricted_[target]) return true;
  if (cls == kClassOtherModel) return false;
  return Lists(targets_[target], class_models_[cls]);
}

uint32_t PickPlan::ClassOf(std::string_view model) const {
  if (model.empty()) return kClassNoModel;
  auto it = class_of_model_.find(model);
  return it == class_of_model_.end() ? kClassOtherModel : it->second;
}

void PickPlan::BuildPool(Pool* pool, const std::vector<uint32_t>& members) {
  pool->members = members;
  if (members.empty()) return;
  pool->member_of.assign(targets_.size(), -1);
  std::vector<int32_t> weights;
  weights.reserve(members.size());
  for (size_t m = 0; m < members.size(); ++m) {
    pool->member_of[members[m]] = static_cast<int32_t>(m);
    weights.push_back(targets_[members[m]].weight);
  }
  switch (algorithm_) {
    case Algorithm::kRoundRobin:
    case Algorithm::kWeightedRoundRobin:
      pool->round_robin = std::make_unique<SmoothWeightedRoundRobin>(weights);
      // For retries that exclude members: see Pick.
      pool->weighted_random = std::make_unique<WeightedRandom>(weights);
      break;
    case Algorithm::kLeastConnections:
      pool->least_connections = std::make_unique<LeastConnections>(weights);
      for (size_t m = 0; m < members.size(); ++m) {
        const uint32_t t = members[m];
        load_slots_[t].emplace_back(pool->least_connections.get(), static_cast<uint32_t>(m));
        pool->least_connections->SetLoad(static_cast<uint32_t>(m), in_flight_[t]->load());
      }
      break;
    case Algorithm::kRandom:
      pool->weighted_random = std::make_unique<WeightedRandom>(weights);
      break;
  }
}

int PickPlan::FindTarget(std::string_view id) const {
  auto it = target_index_.find(id);
  return it == target_index_.end() ? -1 : static_cast<int>(it->second);
}

int64_t PickPlan::PickFrom(Pool& pool, std::span<const uint32_t> excluded, Random& random) {
  if (pool.members.empty()) return -1;
  // The pool's excluded members, ascending because member_of is monotonic.
  std::array<uint32_t, kInlineExcluded> inline_members;
  std::vector<uint32_t> overflow;
  uint32_t* members = inline_members.data();
  if (excluded.size() > inline_members.size()) {
    overflow.resize(excluded.size());
    members = overflow.data();
  }
  size_t k = 0;
  for (uint32_t t : excluded) {
    if (pool.member_of[t] >= 0) members[k++] = static_cast<uint32_t>(pool.member_of[t]);
  }
  if (k == pool.members.size()) return -1;
  const ExcludedMembers skip(members, k);
  uint32_t m = 0;
  if (pool.round_robin && k == 0) {
    m = pool.round_robin->Next();
  } else if (pool.weighted_random) {
    // Round robin with members excluded (a retry) draws weight-proportionally
    // among the rest: the schedule's order belongs to first attempts, and a
    // retry's exclusion set is its own.
    m = pool.weighted_random->Pick(random, skip);
  } else {
    m = pool.least_connections->Pick(random, skip);  // load_mu_ held by Pick
  }
  return pool.members[m];
}

void PickPlan::SetLoadLocked(uint32_t target) {
  const int64_t load = in_flight_[target]->load(std::memory_order_relaxed);
  for (auto& [tree, member] : load_slots_[target]) tree->SetLoad(member, load);
}

void PickPlan::Acquire(uint32_t target) {
  in_flight_[target]->fetch_add(1, std::memory_order_relaxed);
  if (algorithm_ == Algorithm::kLeastConnections) SetLoadLocked(target);
}

PickChoice PickPlan::Pick(const PickQuery& query, Random& random) {
  ExcludedTargets excluded_builder;
  for (std::string_view id : query.exclude) {
    auto it = target_index_.find(id);
    if (it != target_index_.end()) excluded_builder.Add(it->second);
  }
  if (!query.exclude_models.empty()) {
    for (uint32_t t = 0; t < targets_.size(); ++t) {
      auto model = EffectiveModel(targets_[t], query.model);
      if (model && std::find(query.exclude_models.begin(), query.exclude_models.end(), *model) !=
                       query.exclude_models.end()) {
        excluded_builder.Add(t);
      }
    }
  }
  if (query.require_assistant_prefill) {
    for (uint32_t t = 0; t < targets_.size(); ++t) {
      if (!targets_[t].assistant_prefill) excluded_builder.Add(t);
    }
  }
  const std::span<const uint32_t> excluded = excluded_builder.Finish();
  const uint32_t cls = ClassOf(query.model);

  // Least-connections must see its own previous pick's +1, so the choice and
  // the load update form one critical section. The other algorithms need none.
  std::unique_lock<std::mutex> lock;
  if (algorithm_ == Algorithm::kLeastConnections) lock = std::unique_lock(load_mu_);

  auto choose = [&](uint32_t target, bool degraded, bool trial) {
    Acquire(target);
    PickChoice c;
    c.target = target;
    c.effective_model = EffectiveModel(targets_[target], query.model).value_or("");
    c.degraded = degraded;
    c.trial = trial;
    return c;
  };

  if (!query.prefer.empty()) {
    if (auto it = target_index_.find(query.prefer); it != target_index_.end()) {
      const uint32_t t = it->second;
      if (Eligible(t, cls) && !targets_[t].ejected &&
          !std::binary_search(excluded.begin(), excluded.end(), t)) {
        return choose(t, false, false);
      }
    }
  }
  for (Group& g : groups_) {
    if (query.now_ms >= g.earliest_trial_ms) {
      for (uint32_t t : g.ejected) {
        if (targets_[t].ejected_until_ms > query.now_ms || !Eligible(t, cls) ||
            std::binary_search(excluded.begin(), excluded.end(), t)) {
          continue;
        }
        bool expected = false;
        if (trial_claim_[t]->compare_exchange_strong(expected, true)) return choose(t, false, true);
      }
    }
    const int64_t t = PickFrom(g.healthy[cls], excluded, random);
    if (t >= 0) return choose(static_cast<uint32_t>(t), false, false);
  }
  // Every eligible target left is ejected (or on trial elsewhere): answer
  // anyway, best priority first, rather than fail the request.
  for (Group& g : groups_) {
    if (g.all.empty()) continue;
    const int64_t t = PickFrom(g.all[cls], excluded, random);
    if (t >= 0) return choose(static_cast<uint32_t>(t), true, false);
  }
  PickChoice none;
  none.status = PickStatus::kNoEligibleTarget;
  for (uint32_t t = 0; t < targets_.size(); ++t) {
    if (Eligible(t, cls)) {
      none.status = PickStatus::kAllExcluded;
      break;
    }
  }
  return none;
}

void PickPlan::Release(uint32_t target, bool trial) {
  if (trial) trial_claim_[target]->store(false);
  std::unique_lock<std::mutex> lock;
  if (algorithm_ == Algorithm::kLeastConnections) lock = std::unique_lock(load_mu_);
  in_flight_[target]->fetch_sub(1, std::memory_order_relaxed);
  if (algorithm_ == Algorithm::kLeastConnections) SetLoadLocked(target);
}

}  // namespace tg::balancer
