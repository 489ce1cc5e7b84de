// Observability end to end: every service as a separate process exporting
// spans to a fake OTLP collector (in this process) and serving /metrics, in
// front of the fake providers. One request carrying a client's traceparent
// must come back as one trace across tg-edge, tg-balancer and tg-adapter,
// correctly parented, without a prompt or a credential anywhere in it.
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <set>
#include <thread>

#include "e2e_suite.h"
#include "fake_otlp_collector.h"
#include "fake_provider.h"
#include "process.h"
#include "stack.h"
#include "test_db.h"
#include "tg/common/crypto.h"

namespace tg::testing {
namespace {

using fakes::CollectedSpan;
using std::chrono::milliseconds;
using std::chrono::seconds;

// A prompt that must never leave the request body.
constexpr char kCanary[] = "canary-prompt-7f3a9c";

std::string Body() {
  return std::string(R"({"model": "gpt-4", "messages": [{"role": "user", "content": ")") + kCanary +
         R"("}], "max_tokens": 50})";
}

// The value of one sample in Prometheus text: `series` is the name with its
// labels as rendered ("name{a=\"x\",b=\"y\"}"); 0 when absent.
double Sample(const std::string& text, const std::string& series) {
  const std::string needle = "\n" + series + " ";
  auto at = text.find(needle);
  if (at == std::string::npos) return 0;
  return std::strtod(text.c_str() + at + needle.size(), nullptr);
}

class ObservabilityE2E : public E2eSuite<ObservabilityE2E> {
 protected:
  static void SetUpTestSuite() {
    collector_ = std::make_unique<fakes::FakeOtlpCollector>();
    std::string error;
    if (!collector_->Start(&error)) {
      ADD_FAILURE() << error;
      return;
    }
    StackOptions o;
    o.common_env["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"] = collector_->endpoint();
    o.common_env["OTEL_BSP_SCHEDULE_DELAY"] = "100";  // flush quickly
    o.common_env["OTEL_TRACES_SAMPLER"] = "parentbased_always_on";
    if (!StartSuite("e2e_obs", o, /*proxy=*/true)) return;
    gateway_ = stack_->MustCreate("/api/v1/gateways", R"({"name": "obs", "subdomain": "obs"})");
    key_ = stack_->MustCreateKey(gateway_, "2099-01-01T00:00:00Z");
    // openai first (priority 1), anthropic behind it: a 429 from openai fails over.
    const auto& c = fake_->credentials();
    const std::string host = R"("host": "127.0.0.1", "port": )" + std::to_string(fake_->port()) +
                             R"(, "protocol": "http")";
    std::string up =
        stack_->MustCreate("/api/v1/gateways/" + gateway_ + "/upstreams",
                           R"({"name": "u", "algorithm": "round-robin", "targets": [
          {"id": "t-openai", "provider": "openai", "priority": 1, )" +
                               host + R"(, "credentials": {"api_key": ")" + c.openai_key + R"("}},
          {"id": "t-anthropic", "provider": "anthropic", "priority": 2, )" +
                               host +
                               R"(, "default_model": "claude-3-5-sonnet-20241022",
           "credentials": {"api_key": ")" +
                               c.anthropic_key + R"("}}]})");
    std::string svc =
        stack_->MustCreate("/api/v1/gateways/" + gateway_ + "/services",
                           R"({"name": "s", "type": "upstream", "upstream_id": ")" + up + "\"}");
    stack_->MustCreate("/api/v1/gateways/" + gateway_ + "/rules",
                       R"({"path": "/obs", "service_id": ")" + svc +
                           R"(", "methods": ["POST"], "strip_path": true,
                   "retry_policy": {"same_target_retries": 0}})");  // a 429 fails over at once
  }
  static void TearDownTestSuite() {
    E2eSuite::TearDownTestSuite();
    collector_.reset();
  }
  void SetUp() override {
    E2eSuite::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    ASSERT_FALSE(key_.empty());
  }

  HttpResponse Chat(std::vector<std::string> headers = {}) {
    headers.push_back("X-TG-API-Key: " + key_);
    headers.push_back("Content-Type: application/json");
    return Http("POST", stack_->ProxyUrl("/obs/v1/chat/completions"), Body(), headers);
  }

  static std::string Scrape(const std::string& service) {
    auto r = Http("GET",
                  "http://127.0.0.1:" + std::to_string(stack_->metrics_port(service)) + "/metrics");
    EXPECT_EQ(r.status, 200) << service << ": " << r.error;
    return r.body;
  }

  static inline std::unique_ptr<fakes::FakeOtlpCollector> collector_;
  static inline std::string gateway_, key_;
};

const CollectedSpan* Find(const std::vector<CollectedSpan>& spans, const std::string& service,
                          const std::string& name) {
  for (const auto& s : spans) {
    if (s.service == service && s.name == name) return &s;
  }
  return nullptr;
}

TEST_F(ObservabilityE2E, OneRequestIsOneTraceAcrossEveryService) {
  // A key the edge has not verified yet: its check is a VerifyKey call.
  auto k = stack_->Admin("POST", "/api/v1/gateways/" + gateway_ + "/keys",
                         R"({"name": "fresh", "expires_at": "2099-01-01T00:00:00Z"})");
  rapidjson::Document kd;
  kd.Parse(k.body.c_str());
  ASSERT_TRUE(kd.IsObject() && kd.HasMember("key")) << k.body;
  const std::string fresh_key = kd["key"].GetString();

  const std::string trace_id = crypto::HexEncode(crypto::RandomBytes(16));
  const std::string client_span = crypto::HexEncode(crypto::RandomBytes(8));
  auto r = Http("POST", stack_->ProxyUrl("/obs/v1/chat/completions"), Body(),
                {"X-TG-API-Key: " + fresh_key, "Content-Type: application/json",
                 "traceparent: 00-" + trace_id + "-" + client_span + "-01"});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.headers["x-selected-provider"], "openai");

  // Five spans: the edge's server span (its local pick is an event) with
  // its Invoke client span, tg-keyauth's VerifyKey, the adapter's Invoke and
  // its provider call. No Pick RPC: the edge picks from tg-balancer's
  // streamed verdicts.
  collector_->WaitForSpans(
      [&](const std::vector<CollectedSpan>& all) {
        return std::count_if(all.begin(), all.end(),
                             [&](const CollectedSpan& s) { return s.trace_id == trace_id; }) >= 5;
      },
      seconds(10));
  std::this_thread::sleep_for(milliseconds(300));  // a sixth span would have arrived by now
  std::vector<CollectedSpan> trace;
  for (const auto& s : collector_->Spans()) {
    if (s.trace_id == trace_id) trace.push_back(s);
  }
  ASSERT_EQ(trace.size(), 5u);
  const auto* verify = Find(trace, "tg-keyauth", "tg.v1.KeyAuthService/VerifyKey");
  ASSERT_NE(verify, nullptr);
  EXPECT_EQ(verify->kind, 2);
  EXPECT_EQ(verify->attributes.at("rpc.grpc.status_code"), "0");

  const auto* edge = Find(trace, "tg-edge", "POST /obs");
  const auto* edge_invoke = Find(trace, "tg-edge", "tg.v1.ProviderAdapterService/Invoke");
  const auto* invoke = Find(trace, "tg-adapter", "tg.v1.ProviderAdapterService/Invoke");
  const auto* provider = Find(trace, "tg-adapter", "chat gpt-4");
  ASSERT_TRUE(edge && edge_invoke && invoke && provider);
  EXPECT_EQ(Find(trace, "tg-balancer", "tg.v1.BalancerService/Pick"), nullptr);
  EXPECT_EQ(std::count(edge->event_names.begin(), edge->event_names.end(), "pick"), 1);

  // Parented as the calls were made, the edge under the client's span.
  EXPECT_EQ(edge->parent_span_id, client_span);
  EXPECT_EQ(verify->parent_span_id, edge->span_id);
  EXPECT_EQ(edge->kind, 2);  // server
  EXPECT_EQ(edge_invoke->parent_span_id, edge->span_id);
  EXPECT_EQ(invoke->parent_span_id, edge_invoke->span_id);
  EXPECT_EQ(provider->parent_span_id, invoke->span_id);
  EXPECT_EQ(provider->kind, 3);

  // The provider continued the trace under the adapter's provider span.
  auto recorded = fake_->Requests();
  ASSERT_EQ(recorded.size(), 1u);
  std::string traceparent;
  for (const auto& [name, value] : recorded[0].headers) {
    if (name == "traceparent") traceparent = value;
  }
  EXPECT_EQ(traceparent, "00-" + trace_id + "-" + provider->span_id + "-01");

  // Who served it, in the GenAI conventions and the gateway's own terms.
  EXPECT_EQ(edge->attributes.at("tg.gateway_id"), gateway_);
  EXPECT_FALSE(edge->attributes.at("tg.rule_id").empty());
  EXPECT_EQ(edge->attributes.at("tg.target_id"), "t-openai");
  EXPECT_EQ(edge->attributes.at("gen_ai.system"), "openai");
  EXPECT_EQ(edge->attributes.at("gen_ai.request.model"), "gpt-4");
  EXPECT_EQ(edge->attributes.at("http.response.status_code"), "200");
  EXPECT_EQ(edge->attributes.at("tg.attempts"), "1");
  EXPECT_EQ(edge->attributes.at("gen_ai.usage.input_tokens"), "12");
  EXPECT_EQ(edge_invoke->attributes.at("tg.attempt"), "1");
  EXPECT_EQ(edge_invoke->attributes.at("tg.outcome"), "ok");
  EXPECT_EQ(invoke->attributes.at("gen_ai.usage.output_tokens"), "9");
  EXPECT_EQ(provider->attributes.at("gen_ai.system"), "openai");
  EXPECT_EQ(provider->attributes.at("http.response.status_code"), "200");

  // Nothing secret or private left the services: not the prompt, the gateway
  // key or the provider's key, in any attribute of any export.
  for (const auto& body : collector_->RawBodies()) {
    EXPECT_EQ(body.find(kCanary), std::string::npos);
    EXPECT_EQ(body.find(key_), std::string::npos);
    EXPECT_EQ(body.find(fake_->credentials().openai_key), std::string::npos);
    EXPECT_EQ(body.find(fake_->credentials().anthropic_key), std::string::npos);
  }
  EXPECT_EQ(collector_->bad_requests(), 0u);

  // The access log names the request's trace, and nothing private either.
  Process* edge_process = stack_->Find("tg-edge");
  ASSERT_NE(edge_process, nullptr);
  // The line is written when the call ends, by the log's writer thread.
  std::string log;
  EXPECT_TRUE(WaitFor(
      [&] {
        log = edge_process->LogTail(20000);
        return log.find("\"trace_id\":\"" + trace_id + "\"") != std::string::npos;
      },
      seconds(5)));
  EXPECT_EQ(log.find(kCanary), std::string::npos);
  EXPECT_EQ(log.find(key_), std::string::npos);
  EXPECT_EQ(log.find(fresh_key), std::string::npos);
  for (const auto& body : collector_->RawBodies())
    EXPECT_EQ(body.find(fresh_key), std::string::npos);
}

TEST_F(ObservabilityE2E, AdminCallsAreTracedInTgConfigAndTgKeyauth) {
  // The suite's set-up created a gateway, an upstream and a key through the
  // admin API: each write is a server span in the service that made it.
  auto spans = collector_->WaitForSpans(
      [](const std::vector<CollectedSpan>& all) {
        return Find(all, "tg-config", "tg.v1.ConfigService/CreateUpstream") != nullptr &&
               Find(all, "tg-keyauth", "tg.v1.KeyAuthService/CreateKey") != nullptr;
      },
      seconds(10));
  const auto* upstream = Find(spans, "tg-config", "tg.v1.ConfigService/CreateUpstream");
  ASSERT_NE(upstream, nullptr);
  EXPECT_EQ(upstream->kind, 2);
  EXPECT_EQ(upstream->status_code, 1);  // OK
  ASSERT_NE(Find(spans, "tg-keyauth", "tg.v1.KeyAuthService/CreateKey"), nullptr);
  // An admin call carrying a traceparent is one trace: the edge's span for
  // the HTTP call, tg-config's for the RPC it made.
  const std::string trace_id = crypto::HexEncode(crypto::RandomBytes(16));
  const std::string client_span = crypto::HexEncode(crypto::RandomBytes(8));
  auto r = Http("GET", stack_->AdminUrl("/api/v1/gateways/" + gateway_), "",
                {"Authorization: Bearer " + stack_->Token(),
                 "traceparent: 00-" + trace_id + "-" + client_span + "-01"});
  ASSERT_EQ(r.status, 200) << r.body;
  spans = collector_->WaitForSpans(
      [&](const std::vector<CollectedSpan>& all) {
        return std::count_if(all.begin(), all.end(),
                             [&](const CollectedSpan& s) { return s.trace_id == trace_id; }) >= 2;
      },
      seconds(10));
  std::vector<CollectedSpan> trace;
  for (const auto& s : spans) {
    if (s.trace_id == trace_id) trace.push_back(s);
  }
  ASSERT_EQ(trace.size(), 2u);
  const auto* admin = Find(trace, "tg-edge", "GET /api/v1/gateways/{id}");
  const auto* get = Find(trace, "tg-config", "tg.v1.ConfigService/GetGateway");
  ASSERT_TRUE(admin && get);
  EXPECT_EQ(admin->parent_span_id, client_span);
  EXPECT_EQ(admin->attributes.at("http.response.status_code"), "200");
  EXPECT_EQ(get->parent_span_id, admin->span_id);

  // Streams (the Watch feeds) and gRPC's own health checks get no span.
  for (const auto& s : spans) {
    EXPECT_EQ(s.name.find("Watch"), std::string::npos) << s.name;
    EXPECT_EQ(s.name.find("grpc.health"), std::string::npos) << s.name;
  }
}

TEST_F(ObservabilityE2E, AFailoverIsAnEventOnTheRequestSpanAndASecondAttempt) {
  fakes::FakeFault f;
  f.path_prefix = "/v1/chat/completions";
  f.status = 429;
  f.count = 1;
  fake_->AddFault(f);
  const std::string trace_id = crypto::HexEncode(crypto::RandomBytes(16));
  auto r = Chat(
      {"traceparent: 00-" + trace_id + "-" + crypto::HexEncode(crypto::RandomBytes(8)) + "-01"});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.headers["x-selected-provider"], "anthropic");
  auto spans = collector_->WaitForSpans(
      [&](const std::vector<CollectedSpan>& all) {
        return std::count_if(all.begin(), all.end(), [&](const CollectedSpan& s) {
                 return s.trace_id == trace_id && s.service == "tg-edge" && s.name == "POST /obs";
               }) == 1;
      },
      seconds(10));
  std::vector<const CollectedSpan*> attempts;
  const CollectedSpan* edge = nullptr;
  for (const auto& s : spans) {
    if (s.trace_id != trace_id || s.service != "tg-edge") continue;
    if (s.name == "POST /obs") edge = &s;
    if (s.name == "tg.v1.ProviderAdapterService/Invoke") attempts.push_back(&s);
  }
  ASSERT_NE(edge, nullptr);
  EXPECT_EQ(edge->attributes.at("tg.attempts"), "2");
  EXPECT_NE(std::find(edge->event_names.begin(), edge->event_names.end(), "failover"),
            edge->event_names.end());
  ASSERT_EQ(attempts.size(), 2u);
  std::set<std::string> outcomes;
  for (const auto* a : attempts) outcomes.insert(a->attributes.at("tg.outcome"));
  EXPECT_EQ(outcomes, (std::set<std::string>{"429", "ok"}));
}

TEST_F(ObservabilityE2E, MetricsMoveWithTraffic) {
  const std::string ok_series =
      "tg_proxy_requests_total{gateway=\"" + gateway_ + "\",provider=\"openai\",status=\"200\"}";
  const std::string failover_series =
      "tg_proxy_failovers_total{gateway=\"" + gateway_ + "\",provider=\"openai\",reason=\"429\"}";
  const std::string tokens_series =
      "tg_adapter_tokens_total{provider=\"openai\",model=\"gpt-4\",direction=\"input\"}";
  // An earlier test's 429 said retry-after-ms: 1000, and the edge keeps a
  // target out for as long as its provider asked (docs/API.md, "Targets' own
  // quotas"): this test wants round robin over both again.
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  const std::string edge_before = Scrape("tg-edge");
  const std::string adapter_before = Scrape("tg-adapter");

  for (int i = 0; i < 5; ++i) ASSERT_EQ(Chat().status, 200);
  auto streamed = Http("POST", stack_->ProxyUrl("/obs/v1/chat/completions"),
                       R"({"model": "gpt-4", "messages": [{"role": "user", "content": "hi"}],
                           "stream": true})",
                       {"X-TG-API-Key: " + key_, "Content-Type: application/json"});
  ASSERT_EQ(streamed.status, 200) << streamed.body;
  fakes::FakeFault f;
  f.path_prefix = "/v1/chat/completions";
  f.status = 429;
  f.count = 1;
  fake_->AddFault(f);
  ASSERT_EQ(Chat().status, 200);  // answered by anthropic after the 429

  // Requests are counted when they end, just after the answer went out.
  std::string edge_after;
  ASSERT_TRUE(WaitFor(
      [&] {
        edge_after = Scrape("tg-edge");
        return Sample(edge_after, ok_series) - Sample(edge_before, ok_series) >= 6;
      },
      seconds(5)))
      << edge_after;
  // Five whole answers and one stream from openai.
  EXPECT_EQ(Sample(edge_after, ok_series) - Sample(edge_before, ok_series), 6);
  const std::string ttfb_count = "tg_proxy_ttfb_seconds_count{provider=\"openai\"}";
  EXPECT_EQ(Sample(edge_after, ttfb_count) - Sample(edge_before, ttfb_count), 1);
  EXPECT_EQ(Sample(edge_after, failover_series) - Sample(edge_before, failover_series), 1);
  const std::string duration_count =
      "tg_proxy_request_duration_seconds_count{gateway=\"" + gateway_ + "\",provider=\"openai\"}";
  EXPECT_GE(Sample(edge_after, duration_count) - Sample(edge_before, duration_count), 5);
  EXPECT_NE(edge_after.find("\ntg_proxy_in_flight "), std::string::npos);
  EXPECT_NE(edge_after.find("\ntg_trace_spans_dropped_total "), std::string::npos);
  EXPECT_NE(edge_after.find("\ntg_log_lines_dropped_total "), std::string::npos);
  EXPECT_NE(edge_after.find("\nprocess_resident_memory_bytes "), std::string::npos);

  // The adapter counted the provider's tokens (the fake reports 12 in and 9
  // out per answer, streamed or not): six answers from openai.
  const std::string adapter_after = Scrape("tg-adapter");
  EXPECT_EQ(Sample(adapter_after, tokens_series) - Sample(adapter_before, tokens_series), 6 * 12);
  const std::string output_series =
      "tg_adapter_tokens_total{provider=\"openai\",model=\"gpt-4\",direction=\"output\"}";
  EXPECT_EQ(Sample(adapter_after, output_series) - Sample(adapter_before, output_series), 6 * 9);

  // The balancer shows both targets healthy (a 429 alone ejects nothing here).
  const std::string balancer = Scrape("tg-balancer");
  EXPECT_NE(balancer.find("tg_balancer_target_healthy{upstream=\""), std::string::npos) << balancer;
  EXPECT_NE(balancer.find(",target=\"t-openai\"} 1\n"), std::string::npos) << balancer;

  // With passive health (threshold 1) a 429 ejects: counted once, and the
  // target's health gauge drops to 0.
  const auto& c = fake_->credentials();
  const std::string host = R"("host": "127.0.0.1", "port": )" + std::to_string(fake_->port()) +
                           R"(, "protocol": "http")";
  const std::string up =
      stack_->MustCreate("/api/v1/gateways/" + gateway_ + "/upstreams",
                         R"({"name": "ej", "algorithm": "round-robin", "targets": [
        {"id": "e-openai", "provider": "openai", "priority": 1, )" +
                             host + R"(, "credentials": {"api_key": ")" + c.openai_key + R"("}},
        {"id": "e-anthropic", "provider": "anthropic", "priority": 2, )" +
                             host + R"(, "credentials": {"api_key": ")" + c.anthropic_key + R"("}}],
        "health_checks": {"passive": true, "threshold": 1, "interval": 60}})");
  const std::string svc =
      stack_->MustCreate("/api/v1/gateways/" + gateway_ + "/services",
                         R"({"name": "ej", "type": "upstream", "upstream_id": ")" + up + "\"}");
  stack_->MustCreate("/api/v1/gateways/" + gateway_ + "/rules",
                     R"({"path": "/ej", "service_id": ")" + svc +
                         R"(", "methods": ["POST"], "strip_path": true})");
  fake_->AddFault(f);
  auto ejecting = Http("POST", stack_->ProxyUrl("/ej/v1/chat/completions"), Body(),
                       {"X-TG-API-Key: " + key_, "Content-Type: application/json"});
  ASSERT_EQ(ejecting.status, 200) << ejecting.body;
  EXPECT_EQ(ejecting.headers["x-selected-provider"], "anthropic");
  const std::string ejections =
      "tg_balancer_ejections_total{upstream=\"" + up + "\",target=\"e-openai\"}";
  const std::string ejected =
      "tg_balancer_target_healthy{upstream=\"" + up + "\",target=\"e-openai\"} 0\n";
  std::string after;
  EXPECT_TRUE(WaitFor(
      [&] {
        after = Scrape("tg-balancer");
        return Sample(after, ejections) == 1 && after.find(ejected) != std::string::npos;
      },
      seconds(5)))
      << after;

  // tg-config and tg-keyauth serve /metrics too.
  EXPECT_NE(Scrape("tg-config").find("\nprocess_cpu_seconds_total "), std::string::npos);
  EXPECT_NE(Scrape("tg-keyauth").find("\nprocess_cpu_seconds_total "), std::string::npos);
  // Every service exports the heap trimmer's count (tg/common/memory_trim.h).
  for (const char* service : {"tg-edge", "tg-config", "tg-keyauth", "tg-balancer", "tg-adapter"}) {
    EXPECT_NE(Scrape(service).find("\ntg_malloc_trims_total "), std::string::npos) << service;
  }
}

// Last: it leaves the collector stopped.
TEST_F(ObservabilityE2E, ASlowOrAbsentCollectorNeitherSlowsNorFailsRequests) {
  auto run = [&](const char* phase) {
    milliseconds slowest{0};
    for (int i = 0; i < 150; ++i) {
      auto t0 = std::chrono::steady_clock::now();
      auto r = Chat();
      auto took = std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - t0);
      slowest = std::max(slowest, took);
      ASSERT_EQ(r.status, 200) << phase << " request " << i << ": " << r.body;
    }
    // An exporter on the request path would wait for the collector (5 s
    // answers, 2 s export timeout) on every flush.
    EXPECT_LT(slowest, milliseconds(1000)) << phase;
    std::printf("[ info ] collector %s: 150 requests OK, slowest %lld ms\n", phase,
                static_cast<long long>(slowest.count()));
  };
  const std::string before = Scrape("tg-edge");
  collector_->SetResponseDelay(seconds(5));
  run("answering after 5 s");
  collector_->Stop();
  run("stopped");
  // The edge's exports did fail meanwhile, and it says so.
  std::string after;
  EXPECT_TRUE(WaitFor(
      [&] {
        after = Scrape("tg-edge");
        return Sample(after, "tg_trace_export_failures_total") >
               Sample(before, "tg_trace_export_failures_total");
      },
      seconds(10)))
      << after;
}

}  // namespace
}  // namespace tg::testing
