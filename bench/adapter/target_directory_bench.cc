// What tg-adapter does per Invoke to learn its target, before and after the
// target directory (docs/BENCHMARKS.md, "Resolve at config time").
//
//   PerCall:    what each Invoke did until the directory: the whole Target
//               travelled in the request (serialised by the edge, parsed by
//               the adapter), the credentials were found by scanning the
//               upstream's targets, provider_options were printed as JSON and
//               parsed again for `api`, and three metric families were looked
//               up by label.
//   Directory:  what it does now: two hash lookups in the directory, a copy
//               of the resolved TargetInfo (the call adds model and stream),
//               metric children already held.
//   Rebuild:    the price moved to config time: a directory rebuilt after one
//               upstream of `range` changed.
//
// Build: cmake --build <dir> --target adapter_target_directory_bench
#include <benchmark/benchmark.h>

#include <string>

#include "tg/adapter/service/adapter_metrics.h"
#include "tg/adapter/service/target_directory.h"
#include "tg/adapter/service/target_info.h"
#include "tg/adapter/translate/json.h"
#include "tg/common/json_util.h"
#include "tg/v1/adapter.pb.h"

namespace tg::adapter {
namespace {

constexpr int kTargets = 8;

tg::v1::ConfigSnapshot Config(int upstreams) {
  tg::v1::ConfigSnapshot p;
  p.add_gateways()->set_id("g1");
  for (int u = 0; u < upstreams; ++u) {
    auto* up = p.add_upstreams();
    up->set_id("u" + std::to_string(u));
    up->set_gateway_id("g1");
    for (int i = 0; i < kTargets; ++i) {
      auto* t = up->add_targets();
      t->set_id("t" + std::to_string(i));
      t->set_provider("openai");
      t->set_weight(10);
      t->set_priority(1);
      t->add_models("gpt-4o");
      t->add_models("gpt-4o-mini");
      t->set_default_model("gpt-4o-mini");
      (*t->mutable_headers())["x-team"] = "search";
      (*t->mutable_provider_options()->mutable_fields())["api"].set_string_value("completions");
      t->mutable_credentials()->set_api_key("sk-bench-0000000000000000000000000000000000");
    }
  }
  return p;
}

void PerCall(benchmark::State& state) {
  auto snapshot = ConfigSnapshot::FromProto(Config(1), 1);
  tg::v1::Target picked = snapshot->FindUpstream("u0")->targets(kTargets - 1);
  picked.clear_credentials();
  std::string wire;
  for (auto _ : state) {
    picked.SerializeToString(&wire);  // the edge's share
    tg::v1::Target target;
    target.ParseFromString(wire);
    tg::v1::Credentials credentials;
    for (const auto& t : snapshot->FindUpstream("u0")->targets()) {
      if (t.id() == target.id()) credentials = t.credentials();
    }
    translate::TargetInfo info = TargetInfoOf(target, credentials);
    const std::string options = json::PrintProto(target.provider_options());
    translate::json::ScratchDocument scratch;
    scratch.Parse(options);
    const auto* codec = translate::FindProviderCodec(
        target.provider(), translate::json::GetString(scratch.doc(), "api"));
    auto& m = AdapterMetrics::Get();
    benchmark::DoNotOptimize(&m.ttfb.With({target.provider()}));
    benchmark::DoNotOptimize(&m.duration.With({target.provider()}));
    benchmark::DoNotOptimize(&m.skipped_events.With({target.provider()}));
    info.model = "gpt-4o";
    benchmark::DoNotOptimize(codec);
    benchmark::DoNotOptimize(info);
  }
}
BENCHMARK(PerCall);

void Directory(benchmark::State& state) {
  auto snapshot = ConfigSnapshot::FromProto(Config(1), 1);
  auto dir = TargetDirectory::Build(*snapshot, nullptr);
  const std::string target_id = "t" + std::to_string(kTargets - 1);
  tg::v1::InvokeRequest request;
  request.set_target_id(target_id);
  std::string wire;
  for (auto _ : state) {
    request.SerializeToString(&wire);  // the id's share of the wire
    auto target = dir->Find("u0", target_id);
    translate::TargetInfo info = target->info;
    benchmark::DoNotOptimize(&target->Ttfb());
    benchmark::DoNotOptimize(&target->Duration());
    benchmark::DoNotOptimize(&target->SkippedEvents());
    info.model = "gpt-4o";
    benchmark::DoNotOptimize(target->codec);
    benchmark::DoNotOptimize(info);
  }
}
BENCHMARK(Directory);

void Rebuild(benchmark::State& state) {
  auto snapshot = ConfigSnapshot::FromProto(Config(static_cast<int>(state.range(0))), 1);
  auto dir = TargetDirectory::Build(*snapshot, nullptr);
  tg::v1::ConfigChange change;
  *change.mutable_upstream() = *snapshot->FindUpstream("u0");
  auto next = snapshot->WithChange(change, 2);
  for (auto _ : state) benchmark::DoNotOptimize(TargetDirectory::Build(*next, dir.get()));
}
BENCHMARK(Rebuild)->Arg(10)->Arg(1000);

}  // namespace
}  // namespace tg::adapter

BENCHMARK_MAIN();
