#include "tg/adapter/service/adapter_metrics.h"

namespace tg::adapter {

AdapterMetrics& AdapterMetrics::Get() {
  static AdapterMetrics* m = [] {
    auto& r = metrics::Registry::Default();
    return new AdapterMetrics{
        r.AddCounter("tg_adapter_requests_total",
                     "Invoke calls by provider and the status answered (the provider's, or "
                     "502/504 when it could not be reached).",
                     {"provider", "status"}, 200),
        r.AddCounter("tg_adapter_tokens_total",
                     "Tokens reported by providers, by provider, model and direction "
                     "(input|output).",
                     {"provider", "model", "direction"}, 400),
        r.AddHistogram("tg_adapter_provider_duration_seconds",
                       "Provider HTTP calls, request sent to last byte.", {"provider"},
                       metrics::LatencyBuckets(), 50),
        r.AddHistogram("tg_adapter_provider_ttfb_seconds",
                       "Provider HTTP calls, request sent to the answer's head.", {"provider"},
                       metrics::LatencyBuckets(), 50),
        r.AddCounter("tg_adapter_stream_events_skipped_total",
                     "Malformed provider stream events skipped (a stream tolerates a few among "
                     "good ones), by provider.",
                     {"provider"}, 50),
        r.AddGauge("tg_adapter_in_flight", "Invoke calls in progress.", {}).With({}),
    };
  }();
  return *m;
}

}  // namespace tg::adapter
