// The pick itself: PickPlan::Pick over 100 targets for each algorithm, with
// heap allocations counted by a replaced global operator new (this binary
// only). Plan rebuilds and the Balancer's whole Pick+Report (protobuf in and
// out, pick registry) are measured too, for scale.
//
//   build-balancer/bin/balancer_pick_benchmark --benchmark_counters_tabular=true
#include <benchmark/benchmark.h>

#include <atomic>
#include <cstdlib>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "balancer_fakes.h"
#include "balancer_test_util.h"
#include "tg/balancer/balancer.h"
#include "tg/balancer/pick_plan.h"

namespace {

std::atomic<uint64_t> g_allocations{0};

// Out of line so that GCC, which knows operator new and free as a mismatched
// pair, does not warn about the replacement below pairing them on purpose.
[[gnu::noinline]] void Free(void* p) noexcept { std::free(p); }

}  // namespace

// Counting every allocation of the process; benchmarks read the difference
// across their timed loop.
void* operator new(std::size_t n) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  return std::malloc(n == 0 ? 1 : n);
}
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  return std::malloc(n == 0 ? 1 : n);
}
void operator delete(void* p) noexcept { Free(p); }
void operator delete[](void* p) noexcept { Free(p); }
void operator delete(void* p, std::size_t) noexcept { Free(p); }
void operator delete[](void* p, std::size_t) noexcept { Free(p); }

namespace tg::balancer {
namespace {

constexpr int kTargets = 100;

// 100 targets, weights 1..100 (so the round-robin period is 5050), two
// priority groups, every fifth one restricted to its own models.
std::vector<PlanTarget> Targets(int n, bool with_models) {
  std::vector<PlanTarget> targets;
  for (int i = 0; i < n; ++i) {
    PlanTarget t;
    t.id = "target-" + std::to_string(i) + "-0000-0000-000000000000";
    t.weight = 1 + (i * 37) % 100;
    t.priority = i < n * 3 / 4 ? 1 : 2;
    if (with_models && i % 5 == 0) t.models = {"model-a", "model-b"};
    if (with_models && i % 5 == 1) t.default_model = "model-default";
    targets.push_back(std::move(t));
  }
  return targets;
}

void ReportAllocations(benchmark::State& state, uint64_t before) {
  const double allocs = static_cast<double>(g_allocations.load() - before);
  state.counters["allocs/pick"] =
      benchmark::Counter(allocs / static_cast<double>(state.iterations()));
}

void BM_Pick(benchmark::State& state, Algorithm algorithm, bool with_models, std::string_view model,
             int excluded) {
  PickPlan plan(algorithm, Targets(kTargets, with_models));
  SystemRandom random;
  std::vector<std::string> exclude_ids;
  for (int i = 0; i < excluded; ++i) exclude_ids.push_back(plan.targets()[i * 7].id);
  std::vector<std::string_view> exclude(exclude_ids.begin(), exclude_ids.end());
  const PickQuery query{model, exclude, 1'700'000'000'000};
  const uint64_t before = g_allocations.load();
  for (auto _ : state) {
    PickChoice c = plan.Pick(query, random);
    benchmark::DoNotOptimize(c);
    plan.Release(c.target, c.trial);
  }
  ReportAllocations(state, before);
}

BENCHMARK_CAPTURE(BM_Pick, round_robin, Algorithm::kRoundRobin, false, "", 0);
BENCHMARK_CAPTURE(BM_Pick, weighted_round_robin, Algorithm::kWeightedRoundRobin, false, "", 0);
BENCHMARK_CAPTURE(BM_Pick, least_connections, Algorithm::kLeastConnections, false, "", 0);
BENCHMARK_CAPTURE(BM_Pick, random, Algorithm::kRandom, false, "", 0);
BENCHMARK_CAPTURE(BM_Pick, weighted_round_robin_model, Algorithm::kWeightedRoundRobin, true,
                  "model-a", 0);
BENCHMARK_CAPTURE(BM_Pick, weighted_round_robin_3_excluded, Algorithm::kWeightedRoundRobin, false,
                  "", 3);
BENCHMARK_CAPTURE(BM_Pick, least_connections_3_excluded, Algorithm::kLeastConnections, false, "",
                  3);
BENCHMARK_CAPTURE(BM_Pick, random_3_excluded, Algorithm::kRandom, false, "", 3);

// Picks from two threads on one plan: least-connections is the one
// algorithm with a lock. Plans are built once, before any benchmark thread
// runs (a function-local static is initialised exactly once).
PickPlan& SharedPlan(Algorithm algorithm) {
  static std::vector<std::unique_ptr<PickPlan>> plans = [] {
    std::vector<std::unique_ptr<PickPlan>> v;
    for (Algorithm a : {Algorithm::kRoundRobin, Algorithm::kWeightedRoundRobin,
                        Algorithm::kLeastConnections, Algorithm::kRandom}) {
      v.push_back(std::make_unique<PickPlan>(a, Targets(kTargets, false)));
    }
    return v;
  }();
  return *plans[static_cast<size_t>(algorithm)];
}

void BM_PickThreaded(benchmark::State& state, Algorithm algorithm) {
  PickPlan& plan = SharedPlan(algorithm);
  SystemRandom random;
  const PickQuery query{"", {}, 1'700'000'000'000};
  for (auto _ : state) {
    PickChoice c = plan.Pick(query, random);
    benchmark::DoNotOptimize(c);
    plan.Release(c.target, c.trial);
  }
}
BENCHMARK_CAPTURE(BM_PickThreaded, least_connections, Algorithm::kLeastConnections)->Threads(2);
BENCHMARK_CAPTURE(BM_PickThreaded, weighted_round_robin, Algorithm::kWeightedRoundRobin)
    ->Threads(2);

// Scaling: O(1) round robin, O(log n) least-connections and random.
void BM_PickScaling(benchmark::State& state, Algorithm algorithm) {
  PickPlan plan(algorithm, Targets(static_cast<int>(state.range(0)), false));
  SystemRandom random;
  const PickQuery query{"", {}, 1'700'000'000'000};
  for (auto _ : state) {
    PickChoice c = plan.Pick(query, random);
    benchmark::DoNotOptimize(c);
    plan.Release(c.target, c.trial);
  }
}
BENCHMARK_CAPTURE(BM_PickScaling, weighted_round_robin, Algorithm::kWeightedRoundRobin)
    ->RangeMultiplier(4)
    ->Range(4, 1024);
BENCHMARK_CAPTURE(BM_PickScaling, least_connections, Algorithm::kLeastConnections)
    ->RangeMultiplier(4)
    ->Range(4, 1024);
BENCHMARK_CAPTURE(BM_PickScaling, random, Algorithm::kRandom)->RangeMultiplier(4)->Range(4, 1024);

// What a config or health change costs (never on the pick path).
void BM_PlanBuild(benchmark::State& state, Algorithm algorithm) {
  const auto targets = Targets(kTargets, true);
  for (auto _ : state) {
    PickPlan plan(algorithm, targets);
    PickPlan* built = &plan;
    benchmark::DoNotOptimize(built);
  }
}
BENCHMARK_CAPTURE(BM_PlanBuild, weighted_round_robin, Algorithm::kWeightedRoundRobin)
    ->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_PlanBuild, least_connections, Algorithm::kLeastConnections)
    ->Unit(benchmark::kMicrosecond);

// The Balancer's Pick + Report as the gRPC handlers run them: protobuf in
// and out, pick id, registry. The allocations here are the response's.
void BM_BalancerPickReport(benchmark::State& state) {
  testing::FakeClock clock;
  SystemRandom random;
  testing::FakeHealthStore store;
  Balancer balancer(&clock, &random, &store);
  std::vector<testing::TargetSpec> specs;
  for (int i = 0; i < kTargets; ++i) {
    specs.push_back({.id = "target-" + std::to_string(i), .weight = 1 + (i * 37) % 100});
  }
  UpstreamSet set;
  set.revision = 1;
  set.upstreams = {testing::MakeUpstream("u1", "weighted", specs, testing::HealthSpec{})};
  balancer.ApplyConfig(set);
  tg::v1::PickRequest req;
  req.set_upstream_id("u1");
  req.set_model("gpt-4o-mini");
  tg::v1::ReportRequest rep;
  rep.set_outcome(tg::v1::OUTCOME_SUCCESS);
  const uint64_t before = g_allocations.load();
  for (auto _ : state) {
    tg::v1::PickResponse resp;
    grpc::Status picked = balancer.Pick(req, &resp);
    rep.set_pick_id(resp.pick_id());
    grpc::Status reported = balancer.Report(rep);
    benchmark::DoNotOptimize(picked);
    benchmark::DoNotOptimize(reported);
  }
  ReportAllocations(state, before);
}
BENCHMARK(BM_BalancerPickReport);

}  // namespace
}  // namespace tg::balancer

BENCHMARK_MAIN();
