// The proxy pipeline over real HTTP and real gRPC, against small in-process
// fakes of tg-config, tg-keyauth, tg-balancer and tg-adapter: auth, routing,
// failover, streaming, reports and cancellation, without any provider.
#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "edge_test_http.h"
#include "fake_config.h"
#include "fake_keyauth.h"
#include "test_tls.h"
#include "tg/common/config_watcher.h"
#include "tg/common/grpc_server.h"
#include "tg/common/json_util.h"
#include "tg/edge/health_follower.h"
#include "tg/edge/http_server.h"
#include "tg/edge/key_cache.h"
#include "tg/edge/proxy_handler.h"
#include "tg/v1/adapter.grpc.pb.h"
#include "tg/v1/balancer.grpc.pb.h"
#include "tg/v1/config.grpc.pb.h"
#include "tg/v1/keyauth.grpc.pb.h"

namespace tg::edge {
namespace {

using std::chrono::milliseconds;
using testing::HttpCall;
using testing::RawConnection;

bool WaitUntil(const std::function<bool()>& f, milliseconds timeout = milliseconds(3000)) {
  auto until = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < until) {
    if (f()) return true;
    std::this_thread::sleep_for(milliseconds(5));
  }
  return f();
}

// What tg-config streams to the edge.
tg::v1::ConfigSnapshot EdgeSnapshot() {
  return fakes::FakeConfigService::SnapshotFromJson(R"({
      "gateways": [{"id": "g1", "name": "acme", "subdomain": "acme"}, {"id": "g2", "name": "other"}],
      "upstreams": [{"id": "u1", "gateway_id": "g1", "name": "ai", "targets": [
          {"id": "t-openai", "provider": "openai", "priority": 1},
          {"id": "t-anthropic", "provider": "anthropic", "priority": 2}],
          "health_checks": {"passive": true, "threshold": 5}}],
      "services": [{"id": "s1", "gateway_id": "g1", "name": "ai", "type": "upstream", "upstream_id": "u1"},
                   {"id": "s2", "gateway_id": "g1", "name": "ep", "type": "endpoint", "host": "h"},
                   {"id": "s3", "gateway_id": "g1", "name": "ghost", "type": "upstream",
                    "upstream_id": "u-not-yet"}],
      "rules": [{"id": "r1", "gateway_id": "g1", "path": "/v1", "service_id": "s1", "methods": ["POST"],
                 "active": true, "retry_policy": {"same_target_retries": 0}},
                {"id": "r2", "gateway_id": "g1", "path": "/ep", "service_id": "s2", "methods": ["POST"],
                 "strip_path": true, "active": true},
                {"id": "r3", "gateway_id": "g1", "path": "/ghost", "service_id": "s3",
                 "methods": ["POST"], "active": true}]})");
}

// tg-balancer as the edge sees it: a WatchHealth stream (no target ejected
// unless a test says so) and the reports. The edge picks locally: first
// t-openai (priority 1), then t-anthropic.
class FakeBalancer final : public tg::v1::BalancerService::Service {
 public:
  grpc::Status WatchHealth(grpc::ServerContext* ctx, const tg::v1::WatchHealthRequest*,
                           grpc::ServerWriter<tg::v1::HealthVerdicts>* w) override {
    uint64_t sent = 0;  // generations start at 1
    while (!ctx->IsCancelled()) {
      std::optional<tg::v1::HealthVerdicts> next;
      {
        std::lock_guard lock(mu);
        if (verdicts_generation != sent) {
          next = verdicts;
          sent = verdicts_generation;
        }
      }
      if (next && !w->Write(*next)) break;
      std::this_thread::sleep_for(milliseconds(5));
    }
    return grpc::Status::OK;
  }
  // Lists a target in the verdicts (ejected until `until_ms` when > 0).
  void SetVerdict(const std::string& target_id, int64_t until_ms, int32_t failures) {
    std::lock_guard lock(mu);
    auto* e = verdicts.add_targets();
    e->set_upstream_id("u1");
    e->set_target_id(target_id);
    if (until_ms > 0) e->mutable_ejected_until()->set_seconds(until_ms / 1000);
    e->set_consecutive_failures(failures);
    ++verdicts_generation;
  }
  grpc::Status Report(grpc::ServerContext*, const tg::v1::ReportRequest* req,
                      tg::v1::ReportResponse*) override {
    std::lock_guard lock(mu);
    reports.push_back(*req);
    return grpc::Status::OK;
  }
  grpc::Status ReportBatch(grpc::ServerContext*, const tg::v1::ReportBatchRequest* req,
                           tg::v1::ReportBatchResponse* resp) override {
    std::lock_guard lock(mu);
    for (const auto& r : req->reports()) reports.push_back(r);
    resp->set_applied(req->reports_size());
    return grpc::Status::OK;
  }
  std::mutex mu;
  tg::v1::HealthVerdicts verdicts;
  uint64_t verdicts_generation = 1;
  std::vector<tg::v1::ReportRequest> reports;
};

// Answers per target according to a script: "ok", "429", "400", "stream", "hang".
class FakeAdapter final : public tg::v1::ProviderAdapterService::Service {
 public:
  grpc::Status Invoke(grpc::ServerContext* ctx, const tg::v1::InvokeRequest* req,
                      grpc::ServerWriter<tg::v1::InvokeEvent>* w) override {
    std::string mode;
    {
      std::lock_guard lock(mu);
      requests.push_back(*req);
      mode = script[req->target_id()];
    }
    auto head = [&](int status, const char* type) {
      tg::v1::InvokeEvent e;
      e.mutable_head()->set_status(status);
      e.mutable_head()->set_content_type(type);
      // The picks' target ids are "t-<provider>".
      e.mutable_head()->set_provider(
          req->target_id().substr(std::min<size_t>(2, req->target_id().size())));
      w->Write(e);
    };
    bool token_sent = false;  // like tg-adapter: the first chunk carries the first token
    auto chunk = [&](const std::string& data) {
      tg::v1::InvokeEvent e;
      e.set_chunk(data);
      if (!token_sent) e.set_first_token(true);
      token_sent = true;
      return w->Write(e);
    };
    auto end = [&](bool ok, int status, bool retryable) {
      tg::v1::InvokeEvent e;
      e.mutable_end()->set_ok(ok);
      if (!ok) {
        e.mutable_end()->mutable_error()->set_kind(tg::v1::ProviderError::KIND_HTTP);
        e.mutable_end()->mutable_error()->set_http_status(status);
        e.mutable_end()->mutable_error()->set_retryable(retryable);
      }
      w->Write(e);
    };
    if (mode == "ok") {
      head(200, "application/json");
      chunk(R"({"served_by":")" + req->target_id() + R"("})");
      end(true, 200, false);
    } else if (mode == "429" || mode == "400") {
      int status = mode == "429" ? 429 : 400;
      head(status, "application/json");
      chunk(R"({"error":{"message":"provider said )" + mode + R"("}})");
      end(false, status, status == 429);
    } else if (mode == "stream") {
      head(200, "text/event-stream");
      for (int i = 0; i < 3; ++i) chunk("data: {\"n\":" + std::to_string(i) + "}\n\n");
      chunk("data: [DONE]\n\n");
      end(true, 200, false);
    } else if (mode == "hang") {
      head(200, "text/event-stream");
      chunk("data: {\"n\":0}\n\n");
      while (!ctx->IsCancelled()) std::this_thread::sleep_for(milliseconds(5));
      cancelled = true;
      return grpc::Status::CANCELLED;
    }
    return grpc::Status::OK;
  }
  std::mutex mu;
  std::map<std::string, std::string> script;
  std::vector<tg::v1::InvokeRequest> requests;
  std::atomic<bool> cancelled{false};
};

class EdgeProxyIT : public ::testing::Test {
 protected:
  void SetUp() override {
    keyauth_.AddKey("key-acme", {"k1", "g1", std::nullopt});
    keyauth_.AddKey("key-other", {"k2", "g2", std::nullopt});
    std::string error;
    // One server plays all four services: the edge's channel expects the
    // certificate it presents.
    grpc_ = GrpcServer::Start(
        {.listen = "127.0.0.1:0", .health_names = {}, .tls = tg::testing::TestTls(kConfigIdentity)},
        {&config_, &keyauth_, &balancer_, &adapter_}, &error);
    ASSERT_NE(grpc_, nullptr) << error;
    auto channel = tg::testing::TestChannel(grpc_->port(), kConfigIdentity);
    watcher_ = std::make_unique<ConfigWatcher>(channel);
    watcher_->Start();
    ASSERT_TRUE(WaitUntil([&] { return watcher_->revision() == 7; }));
    keys_ = std::make_unique<KeyCache>(channel);
    keys_->Start();
    ASSERT_TRUE(WaitUntil([&] { return keys_->watching(); }));
    ProxyOptions po;
    po.base_domain = "example.com";
    handler_ = std::make_unique<ProxyHandler>(po, watcher_.get(), keys_.get(), channel, channel);
    HttpServerOptions ho;
    ho.name = "proxy";
    ho.access_log = false;
    ho.body_limit = 10 * 1024 * 1024;
    http_ = HttpServer::Start(ho, handler_.get(), &error);
    ASSERT_NE(http_, nullptr) << error;
  }
  void TearDown() override {
    if (http_) http_->Stop();
    handler_.reset();
    if (keys_) keys_->Stop();
    if (watcher_) watcher_->Stop();
    if (grpc_) grpc_->Shutdown();
  }

  testing::ClientResponse Post(const std::string& path, const std::string& body,
                               std::vector<std::string> headers = {"X-TG-API-Key: key-acme"}) {
    headers.push_back("Content-Type: application/json");
    return HttpCall(http_->port(), "POST", path, body, headers);
  }
  void Script(std::map<std::string, std::string> s) {
    std::lock_guard lock(adapter_.mu);
    adapter_.script = std::move(s);
  }
  std::vector<tg::v1::ReportRequest> Reports(size_t n) {
    WaitUntil([&] {
      std::lock_guard lock(balancer_.mu);
      return balancer_.reports.size() >= n;
    });
    std::lock_guard lock(balancer_.mu);
    return balancer_.reports;
  }

  fakes::FakeConfigService config_{EdgeSnapshot(), 7};
  fakes::FakeKeyAuthService keyauth_;
  FakeBalancer balancer_;
  FakeAdapter adapter_;
  std::unique_ptr<GrpcServer> grpc_;
  std::unique_ptr<ConfigWatcher> watcher_;
  std::unique_ptr<KeyCache> keys_;
  std::unique_ptr<ProxyHandler> handler_;
  std::unique_ptr<HttpServer> http_;
};

const char kChat[] = R"({"model":"gpt-4","messages":[{"role":"user","content":"Hello!"}],
                         "max_tokens":1020,"system":"You are an assistant"})";

TEST_F(EdgeProxyIT, AnswersWithTheSelectedProviderAndReportsOnlyWhatChangesHealth) {
  Script({{"t-openai", "ok"}});
  auto r = Post("/v1/chat/completions", kChat);
  ASSERT_EQ(r.status, 200) << r.body << r.error;
  EXPECT_EQ(r.body, R"({"served_by":"t-openai"})");
  EXPECT_EQ(r.headers["x-selected-provider"], "openai");
  EXPECT_EQ(r.headers["content-length"], std::to_string(r.body.size()));
  EXPECT_FALSE(r.headers["x-request-id"].empty());
  // A success on a target with nothing counted against it changes nothing:
  // tg-balancer does not hear of it.
  std::this_thread::sleep_for(milliseconds(100));
  EXPECT_TRUE(Reports(0).empty());
  // Once tg-balancer counts a failure for it (another edge's), a success
  // resets that, so it is reported.
  balancer_.SetVerdict("t-openai", 0, 1);
  ASSERT_TRUE(WaitUntil([&] { return handler_->verdict_updates() >= 2; }));
  ASSERT_EQ(Post("/v1/chat/completions", kChat).status, 200);
  auto reports = Reports(1);
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_EQ(reports[0].outcome(), tg::v1::OUTCOME_SUCCESS);
  EXPECT_EQ(reports[0].target_id(), "t-openai");
  EXPECT_EQ(reports[0].upstream_id(), "u1");
  EXPECT_TRUE(reports[0].pick_id().empty()) << "picked locally";
  std::lock_guard lock(adapter_.mu);
  const auto& sent = adapter_.requests.at(0);
  EXPECT_EQ(sent.client_format(), tg::v1::CLIENT_FORMAT_OPENAI_CHAT);
  EXPECT_EQ(sent.effective_model(), "gpt-4");
  EXPECT_EQ(sent.min_config_revision(), 7);
  EXPECT_EQ(sent.client_headers().count("X-TG-API-Key"), 0u)
      << "the gateway key never goes upstream";
}

TEST_F(EdgeProxyIT, A429FailsOverAndA400DoesNot) {
  Script({{"t-openai", "429"}, {"t-anthropic", "ok"}});
  auto r = Post("/v1/chat/completions", kChat);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.headers["x-selected-provider"], "anthropic");
  // The failure is reported; anthropic's success changes nothing.
  auto reports = Reports(1);
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_EQ(reports[0].outcome(), tg::v1::OUTCOME_HTTP_STATUS);
  EXPECT_EQ(reports[0].http_status(), 429);
  EXPECT_EQ(reports[0].target_id(), "t-openai");
  // openai's next success is reported: this edge saw it fail.
  Script({{"t-openai", "ok"}});
  ASSERT_EQ(Post("/v1/chat/completions", kChat).status, 200);
  reports = Reports(2);
  ASSERT_EQ(reports.size(), 2u);
  EXPECT_EQ(reports[1].outcome(), tg::v1::OUTCOME_SUCCESS);
  EXPECT_EQ(reports[1].target_id(), "t-openai");

  Script({{"t-openai", "400"}, {"t-anthropic", "ok"}});
  r = Post("/v1/chat/completions", kChat);
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_EQ(r.body, R"({"error":{"message":"provider said 400"}})");
  EXPECT_EQ(r.headers["x-selected-provider"], "openai");
}

TEST_F(EdgeProxyIT, WhenEveryTargetFailsTheLastProviderErrorIsAnswered) {
  Script({{"t-openai", "429"}, {"t-anthropic", "429"}});
  auto r = Post("/v1/messages", kChat);
  EXPECT_EQ(r.status, 429) << r.body;
  EXPECT_EQ(r.headers["x-selected-provider"], "anthropic");
  EXPECT_EQ(r.body, R"({"error":{"message":"provider said 429"}})");
}

// The gateway's own 503 (an upstream its configuration does not hold yet)
// says when to come back, in the client's format; nothing is invoked.
TEST_F(EdgeProxyIT, AnUpstreamNotYetConfiguredIsA503WithRetryAfter) {
  auto r = Post("/ghost/v1/chat/completions", kChat);
  EXPECT_EQ(r.status, 503) << r.body;
  EXPECT_EQ(r.headers["retry-after"], "1");
  EXPECT_NE(r.body.find("upstream not available"), std::string::npos) << r.body;
  r = Post("/ghost/v1/messages", kChat);
  EXPECT_EQ(r.status, 503);
  EXPECT_NE(r.body.find("overloaded_error"), std::string::npos) << "Anthropic's shape: " << r.body;
  std::lock_guard lock(adapter_.mu);
  EXPECT_TRUE(adapter_.requests.empty());
}

TEST_F(EdgeProxyIT, StreamsChunkedWithTheProviderHeader) {
  Script({{"t-openai", "stream"}});
  auto r = Post("/v1/chat/completions", R"({"model":"gpt-4","stream":true,"messages":[]})");
  ASSERT_EQ(r.status, 200) << r.error;
  EXPECT_EQ(r.headers["content-type"], "text/event-stream");
  EXPECT_EQ(r.headers["transfer-encoding"], "chunked");
  EXPECT_EQ(r.headers["x-selected-provider"], "openai");
  EXPECT_EQ(r.body, "data: {\"n\":0}\n\ndata: {\"n\":1}\n\ndata: {\"n\":2}\n\ndata: [DONE]\n\n");
}

TEST_F(EdgeProxyIT, ClientDisconnectMidStreamCancelsTheUpstreamCall) {
  Script({{"t-openai", "hang"}});
  {
    RawConnection c(http_->port());
    std::string body = R"({"model":"gpt-4","stream":true,"messages":[]})";
    ASSERT_TRUE(
        c.Send("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nX-Api-Key: key-acme\r\n"
               "Content-Type: application/json\r\nContent-Length: " +
               std::to_string(body.size()) + "\r\n\r\n" + body));
    auto got = c.ReadUntil([](const std::string& s) { return s.find("\"n\":0") != s.npos; },
                           milliseconds(3000));
    ASSERT_NE(got.find("\"n\":0"), std::string::npos) << got;
  }
  EXPECT_TRUE(WaitUntil([&] { return adapter_.cancelled.load(); }));
  // Neither success nor failure: nothing for tg-balancer.
  std::this_thread::sleep_for(milliseconds(100));
  EXPECT_TRUE(Reports(0).empty());
}

TEST_F(EdgeProxyIT, KeysHeadersHostsAndRoutes) {
  Script({{"t-openai", "ok"}});
  EXPECT_EQ(Post("/v1/chat/completions", kChat, {}).status, 401);
  EXPECT_EQ(Post("/v1/chat/completions", kChat, {"X-Api-Key: wrong"}).status, 401);
  EXPECT_EQ(Post("/v1/chat/completions", kChat, {"Authorization: Bearer key-acme"}).status, 200);
  EXPECT_EQ(
      Post("/v1/chat/completions", kChat, {"X-Api-Key: key-acme", "Host: acme.example.com"}).status,
      200);
  EXPECT_EQ(Post("/v1/chat/completions", kChat, {"X-Api-Key: key-other", "Host: acme.example.com"})
                .status,
            401)
      << "a key of another gateway on this gateway's host";
  EXPECT_EQ(Post("/v2/chat/completions", kChat).status, 404);
  auto r = HttpCall(http_->port(), "GET", "/v1/chat/completions", "", {"X-Api-Key: key-acme"});
  EXPECT_EQ(r.status, 405);
  EXPECT_EQ(r.headers["allow"], "POST");
  r = Post("/v1/messages", kChat, {});
  EXPECT_EQ(r.status, 401);
  EXPECT_NE(r.body.find(R"("type":"error")"), std::string::npos)
      << "Anthropic clients get their format";
  EXPECT_EQ(Post("/v1/chat/completions", "not json").status, 400);
}

TEST_F(EdgeProxyIT, ARevokedKeyStopsWorking) {
  Script({{"t-openai", "ok"}});
  ASSERT_EQ(Post("/v1/chat/completions", kChat).status, 200);
  int before = keyauth_.verifications();
  ASSERT_EQ(Post("/v1/chat/completions", kChat).status, 200);
  EXPECT_EQ(keyauth_.verifications(), before) << "a verified key is answered from the cache";
  keyauth_.Revoke("k1", 9, /*still_verifies=*/true);
  ASSERT_TRUE(WaitUntil([&] { return keys_->size() == 0; }));
  EXPECT_EQ(keyauth_.verifications(), before);
  // The cache asks again rather than answer from memory; the fake still
  // accepts (as a replica lagging behind the revocation would), but the
  // cache knows the key was revoked after that answer's state: refused.
  EXPECT_EQ(Post("/v1/chat/completions", kChat).status, 401);
  EXPECT_EQ(keyauth_.verifications(), before + 1);
}

TEST_F(EdgeProxyIT, EndpointServicesAreReverseProxiedWithStripPath) {
  Script({{"s2", "ok"}});
  auto r = Post("/ep/anything?x=1", "raw bytes");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.headers["x-selected-provider"], "h");
  std::lock_guard lock(adapter_.mu);
  const auto& sent = adapter_.requests.back();
  EXPECT_EQ(sent.client_format(), tg::v1::CLIENT_FORMAT_PASSTHROUGH);
  EXPECT_EQ(sent.path(), "/anything?x=1");
  EXPECT_EQ(sent.upstream_id(), "");
  EXPECT_EQ(sent.target_id(), "s2");
}

// The edge's follower of tg-balancer's verdicts: an outage keeps the last
// verdicts (the edge picks on from them), and a restarted balancer's first
// message replaces them.
TEST(HealthFollowerIT, KeepsTheLastVerdictsThroughAnOutageAndReconnects) {
  FakeBalancer first;
  first.SetVerdict("t-openai", 4'000'000'000'000, 3);  // ejected for a long time
  std::string error;
  // No grace on shutdown: the fake's stream only ends when cancelled.
  auto server = GrpcServer::Start({.listen = "127.0.0.1:0",
                                   .health_names = {},
                                   .shutdown_grace = std::chrono::seconds(0),
                                   .tls = tg::testing::TestTls(kConfigIdentity)},
                                  {&first}, &error);
  ASSERT_NE(server, nullptr) << error;
  const int port = server->port();

  balancer::SystemRandom random;
  LocalPicker picker(&SystemClock::Get(), &random);
  HealthFollower follower(tg::testing::TestChannel(port, kConfigIdentity), &picker,
                          {.initial_backoff = milliseconds(50), .max_backoff = milliseconds(200)});
  follower.Start();
  ASSERT_TRUE(WaitUntil([&] { return follower.connected() && picker.verdict_updates() >= 1; }));

  auto u = std::make_shared<tg::v1::Upstream>();
  u->set_id("u1");
  u->mutable_health_checks()->set_passive(true);
  for (const char* id : {"t-openai", "t-anthropic"}) {
    auto* t = u->add_targets();
    t->set_id(id);
    t->set_provider("openai");
  }
  auto pick = [&] { return picker.Pick(u, 1, balancer::PickQuery{}).target().id(); };
  EXPECT_EQ(pick(), "t-anthropic");
  EXPECT_EQ(pick(), "t-anthropic");

  server->Shutdown();
  ASSERT_TRUE(WaitUntil([&] { return !follower.connected(); }));
  EXPECT_EQ(pick(), "t-anthropic") << "the last verdicts hold through the outage";

  FakeBalancer second;  // restarted: nothing ejected any more
  server = GrpcServer::Start({.listen = "127.0.0.1:" + std::to_string(port),
                              .health_names = {},
                              .shutdown_grace = std::chrono::seconds(0),
                              .tls = tg::testing::TestTls(kConfigIdentity)},
                             {&second}, &error);
  ASSERT_NE(server, nullptr) << error;
  ASSERT_TRUE(WaitUntil([&] { return follower.connected() && picker.verdict_updates() >= 2; },
                        milliseconds(5000)));
  std::set<std::string> served;
  for (int i = 0; i < 4; ++i) served.insert(pick());
  EXPECT_EQ(served.size(), 2u) << "both targets in rotation again";
  follower.Stop();
  server->Shutdown();
}

}  // namespace
}  // namespace tg::edge
