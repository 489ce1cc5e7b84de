// What tg-edge pays to read a chat body's "model" and "stream": a whole
// bounded parse into a DOM (what it did) against the one-pass scan it does
// now (json::ScanRoutingFields), on the seeds' chat body and on a long
// conversation.
//
// Build: cmake --build <dir> --target edge_body_scan_bench
#include <benchmark/benchmark.h>

#include <string>

#include "tg/common/bounded_json.h"

namespace {

constexpr char kSeedBody[] =
    R"({"model":"gpt-4","messages":[{"role":"system","content":"You are a helpful assistant."},)"
    R"({"role":"user","content":"Hello!"}],"max_tokens":100,"temperature":0.7})";

std::string Conversation(int turns) {
  std::string body = R"({"model":"gpt-4o","stream":true,"messages":[)";
  for (int i = 0; i < turns; ++i) {
    if (i > 0) body += ',';
    body += R"({"role":")";
    body += i % 2 == 0 ? "user" : "assistant";
    body += R"(","content":"Turn )" + std::to_string(i) +
            R"(: a sentence of ordinary length with a few words in it, to be carried along."})";
  }
  return body + "]}";
}

void Document(benchmark::State& state, const std::string& body) {
  for (auto _ : state) {
    rapidjson::Document doc;
    auto r = tg::json::Parse(body, &doc);
    std::string model;
    if (r.ok() && doc.IsObject()) {
      if (auto it = doc.FindMember("model"); it != doc.MemberEnd() && it->value.IsString()) {
        model = it->value.GetString();
      }
    }
    benchmark::DoNotOptimize(model);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * body.size()));
}

void Scan(benchmark::State& state, const std::string& body) {
  for (auto _ : state) {
    tg::json::RoutingFields fields;
    auto r = tg::json::ScanRoutingFields(body, &fields);
    benchmark::DoNotOptimize(r);
    benchmark::DoNotOptimize(fields);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * body.size()));
}

const std::string kSeed = kSeedBody;
const std::string kLong = Conversation(200);  // ~24 KB

BENCHMARK_CAPTURE(Document, seed_body, kSeed);
BENCHMARK_CAPTURE(Scan, seed_body, kSeed);
BENCHMARK_CAPTURE(Document, conversation_24k, kLong);
BENCHMARK_CAPTURE(Scan, conversation_24k, kLong);

}  // namespace

BENCHMARK_MAIN();
