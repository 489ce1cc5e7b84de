#include "tg/edge/local_picker.h"

#include <google/protobuf/util/time_util.h>

#include <algorithm>

#include "tg/balancer/algorithm.h"
#include "tg/balancer/plan_target.h"

namespace tg::edge {

using balancer::PickPlan;
using balancer::PlanTarget;
using balancer::Verdict;

LocalPicker::LocalPicker(const Clock* clock, balancer::Random* random)
    : clock_(clock), random_(random), table_(std::make_shared<const Table>()) {}

std::shared_ptr<const LocalPicker::Entry> LocalPicker::BuildLocked(
    const ConfigSnapshot::Ptr<tg::v1::Upstream>& upstream, int64_t revision,
    const Entry* previous) {
  auto e = std::make_shared<Entry>();
  e->config = upstream;
  e->revision = revision;
  const auto algorithm =
      balancer::ParseAlgorithm(upstream->algorithm()).value_or(balancer::Algorithm::kRoundRobin);
  const bool passive =
      upstream->health_checks().has_passive() && upstream->health_checks().passive();
  const Verdicts* verdicts = nullptr;
  if (auto it = verdicts_.find(upstream->id()); passive && it != verdicts_.end()) {
    verdicts = &it->second;
  }
  const Map<int64_t>* holds = nullptr;
  if (auto it = holds_.find(upstream->id()); passive && it != holds_.end()) holds = &it->second;

  std::vector<PlanTarget> targets;
  const int n = upstream->targets_size();
  targets.reserve(n);
  e->runtime.reserve(n);
  e->ejected_until.reserve(n);
  e->failing.reserve(n);
  for (int i = 0; i < n; ++i) {
    const tg::v1::Target& t = upstream->targets(i);
    int64_t until = 0;
    bool failing = false;
    if (verdicts != nullptr) {
      if (auto it = verdicts->find(t.id()); it != verdicts->end()) {
        until = it->second.ejected_until_ms;
        failing = it->second.failures > 0;
      }
    }
    if (holds != nullptr) {
      if (auto it = holds->find(t.id()); it != holds->end()) until = std::max(until, it->second);
    }
    // Counters carry over by target id; a trial claim does not outlive the
    // ejection it was made for.
    std::shared_ptr<Runtime> runtime;
    if (previous != nullptr) {
      for (int j = 0; j < previous->config->targets_size(); ++j) {
        if (previous->config->targets(j).id() != t.id()) continue;
        runtime = previous->runtime[j];
        if (previous->ejected_until[j] != until) runtime->trial_claim.store(false);
        break;
      }
    }
    if (!runtime) runtime = std::make_shared<Runtime>();
    PlanTarget p = balancer::PlanTargetOf(t);
    p.ejected = until > 0;
    p.ejected_until_ms = until;
    p.in_flight = &runtime->in_flight;
    p.trial_claim = &runtime->trial_claim;
    targets.push_back(std::move(p));
    e->runtime.push_back(std::move(runtime));
    e->ejected_until.push_back(until);
    e->failing.push_back(failing);
  }
  e->plan = std::make_shared<PickPlan>(algorithm, std::move(targets));
  return e;
}

void LocalPicker::PublishLocked(const std::shared_ptr<const Entry>& entry) {
  auto next = std::make_shared<Table>(*table_.load());
  (*next)[entry->config->id()] = entry;
  table_.store(std::move(next));
}

void LocalPicker::SetVerdicts(const tg::v1::HealthVerdicts& verdicts) {
  Map<Verdicts> next;
  for (const auto& v : verdicts.targets()) {
    TargetVerdict& t = next[v.upstream_id()][v.target_id()];
    if (v.has_ejected_until()) {
      // Seconds within Timestamp's range, so that the conversion cannot overflow.
      const int64_t seconds = std::clamp<int64_t>(
          v.ejected_until().seconds(), 0, google::protobuf::util::TimeUtil::kTimestampMaxSeconds);
      t.ejected_until_ms =
          std::max<int64_t>(1, seconds * 1000 + v.ejected_until().nanos() / 1'000'000);
    }
    t.failures = v.consecutive_failures();
  }
  std::lock_guard lock(mu_);
  verdict_updates_.fetch_add(1);
  auto table = std::make_shared<Table>(*table_.load());
  bool changed = false;
  for (auto& [id, entry] : *table) {
    auto before = verdicts_.find(id);
    auto after = next.find(id);
    const bool had = before != verdicts_.end(), has = after != next.end();
    if (had == has && (!had || before->second == after->second)) continue;
    // tg-balancer has decided about a held target: its ejection (or its
    // restoration) replaces the hold. A change of its failure count alone is
    // tg-balancer still counting: the hold stays.
    if (auto held = holds_.find(id); held != holds_.end()) {
      static const Verdicts kNone;
      const Verdicts& old_verdicts = had ? before->second : kNone;
      const Verdicts& new_verdicts = has ? after->second : kNone;
      std::erase_if(held->second, [&](const auto& hold) {
        auto o = old_verdicts.find(hold.first);
        auto n = new_verdicts.find(hold.first);
        const TargetVerdict was = o == old_verdicts.end() ? TargetVerdict{} : o->second;
        const TargetVerdict is = n == new_verdicts.end() ? TargetVerdict{} : n->second;
        return !(was == is) && (is.ejected_until_ms > 0 || n == new_verdicts.end());
      });
      if (held->second.empty()) holds_.erase(held);
    }
    if (has) {
      verdicts_[id] = after->second;
    } else {
      verdicts_.erase(id);
    }
    entry = BuildLocked(entry->config, entry->revision, entry.get());
    changed = true;
  }
  verdicts_ = std::move(next);  // upstreams not picked from yet included
  if (changed) table_.store(std::move(table));
}

LocalPicker::Choice LocalPicker::Pick(const ConfigSnapshot::Ptr<tg::v1::Upstream>& upstream,
                                      int64_t revision, const balancer::PickQuery& query) {
  auto table = table_.load();
  std::shared_ptr<const Entry> entry;
  if (auto it = table->find(upstream->id()); it != table->end() && it->second->config == upstream) {
    entry = it->second;
  } else {
    // First pick of this upstream, or its config changed. A caller holding
    // an older snapshot than the plan's (a request that began before the
    // change) gets a plan of its own config, sharing the counters, and the
    // published plan stays: what a request routes by and what it picks from
    // stay consistent, and plans do not flip between revisions.
    std::lock_guard lock(mu_);
    auto current = table_.load();
    auto found = current->find(upstream->id());
    if (found != current->end() && found->second->config == upstream) {
      entry = found->second;
    } else {
      const Entry* previous = found != current->end() ? found->second.get() : nullptr;
      entry = BuildLocked(upstream, revision, previous);
      if (previous == nullptr || previous->revision <= revision) PublishLocked(entry);
    }
  }
  balancer::PickQuery q = query;
  q.now_ms = clock_->NowMs();
  const balancer::PickChoice c = entry->plan->Pick(q, *random_);
  Choice choice;
  choice.status_ = c.status;
  if (c.status != balancer::PickStatus::kOk) return choice;
  choice.picker_ = this;
  choice.entry_ = std::move(entry);
  choice.index_ = c.target;
  choice.effective_model_ = std::string(c.effective_model);
  choice.degraded_ = c.degraded;
  choice.trial_ = c.trial;
  return choice;
}

namespace {

// Upstream.health_checks.threshold, with tg-balancer's default.
int32_t ThresholdOf(const tg::v1::Upstream& u) {
  const auto& hc = u.health_checks();
  return hc.has_threshold() && hc.threshold() > 0 ? hc.threshold() : 3;
}

}  // namespace

bool LocalPicker::ReleaseChoice(const Choice& choice, Verdict verdict) {
  const Entry& picked = *choice.entry_;
  const tg::v1::Upstream& upstream = *picked.config;
  const auto& runtime = picked.runtime[choice.index_];
  const std::string& target_id = upstream.targets(static_cast<int>(choice.index_)).id();
  const bool passive = upstream.health_checks().has_passive() && upstream.health_checks().passive();
  // Holds (see the header): a failed trial, or the threshold's worth of
  // consecutive failures on this edge of a target that was in rotation. A
  // successful trial ends a hold.
  bool hold = false;
  bool unhold = false;
  // Failures always matter (GetHealth shows the last one even without
  // passive checks); a success only where tg-balancer has something to reset.
  bool report = verdict == Verdict::kFailure;
  if (passive && verdict == Verdict::kFailure) {
    runtime->failed.store(true);
    const int32_t failures = runtime->failures.fetch_add(1) + 1;
    hold = choice.trial_ ||
           (picked.ejected_until[choice.index_] == 0 && failures >= ThresholdOf(upstream));
  } else if (passive && verdict == Verdict::kSuccess) {
    runtime->failures.store(0);
    const bool failed_here = runtime->failed.exchange(false);
    unhold = choice.trial_;
    report = choice.trial_ || failed_here || picked.ejected_until[choice.index_] != 0 ||
             picked.failing[choice.index_];
  }
  // Released on the current plan: least-connections reads loads from the
  // plan in use.
  auto table = table_.load();
  std::shared_ptr<const Entry> current;
  if (auto it = table->find(upstream.id()); it != table->end()) current = it->second;
  int index = current ? current->plan->FindTarget(target_id) : -1;
  if (index >= 0 && current->runtime[index] == runtime) {
    current->plan->Release(static_cast<uint32_t>(index), choice.trial_ && !hold);
  } else {
    runtime->in_flight.fetch_sub(1);
    if (choice.trial_ && !hold) runtime->trial_claim.store(false);
  }
  if (!hold && !unhold) return report;
  std::lock_guard lock(mu_);
  if (hold) {
    holds_[upstream.id()][target_id] = clock_->NowMs() + kTrialHoldMs;
    runtime->failures.store(0);
  } else {
    auto it = holds_.find(upstream.id());
    if (it == holds_.end() || it->second.erase(target_id) == 0) return report;
  }
  auto now_table = table_.load();
  auto it = now_table->find(upstream.id());
  if (it == now_table->end()) return report;
  // The rebuild sees the target's new ejected_until (and frees its claim).
  PublishLocked(BuildLocked(it->second->config, it->second->revision, it->second.get()));
  return report;
}

std::shared_ptr<PickPlan> LocalPicker::PlanOf(std::string_view upstream_id) const {
  auto table = table_.load();
  auto it = table->find(upstream_id);
  return it == table->end() ? nullptr : it->second->plan;
}

LocalPicker::Choice& LocalPicker::Choice::operator=(Choice&& o) noexcept {
  if (this == &o) return *this;
  Release(Verdict::kNeutral);
  picker_ = std::exchange(o.picker_, nullptr);
  entry_ = std::move(o.entry_);
  index_ = o.index_;
  status_ = o.status_;
  effective_model_ = std::move(o.effective_model_);
  degraded_ = o.degraded_;
  trial_ = o.trial_;
  return *this;
}

LocalPicker::Choice::~Choice() { Release(Verdict::kNeutral); }

const tg::v1::Target& LocalPicker::Choice::target() const {
  return entry_->config->targets(static_cast<int>(index_));
}

bool LocalPicker::Choice::Release(Verdict verdict) {
  if (picker_ == nullptr) return false;
  LocalPicker* picker = std::exchange(picker_, nullptr);  // entry_ stays: target() remains valid
  return picker->ReleaseChoice(*this, verdict);
}

}  // namespace tg::edge
