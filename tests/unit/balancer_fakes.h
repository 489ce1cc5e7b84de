#pragma once

// Fakes for tg-balancer's seams: clock, randomness, health store, upstream
// source. Shared by the unit and integration tests and the benchmarks.

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <vector>

#include "tg/balancer/clock.h"
#include "tg/balancer/health_store.h"
#include "tg/balancer/probe_client.h"
#include "tg/balancer/random.h"
#include "tg/balancer/upstream_source.h"

namespace tg::balancer::testing {

// Time stands still until a test moves it. Starts at a plausible Unix time
// so that versions and deadlines look like production ones.
class FakeClock final : public Clock {
 public:
  explicit FakeClock(int64_t start_ms = 1'700'000'000'000) : now_(start_ms) {}
  std::chrono::system_clock::time_point Now() const override {
    return std::chrono::system_clock::time_point(std::chrono::milliseconds(now_.load()));
  }
  void Advance(int64_t ms) { now_ += ms; }
  void AdvanceSeconds(int64_t s) { now_ += s * 1000; }

 private:
  std::atomic<int64_t> now_;
};

// Scripted values first (each reduced modulo n), then a seeded generator, so
// tests are exact either way.
class FakeRandom final : public Random {
 public:
  explicit FakeRandom(uint64_t seed = 42) : rng_(seed) {}
  uint64_t Uniform(uint64_t n) override {
    std::lock_guard lock(mu_);
    ++calls_;
    if (!script_.empty()) {
      uint64_t v = script_.front();
      script_.pop_front();
      return v % n;
    }
    return ScaleToRange(rng_(), n);
  }
  void Script(std::vector<uint64_t> values) {
    std::lock_guard lock(mu_);
    script_.insert(script_.end(), values.begin(), values.end());
  }
  int calls() const {
    std::lock_guard lock(mu_);
    return calls_;
  }

 private:
  mutable std::mutex mu_;
  std::mt19937_64 rng_;
  std::deque<uint64_t> script_;
  int calls_ = 0;
};

// Records what the balancer asks of its store; tests play other replicas by
// calling sink()->OnSharedState themselves.
class FakeHealthStore final : public HealthStore {
 public:
  void Start(HealthSink* sink) override { sink_ = sink; }
  void Stop() override {}
  void Record(HealthEvent event) override {
    std::lock_guard lock(mu_);
    events_.push_back(std::move(event));
  }
  void Follow(std::vector<FollowedTarget> targets) override {
    std::lock_guard lock(mu_);
    followed_ = std::move(targets);
  }
  HealthStoreStatus status() const override {
    std::lock_guard lock(mu_);
    return status_;
  }
  void SetStatusListener(std::function<void(const HealthStoreStatus&)>) override {}
  // Plays the other replicas: a claim is refused while `deny_claims` is set.
  bool ClaimProbe(const std::string& upstream_id, const std::string& target_id,
                  int64_t ttl_ms) override {
    std::lock_guard lock(mu_);
    claims_.push_back(upstream_id + ":" + target_id + ":" + std::to_string(ttl_ms));
    return !deny_claims_;
  }
  void DenyClaims(bool deny) {
    std::lock_guard lock(mu_);
    deny_claims_ = deny;
  }
  std::vector<std::string> claims() const {
    std::lock_guard lock(mu_);
    return claims_;
  }

  void SetStatus(HealthStoreStatus s) {
    std::lock_guard lock(mu_);
    status_ = std::move(s);
  }
  std::vector<HealthEvent> events() const {
    std::lock_guard lock(mu_);
    return events_;
  }
  std::vector<FollowedTarget> followed() const {
    std::lock_guard lock(mu_);
    return followed_;
  }
  HealthSink* sink() const { return sink_; }

 private:
  mutable std::mutex mu_;
  HealthSink* sink_ = nullptr;
  std::vector<HealthEvent> events_;
  std::vector<FollowedTarget> followed_;
  HealthStoreStatus status_;
  std::vector<std::string> claims_;
  bool deny_claims_ = false;
};

// Holds every probe until the test answers it.
class FakeProbeClient final : public ProbeClient {
 public:
  void Probe(const ProbeTask& task, std::function<void(ProbeOutcome)> done) override {
    std::lock_guard lock(mu_);
    tasks_.push_back(task);
    pending_.push_back(std::move(done));
  }
  void CancelAll() override {
    for (;;) {
      std::function<void(ProbeOutcome)> done;
      {
        std::lock_guard lock(mu_);
        if (pending_.empty()) return;
        done = std::move(pending_.front());
        pending_.pop_front();
      }
      done(ProbeOutcome{.answered = false, .error_class = "cancelled"});
    }
  }
  // Answers the oldest pending probe; false when none is pending.
  bool AnswerNext(ProbeOutcome outcome) {
    std::function<void(ProbeOutcome)> done;
    {
      std::lock_guard lock(mu_);
      if (pending_.empty()) return false;
      done = std::move(pending_.front());
      pending_.pop_front();
    }
    done(std::move(outcome));
    return true;
  }
  std::vector<ProbeTask> tasks() const {
    std::lock_guard lock(mu_);
    return tasks_;
  }
  size_t pending() const {
    std::lock_guard lock(mu_);
    return pending_.size();
  }

 private:
  mutable std::mutex mu_;
  std::vector<ProbeTask> tasks_;
  std::deque<std::function<void(ProbeOutcome)>> pending_;
};

class FakeUpstreamSource final : public UpstreamSource {
 public:
  std::shared_ptr<const UpstreamSet> Current() const override {
    std::lock_guard lock(mu_);
    return current_;
  }
  void SetOnChange(std::function<void()> on_change) override { on_change_ = std::move(on_change); }
  void Set(UpstreamSet set) {
    {
      std::lock_guard lock(mu_);
      current_ = std::make_shared<const UpstreamSet>(std::move(set));
    }
    if (on_change_) on_change_();
  }

 private:
  mutable std::mutex mu_;
  std::shared_ptr<const UpstreamSet> current_;
  std::function<void()> on_change_;
};

}  // namespace tg::balancer::testing
