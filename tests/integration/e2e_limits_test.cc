// Sizes and readiness end to end (issue 11, items 7 and 10): every service as
// a process, real PostgreSQL and Redis, the fake provider in this process.
//
//   - A 5 MiB non-streamed answer (over gRPC's default 4 MiB) reaches the
//     client whole, and the provider is called once.
//   - An answer over the adapter's maximum (32 MiB) is a 502 "provider answer
//     too large", and the provider is called once: no failover to the second
//     target for a local error.
//   - A configuration whose snapshot is over 4 MiB loads in a restarted edge,
//     balancer and adapter, and requests succeed.
//   - tg-config stopped: the edge's /healthz stays 200, "degraded", and says
//     why; proxied requests succeed; once tg-config is back it is "ok" again.
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <cstdlib>
#include <memory>
#include <string>
#include <thread>

#include "fake_provider.h"
#include "process.h"
#include "stack.h"
#include "test_db.h"
#include "tg/common/limits.h"

namespace tg::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

const char* Env(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? v : nullptr;
}

const char kBody[] = R"({"model": "gpt-4", "messages": [{"role": "user", "content": "Hello"}]})";

class LimitsE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!TestDatabase::Available()) GTEST_SKIP() << "TG_TEST_PG_DSN not set";
    if (Env("TG_TEST_REDIS_ADDR") == nullptr) GTEST_SKIP() << "TG_TEST_REDIS_ADDR not set";
    fakes::FakeProviderOptions fo;
    fo.threads = 2;
    fake_ = std::make_unique<fakes::FakeProvider>(fo);
    std::string error;
    ASSERT_TRUE(fake_->Start(&error)) << error;
    StackOptions o;
    o.balancer = true;
    o.adapter = true;
    o.redis_addr = Env("TG_TEST_REDIS_ADDR");
    stack_ = std::make_unique<Stack>("e2e_limits", o);
    ASSERT_TRUE(stack_->StartAll());
  }

  // A gateway, an upstream with two targets on the fake (so that a failover
  // would call it twice), a service, a rule at /chat and a key.
  void Configure() {
    gateway_ = stack_->MustCreate("/api/v1/gateways", R"({"name": "acme"})");
    std::string up =
        stack_->MustCreate("/api/v1/gateways/" + gateway_ + "/upstreams",
                           R"({"name": "u", "targets": [)" + fake_->TargetJson("openai") + "," +
                               fake_->TargetJson("openai") + "]}");
    std::string svc =
        stack_->MustCreate("/api/v1/gateways/" + gateway_ + "/services",
                           R"({"name": "s", "type": "upstream", "upstream_id": ")" + up + "\"}");
    stack_->MustCreate("/api/v1/gateways/" + gateway_ + "/rules",
                       R"({"path": "/chat", "service_id": ")" + svc +
                           R"(", "methods": ["POST"], "strip_path": true})");
    auto r = stack_->Admin("POST", "/api/v1/gateways/" + gateway_ + "/keys", R"({"name": "k"})");
    ASSERT_EQ(r.status, 201) << r.body;
    key_ = Json(r.body)["key"].GetString();
  }

  HttpResponse Chat() {
    return Http("POST", stack_->ProxyUrl("/chat/v1/chat/completions"), kBody,
                {"X-Api-Key: " + key_, "Content-Type: application/json"});
  }
  size_t ProviderCalls() { return fake_->Requests().size(); }

  std::unique_ptr<fakes::FakeProvider> fake_;
  std::unique_ptr<Stack> stack_;
  std::string gateway_, key_;
};

TEST_F(LimitsE2E, AFiveMiBAnswerIsDeliveredWholeWithOneProviderCall) {
  Configure();
  fakes::FakeAnswer answer;
  answer.text = std::string(5 * limits::kMiB, 'a');
  fake_->SetAnswer(answer);
  fake_->ClearRequests();
  auto r = Chat();
  ASSERT_EQ(r.status, 200) << r.body.substr(0, 500) << r.error;
  auto d = Json(r.body);
  ASSERT_TRUE(d.IsObject()) << r.body.substr(0, 200);
  EXPECT_EQ(std::string(d["choices"][0]["message"]["content"].GetString()), answer.text)
      << "the whole answer";
  EXPECT_EQ(ProviderCalls(), 1u) << "one request, one provider call";
}

TEST_F(LimitsE2E, AnAnswerOverTheMaximumIsA502WithOneProviderCall) {
  Configure();
  fakes::FakeAnswer answer;
  answer.text = std::string(limits::kMaxProviderAnswerBytes + limits::kMiB, 'a');
  fake_->SetAnswer(answer);
  fake_->ClearRequests();
  auto r = Chat();
  EXPECT_EQ(r.status, 502) << r.body.substr(0, 500) << r.error;
  EXPECT_NE(r.body.find("provider answer too large"), std::string::npos) << r.body.substr(0, 500);
  EXPECT_LT(r.body.size(), 1000u) << "an error, not the answer";
  EXPECT_EQ(ProviderCalls(), 1u) << "never failed over: the next target would be billed too";

  // The gateway is fine afterwards.
  fake_->SetAnswer(fakes::FakeAnswer{});
  EXPECT_EQ(Chat().status, 200);
}

TEST_F(LimitsE2E, ASnapshotOverFourMiBLoadsInEveryFollower) {
  Configure();
  // Six services with 900 KB descriptions (each under the admin API's 1 MiB
  // body limit): the snapshot is over 5 MiB, masked or with credentials.
  const std::string description(900 * 1024, 'p');
  for (int i = 0; i < 6; ++i) {
    stack_->MustCreate(
        "/api/v1/gateways/" + gateway_ + "/services",
        R"({"name": "big-)" + std::to_string(i) +
            R"(", "type": "endpoint", "host": "127.0.0.1", "port": 9, "protocol": "http",
                   "description": ")" +
            description + "\"}");
  }
  // And many small entities, as a large deployment has.
  for (int i = 0; i < 200; ++i) {
    stack_->MustCreate("/api/v1/gateways", R"({"name": "filler-)" + std::to_string(i) + R"("})");
  }
  ASSERT_EQ(Chat().status, 200);
  // Each follower loads the whole configuration again on start: in parts.
  for (std::string name : {"tg-adapter", "tg-balancer", "tg-edge"}) {
    ASSERT_TRUE(stack_->Restart(name)) << name << " did not load the snapshot";
  }
  HttpResponse r;
  ASSERT_TRUE(WaitFor(
      [&] {
        r = Chat();
        return r.status == 200;
      },
      seconds(10)))
      << r.status << " " << r.body.substr(0, 500) << r.error;
  auto health = Http("GET", stack_->AdminUrl("/healthz"));
  EXPECT_EQ(health.status, 200);
  EXPECT_NE(health.body.find(R"("status":"ok")"), std::string::npos) << health.body;
}

TEST_F(LimitsE2E, TheEdgeStaysReadyDegradedWhileTgConfigIsDown) {
  Configure();
  ASSERT_EQ(Chat().status, 200);
  ASSERT_TRUE(stack_->Restart("tg-config", [&] {
    HttpResponse health;
    ASSERT_TRUE(WaitFor(
        [&] {
          health = Http("GET", stack_->AdminUrl("/healthz"));
          return health.body.find("degraded") != std::string::npos;
        },
        seconds(5)))
        << health.status << " " << health.body;
    EXPECT_EQ(health.status, 200) << "the edge can serve from its snapshot: " << health.body;
    EXPECT_NE(health.body.find("config watch down since "), std::string::npos) << health.body;
    for (int i = 0; i < 5; ++i) {
      auto r = Chat();
      EXPECT_EQ(r.status, 200) << r.body << r.error;
    }
  }));
  HttpResponse health;
  EXPECT_TRUE(WaitFor(
      [&] {
        health = Http("GET", stack_->AdminUrl("/healthz"));
        return health.body.find(R"("status":"ok")") != std::string::npos;
      },
      seconds(10)))
      << health.status << " " << health.body;
  EXPECT_EQ(health.status, 200);
  EXPECT_EQ(Chat().status, 200);
}

}  // namespace
}  // namespace tg::testing
