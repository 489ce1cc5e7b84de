#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <thread>

#include "tg/balancer/balancer.h"
#include "tg/balancer/clock.h"
#include "tg/balancer/health_store.h"
#include "tg/balancer/probe_client.h"

namespace tg::balancer {

struct ProberOptions {
  // How often due probes are looked for: a probe goes out at most this late
  // after its probe_interval (1 s probes: every 1.0–1.25 s).
  std::chrono::milliseconds tick{250};
  // Probes in flight at once, all targets together; the rest wait a tick.
  size_t max_in_flight = 32;
};

// Active health checks of open circuits. Every tick it asks the balancer
// which ejected targets are due a probe (upstreams with
// health_checks.path; one probe in flight per target; one per
// probe_interval), claims each through the health store so that replicas
// together probe a target about once per interval, and sends it. A healthy
// answer makes the circuit half-open (Balancer::OnProbeResult); anything
// else leaves it open, its ejection unchanged.
//
// Threads: Tick runs on the prober's thread (Start) or a test's; answers
// arrive on the client's threads.
class Prober {
 public:
  Prober(Balancer* balancer, ProbeClient* client, HealthStore* store, const Clock* clock,
         ProberOptions options = {});
  ~Prober();  // Stop()
  Prober(const Prober&) = delete;
  Prober& operator=(const Prober&) = delete;

  void Start();
  // Stops ticking, cancels the probes in flight and waits for their answers.
  void Stop();

  // One scan: sends the probes that are due now; returns how many.
  size_t Tick();
  size_t in_flight() const;

 private:
  void Loop();

  Balancer* const balancer_;
  ProbeClient* const client_;
  HealthStore* const store_;
  const Clock* const clock_;
  const ProberOptions options_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  size_t in_flight_ = 0;
  std::thread thread_;
};

}  // namespace tg::balancer
