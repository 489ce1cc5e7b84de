#include "tg/balancer/prober.h"

#include <utility>

#include "tg/common/log.h"
#include "tg/common/metrics.h"

namespace tg::balancer {
namespace {

// result: healthy (2xx), unhealthy (the target answered otherwise or not at
// all), error (the probe could not be made: tg-adapter unreachable).
void CountProbe(const std::string& upstream_id, const std::string& target_id, const char* result) {
  static auto& probes = metrics::Registry::Default().AddCounter(
      "tg_balancer_probes_total", "Active health probes this replica sent, by result.",
      {"upstream", "target", "result"}, 1000);
  probes.With({upstream_id, target_id, result}).Inc();
}

}  // namespace

Prober::Prober(Balancer* balancer, ProbeClient* client, HealthStore* store, const Clock* clock,
               ProberOptions options)
    : balancer_(balancer), client_(client), store_(store), clock_(clock), options_(options) {}

Prober::~Prober() { Stop(); }

void Prober::Start() {
  std::lock_guard lock(mu_);
  if (thread_.joinable() || stopping_) return;
  thread_ = std::thread([this] { Loop(); });
}

void Prober::Stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    cv_.notify_all();
  }
  if (thread_.joinable()) thread_.join();
  client_->CancelAll();
  std::unique_lock lock(mu_);
  cv_.wait(lock, [this] { return in_flight_ == 0; });
}

void Prober::Loop() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    lock.unlock();
    Tick();
    lock.lock();
    cv_.wait_for(lock, options_.tick, [this] { return stopping_; });
  }
}

size_t Prober::in_flight() const {
  std::lock_guard lock(mu_);
  return in_flight_;
}

size_t Prober::Tick() {
  const int64_t now = clock_->NowMs();
  size_t sent = 0;
  for (ProbeJob& job : balancer_->DueProbes(now)) {
    {
      std::lock_guard lock(mu_);
      if (stopping_ || in_flight_ >= options_.max_in_flight) break;
    }
    if (job.runtime->probe_in_flight.exchange(true)) continue;
    job.runtime->last_probe_ms.store(now);
    // Another replica probes it this interval: its answer reaches us
    // through the shared state.
    if (!store_->ClaimProbe(job.upstream_id, job.target.id(), job.probe_interval_ms)) {
      job.runtime->probe_in_flight.store(false);
      continue;
    }
    {
      std::lock_guard lock(mu_);
      ++in_flight_;
    }
    ProbeTask task{job.upstream_id, job.target, job.path, job.headers, job.config_revision};
    client_->Probe(task, [this, runtime = job.runtime, upstream_id = job.upstream_id,
                          target_id = job.target.id()](ProbeOutcome outcome) {
      const std::string result = outcome.healthy ? "healthy"
                                 : outcome.error_class.empty()
                                     ? (outcome.answered ? "unhealthy" : "error")
                                     : outcome.error_class;
      CountProbe(upstream_id, target_id,
                 outcome.healthy    ? "healthy"
                 : outcome.answered ? "unhealthy"
                                    : "error");
      if (!outcome.answered) {
        log::Warn("active probe not made",
                  {{"upstream_id", upstream_id}, {"target_id", target_id}, {"error", result}});
      } else {
        log::Debug("active probe answered",
                   {{"upstream_id", upstream_id}, {"target_id", target_id}, {"result", result}});
      }
      balancer_->OnProbeResult(upstream_id, target_id, outcome.healthy, result);
      runtime->probe_in_flight.store(false);
      std::lock_guard lock(mu_);
      --in_flight_;
      cv_.notify_all();
    });
    ++sent;
  }
  return sent;
}

}  // namespace tg::balancer
