// Hot-path cost of tg::metrics: Inc/Add/Observe on a child looked up once,
// Family::With on an existing label set, and a whole scrape (Render).
// Run: build-metrics/bin/metrics_benchmark

#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "tg/common/metrics.h"

namespace {

using tg::metrics::Counter;
using tg::metrics::Labels;
using tg::metrics::Registry;

Registry& BenchRegistry() {
  static Registry* r = new Registry();
  return *r;
}

void BM_CounterInc(benchmark::State& state) {
  Counter& c =
      BenchRegistry().AddCounter("bench_requests_total", "", {"provider"}).With({"openai"});
  for (auto _ : state) c.Inc();
  benchmark::DoNotOptimize(c.Value());
}
BENCHMARK(BM_CounterInc)->Threads(1)->Threads(2);

void BM_CounterIncFraction(benchmark::State& state) {
  Counter& c = BenchRegistry().AddCounter("bench_seconds_total", "", {}).With({});
  for (auto _ : state) c.Inc(0.25);
  benchmark::DoNotOptimize(c.Value());
}
BENCHMARK(BM_CounterIncFraction)->Threads(1)->Threads(2);

void BM_GaugeAdd(benchmark::State& state) {
  auto& g = BenchRegistry().AddGauge("bench_in_flight", "", {}).With({});
  for (auto _ : state) g.Add(1);
  benchmark::DoNotOptimize(g.Value());
}
BENCHMARK(BM_GaugeAdd);

void BM_HistogramObserve(benchmark::State& state) {
  auto& h =
      BenchRegistry()
          .AddHistogram("bench_latency_seconds", "", {"provider"}, tg::metrics::LatencyBuckets())
          .With({"openai"});
  // Latencies spread over the buckets, as real traffic is.
  std::vector<double> values;
  for (int i = 0; i < 1024; ++i) values.push_back(0.0003 * (1 << (i % 18)));
  size_t i = 0;
  for (auto _ : state) h.Observe(values[i++ & 1023]);
  benchmark::DoNotOptimize(h.Count());
}
BENCHMARK(BM_HistogramObserve)->Threads(1)->Threads(2);

// With() on an existing child, labels already built (the caller keeps them).
void BM_FamilyWith(benchmark::State& state) {
  const int n_labels = static_cast<int>(state.range(0));
  std::vector<std::string> names;
  Labels values;
  for (int i = 0; i < n_labels; ++i) {
    names.push_back("l" + std::to_string(i));
    values.push_back(i == 0 ? "anthropic" : "claude-sonnet-4-" + std::to_string(i));
  }
  auto& f =
      BenchRegistry().AddCounter("bench_with_" + std::to_string(n_labels) + "_total", "", names);
  // 100 other children, so the lookup is in a realistically full map.
  for (int k = 0; k < 100; ++k) {
    Labels other = values;
    other[0] = "provider" + std::to_string(k);
    f.With(other);
  }
  for (auto _ : state) benchmark::DoNotOptimize(&f.With(values));
}
BENCHMARK(BM_FamilyWith)->Arg(1)->Arg(3)->ThreadRange(1, 2);

// With() building the Labels per call, as code that does not keep them does.
void BM_FamilyWithBuildLabels(benchmark::State& state) {
  auto& f =
      BenchRegistry().AddCounter("bench_with_build_total", "", {"gateway", "provider", "status"});
  std::string gateway = "gw-prod", provider = "openai";
  for (auto _ : state) f.With({gateway, provider, "200"}).Inc();
}
BENCHMARK(BM_FamilyWithBuildLabels);

// A scrape: 200 counter children and 20 histograms with latency buckets.
void BM_Render(benchmark::State& state) {
  Registry r;
  auto& c = r.AddCounter("tg_requests_total", "Requests.", {"gateway", "provider", "status"});
  for (int i = 0; i < 200; ++i) {
    c.With({"gw" + std::to_string(i % 10), "p" + std::to_string(i / 10), "200"}).Inc(i);
  }
  auto& h =
      r.AddHistogram("tg_latency_seconds", "Latency.", {"provider"}, tg::metrics::LatencyBuckets());
  for (int i = 0; i < 20; ++i) h.With({"p" + std::to_string(i)}).Observe(0.01 * i);
  size_t bytes = 0;
  for (auto _ : state) {
    std::string text = r.Render();
    bytes = text.size();
    benchmark::DoNotOptimize(text.data());
  }
  state.counters["bytes"] = static_cast<double>(bytes);
}
BENCHMARK(BM_Render)->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
