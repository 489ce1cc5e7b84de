#include "tg/edge/proxy_metrics.h"

namespace tg::edge {

ProxyMetrics& ProxyMetrics::Get() {
  static ProxyMetrics* m = [] {
    auto& r = metrics::Registry::Default();
    return new ProxyMetrics{
        r.AddCounter("tg_proxy_requests_total",
                     "Proxied requests by gateway, the provider that answered (\"none\" when no "
                     "target was reached) and the status sent to the client.",
                     {"gateway", "provider", "status"}, 2000),
        r.AddHistogram("tg_proxy_request_duration_seconds",
                       "Proxied requests, received to answered (streams: to their last byte).",
                       {"gateway", "provider"}, metrics::LatencyBuckets(), 1000),
        r.AddHistogram("tg_proxy_upstream_duration_seconds",
                       "One provider attempt, Invoke sent to its end.", {"provider"},
                       metrics::LatencyBuckets(), 100),
        r.AddHistogram("tg_proxy_ttfb_seconds",
                       "Streamed answers, request received to the first byte sent.", {"provider"},
                       metrics::LatencyBuckets(), 100),
        r.AddCounter("tg_proxy_failovers_total",
                     "Attempts abandoned for another target, by the provider that failed and "
                     "why (status code, connect, timeout, adapter).",
                     {"gateway", "provider", "reason"}, 1000),
        r.AddCounter("tg_proxy_retries_total",
                     "Attempts repeated on the same target after a 429 or 5xx, by provider and "
                     "what set the wait (retry_after: the provider's header; backoff).",
                     {"gateway", "provider", "reason"}, 1000),
        r.AddCounter("tg_proxy_rescues_total",
                     "Mid-stream rescues (a stream broken after its first bytes, continued on "
                     "a target with assistant_prefill), by the provider that broke it and how "
                     "they ended: resumed (a clean end) or failed (no continuation succeeded; "
                     "the stream ended with the break's error event).",
                     {"gateway", "provider", "result"}, 1000),
        r.AddCounter("tg_proxy_tokens_total",
                     "Tokens of answered requests by gateway, provider and direction "
                     "(input|output).",
                     {"gateway", "provider", "direction"}, 2000),
        r.AddCounter("tg_proxy_usage_tokens_total",
                     "Tokens the providers reported, by gateway, API key id, model, provider "
                     "and direction (input|output).",
                     {"gateway", "key", "model", "provider", "direction"}, 5000),
        r.AddCounter("tg_proxy_cost_usd_total",
                     "What the answers cost in US dollars (usage x the gateway's prices), by "
                     "gateway, API key id, model and provider.",
                     {"gateway", "key", "model", "provider"}, 5000),
        r.AddCounter("tg_proxy_rate_limited_total",
                     "Requests the gateway's own rate limits refused (429), by gateway and "
                     "kind (requests|tokens|budget).",
                     {"gateway", "kind"}, 1000),
        r.AddGauge("tg_proxy_in_flight", "Proxied requests in progress.", {}).With({}),
    };
  }();
  return *m;
}

}  // namespace tg::edge
