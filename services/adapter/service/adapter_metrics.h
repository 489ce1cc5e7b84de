#pragma once

#include "tg/common/metrics.h"

namespace tg::adapter {

// What tg-adapter exposes on /metrics (docs/OPERATIONS.md lists the names).
// Families are created once; label values are provider names, HTTP statuses
// and models, the last capped (beyond the cap: "_other").
struct AdapterMetrics {
  static AdapterMetrics& Get();

  metrics::Family<metrics::Counter>& requests;        // provider, status
  metrics::Family<metrics::Counter>& tokens;          // provider, model, direction
  metrics::Family<metrics::Histogram>& duration;      // provider: the provider call, whole
  metrics::Family<metrics::Histogram>& ttfb;          // provider: to the provider's first byte
  metrics::Family<metrics::Counter>& skipped_events;  // provider: malformed stream events
  metrics::Gauge& in_flight;
};

}  // namespace tg::adapter
