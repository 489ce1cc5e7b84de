// Size: the seeds' proxy walk-through end to end on one stack fixture.
// The proxy end to end: tg-config, tg-keyauth, tg-balancer, tg-adapter and
// tg-edge as separate processes on a real PostgreSQL and Redis, in front of
// the fake providers (in this process), driven over HTTP as the seeds do.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <rapidjson/document.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <map>
#include <set>
#include <thread>

#include "e2e_suite.h"
#include "fake_provider.h"
#include "process.h"
#include "stack.h"
#include "test_db.h"

namespace tg::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

fakes::FakeFault StatusFault(const std::string& path, int status) {
  fakes::FakeFault f;
  f.path_prefix = path;
  f.status = status;
  return f;
}

class ProxyE2E : public E2eSuite<ProxyE2E> {
 protected:
  static void SetUpTestSuite() {
    StackOptions o;
    o.edge_env["TG_PROXY_BASE_DOMAIN"] = "example.com";
    if (!StartSuite("e2e_proxy", o, /*proxy=*/true)) return;
    gateway_ = stack_->MustCreate("/api/v1/gateways", R"({"name": "acme", "subdomain": "acme"})");
    other_gateway_ =
        stack_->MustCreate("/api/v1/gateways", R"({"name": "other", "subdomain": "other"})");
    key_ = stack_->MustCreateKey(gateway_, "2099-01-01T00:00:00Z");
    other_key_ = stack_->MustCreateKey(other_gateway_, "2099-01-01T00:00:00Z");
  }
  HttpResponse Chat(const std::string& path, const std::string& body,
                    std::vector<std::string> headers = {}) {
    if (headers.empty()) headers.push_back("X-TG-API-Key: " + key_);
    headers.push_back("Content-Type: application/json");
    return Http("POST", stack_->ProxyUrl(path), body, headers);
  }

  static inline std::string gateway_, other_gateway_, key_, other_key_;
};

// The seeds' mixed body, as "Using the Load Balanced API" sends it.
const char kSeedBody[] = R"({
  "model": "gpt-4",
  "messages": [{"role": "user", "content": "Hello, how are you?"}],
  "max_tokens": 1020,
  "system": "You are an assistant"
})";

TEST_F(ProxyE2E, SeedWalkthroughRoundRobinsOpenAiAndAnthropicWithTransformedBodies) {
  stack_->MustRoute(
      gateway_, "/seed",
      R"({"name": "ai-providers-upstream", "algorithm": "round-robin", "targets": [)" +
          fake_->TargetJson("openai", R"("default_model": "gpt-4o-mini",
                        "models": ["gpt-3.5-turbo", "gpt-4", "gpt-4o-mini"], )") +
          "," + fake_->TargetJson("anthropic", R"("default_model": "claude-3-sonnet",
                        "models": ["claude-3-sonnet"], "headers": {"anthropic-version": "2023-06-01"}, )") +
          R"(], "health_checks": {"passive": true, "threshold": 3, "interval": 60}})");
  std::vector<std::string> providers;
  for (int i = 0; i < 4; ++i) {
    // The seed's request also carries the admin JWT: it must not go upstream.
    auto r = Chat("/seed/v1/chat/completions", kSeedBody,
                  {"X-TG-API-Key: " + key_, "Authorization: Bearer " + stack_->Token()});
    ASSERT_EQ(r.status, 200) << r.body;
    providers.push_back(r.headers["x-selected-provider"]);
    auto d = Json(r.body);
    ASSERT_TRUE(d.IsObject()) << r.body;
    EXPECT_STREQ(d["object"].GetString(), "chat.completion") << "OpenAI format whoever served it";
    EXPECT_STREQ(d["choices"][0]["message"]["content"].GetString(),
                 "Hello from the fake provider!");
  }
  EXPECT_NE(providers[0], providers[1]);
  EXPECT_EQ(providers[0], providers[2]);
  EXPECT_EQ(providers[1], providers[3]);

  auto requests = fake_->Requests();
  ASSERT_EQ(requests.size(), 4u);
  for (const auto& q : requests) {
    auto body = Json(q.body);
    if (q.api == fakes::Api::kAnthropic) {
      EXPECT_STREQ(body["model"].GetString(), "claude-3-sonnet") << "gpt-4 → the default model";
      EXPECT_EQ(body["max_tokens"].GetInt(), 1020);
      EXPECT_TRUE(body.HasMember("system")) << q.body;
      EXPECT_EQ(q.Header("x-api-key"), fake_->credentials().anthropic_key)
          << "credentials from the target";
    } else {
      EXPECT_STREQ(body["model"].GetString(), "gpt-4");
      EXPECT_FALSE(body.HasMember("system")) << "system moved into messages: " << q.body;
      EXPECT_STREQ(body["messages"][0]["role"].GetString(), "system");
    }
    EXPECT_EQ(q.Header("x-tg-api-key"), "");
    for (const auto& [k, v] : q.headers) {
      EXPECT_EQ(v.find(stack_->Token().substr(0, 20)), std::string::npos)
          << "admin JWT leaked in " << k;
    }
  }
}

TEST_F(ProxyE2E, StreamsFromEveryProviderEndWithTheClientsTerminator) {
  for (const char* provider : {"openai", "anthropic", "gemini", "bedrock", "azure"}) {
    std::string path = std::string("/stream-") + provider;
    std::string model =
        std::string(provider) == "bedrock" ? "anthropic.claude-3-haiku-20240307-v1:0" : "model-x";
    stack_->MustRoute(gateway_, path,
                      R"({"name": "u", "targets": [)" +
                          fake_->TargetJson(provider, R"("default_model": ")" + model + R"(", )") +
                          "]}");
    auto r =
        Chat(path + "/v1/chat/completions",
             R"({"model": "m", "stream": true, "messages": [{"role": "user", "content": "Hi"}]})");
    ASSERT_EQ(r.status, 200) << provider << ": " << r.body;
    EXPECT_EQ(r.headers["content-type"], "text/event-stream") << provider;
    EXPECT_EQ(r.headers["x-selected-provider"], provider);
    EXPECT_NE(r.body.find("Hello"), std::string::npos) << provider << ": " << r.body;
    EXPECT_GE(r.body.size(), 14u);
    EXPECT_EQ(r.body.substr(r.body.size() - 14), "data: [DONE]\n\n") << provider << ": " << r.body;

    // Anthropic clients get Anthropic events from the same target.
    r = Chat(path + "/v1/messages",
             R"({"model": "m", "max_tokens": 50, "stream": true,
                 "messages": [{"role": "user", "content": "Hi"}]})");
    ASSERT_EQ(r.status, 200) << provider << ": " << r.body;
    EXPECT_NE(r.body.find("event: message_stop"), std::string::npos) << provider << ": " << r.body;
  }
}

TEST_F(ProxyE2E, A429FailsOverAndA400DoesNot) {
  stack_->MustRoute(gateway_, "/failover",
                    R"({"name": "u", "targets": [)" + fake_->TargetJson("openai") + "," +
                        fake_->TargetJson("anthropic") + "]}");
  fake_->AddFault(StatusFault("/v1/chat/completions", 429));
  for (int i = 0; i < 2; ++i) {
    auto r = Chat("/failover/v1/chat/completions", kSeedBody);
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.headers["x-selected-provider"], "anthropic");
  }
  // A request that met the throttled target called it twice (the retry the
  // policy allows, after its Retry-After), then the other one.
  int throttled = 0, answered = 0;
  for (const auto& q : fake_->Requests()) {
    throttled += q.api == fakes::Api::kOpenAiChat;
    answered += q.api == fakes::Api::kAnthropic;
  }
  EXPECT_EQ(answered, 2);
  EXPECT_GE(throttled, 2);
  EXPECT_EQ(throttled % 2, 0);
  fake_->ClearFaults();
  fake_->ClearRequests();
  fake_->AddFault(StatusFault("/v1/chat/completions", 400));
  fake_->AddFault(StatusFault("/v1/messages", 400));
  auto r = Chat("/failover/v1/chat/completions", kSeedBody);
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_EQ(fake_->Requests().size(), 1u) << "a 400 is answered, never retried";
}

// Issue 12: a stream that finished (finish_reason, usage, a clean end of the
// body) but never sent `data: [DONE]` is complete; one malformed event in a
// good stream is skipped (counted on tg-adapter's /metrics), not the end of it.
TEST_F(ProxyE2E, AFinishedStreamWithoutDoneAndOneMalformedEventStillAnswer) {
  stack_->MustRoute(gateway_, "/shapes",
                    R"({"name": "u", "targets": [)" + fake_->TargetJson("openai") + "]}");
  const std::string stream =
      R"({"model": "gpt-4", "stream": true, "stream_options": {"include_usage": true},
          "messages": [{"role": "user", "content": "Hi"}]})";
  auto check = [&](const char* what) {
    auto r = Chat("/shapes/v1/chat/completions", stream);
    ASSERT_EQ(r.status, 200) << what << ": " << r.body;
    EXPECT_NE(r.body.find("Hello"), std::string::npos) << what << ": " << r.body;
    EXPECT_EQ(r.body.find("\"error\""), std::string::npos) << what << ": " << r.body;
    EXPECT_NE(r.body.find("\"usage\":{\"prompt_tokens\""), std::string::npos) << what;
    ASSERT_GE(r.body.size(), 14u);
    EXPECT_EQ(r.body.substr(r.body.size() - 14), "data: [DONE]\n\n") << what << ": " << r.body;
  };
  fakes::FakeFault no_done;
  no_done.omit_done = true;
  fake_->AddFault(no_done);
  check("without [DONE]");
  fake_->ClearFaults();

  auto skipped = [&] {
    auto m = Http("GET", "http://127.0.0.1:" + std::to_string(stack_->metrics_port("tg-adapter")) +
                             "/metrics");
    const std::string name = "tg_adapter_stream_events_skipped_total{provider=\"openai\"} ";
    auto at = m.body.find(name);
    return at == std::string::npos ? 0 : std::atoi(m.body.c_str() + at + name.size());
  };
  const int before = skipped();
  fakes::FakeFault garbage;
  garbage.garbage_before_event = 2;
  fake_->AddFault(garbage);
  check("one malformed event");
  EXPECT_EQ(skipped(), before + 1);
  EXPECT_EQ(fake_->Requests().size(), 2u) << "one provider call each, no failover";

  // Mostly garbage still fails, with an in-band error.
  fake_->ClearFaults();
  garbage.garbage_events = 5;
  fake_->AddFault(garbage);
  auto r = Chat("/shapes/v1/chat/completions", stream);
  EXPECT_NE(r.body.find("\"error\""), std::string::npos) << r.body;
  EXPECT_EQ(r.body.find("data: [DONE]"), std::string::npos) << r.body;
}

// Issue 12, retry policy: a preferred target that answers 429 with
// Retry-After, or a 5xx once, is called again (after the provider's wait, or
// the backoff) before the fallback; a wait beyond max_retry_after_ms fails
// over at once; retry_attempts: 0 (TrustGate's field) answers the first
// failure, with the provider's Retry-After passed on.
TEST_F(ProxyE2E, ThePreferredTargetIsRetriedAsTheProviderAsksBeforeTheFallback) {
  const std::string targets = R"({"name": "u", "targets": [)" +
                              fake_->TargetJson("openai", R"("priority": 1, )") + "," +
                              fake_->TargetJson("anthropic", R"("priority": 2, )") + "]}";
  stack_->MustRoute(gateway_, "/retry", targets);
  auto calls = [&](fakes::Api api) {
    int n = 0;
    for (const auto& q : fake_->Requests()) n += q.api == api;
    return n;
  };
  auto once = [&](int status, const std::string& retry_after) {
    fakes::FakeFault f = StatusFault("/v1/chat/completions", status);
    if (!retry_after.empty()) {  // OpenAI sends both; the fake's own say 1 s
      f.headers = {{"Retry-After", retry_after},
                   {"retry-after-ms", std::to_string(std::stoi(retry_after) * 1000)}};
    }
    f.count = 1;
    fake_->ClearFaults();
    fake_->ClearRequests();
    fake_->AddFault(f);
  };

  once(429, "1");
  auto started = std::chrono::steady_clock::now();
  auto r = Chat("/retry/v1/chat/completions", kSeedBody);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.headers["x-selected-provider"], "openai");
  EXPECT_GE(std::chrono::steady_clock::now() - started, milliseconds(950)) << "Retry-After: 1";
  EXPECT_EQ(calls(fakes::Api::kOpenAiChat), 2);
  EXPECT_EQ(calls(fakes::Api::kAnthropic), 0);

  once(500, "");
  r = Chat("/retry/v1/chat/completions", kSeedBody);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.headers["x-selected-provider"], "openai") << "a 5xx once: retried after the backoff";
  EXPECT_EQ(calls(fakes::Api::kOpenAiChat), 2);

  once(429, "30");
  started = std::chrono::steady_clock::now();
  r = Chat("/retry/v1/chat/completions", kSeedBody);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.headers["x-selected-provider"], "anthropic") << "30 s is past max_retry_after_ms";
  EXPECT_LT(std::chrono::steady_clock::now() - started, seconds(3));
  EXPECT_EQ(calls(fakes::Api::kOpenAiChat), 1);

  // retry_attempts: 0 on a rule of its own: the 429 is the answer.
  std::string up = stack_->MustCreate("/api/v1/gateways/" + gateway_ + "/upstreams", targets);
  std::string svc =
      stack_->MustCreate("/api/v1/gateways/" + gateway_ + "/services",
                         R"({"name": "s", "type": "upstream", "upstream_id": ")" + up + "\"}");
  stack_->MustCreate("/api/v1/gateways/" + gateway_ + "/rules",
                     R"({"path": "/noretry", "service_id": ")" + svc +
                         R"(", "methods": ["POST"], "strip_path": true, "retry_attempts": 0})");
  ASSERT_TRUE(WaitFor([&] { return Chat("/noretry/v1/chat/completions", kSeedBody).status == 200; },
                      seconds(5)));
  once(429, "7");
  r = Chat("/noretry/v1/chat/completions", kSeedBody);
  EXPECT_EQ(r.status, 429) << r.body;
  EXPECT_EQ(r.headers["retry-after"], "7") << "the provider's Retry-After reaches the client";
  EXPECT_EQ(fake_->Requests().size(), 1u);
}

// Issue 12: a prompt over the model's context (OpenAI's 400
// context_length_exceeded) fails over to a target with another model, never
// to one with the same model; with no such target the provider's 400 is the
// answer, after one call.
TEST_F(ProxyE2E, APromptOverTheContextFailsOverToAnotherModelOnly) {
  stack_->MustRoute(
      gateway_, "/context",
      R"({"name": "u", "targets": [)" +
          fake_->TargetJson("openai", R"("priority": 1, "default_model": "gpt-4", )") + "," +
          fake_->TargetJson("openai", R"("priority": 1, "default_model": "gpt-4", )") + "," +
          fake_->TargetJson("anthropic", R"("priority": 2, "default_model": "claude-3-sonnet", )") +
          "]}");
  fakes::FakeFault f = StatusFault("/v1/chat/completions", 400);
  f.error_type = "context_length_exceeded";
  fake_->AddFault(f);
  auto r = Chat("/context/v1/chat/completions", kSeedBody);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.headers["x-selected-provider"], "anthropic");
  auto requests = fake_->Requests();
  ASSERT_EQ(requests.size(), 2u) << "one gpt-4 target, then the larger model; not the other gpt-4";
  EXPECT_EQ(requests[0].api, fakes::Api::kOpenAiChat);
  EXPECT_EQ(requests[1].api, fakes::Api::kAnthropic);
  EXPECT_NE(requests[1].body.find("claude-3-sonnet"), std::string::npos);

  stack_->MustRoute(gateway_, "/context-same",
                    R"({"name": "u", "targets": [)" +
                        fake_->TargetJson("openai", R"("default_model": "gpt-4", )") + "," +
                        fake_->TargetJson("openai", R"("default_model": "gpt-4", )") + "]}");
  fake_->ClearRequests();
  r = Chat("/context-same/v1/chat/completions", kSeedBody);
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_NE(r.body.find("context_length_exceeded"), std::string::npos) << r.body;
  EXPECT_EQ(fake_->Requests().size(), 1u);
}

// Issue 12, timeouts: the edge holds a stream until its first token (the
// head and OpenAI's role-only chunk do not count) and times the rule's
// first_token_ms to it: a primary that is late fails over before any byte
// reached the client, and a paused tg-adapter is a 504 within the deadline
// rather than a request hanging for the Invoke's 10 minutes.
TEST_F(ProxyE2E, AFirstTokenThatIsLateFailsOverBeforeAnyByte) {
  stack_->MustRoute(gateway_, "/ttft",
                    R"({"name": "u", "targets": [)" +
                        fake_->TargetJson("openai", R"("priority": 1, )") + "," +
                        fake_->TargetJson("anthropic", R"("priority": 2, )") + "]}",
                    true, R"(, "timeouts": {"first_token_ms": 1000})");
  fakes::FakeFault late;
  late.path_prefix = "/v1/chat/completions";
  late.delay_before_event = 1;  // after the role-only chunk
  late.event_delay = milliseconds(8000);
  late.count = 1;
  fake_->AddFault(late);
  const auto started = std::chrono::steady_clock::now();
  auto r = Chat(
      "/ttft/v1/chat/completions",
      R"({"model": "gpt-4", "stream": true, "messages": [{"role": "user", "content": "Hi"}]})");
  const auto took = std::chrono::steady_clock::now() - started;
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.headers["x-selected-provider"], "anthropic");
  EXPECT_LT(took, seconds(5)) << "first_token_ms 1000 (+1 s at the edge), then the fallback";
  EXPECT_GE(took, milliseconds(900));
  size_t roles = 0;
  for (size_t at = r.body.find("\"role\":\"assistant\""); at != std::string::npos;
       at = r.body.find("\"role\":\"assistant\"", at + 1)) {
    ++roles;
  }
  EXPECT_EQ(roles, 1u) << "nothing of the late attempt reached the client: " << r.body;
  EXPECT_EQ(r.body.substr(r.body.size() - 14), "data: [DONE]\n\n");
}

// Lookaside balancing: tg-edge picks from the last verdicts it holds, so a
// paused tg-balancer (SIGSTOP) costs no request and no latency, and an
// ejection decided before the pause still holds during it.
// What clients call besides chat: the models a route serves (from the
// configuration, no provider call), a model no target serves as OpenAI
// answers it, and a path provider targets do not serve.
TEST_F(ProxyE2E, ModelsListAndRetrieveUnknownModelsAndUnservedPaths) {
  stack_->MustRoute(gateway_, "/catalog",
                    R"({"name": "u", "targets": [)" +
                        fake_->TargetJson("openai", R"("models": ["gpt-4", "gpt-4o"], )") + "," +
                        fake_->TargetJson("anthropic", R"("models": ["claude-3-sonnet"], )") +
                        "]}");
  const size_t calls_before = fake_->Requests().size();
  auto r = Http("GET", stack_->ProxyUrl("/catalog/v1/models"), "", {"X-TG-API-Key: " + key_});
  ASSERT_EQ(r.status, 200) << r.body;
  auto d = Json(r.body);
  ASSERT_TRUE(d.IsObject() && d["data"].IsArray()) << r.body;
  EXPECT_STREQ(d["object"].GetString(), "list");
  ASSERT_EQ(d["data"].Size(), 3u) << r.body;
  EXPECT_STREQ(d["data"][0]["id"].GetString(), "gpt-4");
  EXPECT_STREQ(d["data"][2]["id"].GetString(), "claude-3-sonnet");
  EXPECT_STREQ(d["data"][2]["owned_by"].GetString(), "anthropic");

  r = Http("GET", stack_->ProxyUrl("/catalog/v1/models/gpt-4o"), "", {"X-TG-API-Key: " + key_});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_STREQ(Json(r.body)["owned_by"].GetString(), "openai");
  // Anthropic's SDKs send anthropic-version: its format.
  r = Http("GET", stack_->ProxyUrl("/catalog/v1/models"), "",
           {"X-Api-Key: " + key_, "anthropic-version: 2023-06-01"});
  ASSERT_EQ(r.status, 200) << r.body;
  d = Json(r.body);
  EXPECT_STREQ(d["data"][0]["type"].GetString(), "model");
  EXPECT_STREQ(d["last_id"].GetString(), "claude-3-sonnet");
  r = Http("GET", stack_->ProxyUrl("/catalog/v1/models/gpt-5"), "", {"X-TG-API-Key: " + key_});
  EXPECT_EQ(r.status, 404);
  EXPECT_STREQ(Json(r.body)["error"]["code"].GetString(), "model_not_found") << r.body;
  // Without a key, as for chat.
  EXPECT_EQ(Http("GET", stack_->ProxyUrl("/catalog/v1/models"), "", {}).status, 401);
  EXPECT_EQ(fake_->Requests().size(), calls_before) << "no provider was called";

  // A chat for a model no target serves: 404 model_not_found, no provider call.
  r = Chat("/catalog/v1/chat/completions",
           R"({"model": "gpt-5", "messages": [{"role": "user", "content": "Hi"}]})");
  EXPECT_EQ(r.status, 404) << r.body;
  d = Json(r.body);
  EXPECT_STREQ(d["error"]["code"].GetString(), "model_not_found") << r.body;
  EXPECT_NE(std::string(d["error"]["message"].GetString()).find("gpt-5"), std::string::npos);
  // A path provider targets do not serve: 404 listing what they do.
  r = Chat("/catalog/v1/images/generations", R"({"prompt": "a cat"})");
  EXPECT_EQ(r.status, 404) << r.body;
  EXPECT_NE(r.body.find("/chat/completions"), std::string::npos) << r.body;
  EXPECT_EQ(fake_->Requests().size(), calls_before) << "no provider was called";
}

TEST_F(ProxyE2E, APausedBalancerCostsNothing) {
  stack_->MustRoute(
      gateway_, "/nobalancer",
      R"({"name": "u", "targets": [)" + fake_->TargetJson("openai", R"("priority": 1, )") + "," +
          fake_->TargetJson("anthropic", R"("priority": 2, )") +
          R"(], "health_checks": {"passive": true, "threshold": 1, "interval": 60}})");
  fake_->AddFault(StatusFault("/v1/chat/completions", 500));
  ASSERT_EQ(Chat("/nobalancer/v1/chat/completions", kSeedBody).status, 200);  // ejects openai
  fake_->ClearFaults();
  Process* balancer = stack_->Find("tg-balancer");
  ASSERT_NE(balancer, nullptr);
  // The verdict reached the edge before the pause: nothing goes to openai.
  std::this_thread::sleep_for(milliseconds(200));
  ASSERT_EQ(::kill(balancer->pid(), SIGSTOP), 0);
  int served = 0;
  auto slowest = std::chrono::steady_clock::duration::zero();
  for (int i = 0; i < 20; ++i) {
    const auto started = std::chrono::steady_clock::now();
    auto r = Chat("/nobalancer/v1/chat/completions", kSeedBody);
    slowest = std::max(slowest, std::chrono::steady_clock::now() - started);
    served += r.status == 200;
    EXPECT_EQ(r.headers["x-selected-provider"], "anthropic") << i;
  }
  ::kill(balancer->pid(), SIGCONT);
  EXPECT_EQ(served, 20);
  EXPECT_LT(slowest, milliseconds(500)) << "no request waits for the paused balancer";
}

TEST_F(ProxyE2E, APausedAdapterIsA504WithinTheFirstTokenDeadline) {
  stack_->MustRoute(gateway_, "/paused",
                    R"({"name": "u", "targets": [)" + fake_->TargetJson("openai") + "]}", true,
                    R"(, "timeouts": {"first_token_ms": 1000})");
  ASSERT_EQ(Chat("/paused/v1/chat/completions", kSeedBody).status, 200);
  Process* adapter = stack_->Find("tg-adapter");
  ASSERT_NE(adapter, nullptr);
  ASSERT_EQ(::kill(adapter->pid(), SIGSTOP), 0);
  const auto started = std::chrono::steady_clock::now();
  auto r = Chat("/paused/v1/chat/completions", kSeedBody);
  const auto took = std::chrono::steady_clock::now() - started;
  ::kill(adapter->pid(), SIGCONT);
  EXPECT_EQ(r.status, 504) << r.body;
  EXPECT_NE(r.body.find("no first token within 1000 ms"), std::string::npos) << r.body;
  EXPECT_LT(took, seconds(4));
  EXPECT_GE(took, milliseconds(1900));
  // Resumed, it serves again.
  EXPECT_TRUE(WaitFor([&] { return Chat("/paused/v1/chat/completions", kSeedBody).status == 200; },
                      seconds(10)));
}

TEST_F(ProxyE2E, ToolCallsThroughAnthropic) {
  stack_->MustRoute(gateway_, "/tools",
                    R"({"name": "u", "targets": [)" +
                        fake_->TargetJson("anthropic", R"("default_model": "claude-3-sonnet", )") +
                        "]}");
  auto r = Chat("/tools/v1/chat/completions", R"({"model": "x", "messages": [
      {"role": "user", "content": "Weather in Paris?"}],
      "tools": [{"type": "function", "function": {"name": "get_weather",
        "parameters": {"type": "object", "properties": {"location": {"type": "string"}}}}}]})");
  ASSERT_EQ(r.status, 200) << r.body;
  auto d = Json(r.body);
  ASSERT_TRUE(d.IsObject()) << r.body;
  EXPECT_STREQ(d["choices"][0]["finish_reason"].GetString(), "tool_calls") << r.body;
  const auto& call = d["choices"][0]["message"]["tool_calls"][0];
  EXPECT_STREQ(call["function"]["name"].GetString(), "get_weather");
  EXPECT_STREQ(call["function"]["arguments"].GetString(), R"({"location":"Paris"})");
  auto sent = Json(fake_->Requests().at(0).body);
  EXPECT_STREQ(sent["tools"][0]["name"].GetString(), "get_weather") << "tools → Anthropic tools";
}

TEST_F(ProxyE2E, WeightsSeventyThirtyOverAThousandRequests) {
  stack_->MustRoute(gateway_, "/weights",
                    R"({"name": "u", "algorithm": "weighted-round-robin", "targets": [)" +
                        fake_->TargetJson("openai", R"("weight": 70, )") + "," +
                        fake_->TargetJson("anthropic", R"("weight": 30, )") + "]}");
  std::map<std::string, int> count;
  for (int i = 0; i < 1000; ++i) {
    auto r = Chat("/weights/v1/chat/completions", kSeedBody);
    ASSERT_EQ(r.status, 200) << "request " << i << ": " << r.body << r.error;
    ++count[r.headers["x-selected-provider"]];
  }
  EXPECT_NEAR(count["openai"], 700, 30);
  EXPECT_NEAR(count["anthropic"], 300, 30);
}

TEST_F(ProxyE2E, PriorityFailoverEjectionAndRecovery) {
  const std::string up = stack_->MustRoute(
      gateway_, "/priority",
      R"({"name": "u", "targets": [)" + fake_->TargetJson("openai", R"("priority": 1, )") + "," +
          fake_->TargetJson("anthropic", R"("priority": 2, )") +
          R"(], "health_checks": {"passive": true, "threshold": 2, "interval": 2}})");
  fake_->AddFault(StatusFault("/v1/chat/completions", 500));
  for (int i = 0; i < 6; ++i) {
    auto r = Chat("/priority/v1/chat/completions", kSeedBody);
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.headers["x-selected-provider"], "anthropic") << "the failing primary never answers";
  }
  auto to_primary = [&] {
    int n = 0;
    for (const auto& q : fake_->Requests()) n += q.api == fakes::Api::kOpenAiChat;
    return n;
  };
  EXPECT_EQ(to_primary(), 2) << "after threshold=2 failures the primary is ejected";
  // The admin API shows it, without calling a provider.
  const std::string health_path = "/api/v1/gateways/" + gateway_ + "/upstreams/" + up + "/health";
  auto h = stack_->Admin("GET", health_path);
  ASSERT_EQ(h.status, 200) << h.body;
  auto hd = Json(h.body);
  ASSERT_TRUE(hd.IsObject() && hd["targets"].IsArray() && hd["targets"].Size() == 2) << h.body;
  for (const auto& t : hd["targets"].GetArray()) {
    const std::string provider = t["provider"].GetString();
    EXPECT_STREQ(t["state"].GetString(), provider == "openai" ? "ejected" : "healthy") << h.body;
    if (provider == "openai") {
      EXPECT_GE(t["consecutive_failures"].GetInt(), 2) << h.body;
      EXPECT_TRUE(t.HasMember("ejected_until")) << h.body;
      ASSERT_TRUE(t.HasMember("last_error")) << h.body;
      EXPECT_STREQ(t["last_error"].GetString(), "http_500") << h.body;
    } else {
      EXPECT_FALSE(t.HasMember("last_error")) << h.body;
    }
  }
  EXPECT_EQ(fake_->Requests().size(), 8u) << "reading health called no provider";
  EXPECT_EQ(
      stack_->Admin("GET", "/api/v1/gateways/" + other_gateway_ + "/upstreams/" + up + "/health")
          .status,
      404)
      << "another gateway's upstream";

  fake_->ClearFaults();
  std::this_thread::sleep_for(milliseconds(2300));  // interval = 2 s
  auto r = Chat("/priority/v1/chat/completions", kSeedBody);
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.headers["x-selected-provider"], "openai") << "the trial request goes to the primary";
  // Its success restores the primary once the balancer has the report (sent
  // as the answer goes out, so a request right behind it may still see the
  // trial in progress and take the secondary); from then on it serves all.
  ASSERT_TRUE(WaitFor(
      [&] {
        return Chat("/priority/v1/chat/completions", kSeedBody).headers["x-selected-provider"] ==
               "openai";
      },
      milliseconds(1000)));
  for (int i = 0; i < 5; ++i) {
    r = Chat("/priority/v1/chat/completions", kSeedBody);
    EXPECT_EQ(r.headers["x-selected-provider"], "openai") << i;
  }
}

// Issue 12, item 5 ("primary down for 60 s then healthy"), on a compressed
// timescale: a 30 s ejection, the primary down for 6 s, probes every second.
// Without probes the primary would come back only when its ejection ends
// (24 s after its recovery); with them, within about two seconds.
TEST_F(ProxyE2E, ActiveProbesBringThePrimaryBackWithinSecondsOfItsRecovery) {
  using Clock = std::chrono::steady_clock;
  const std::string up = stack_->MustRoute(
      gateway_, "/probed",
      R"({"name": "u", "targets": [)" + fake_->TargetJson("openai", R"("priority": 1, )") + "," +
          fake_->TargetJson("anthropic", R"("priority": 2, )") +
          R"(], "health_checks": {"passive": true, "threshold": 2, "interval": 30,
                         "path": "/v1/models", "headers": {"x-probe": "tg"}, "probe_interval": 1}})");
  const std::string path = "/probed/v1/chat/completions";
  const std::string health_path = "/api/v1/gateways/" + gateway_ + "/upstreams/" + up + "/health";
  auto primary_health = [&] {
    auto h = stack_->Admin("GET", health_path);
    EXPECT_EQ(h.status, 200) << h.body;
    auto d = Json(h.body);
    rapidjson::Document t;
    if (d.IsObject() && d["targets"].IsArray()) {
      for (const auto& each : d["targets"].GetArray()) {
        if (std::string(each["provider"].GetString()) == "openai")
          t.CopyFrom(each, t.GetAllocator());
      }
    }
    return t;
  };

  fakes::FakeFault down;
  down.api = "openai";  // its chat calls and its model list alike
  down.status = 503;
  fake_->AddFault(down);
  const auto down_since = Clock::now();
  while (Clock::now() - down_since < seconds(6)) {
    auto r = Chat(path, kSeedBody);
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.headers["x-selected-provider"], "anthropic")
        << "the fallback while the primary is down";
    std::this_thread::sleep_for(milliseconds(200));
  }
  auto open = primary_health();
  ASSERT_TRUE(open.IsObject());
  EXPECT_STREQ(open["state"].GetString(), "ejected");
  ASSERT_TRUE(open.HasMember("last_probe_result"))
      << stack_->Admin("GET", health_path).body << "\ntg-balancer:\n"
      << stack_->Find("tg-balancer")->LogTail() << "\ntg-adapter:\n"
      << stack_->Find("tg-adapter")->LogTail();
  EXPECT_STREQ(open["last_probe_result"].GetString(), "http_503");
  const std::string primary_id = open["id"].GetString();
  int failed_probes = 0;
  for (const auto& q : fake_->Requests()) {
    if (q.method == "GET" && q.path == "/v1/models") {
      ++failed_probes;
      EXPECT_EQ(q.Header("authorization"), "Bearer " + fake_->credentials().openai_key);
      EXPECT_EQ(q.Header("x-probe"), "tg");
    }
  }
  EXPECT_GE(failed_probes, 3) << "about one a second while open";
  EXPECT_LE(failed_probes, 8) << "not more than one a second";

  // The primary recovers.
  fake_->ClearFaults();
  const auto recovered = Clock::now();
  std::string provider;
  while (Clock::now() - recovered < seconds(5)) {
    auto r = Chat(path, kSeedBody);
    ASSERT_EQ(r.status, 200) << r.body;
    provider = r.headers["x-selected-provider"];
    if (provider == "openai") break;
    std::this_thread::sleep_for(milliseconds(100));
  }
  const auto back_after = Clock::now() - recovered;
  ASSERT_EQ(provider, "openai") << "the primary serves again";
  std::printf("[   INFO   ] the primary served again %lld ms after its recovery\n",
              static_cast<long long>(std::chrono::duration_cast<milliseconds>(back_after).count()));
  EXPECT_LT(back_after, milliseconds(3000))
      << std::chrono::duration_cast<milliseconds>(back_after).count() << " ms after recovery";
  // Its trial succeeded: the circuit is closed and the primary serves all.
  ASSERT_TRUE(
      WaitFor([&] { return Chat(path, kSeedBody).headers["x-selected-provider"] == "openai"; },
              milliseconds(1000)));
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(Chat(path, kSeedBody).headers["x-selected-provider"], "openai") << i;
  }
  auto closed = primary_health();
  EXPECT_STREQ(closed["state"].GetString(), "healthy");
  EXPECT_STREQ(closed["last_probe_result"].GetString(), "healthy");
  EXPECT_LT(Clock::now() - down_since, seconds(15)) << "far before the 30 s ejection ended";

  // Metrics: state per target, probes by result, the ejection.
  auto m = Http("GET", "http://127.0.0.1:" + std::to_string(stack_->metrics_port("tg-balancer")) +
                           "/metrics");
  ASSERT_EQ(m.status, 200);
  const std::string labels = "upstream=\"" + up + "\",target=\"" + primary_id + "\"";
  EXPECT_NE(m.body.find("tg_balancer_target_state{" + labels + ",state=\"closed\"} 1"),
            std::string::npos)
      << m.body;
  EXPECT_NE(m.body.find("tg_balancer_target_state{" + labels + ",state=\"open\"} 0"),
            std::string::npos);
  EXPECT_NE(m.body.find("tg_balancer_probes_total{" + labels + ",result=\"healthy\"} 1"),
            std::string::npos)
      << m.body;
  EXPECT_NE(m.body.find("tg_balancer_probes_total{" + labels + ",result=\"unhealthy\"}"),
            std::string::npos);
  EXPECT_NE(m.body.find("tg_balancer_ejections_total{" + labels + "} 1"), std::string::npos);
}

TEST_F(ProxyE2E, KeysHostsAndRoutes) {
  stack_->MustRoute(gateway_, "/keys",
                    R"({"name": "u", "targets": [)" + fake_->TargetJson("openai") + "]}");
  const std::string path = "/keys/v1/chat/completions";
  EXPECT_EQ(Chat(path, kSeedBody, {"X-Api-Key: " + key_}).status, 200);
  EXPECT_EQ(Chat(path, kSeedBody, {"Authorization: Bearer " + key_}).status, 200);
  EXPECT_EQ(Chat(path, kSeedBody, {"Content-Type: application/json"}).status, 401);
  EXPECT_EQ(Chat(path, kSeedBody, {"X-Api-Key: tg_wrong"}).status, 401);
  EXPECT_EQ(Chat(path, kSeedBody, {"X-Api-Key: " + key_, "Host: acme.example.com"}).status, 200);
  EXPECT_EQ(Chat(path, kSeedBody, {"X-Api-Key: " + other_key_, "Host: acme.example.com"}).status,
            401)
      << "another gateway's key on this gateway's host";
  EXPECT_EQ(Chat("/nowhere/v1/chat/completions", kSeedBody).status, 404);
  EXPECT_EQ(Http("GET", stack_->ProxyUrl(path), "", {"X-Api-Key: " + key_}).status, 405);

  // Expired: a key valid for two more seconds.
  auto soon = std::chrono::system_clock::now() + seconds(2);
  auto t = std::chrono::system_clock::to_time_t(soon);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  std::string short_key = stack_->MustCreateKey(gateway_, buf);
  EXPECT_EQ(Chat(path, kSeedBody, {"X-Api-Key: " + short_key}).status, 200);
  std::this_thread::sleep_for(milliseconds(2200));
  EXPECT_EQ(Chat(path, kSeedBody, {"X-Api-Key: " + short_key}).status, 401);

  // Revoked: effective within a second.
  auto created =
      stack_->Admin("POST", "/api/v1/gateways/" + gateway_ + "/keys", R"({"name": "r"})");
  auto d = Json(created.body);
  std::string revoked_key = d["key"].GetString();
  ASSERT_EQ(Chat(path, kSeedBody, {"X-Api-Key: " + revoked_key}).status, 200);
  ASSERT_EQ(stack_->Admin("DELETE", "/api/v1/gateways/" + gateway_ + "/keys/" + d["id"].GetString())
                .status,
            204);
  std::this_thread::sleep_for(milliseconds(1000));
  EXPECT_EQ(Chat(path, kSeedBody, {"X-Api-Key: " + revoked_key}).status, 401);
}

TEST_F(ProxyE2E, StripPathOnAHostTarget) {
  // A target without a provider: a plain reverse proxy (here onto the fake's
  // OpenAI endpoint, reached through the stripped path).
  stack_->MustRoute(gateway_, "/raw",
                    R"({"name": "u", "targets": [{"host": "127.0.0.1", "port": )" +
                        std::to_string(fake_->port()) + R"(, "protocol": "http",
                    "credentials": {"header_name": "Authorization", "header_value": "Bearer )" +
                        fake_->credentials().openai_key + R"("}}]})");
  auto r = Chat("/raw/v1/chat/completions", kSeedBody);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.headers["x-selected-provider"], "127.0.0.1");
  auto requests = fake_->Requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].path, "/v1/chat/completions") << "the rule's /raw was stripped";
  EXPECT_EQ(requests[0].body, kSeedBody) << "a host target gets the body untranslated";
  EXPECT_EQ(requests[0].Header("authorization"), "Bearer " + fake_->credentials().openai_key)
      << "the target's header credentials, not the client's key";
}

// Before: on a rule at "/" with a host target, the request line
// `POST @127.0.0.2:PORT/steal HTTP/1.1` made the adapter call
// http://127.0.0.1:FAKE@127.0.0.2:PORT/steal, with the target's credential,
// and relay the answer. Now the edge refuses the target (400) and nothing
// connects to the other address.
TEST_F(ProxyE2E, AtSignRequestTargetCannotRedirectTheCall) {
  // A listener at another loopback address, counting connections.
  int listener = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(listener, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  inet_pton(AF_INET, "127.0.0.2", &addr.sin_addr);
  ASSERT_EQ(bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(listen(listener, 4), 0);
  socklen_t len = sizeof(addr);
  getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len);
  const int steal_port = ntohs(addr.sin_port);
  fcntl(listener, F_SETFL, O_NONBLOCK);

  std::string gw =
      stack_->MustCreate("/api/v1/gateways", R"({"name": "steal", "subdomain": "steal"})");
  std::string key = stack_->MustCreateKey(gw, "2099-01-01T00:00:00Z");
  std::string up =
      stack_->MustCreate("/api/v1/gateways/" + gw + "/upstreams",
                         R"({"name": "u", "targets": [{"host": "127.0.0.1", "port": )" +
                             std::to_string(fake_->port()) + R"(, "protocol": "http",
                    "credentials": {"header_name": "Authorization", "header_value": "Bearer )" +
                             fake_->credentials().openai_key + R"("}}]})");
  std::string svc =
      stack_->MustCreate("/api/v1/gateways/" + gw + "/services",
                         R"({"name": "s", "type": "upstream", "upstream_id": ")" + up + "\"}");
  stack_->MustCreate("/api/v1/gateways/" + gw + "/rules",
                     R"({"path": "/", "service_id": ")" + svc + R"(", "methods": ["POST"]})");

  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in edge{};
  edge.sin_family = AF_INET;
  edge.sin_port = htons(static_cast<uint16_t>(stack_->proxy_port()));
  inet_pton(AF_INET, "127.0.0.1", &edge.sin_addr);
  ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&edge), sizeof(edge)), 0);
  std::string raw = "POST @127.0.0.2:" + std::to_string(steal_port) +
                    "/steal HTTP/1.1\r\nHost: x\r\nX-TG-API-Key: " + key +
                    "\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}";
  ASSERT_EQ(write(fd, raw.data(), raw.size()), static_cast<ssize_t>(raw.size()));
  timeval tv{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  std::string got;
  char buf[4096];
  for (ssize_t n; (n = read(fd, buf, sizeof(buf))) > 0;) got.append(buf, static_cast<size_t>(n));
  close(fd);
  EXPECT_EQ(got.rfind("HTTP/1.1 400", 0), 0u) << got;

  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  int stolen = accept(listener, nullptr, nullptr);
  EXPECT_LT(stolen, 0) << "the other address received a connection";
  if (stolen >= 0) close(stolen);
  close(listener);
  EXPECT_TRUE(fake_->Requests().empty());

  // The same rule still proxies an ordinary path to the configured host.
  auto r = Http("POST", stack_->ProxyUrl("/v1/chat/completions"), kSeedBody,
                {"X-TG-API-Key: " + key, "Content-Type: application/json"});
  EXPECT_EQ(r.status, 200) << r.body;
}

// Before: these hosts were stored, and the adapter took the scheme from
// them (file:// read /etc/passwd into the 502 message; gopher:// and dict://
// wrote raw bytes to any port) or connected to cloud metadata.
TEST_F(ProxyE2E, AdminRefusesTargetHostsThatAreNotHosts) {
  for (const char* host : {"file://localhost", "gopher://x", "dict://x", "169.254.169.254",
                           "http://a@b", "[fd00:ec2::254]"}) {
    auto r =
        stack_->Admin("POST", "/api/v1/gateways/" + gateway_ + "/upstreams",
                      std::string(R"({"name": "u", "targets": [{"provider": "openai", "host": ")") +
                          host + R"(", "path": "/etc/passwd"}]})");
    EXPECT_EQ(r.status, 400) << host << ": " << r.body;
    EXPECT_NE(r.body.find("targets[0].host"), std::string::npos) << host << ": " << r.body;
    r = stack_->Admin("POST", "/api/v1/gateways/" + gateway_ + "/services",
                      std::string(R"({"name": "s", "type": "endpoint", "host": ")") + host + "\"}");
    EXPECT_EQ(r.status, 400) << host << ": " << r.body;
    EXPECT_NE(r.body.find("host must"), std::string::npos) << host << ": " << r.body;
  }
}

TEST_F(ProxyE2E, ClientDisconnectMidStreamCancelsTheProviderCall) {
  stack_->MustRoute(gateway_, "/slow",
                    R"({"name": "u", "targets": [)" + fake_->TargetJson("openai") + "]}");
  fakes::FakeAnswer slow;
  slow.text = std::string(400, 'x');
  slow.event_interval = milliseconds(50);
  fake_->SetAnswer(slow);
  {
    RawClient c(stack_->proxy_port());
    std::string body =
        R"({"model": "gpt-4", "stream": true, "messages": [{"role": "user", "content": "Hi"}]})";
    ASSERT_TRUE(c.Send("POST /slow/v1/chat/completions HTTP/1.1\r\nHost: x\r\nX-Api-Key: " + key_ +
                       "\r\nContent-Type: application/json\r\nContent-Length: " +
                       std::to_string(body.size()) + "\r\n\r\n" + body));
    ASSERT_TRUE(c.ReadUntil("data: ", milliseconds(5000)));
  }
  EXPECT_TRUE(fake_->WaitFor(
      [](const std::vector<fakes::RecordedRequest>& r) {
        return !r.empty() && r.back().client_disconnected;
      },
      seconds(5)))
      << "the provider saw the gateway hang up";
}

// ---------------------------------------------------------------- mid-stream rescue

// What an OpenAI Chat stream told the client: its data lines' JSON, in order.
struct ChatStream {
  std::string text;           // choices[0].delta.content, concatenated
  std::set<std::string> ids;  // every chunk's id
  int roles = 0;              // deltas announcing the assistant role
  int errors = 0;             // {"error": …} events
  std::string error_message;
  bool done = false;   // ended with data: [DONE]
  bool usage = false;  // a usage chunk came
};

ChatStream ReadChatStream(const std::string& body) {
  ChatStream s;
  size_t at = 0;
  while ((at = body.find("data: ", at)) != std::string::npos) {
    const size_t end = body.find("\n\n", at);
    const std::string data =
        body.substr(at + 6, end == std::string::npos ? std::string::npos : end - at - 6);
    at = end == std::string::npos ? body.size() : end;
    if (data == "[DONE]") {
      s.done = true;
      continue;
    }
    rapidjson::Document d;
    d.Parse(data.c_str());
    if (!d.IsObject()) continue;
    if (d.HasMember("error")) {
      ++s.errors;
      if (d["error"].IsObject() && d["error"].HasMember("message")) {
        s.error_message = d["error"]["message"].GetString();
      }
      continue;
    }
    if (d.HasMember("id") && d["id"].IsString()) s.ids.insert(d["id"].GetString());
    if (d.HasMember("usage") && d["usage"].IsObject()) s.usage = true;
    if (!d.HasMember("choices") || !d["choices"].IsArray() || d["choices"].Empty()) continue;
    const auto& delta = d["choices"][0]["delta"];
    if (delta.HasMember("role")) ++s.roles;
    if (delta.HasMember("content") && delta["content"].IsString())
      s.text += delta["content"].GetString();
  }
  return s;
}

const char kStreamBody[] =
    R"({"model": "gpt-4", "stream": true, "stream_options": {"include_usage": true},
        "messages": [{"role": "user", "content": "Count to ten"}]})";
const char kTenWords[] = "one two three four five six seven eight nine ten";

// Issue 12, mid-stream rescue: a stream cut after its first words reached the
// client is continued on the fallback (which takes a prefill): the client
// sees one answer, whole, with one id and one role, ending cleanly; the
// fallback was asked to continue the text so far.
TEST_F(ProxyE2E, AStreamCutMidAnswerIsContinuedOnAPrefillTarget) {
  stack_->MustRoute(
      gateway_, "/rescue",
      R"({"name": "u", "targets": [)" + fake_->TargetJson("openai", R"("priority": 1, )") + "," +
          fake_->TargetJson("anthropic", R"("priority": 2, "assistant_prefill": true, )") + "]}");
  fakes::FakeAnswer answer;
  answer.text = kTenWords;
  fake_->SetAnswer(answer);
  fakes::FakeFault cut;
  cut.path_prefix = "/v1/chat/completions";
  cut.drop_after_events = 4;  // the role chunk and "one two three"
  fake_->AddFault(cut);

  auto rescues = [&](const char* result) {
    auto m = Http(
        "GET", "http://127.0.0.1:" + std::to_string(stack_->metrics_port("tg-edge")) + "/metrics");
    const std::string name = "tg_proxy_rescues_total{gateway=\"" + gateway_ +
                             "\",provider=\"openai\",result=\"" + result + "\"} ";
    auto at = m.body.find(name);
    return at == std::string::npos ? 0 : std::atoi(m.body.c_str() + at + name.size());
  };
  const int resumed_before = rescues("resumed");
  auto r = Chat("/rescue/v1/chat/completions", kStreamBody);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_TRUE(WaitFor([&] { return rescues("resumed") == resumed_before + 1; }, seconds(3)))
      << "counted as a rescue that resumed";
  const ChatStream s = ReadChatStream(r.body);
  EXPECT_EQ(s.text, kTenWords) << r.body;
  EXPECT_EQ(s.ids.size(), 1u) << "one answer, one id: " << r.body;
  EXPECT_EQ(s.roles, 1) << r.body;
  EXPECT_EQ(s.errors, 0) << r.body;
  EXPECT_TRUE(s.usage) << r.body;
  EXPECT_TRUE(s.done) << r.body;
  auto requests = fake_->Requests();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(requests[0].api, fakes::Api::kOpenAiChat);
  ASSERT_EQ(requests[1].api, fakes::Api::kAnthropic);
  // The text so far as the conversation's last message, an assistant one.
  auto sent = Json(requests[1].body);
  ASSERT_TRUE(sent.IsObject() && sent.HasMember("messages")) << requests[1].body;
  const auto& last = sent["messages"][sent["messages"].Size() - 1];
  EXPECT_STREQ(last["role"].GetString(), "assistant") << requests[1].body;
  EXPECT_STREQ(last["content"][0]["text"].GetString(), "one two three") << requests[1].body;

  // The same break under an Anthropic client: one message_start, the text
  // in block 0 throughout, one message_stop.
  fake_->ClearRequests();
  r = Chat("/rescue/v1/messages",
           R"({"model": "gpt-4", "stream": true, "max_tokens": 100,
               "messages": [{"role": "user", "content": "Count to ten"}]})");
  ASSERT_EQ(r.status, 200) << r.body;
  auto count = [&](const std::string& needle) {
    int n = 0;
    for (size_t at = r.body.find(needle); at != std::string::npos; at = r.body.find(needle, at + 1))
      ++n;
    return n;
  };
  EXPECT_EQ(count("event: message_start"), 1) << r.body;
  EXPECT_EQ(count("event: content_block_start"), 1) << r.body;
  EXPECT_EQ(count(R"("index":0)"), count("event: content_block_delta") + 2) << r.body;
  EXPECT_EQ(count("event: message_stop"), 1) << r.body;
  EXPECT_EQ(count("event: error"), 0) << r.body;
  std::string text;
  const std::string delta = R"("text_delta","text":")";
  for (size_t at = r.body.find(delta); at != std::string::npos; at = r.body.find(delta, at + 1)) {
    const size_t from = at + delta.size();
    text += r.body.substr(from, r.body.find('"', from) - from);
  }
  EXPECT_EQ(text, kTenWords) << r.body;
}

// A stream that stalls (30 s without an event) past the rule's idle_ms is
// continued just as a cut one, within a few seconds.
TEST_F(ProxyE2E, AStalledStreamIsContinuedAfterTheIdleTimeout) {
  stack_->MustRoute(
      gateway_, "/stall",
      R"({"name": "u", "targets": [)" + fake_->TargetJson("openai", R"("priority": 1, )") + "," +
          fake_->TargetJson("anthropic", R"("priority": 2, "assistant_prefill": true, )") + "]}",
      true, R"(, "timeouts": {"idle_ms": 1000})");
  fakes::FakeAnswer answer;
  answer.text = kTenWords;
  fake_->SetAnswer(answer);
  fakes::FakeFault stall;
  stall.path_prefix = "/v1/chat/completions";
  stall.delay_before_event = 5;  // after "one two three four"
  stall.event_delay = milliseconds(30000);
  stall.count = 1;
  fake_->AddFault(stall);
  const auto started = std::chrono::steady_clock::now();
  auto r = Chat("/stall/v1/chat/completions", kStreamBody);
  EXPECT_LT(std::chrono::steady_clock::now() - started, seconds(6));
  ASSERT_EQ(r.status, 200) << r.body;
  const ChatStream s = ReadChatStream(r.body);
  EXPECT_EQ(s.text, kTenWords) << r.body;
  EXPECT_EQ(s.errors, 0) << r.body;
  EXPECT_TRUE(s.done) << r.body;
}

// A fallback that refuses the prefill (a 400) cannot continue the stream: it
// ends with an error event naming the break, never the prefill's 400, and
// never [DONE]. Without any target that takes a prefill no rescue is tried.
TEST_F(ProxyE2E, ARefusedPrefillEndsTheStreamWithTheOriginalCause) {
  stack_->MustRoute(
      gateway_, "/rescue-refused",
      R"({"name": "u", "targets": [)" + fake_->TargetJson("openai", R"("priority": 1, )") + "," +
          fake_->TargetJson("anthropic", R"("priority": 2, "assistant_prefill": true, )") + "]}");
  fakes::FakeAnswer answer;
  answer.text = kTenWords;
  fake_->SetAnswer(answer);
  fakes::FakeFault cut;
  cut.path_prefix = "/v1/chat/completions";
  cut.drop_after_events = 4;
  fake_->AddFault(cut);
  fakes::FakeFault refuse;
  refuse.path_prefix = "/v1/messages";
  refuse.reject_prefill = true;
  fake_->AddFault(refuse);

  auto r = Chat("/rescue-refused/v1/chat/completions", kStreamBody);
  ASSERT_EQ(r.status, 200) << r.body;
  ChatStream s = ReadChatStream(r.body);
  EXPECT_EQ(s.text, "one two three") << r.body;
  EXPECT_EQ(s.errors, 1) << r.body;
  EXPECT_FALSE(s.done) << "a truncated answer never looks complete: " << r.body;
  EXPECT_EQ(s.error_message.find("prefill"), std::string::npos) << s.error_message;
  EXPECT_NE(s.error_message.find("provider"), std::string::npos) << s.error_message;
  auto requests = fake_->Requests();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(requests[1].status, 400) << "the fallback was asked and refused";

  // No target with assistant_prefill: the break ends the stream, one call.
  stack_->MustRoute(gateway_, "/no-prefill",
                    R"({"name": "u", "targets": [)" +
                        fake_->TargetJson("openai", R"("priority": 1, )") + "," +
                        fake_->TargetJson("anthropic", R"("priority": 2, )") + "]}");
  fake_->ClearRequests();
  r = Chat("/no-prefill/v1/chat/completions", kStreamBody);
  ASSERT_EQ(r.status, 200) << r.body;
  s = ReadChatStream(r.body);
  EXPECT_EQ(s.text, "one two three") << r.body;
  EXPECT_EQ(s.errors, 1) << r.body;
  EXPECT_FALSE(s.done) << r.body;
  EXPECT_EQ(fake_->Requests().size(), 1u);
}

// A whole (not streamed) answer cut midway restarts cleanly on the fallback:
// nothing of it had reached the client.
TEST_F(ProxyE2E, AWholeAnswerCutMidwayRestartsOnTheFallback) {
  stack_->MustRoute(gateway_, "/cut-whole",
                    R"({"name": "u", "targets": [)" +
                        fake_->TargetJson("openai", R"("priority": 1, )") + "," +
                        fake_->TargetJson("anthropic", R"("priority": 2, )") + "]}");
  fakes::FakeFault cut;
  cut.path_prefix = "/v1/chat/completions";
  cut.drop_after_bytes = 40;
  fake_->AddFault(cut);
  auto r = Chat("/cut-whole/v1/chat/completions", kSeedBody);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.headers["x-selected-provider"], "anthropic");
  auto d = Json(r.body);
  ASSERT_TRUE(d.IsObject()) << r.body;
  EXPECT_STREQ(d["choices"][0]["message"]["content"].GetString(), "Hello from the fake provider!");
}

// Issue 12: a provider that resets the connection before its head, or never
// answers at all, is failed over (the latter within first_token_ms); a
// content-filter 400 is answered at once, never retried elsewhere.
TEST_F(ProxyE2E, AResetOrASilentProviderFailsOverAndAContentFilterDoesNot) {
  stack_->MustRoute(
      gateway_, "/silent",
      R"({"name": "u", "targets": [)" + fake_->TargetJson("openai", R"("priority": 1, )") + "," +
          fake_->TargetJson("anthropic", R"("priority": 2, )") + "]}",
      true,
      R"(, "timeouts": {"first_token_ms": 1000}, "retry_policy": {"same_target_retries": 0})");
  fakes::FakeFault reset;
  reset.path_prefix = "/v1/chat/completions";
  reset.close_before_head = true;
  fake_->AddFault(reset);
  auto r = Chat("/silent/v1/chat/completions", kSeedBody);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.headers["x-selected-provider"], "anthropic");

  fake_->ClearFaults();
  fakes::FakeFault silent;
  silent.path_prefix = "/v1/chat/completions";
  silent.hang = true;
  fake_->AddFault(silent);
  const auto started = std::chrono::steady_clock::now();
  r = Chat("/silent/v1/chat/completions", kStreamBody);
  EXPECT_LT(std::chrono::steady_clock::now() - started, seconds(4));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.headers["x-selected-provider"], "anthropic");
  EXPECT_TRUE(ReadChatStream(r.body).done) << r.body;

  fake_->ClearFaults();
  fake_->ClearRequests();
  fakes::FakeFault filtered = StatusFault("/v1/chat/completions", 400);
  filtered.error_type = "content_filter";
  fake_->AddFault(filtered);
  r = Chat("/silent/v1/chat/completions", kSeedBody);
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_EQ(fake_->Requests().size(), 1u) << "no other target is asked to write what was refused";
}

}  // namespace
}  // namespace tg::testing
