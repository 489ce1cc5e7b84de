#include "tg/balancer/health_policy.h"

#include <algorithm>

namespace tg::balancer {

Verdict Classify(ReportOutcome outcome, int32_t http_status) {
  switch (outcome) {
    case ReportOutcome::kSuccess:
      return Verdict::kSuccess;
    case ReportOutcome::kConnectError:
    case ReportOutcome::kTimeout:
      return Verdict::kFailure;
    case ReportOutcome::kHttpStatus:
      if (http_status >= 500 || http_status == 429) return Verdict::kFailure;
      // 2xx/3xx: it answered; other 4xx: the request's fault, not the target's.
      if (http_status >= 100) return Verdict::kSuccess;
      return Verdict::kNeutral;
    case ReportOutcome::kCancelled:
    case ReportOutcome::kUnspecified:
      return Verdict::kNeutral;
  }
  return Verdict::kNeutral;
}

HealthPhase PhaseAt(const TargetHealthState& state, int64_t now_ms) {
  if (!state.ejected()) return HealthPhase::kHealthy;
  return now_ms < state.ejected_until_ms ? HealthPhase::kEjected : HealthPhase::kTrial;
}

const char* CircuitStateName(HealthPhase phase) {
  switch (phase) {
    case HealthPhase::kHealthy:
      return "closed";
    case HealthPhase::kEjected:
      return "open";
    case HealthPhase::kTrial:
      return "half_open";
  }
  return "closed";
}

int64_t EjectionDuration(int32_t ejections, int64_t interval_ms) {
  const int64_t cap = 10 * interval_ms;
  int64_t d = interval_ms;
  for (int32_t i = 1; i < ejections && d < cap; ++i) d *= 2;
  return std::min(d, cap);
}

TargetHealthState ApplyVerdict(const TargetHealthState& state, Verdict verdict, int64_t now_ms,
                               const HealthOptions& options) {
  TargetHealthState next = state;
  switch (verdict) {
    case Verdict::kNeutral:
      return state;
    case Verdict::kSuccess:
      next.consecutive_failures = 0;
      next.ejections = 0;
      next.ejected_until_ms = 0;
      return next;
    case Verdict::kProbeHealthy:
      if (PhaseAt(state, now_ms) != HealthPhase::kEjected) return state;
      next.ejected_until_ms = now_ms;
      return next;
    case Verdict::kFailure:
      break;
  }
  switch (PhaseAt(state, now_ms)) {
    case HealthPhase::kEjected:
      return state;
    case HealthPhase::kTrial:
      next.consecutive_failures = state.consecutive_failures + 1;
      next.ejections = state.ejections + 1;
      next.ejected_until_ms = now_ms + EjectionDuration(next.ejections, options.interval_ms);
      return next;
    case HealthPhase::kHealthy:
      next.consecutive_failures = state.consecutive_failures + 1;
      if (next.consecutive_failures >= std::max(options.threshold, 1)) {
        next.ejections = 1;
        next.ejected_until_ms = now_ms + EjectionDuration(1, options.interval_ms);
      }
      return next;
  }
  return state;
}

}  // namespace tg::balancer
