#pragma once

#include "tg/common/metrics.h"

namespace tg::edge {

// What the proxy exposes on /metrics (names and labels: docs/OPERATIONS.md).
// Label values are gateway ids, provider names (or a plain target's host)
// and statuses; each family is capped (beyond the cap: "_other").
struct ProxyMetrics {
  static ProxyMetrics& Get();

  metrics::Family<metrics::Counter>& requests;      // gateway, provider, status
  metrics::Family<metrics::Histogram>& duration;    // gateway, provider: whole request
  metrics::Family<metrics::Histogram>& upstream;    // provider: one attempt, Invoke to its end
  metrics::Family<metrics::Histogram>& ttfb;        // provider: streams, request to first byte
  metrics::Family<metrics::Counter>& failovers;     // gateway, provider, reason
  metrics::Family<metrics::Counter>& retries;       // gateway, provider, reason: same target again
  metrics::Family<metrics::Counter>& rescues;       // gateway, provider, result: mid-stream rescues
  metrics::Family<metrics::Counter>& tokens;        // gateway, provider, direction
  metrics::Family<metrics::Counter>& usage_tokens;  // gateway, key, model, provider, direction
  metrics::Family<metrics::Counter>& cost;          // gateway, key, model, provider: USD
  metrics::Family<metrics::Counter>& rate_limited;  // gateway, kind: 429s of the gateway's limits
  metrics::Gauge& in_flight;
};

}  // namespace tg::edge
