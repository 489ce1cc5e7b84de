// What a request pays for active limits in tg-edge, piece by piece: the
// admission of the bench gateway's plugins (a rate_limiter per key and global,
// a token_rate_limiter), its settlement and headers, on a LocalQuotaStore and
// (with TG_BENCH_REDIS=host:port) on a RedisQuotaStore as deployed; the
// prompt estimate alone. bench/proxy/run measures the same plugins end to end.
//
// Build: cmake --build <dir> --target edge_rate_limits_bench
#include <benchmark/benchmark.h>
#include <google/protobuf/util/json_util.h>

#include <cstdlib>
#include <memory>
#include <string>

#include "tg/edge/quota/quota_store.h"
#include "tg/edge/quota/redis_quota_store.h"
#include "tg/edge/rate_limits.h"
#include "tg/edge/token_estimate.h"

namespace {

constexpr char kBody[] =
    R"({"model": "gpt-4", "messages": [{"role": "user", "content": "Hello!"}], "max_tokens": 1020,)"
    R"( "system": "You are an assistant"})";

tg::v1::Gateway BenchGateway() {
  tg::v1::Gateway g;
  (void)google::protobuf::util::JsonStringToMessage(R"({"id": "g1", "name": "bench",
      "required_plugins": [
        {"name": "rate_limiter", "settings": {"limits": {
           "per_api_key": {"limit": 1000000000, "window": "1m"},
           "global": {"limit": 1000000000, "window": "1m"}}}},
        {"name": "token_rate_limiter", "settings": {"tokens_per_minute": 1000000000000}}]})",
                                                    &g);
  return g;
}

void Admit(benchmark::State& state, tg::edge::RateLimits& limits) {
  static const tg::v1::Gateway gateway = BenchGateway();
  static const tg::v1::Rule rule = [] {
    tg::v1::Rule r;
    r.set_id("r1");
    return r;
  }();
  tg::edge::LimitSubject s;
  s.gateway = &gateway;
  s.rule = &rule;
  s.revision = 1;
  s.key_id = "6f1c2a4e-1d2b-4c3a-9e8f-0a1b2c3d4e5f";
  s.client_ip = "127.0.0.1";
  s.model = "gpt-4";
  s.body = kBody;
  s.format = tg::v1::CLIENT_FORMAT_OPENAI_CHAT;
  for (auto _ : state) {
    tg::edge::Admission a = limits.Admit(s);
    auto headers = a.Headers(false);
    benchmark::DoNotOptimize(headers);
    limits.Settle(a, 21);
  }
}

// One store and one RateLimits shared by the benchmark's threads, as the
// edge's io threads share them.
void BM_AdmitSettleLocal(benchmark::State& state) {
  static tg::edge::quota::LocalQuotaStore store;
  static tg::edge::RateLimits limits(&store);
  Admit(state, limits);
}
BENCHMARK(BM_AdmitSettleLocal)->Threads(1)->Threads(2)->UseRealTime();

void BM_AdmitSettleRedis(benchmark::State& state) {
  const char* addr = std::getenv("TG_BENCH_REDIS");
  if (addr == nullptr) {
    state.SkipWithError("TG_BENCH_REDIS=host:port not set");
    return;
  }
  std::string error;
  auto options = tg::edge::quota::ParseRedisQuotaUrl(std::string("redis://") + addr, &error);
  if (!options) {
    state.SkipWithError(error.c_str());
    return;
  }
  options->prefix = "tg:bench:quota";
  static tg::edge::quota::RedisQuotaStore store(*options);
  static tg::edge::RateLimits limits(&store);
  Admit(state, limits);
}
BENCHMARK(BM_AdmitSettleRedis)->Threads(1)->Threads(2)->UseRealTime();

void BM_EstimatePrompt(benchmark::State& state) {
  for (auto _ : state) {
    benchmark::DoNotOptimize(
        tg::edge::EstimateRequestTokens(kBody, tg::v1::CLIENT_FORMAT_OPENAI_CHAT));
  }
}
BENCHMARK(BM_EstimatePrompt);

}  // namespace

BENCHMARK_MAIN();
