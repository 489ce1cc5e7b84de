#pragma once

#include <cstdint>
#include <map>
#include <string>

namespace tg::balancer {

// Passive health options of one upstream (Upstream.health_checks), with the
// defaults applied.
struct HealthOptions {
  bool passive = false;          // count failures of real traffic at all
  int32_t threshold = 3;         // consecutive failures that eject a target
  int64_t interval_ms = 60'000;  // first ejection; later ones double up to 10x
  // Active probes of ejected targets (health_checks.path; "" = none).
  std::string probe_path{};
  std::map<std::string, std::string> probe_headers{};
  int64_t probe_interval_ms = 5'000;  // between two probes of one target

  bool probes() const { return passive && !probe_path.empty(); }
};

// What one report says about its target.
enum class Verdict {
  kSuccess,  // the provider answered (2xx, or a 4xx other than 429: the request's fault)
  kFailure,  // connect error, timeout, 5xx or 429
  kNeutral,  // the client went away, or nothing was learnt
  // An active probe of the target answered 2xx: an open circuit goes
  // half-open now rather than when its ejection ends. (A failed probe is
  // kNeutral: it leaves the ejection as it is.)
  kProbeHealthy,
};

// Report outcomes, as tg.v1.Outcome numbers them (kept apart from protobuf so
// that the policy stays a pure function).
enum class ReportOutcome {
  kUnspecified = 0,
  kSuccess = 1,
  kConnectError = 2,
  kTimeout = 3,
  kHttpStatus = 4,
  kCancelled = 5,
};

Verdict Classify(ReportOutcome outcome, int32_t http_status);

// One target's passive-health state: what Redis stores, what replicas agree on.
struct TargetHealthState {
  int32_t consecutive_failures = 0;
  int32_t ejections = 0;         // consecutive ejections, the backoff exponent; 0 when healthy
  int64_t ejected_until_ms = 0;  // > 0 while ejected; from then on the trial is due
  // Orders states across replicas and Redis restarts: every write takes
  // NextVersion(previous, now), and a replica adopts a state only if its
  // version is not older than the one it holds. 0: never written.
  int64_t version = 0;

  bool ejected() const { return ejected_until_ms > 0; }
  // Same health, whatever the version.
  bool SameAs(const TargetHealthState& o) const {
    return consecutive_failures == o.consecutive_failures && ejections == o.ejections &&
           ejected_until_ms == o.ejected_until_ms;
  }
};

// A hybrid logical clock: max(previous + 1, now_ms * 1024). Versions grow with
// every write (even many in one millisecond) and with wall time, so a write
// made after Redis lost its data (a restart without persistence) still
// outranks what replicas remember from before it.
inline int64_t NextVersion(int64_t previous, int64_t now_ms) {
  const int64_t by_time = now_ms * 1024;
  return previous + 1 > by_time ? previous + 1 : by_time;
}

enum class HealthPhase {
  kHealthy,
  kEjected,  // out of rotation until ejected_until_ms
  kTrial,    // the ejection is over; the next request decides
};

HealthPhase PhaseAt(const TargetHealthState& state, int64_t now_ms);

// The circuit breaker's name for a phase: closed, open, half_open (metrics
// and docs speak of circuits; GetHealth of healthy, ejected, trial).
const char* CircuitStateName(HealthPhase phase);

// How long the n-th consecutive ejection lasts: interval * 2^(n-1), at most
// 10 * interval. With interval 60 s: 60, 120, 240, 480, 600, 600, ... s.
int64_t EjectionDuration(int32_t ejections, int64_t interval_ms);

// The state after one verdict at `now_ms` (a pure function; the same code
// runs on the local view and inside the Redis transaction):
//   - success: everything resets (a success during an ejection or a trial
//     restores the target: it demonstrably answers);
//   - failure while healthy: one more consecutive failure; reaching
//     `threshold` ejects the target for EjectionDuration(1);
//   - failure while ejected: ignored before ejected_until (the target is
//     already out; degraded picks that still reach it must not extend its
//     sentence), and after it (the trial failed) a new ejection of double
//     length;
//   - probe healthy: while ejected (before ejected_until), ejected_until
//     becomes now, so the target is in trial (half-open) at once with its
//     counters kept: the trial request closes the circuit, or its failure
//     ejects it again for double the time, as after any trial. In any other
//     phase nothing (a probe is no reason to close a half-open circuit: the
//     real request decides);
//   - neutral: nothing.
// The version is left as it was: whoever stores the result assigns the next.
// Returns a state SameAs `state` when nothing changes, so callers can skip a write.
TargetHealthState ApplyVerdict(const TargetHealthState& state, Verdict verdict, int64_t now_ms,
                               const HealthOptions& options);

}  // namespace tg::balancer
