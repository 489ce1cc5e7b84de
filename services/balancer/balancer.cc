#include "tg/balancer/balancer.h"

#include <google/protobuf/util/message_differencer.h>
#include <google/protobuf/util/time_util.h>

#include <array>
#include <random>

#include "tg/balancer/plan_target.h"
#include "tg/common/log.h"
#include "tg/common/metrics.h"

namespace tg::balancer {
namespace {

// Ejections this replica decided (a replica that learns one through Redis
// does not count it again).
void OnEjection(const std::string& upstream_id, const std::string& target_id) {
  static auto& ejections = metrics::Registry::Default().AddCounter(
      "tg_balancer_ejections_total", "Targets ejected by passive health, by this replica.",
      {"upstream", "target"}, 1000);
  ejections.With({upstream_id, target_id}).Inc();
}

using grpc::Status;
using grpc::StatusCode;

uint32_t DrawInstanceId() {
  std::random_device rd;
  uint32_t id = rd();
  return id == 0 ? 1 : id;
}

}  // namespace

Balancer::Balancer(const Clock* clock, Random* random, HealthStore* store, BalancerOptions options)
    : clock_(clock),
      random_(random),
      store_(store),
      options_(options),
      picks_(options.instance_id != 0 ? options.instance_id : DrawInstanceId()),
      directory_(std::make_shared<const Directory>()) {}

HealthOptions Balancer::HealthOptionsOf(const tg::v1::Upstream& u) const {
  HealthOptions h;
  const auto& hc = u.health_checks();
  h.passive = hc.has_passive() && hc.passive();
  h.threshold =
      hc.has_threshold() && hc.threshold() > 0 ? hc.threshold() : options_.default_threshold;
  const int64_t interval_s =
      hc.has_interval() && hc.interval() > 0 ? hc.interval() : options_.default_interval.count();
  h.interval_ms = interval_s * 1000;
  h.probe_path = hc.path();
  h.probe_headers.insert(hc.headers().begin(), hc.headers().end());
  const int64_t probe_s =
      hc.has_probe_interval() && hc.probe_interval() > 0 ? hc.probe_interval() : 5;
  h.probe_interval_ms = probe_s * 1000;
  return h;
}

std::shared_ptr<UpstreamEntry> Balancer::BuildEntry(
    const std::shared_ptr<const tg::v1::Upstream>& config, UpstreamEntry* previous) {
  auto e = std::make_shared<UpstreamEntry>();
  e->id = config->id();
  e->config = config;
  if (auto a = ParseAlgorithm(config->algorithm())) {
    e->algorithm = *a;
  } else {
    // tg-config validates algorithms, so this is a newer tg-config: serve
    // rather than refuse.
    log::Warn("unknown balancing algorithm; using round-robin",
              {{"upstream_id", config->id()}, {"algorithm", config->algorithm()}});
  }
  e->health = HealthOptionsOf(*config);
  const int n = config->targets_size();
  e->public_targets.reserve(n);
  e->runtime.reserve(n);
  e->states.reserve(n);
  std::unique_lock<std::mutex> previous_lock;
  if (previous != nullptr) previous_lock = std::unique_lock(previous->mu);
  for (int i = 0; i < n; ++i) {
    const tg::v1::Target& t = config->targets(i);
    tg::v1::Target pub = t;
    pub.clear_credentials();
    e->public_targets.push_back(std::move(pub));
    e->index.emplace(t.id(), static_cast<uint32_t>(i));
    std::shared_ptr<TargetRuntime> runtime;
    TargetHealthState state;
    if (previous != nullptr) {
      auto it = previous->index.find(t.id());
      if (it != previous->index.end()) {
        runtime = previous->runtime[it->second];
        state = previous->states[it->second];
      }
    }
    e->runtime.push_back(runtime ? runtime : std::make_shared<TargetRuntime>());
    e->states.push_back(state);
  }
  previous_lock = {};
  std::lock_guard lock(e->mu);
  RebuildPlanLocked(e.get());
  return e;
}

void Balancer::RebuildPlanLocked(UpstreamEntry* e) {
  std::vector<PlanTarget> targets;
  targets.reserve(e->public_targets.size());
  for (size_t i = 0; i < e->public_targets.size(); ++i) {
    PlanTarget p = PlanTargetOf(e->public_targets[i]);
    // Without passive health checks nothing is ever out of rotation, whatever
    // the shared state says.
    p.ejected = e->health.passive && e->states[i].ejected();
    p.ejected_until_ms = e->states[i].ejected_until_ms;
    p.in_flight = &e->runtime[i]->in_flight;
    p.trial_claim = &e->runtime[i]->trial_claim;
    targets.push_back(std::move(p));
  }
  e->plan.store(std::make_shared<PickPlan>(e->algorithm, std::move(targets)));
  NotifyHealthChanged();
}

void Balancer::NotifyHealthChanged() {
  health_generation_.fetch_add(1);
  std::lock_guard lock(listener_mu_);
  if (health_listener_) health_listener_();
}

void Balancer::SetHealthListener(std::function<void()> listener) {
  std::lock_guard lock(listener_mu_);
  health_listener_ = std::move(listener);
}

void Balancer::CollectVerdicts(tg::v1::HealthVerdicts* out) const {
  auto dir = directory_.load();
  out->set_config_revision(dir->revision);
  for (const auto& [id, entry] : dir->upstreams) {
    if (!entry->health.passive) continue;
    std::lock_guard lock(entry->mu);
    for (size_t i = 0; i < entry->public_targets.size(); ++i) {
      const TargetHealthState& s = entry->states[i];
      if (!s.ejected() && s.consecutive_failures == 0) continue;
      auto* t = out->add_targets();
      t->set_upstream_id(id);
      t->set_target_id(entry->public_targets[i].id());
      if (s.ejected()) {
        *t->mutable_ejected_until() =
            google::protobuf::util::TimeUtil::MillisecondsToTimestamp(s.ejected_until_ms);
      }
      t->set_ejections(s.ejections);
      t->set_consecutive_failures(s.consecutive_failures);
    }
  }
}

void Balancer::ApplyConfig(const UpstreamSet& set) {
  std::lock_guard config_lock(config_mu_);
  auto old = directory_.load();
  auto next = std::make_shared<Directory>();
  next->loaded = true;
  next->revision = set.revision;
  bool changed = !old->loaded || old->upstreams.size() != set.upstreams.size();
  for (const auto& u : set.upstreams) {
    if (!u) continue;
    std::shared_ptr<UpstreamEntry> previous;
    if (auto it = old->upstreams.find(u->id()); it != old->upstreams.end()) previous = it->second;
    if (previous && (previous->config == u ||
                     google::protobuf::util::MessageDifferencer::Equals(*previous->config, *u))) {
      next->upstreams.emplace(u->id(), previous);
      continue;
    }
    changed = true;
    next->upstreams.emplace(u->id(), BuildEntry(u, previous.get()));
  }
  directory_.store(next);
  if (changed) {
    FollowTargets(*next);
    NotifyHealthChanged();  // verdicts name the new directory's revision and targets
  }
}

void Balancer::FollowTargets(const Directory& directory) {
  std::vector<FollowedTarget> followed;
  for (const auto& [id, e] : directory.upstreams) {
    if (!e->health.passive) continue;
    for (const auto& t : e->public_targets) {
      followed.push_back(FollowedTarget{id, t.id(), e->health.interval_ms});
    }
  }
  store_->Follow(std::move(followed));
}

std::shared_ptr<UpstreamEntry> Balancer::Find(std::string_view upstream_id) const {
  auto dir = directory_.load();
  auto it = dir->upstreams.find(upstream_id);
  return it == dir->upstreams.end() ? nullptr : it->second;
}

std::shared_ptr<PickPlan> Balancer::PlanOf(std::string_view upstream_id) const {
  auto e = Find(upstream_id);
  return e ? e->plan.load() : nullptr;
}

Status Balancer::Pick(const tg::v1::PickRequest& request, tg::v1::PickResponse* response) {
  auto dir = directory_.load();
  if (!dir->loaded || request.min_config_revision() > dir->revision) {
    return Status(StatusCode::UNAVAILABLE, "configuration not loaded up to revision " +
                                               std::to_string(request.min_config_revision()));
  }
  if (request.upstream_id().empty()) {
    return Status(StatusCode::INVALID_ARGUMENT, "upstream_id is required");
  }
  auto it = dir->upstreams.find(request.upstream_id());
  if (it == dir->upstreams.end()) {
    return Status(StatusCode::NOT_FOUND, "upstream " + request.upstream_id() + " not found");
  }
  const std::shared_ptr<UpstreamEntry>& entry = it->second;
  auto plan = entry->plan.load();

  std::array<std::string_view, PickPlan::kInlineExcluded> inline_exclude;
  std::vector<std::string_view> many_exclude;
  std::span<const std::string_view> exclude;
  const int excluded = request.exclude_target_ids_size();
  if (static_cast<size_t>(excluded) <= inline_exclude.size()) {
    for (int i = 0; i < excluded; ++i) inline_exclude[i] = request.exclude_target_ids(i);
    exclude = std::span(inline_exclude.data(), static_cast<size_t>(excluded));
  } else {
    many_exclude.assign(request.exclude_target_ids().begin(), request.exclude_target_ids().end());
    exclude = many_exclude;
  }
  const int64_t now = clock_->NowMs();
  std::vector<std::string_view> exclude_models(request.exclude_models().begin(),
                                               request.exclude_models().end());
  const PickChoice choice =
      plan->Pick(PickQuery{request.model(), exclude, now, request.prefer_target_id(),
                           exclude_models, request.require_assistant_prefill()},
                 *random_);
  switch (choice.status) {
    case PickStatus::kOk:
      break;
    case PickStatus::kNoEligibleTarget:
      return Status(StatusCode::FAILED_PRECONDITION,
                    request.model().empty() ? "upstream " + entry->id + " has no target"
                                            : "no target of upstream " + entry->id +
                                                  " serves model " + request.model());
    case PickStatus::kAllExcluded:
      return Status(StatusCode::FAILED_PRECONDITION,
                    "every eligible target of upstream " + entry->id + " was already tried");
  }
  response->set_pick_id(picks_.Add(PickRegistry::Record{entry, choice.target, choice.trial,
                                                        now + options_.pick_timeout.count()}));
  *response->mutable_target() = entry->public_targets[choice.target];
  response->set_effective_model(std::string(choice.effective_model));
  response->set_degraded(choice.degraded);
  if (choice.trial) {
    log::Info(
        "trial request for an ejected target",
        {{"upstream_id", entry->id}, {"target_id", entry->public_targets[choice.target].id()}});
  }
  return Status::OK;
}

void Balancer::ReleasePick(const PickRegistry::Record& record) {
  const std::string& target_id = record.entry->public_targets[record.target].id();
  const auto& runtime = record.entry->runtime[record.target];
  // The current plan, not the one of the pick: least-connections reads the
  // loads from the plan in use.
  if (auto current = Find(record.entry->id)) {
    auto plan = current->plan.load();
    const int index = plan->FindTarget(target_id);
    if (index >= 0 && current->runtime[index] == runtime) {
      plan->Release(static_cast<uint32_t>(index), record.trial);
      return;
    }
  }
  runtime->in_flight.fetch_sub(1);
  if (record.trial) runtime->trial_claim.store(false);
}

Status Balancer::Report(const tg::v1::ReportRequest& request) {
  if (request.outcome() == tg::v1::OUTCOME_UNSPECIFIED) {
    return Status(StatusCode::INVALID_ARGUMENT, "outcome is required");
  }
  if (request.outcome() == tg::v1::OUTCOME_HTTP_STATUS &&
      (request.http_status() < 100 || request.http_status() > 599)) {
    return Status(StatusCode::INVALID_ARGUMENT, "http_status must be between 100 and 599");
  }
  std::optional<PickRegistry::Record> record;
  if (!request.pick_id().empty()) record = picks_.Take(request.pick_id());
  std::string upstream_id = request.upstream_id();
  std::string target_id = request.target_id();
  if (record) {
    if (upstream_id.empty()) upstream_id = record->entry->id;
    if (target_id.empty()) target_id = record->entry->public_targets[record->target].id();
    ReleasePick(*record);
  } else if (upstream_id.empty() || target_id.empty()) {
    return Status(StatusCode::INVALID_ARGUMENT,
                  request.pick_id().empty() ? "pick_id or upstream_id and target_id are required"
                                            : "unknown pick_id: upstream_id and target_id are "
                                              "required");
  }

  const Verdict verdict =
      Classify(static_cast<ReportOutcome>(request.outcome()), request.http_status());
  if (verdict == Verdict::kNeutral) return Status::OK;
  // A report about an upstream or target that config no longer has is
  // stale, not wrong: nothing to do.
  auto entry = Find(upstream_id);
  if (!entry) return Status::OK;
  auto it = entry->index.find(target_id);
  if (it == entry->index.end()) return Status::OK;
  const uint32_t i = it->second;
  const int64_t now = clock_->NowMs();
  if (verdict == Verdict::kFailure) {
    TargetRuntime& rt = *entry->runtime[i];
    rt.last_failure_outcome.store(static_cast<int32_t>(request.outcome()),
                                  std::memory_order_relaxed);
    rt.last_failure_status.store(request.http_status(), std::memory_order_relaxed);
    rt.last_failure_ms.store(now, std::memory_order_relaxed);
  }
  if (!entry->health.passive) return Status::OK;
  {
    std::lock_guard lock(entry->mu);
    const TargetHealthState old = entry->states[i];
    TargetHealthState next = ApplyVerdict(old, verdict, now, entry->health);
    // The steady state ends here: a success on a healthy target changes
    // nothing, so neither the plan nor Redis hears of it.
    if (next.SameAs(old)) return Status::OK;
    next.version = NextVersion(old.version, now);
    entry->states[i] = next;
    if (next.ejected_until_ms == old.ejected_until_ms &&
        (next.consecutive_failures > 0) != (old.consecutive_failures > 0)) {
      NotifyHealthChanged();  // WatchHealth lists targets with failures counted
    }
    if (next.ejected_until_ms != old.ejected_until_ms) {
      entry->runtime[i]->trial_claim.store(false);
      RebuildPlanLocked(entry.get());
      const char* what = !next.ejected() ? "target restored"
                         : old.ejected() ? "target trial failed; ejected again"
                                         : "target ejected";
      if (next.ejected()) {
        ejections_.fetch_add(1, std::memory_order_relaxed);
        OnEjection(upstream_id, target_id);
      }
      log::Info(what, {{"upstream_id", upstream_id},
                       {"target_id", target_id},
                       {"ejections", std::to_string(next.ejections)},
                       {"ejected_until_ms", std::to_string(next.ejected_until_ms)}});
    }
  }
  store_->Record(HealthEvent{upstream_id, target_id, verdict, now, entry->health});
  return Status::OK;
}

void Balancer::VisitTargets(
    const std::function<void(const std::string&, const std::string&, HealthPhase)>& fn) const {
  auto dir = directory_.load();
  const int64_t now = clock_->NowMs();
  for (const auto& [id, entry] : dir->upstreams) {
    std::lock_guard lock(entry->mu);
    for (size_t i = 0; i < entry->public_targets.size(); ++i) {
      fn(id, entry->public_targets[i].id(),
         entry->health.passive ? PhaseAt(entry->states[i], now) : HealthPhase::kHealthy);
    }
  }
}

std::vector<ProbeJob> Balancer::DueProbes(int64_t now_ms) const {
  std::vector<ProbeJob> jobs;
  auto dir = directory_.load();
  for (const auto& [id, entry] : dir->upstreams) {
    if (!entry->health.probes()) continue;
    std::lock_guard lock(entry->mu);
    for (size_t i = 0; i < entry->public_targets.size(); ++i) {
      if (PhaseAt(entry->states[i], now_ms) != HealthPhase::kEjected) continue;
      const auto& rt = entry->runtime[i];
      if (rt->probe_in_flight.load()) continue;
      const int64_t last = rt->last_probe_ms.load();
      if (last > 0 && now_ms - last < entry->health.probe_interval_ms) continue;
      jobs.push_back(ProbeJob{id, entry->public_targets[i], entry->health.probe_path,
                              entry->health.probe_headers, entry->health.probe_interval_ms,
                              dir->revision, rt});
    }
  }
  return jobs;
}

void Balancer::OnProbeResult(const std::string& upstream_id, const std::string& target_id,
                             bool healthy, const std::string& result) {
  auto entry = Find(upstream_id);
  if (!entry) return;
  auto it = entry->index.find(target_id);
  if (it == entry->index.end()) return;
  const uint32_t i = it->second;
  const int64_t now = clock_->NowMs();
  {
    TargetRuntime& rt = *entry->runtime[i];
    std::lock_guard lock(rt.probe_mu);
    rt.last_probe_result = result;
    rt.last_probe_result_ms.store(now);
  }
  if (!healthy || !entry->health.passive) return;
  {
    std::lock_guard lock(entry->mu);
    const TargetHealthState old = entry->states[i];
    TargetHealthState next = ApplyVerdict(old, Verdict::kProbeHealthy, now, entry->health);
    if (next.SameAs(old)) return;  // not open any more: a report or another replica was first
    next.version = NextVersion(old.version, now);
    entry->states[i] = next;
    entry->runtime[i]->trial_claim.store(false);
    RebuildPlanLocked(entry.get());
    log::Info("probe healthy: circuit half-open, the next request is the trial",
              {{"upstream_id", upstream_id},
               {"target_id", target_id},
               {"ejections", std::to_string(next.ejections)}});
  }
  store_->Record(HealthEvent{upstream_id, target_id, Verdict::kProbeHealthy, now, entry->health});
}

Status Balancer::GetHealth(const tg::v1::GetHealthRequest& request,
                           tg::v1::GetHealthResponse* response) {
  if (!loaded()) return Status(StatusCode::UNAVAILABLE, "configuration not loaded yet");
  auto entry = Find(request.upstream_id());
  if (!entry) {
    return Status(StatusCode::NOT_FOUND, "upstream " + request.upstream_id() + " not found");
  }
  const int64_t now = clock_->NowMs();
  {
    std::lock_guard lock(entry->mu);
    for (size_t i = 0; i < entry->public_targets.size(); ++i) {
      const TargetHealthState& s = entry->states[i];
      auto* t = response->add_targets();
      t->set_target_id(entry->public_targets[i].id());
      t->set_in_flight(entry->runtime[i]->in_flight.load());
      if (const int64_t at = entry->runtime[i]->last_failure_ms.load(); at > 0) {
        const auto outcome = entry->runtime[i]->last_failure_outcome.load();
        t->set_last_error(outcome == tg::v1::OUTCOME_CONNECT_ERROR ? "connect"
                          : outcome == tg::v1::OUTCOME_TIMEOUT
                              ? "timeout"
                              : "http_" +
                                    std::to_string(entry->runtime[i]->last_failure_status.load()));
        *t->mutable_last_error_at() = google::protobuf::util::TimeUtil::MillisecondsToTimestamp(at);
      }
      if (const int64_t at = entry->runtime[i]->last_probe_result_ms.load(); at > 0) {
        std::lock_guard probe_lock(entry->runtime[i]->probe_mu);
        t->set_last_probe_result(entry->runtime[i]->last_probe_result);
        *t->mutable_last_probe_at() = google::protobuf::util::TimeUtil::MillisecondsToTimestamp(at);
      }
      if (!entry->health.passive) {
        t->set_state(tg::v1::TargetHealth::STATE_HEALTHY);
        continue;
      }
      switch (PhaseAt(s, now)) {
        case HealthPhase::kHealthy:
          t->set_state(tg::v1::TargetHealth::STATE_HEALTHY);
          break;
        case HealthPhase::kEjected:
          t->set_state(tg::v1::TargetHealth::STATE_EJECTED);
          break;
        case HealthPhase::kTrial:
          t->set_state(tg::v1::TargetHealth::STATE_TRIAL);
          break;
      }
      t->set_consecutive_failures(s.consecutive_failures);
      t->set_ejections(s.ejections);
      if (s.ejected()) {
        *t->mutable_ejected_until() =
            google::protobuf::util::TimeUtil::MillisecondsToTimestamp(s.ejected_until_ms);
      }
    }
  }
  const HealthStoreStatus store = store_->status();
  response->set_degraded(store.degraded);
  response->set_degraded_reason(store.reason);
  return Status::OK;
}

size_t Balancer::ReleaseExpiredPicks() {
  auto expired = picks_.TakeExpired(clock_->NowMs());
  for (const auto& record : expired) ReleasePick(record);
  if (!expired.empty()) {
    log::Warn("released picks that were never reported",
              {{"count", std::to_string(expired.size())}});
  }
  return expired.size();
}

void Balancer::OnSharedState(const std::string& upstream_id, const std::string& target_id,
                             const TargetHealthState& state) {
  // Under config_mu_, so that an entry being replaced by ApplyConfig cannot
  // take the update with it.
  std::lock_guard config_lock(config_mu_);
  auto entry = Find(upstream_id);
  if (!entry) return;
  auto it = entry->index.find(target_id);
  if (it == entry->index.end()) return;
  const uint32_t i = it->second;
  std::lock_guard lock(entry->mu);
  const TargetHealthState old = entry->states[i];
  if (state.version < old.version) return;  // older than what this replica holds
  if (state.SameAs(old)) {
    entry->states[i].version = state.version;
    return;
  }
  entry->states[i] = state;
  if (state.ejected_until_ms == old.ejected_until_ms &&
      (state.consecutive_failures > 0) != (old.consecutive_failures > 0)) {
    NotifyHealthChanged();
  }
  if (state.ejected_until_ms != old.ejected_until_ms) {
    entry->runtime[i]->trial_claim.store(false);
    RebuildPlanLocked(entry.get());
    log::Debug("shared health state adopted",
               {{"upstream_id", upstream_id},
                {"target_id", target_id},
                {"ejected_until_ms", std::to_string(state.ejected_until_ms)}});
  }
}

std::optional<TargetHealthState> Balancer::LocalState(const std::string& upstream_id,
                                                      const std::string& target_id) {
  auto entry = Find(upstream_id);
  if (!entry) return std::nullopt;
  auto it = entry->index.find(target_id);
  if (it == entry->index.end()) return std::nullopt;
  std::lock_guard lock(entry->mu);
  return entry->states[it->second];
}

}  // namespace tg::balancer
