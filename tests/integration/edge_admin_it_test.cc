// Size: one API's tests (the admin REST API) on one in-process fixture.
// The admin API in process, over real HTTP and real gRPC: tg-edge's HTTP
// server, AdminApi and ConfigWatcher against small fake tg-config and
// tg-keyauth services hosted by a tg::GrpcServer on 127.0.0.1:0.
#include <gmock/gmock.h>
#include <google/protobuf/util/time_util.h>
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <thread>

#include "edge_test_http.h"
#include "fake_config.h"
#include "fake_keyauth.h"
#include "test_tls.h"
#include "tg/common/config_watcher.h"
#include "tg/common/grpc_server.h"
#include "tg/common/jwt.h"
#include "tg/edge/admin_api.h"
#include "tg/edge/http_server.h"
#include "tg/v1/config.grpc.pb.h"
#include "tg/v1/keyauth.grpc.pb.h"

namespace tg::edge {
namespace {

using ::testing::HasSubstr;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using testing::ClientResponse;

constexpr char kSecret[] = "it-secret-7c1e4a9f02b85d36e4a1c7f9b0d2e8a5";

rapidjson::Document Json(const std::string& body) {
  rapidjson::Document d;
  d.Parse(body.c_str());
  EXPECT_FALSE(d.HasParseError()) << body;
  return d;
}

template <typename F>
bool WaitFor(F f, milliseconds timeout = milliseconds(5000)) {
  auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    if (f()) return true;
    std::this_thread::sleep_for(milliseconds(10));
  }
  return f();
}

// ---------------------------------------------------------------- fixture

class EdgeAdminIT : public ::testing::Test {
 protected:
  void SetUp() override {
    config_.SetHeartbeat(milliseconds(500));
    GrpcServerOptions g;
    g.listen = "127.0.0.1:0";
    g.shutdown_grace = std::chrono::seconds(1);
    // One server plays tg-config and tg-keyauth: the edge's channel expects
    // the certificate it presents.
    g.tls = tg::testing::TestTls(kConfigIdentity);
    std::string error;
    grpc_ = GrpcServer::Start(g, {&config_, &keyauth_}, &error);
    ASSERT_NE(grpc_, nullptr) << error;
    auto channel = tg::testing::TestChannel(grpc_->port(), kConfigIdentity);

    ConfigWatcherOptions w;
    w.initial_backoff = milliseconds(50);
    w.max_backoff = milliseconds(200);
    watcher_ = std::make_unique<ConfigWatcher>(channel, w);
    watcher_->Start();

    AdminApiOptions a;
    a.jwt_secret = kSecret;
    a.revision_wait = revision_wait_;
    api_ = std::make_unique<AdminApi>(a, channel, channel, watcher_.get());
    readiness_ = std::make_unique<EdgeReadiness>(watcher_.get(), nullptr, nullptr, nullptr);
    api_->SetReadiness(readiness_.get());

    HttpServerOptions h;
    h.name = "admin";
    h.access_log = false;
    http_ = HttpServer::Start(h, api_.get(), &error);
    ASSERT_NE(http_, nullptr) << error;
    ASSERT_TRUE(WaitFor([&] { return watcher_->connected(); })) << "watch never connected";
  }

  void TearDown() override {
    if (http_) http_->Stop();
    api_.reset();
    http_.reset();
    watcher_.reset();
    config_.Stop();
    if (grpc_) grpc_->Shutdown();
  }

  ClientResponse Admin(const std::string& method, const std::string& path,
                       const std::string& body = "") {
    auto token =
        jwt::SignHs256(kSecret, "it", std::chrono::system_clock::now(), std::chrono::hours(1));
    return testing::HttpCall(http_->port(), method, path, body,
                             {"Content-Type: application/json", "Authorization: Bearer " + token});
  }

  // POST, expect 201, return the id.
  std::string Create(const std::string& path, const std::string& body) {
    auto r = Admin("POST", path, body);
    EXPECT_EQ(r.status, 201) << path << ": " << r.body << r.error;
    auto d = Json(r.body);
    return d.IsObject() && d.HasMember("id") ? d["id"].GetString() : "";
  }

  milliseconds revision_wait_{2000};
  // tg-config as tg-edge sees it at revision 100, with heartbeats as the
  // real one sends them when idle.
  fakes::FakeConfigService config_{tg::v1::ConfigSnapshot(), 100};
  fakes::FakeKeyAuthService keyauth_;
  std::unique_ptr<GrpcServer> grpc_;
  std::unique_ptr<ConfigWatcher> watcher_;
  std::unique_ptr<EdgeReadiness> readiness_;
  std::unique_ptr<AdminApi> api_;
  std::unique_ptr<HttpServer> http_;
};

constexpr char kUpstreamBody[] = R"({
    "name": "weighted-upstream",
    "algorithm": "weighted-round-robin",
    "targets": [
      {
        "provider": "openai",
        "weight": 60,    # 60% of traffic
        "default_model": "gpt-4o-mini",
        "credentials": {"api_key": "sk-secret"}
      },
      {
        "provider": "anthropic",
        "weight": 40,    # 40% of traffic
        "headers": {"anthropic-version": "2023-06-01"}
      }
    ],
    "health_checks": {"passive": true, "threshold": 3, "interval": 60}
  })";

// ---------------------------------------------------------------- tests

TEST_F(EdgeAdminIT, HealthzIsOkOnceTheWatchIsConnected) {
  auto r = testing::HttpCall(http_->port(), "GET", "/healthz");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body,
            R"({"status":"ok","config_revision":)" + std::to_string(watcher_->revision()) + "}");
}

TEST_F(EdgeAdminIT, HealthzIs503BeforeTheFirstConfigurationAndWhileShuttingDown) {
  // A watcher that never loads anything (nothing listens there).
  ConfigWatcher never(grpc::CreateChannel("127.0.0.1:1", grpc::InsecureChannelCredentials()));
  never.Start();
  EdgeReadiness fresh(&never, nullptr, nullptr, nullptr);
  api_->SetReadiness(&fresh);
  auto r = testing::HttpCall(http_->port(), "GET", "/healthz");
  EXPECT_EQ(r.status, 503);
  EXPECT_THAT(r.body, HasSubstr("no configuration loaded yet"));
  api_->SetReadiness(readiness_.get());
  readiness_->SetShuttingDown();
  r = testing::HttpCall(http_->port(), "GET", "/healthz");
  EXPECT_EQ(r.status, 503);
  EXPECT_THAT(r.body, HasSubstr("shutting down"));
}

TEST_F(EdgeAdminIT, NoTokenIs401) {
  auto r = testing::HttpCall(http_->port(), "GET", "/api/v1/gateways");
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(r.body, R"({"error":"missing admin token"})");
  r = testing::HttpCall(http_->port(), "POST", "/api/v1/gateways", R"({"name":"x"})");
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(config_.revision(), 100);  // nothing reached tg-config
}

TEST_F(EdgeAdminIT, CreateListGetGateway) {
  // The seed's body, trailing comma included.
  auto r = Admin("POST", "/api/v1/gateways", "{\n\"name\": \"multi-provider-gateway\",\n}");
  ASSERT_EQ(r.status, 201) << r.body;
  EXPECT_EQ(r.headers["content-type"], "application/json");
  auto g = Json(r.body);
  ASSERT_TRUE(g.IsObject());
  std::string id = g["id"].GetString();
  EXPECT_STREQ(g["name"].GetString(), "multi-provider-gateway");
  EXPECT_TRUE(g.HasMember("created_at"));
  EXPECT_FALSE(g.HasMember("gateway")) << "the entity, not the gRPC wrapper";
  EXPECT_EQ(r.headers["location"], "/api/v1/gateways/" + id);
  // Answered only once the edge's own snapshot holds it.
  EXPECT_NE(watcher_->snapshot()->FindGateway(id), nullptr);

  Create("/api/v1/gateways", R"({"name": "second", "subdomain": "Second"})");
  r = Admin("GET", "/api/v1/gateways");
  ASSERT_EQ(r.status, 200);
  auto list = Json(r.body);
  ASSERT_TRUE(list.IsArray()) << r.body;
  EXPECT_EQ(list.Size(), 2u);
  EXPECT_NE(watcher_->snapshot()->FindGatewayBySubdomain("second"), nullptr);

  r = Admin("GET", "/api/v1/gateways/" + id + "/");  // trailing slash
  ASSERT_EQ(r.status, 200);
  EXPECT_STREQ(Json(r.body)["id"].GetString(), id.c_str());
}

TEST_F(EdgeAdminIT, EmptyListIsAnEmptyArray) {
  auto r = Admin("GET", "/api/v1/gateways");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "[]");
}

TEST_F(EdgeAdminIT, CreateUpstreamSendsTheUrlGatewayAndParsedBody) {
  std::string gw = Create("/api/v1/gateways", R"({"name": "g"})");
  auto r = Admin("POST", "/api/v1/gateways/" + gw + "/upstreams",
                 std::string(kUpstreamBody).insert(1, R"("id": "mine", "gateway_id": "other",)"));
  ASSERT_EQ(r.status, 201) << r.body;
  auto sent = config_.last_upstream_create();
  ASSERT_TRUE(sent.has_value());
  EXPECT_EQ(sent->upstream().gateway_id(), gw);  // the URL's, not the body's
  EXPECT_EQ(sent->upstream().id(), "");          // read-only: tg-config assigns it
  EXPECT_EQ(sent->upstream().targets(0).weight(), 60);
  EXPECT_EQ(sent->upstream().targets(0).credentials().api_key(), "sk-secret");
  EXPECT_EQ(sent->upstream().targets(1).headers().at("anthropic-version"), "2023-06-01");

  auto u = Json(r.body);
  EXPECT_STREQ(u["gateway_id"].GetString(), gw.c_str());
  EXPECT_EQ(u["targets"][0]["weight"].GetInt(), 60);
  EXPECT_STREQ(u["targets"][0]["credentials"]["api_key"].GetString(), "****");
  EXPECT_TRUE(u["health_checks"]["passive"].GetBool());

  r = Admin("GET", "/api/v1/gateways/" + gw + "/upstreams");
  ASSERT_EQ(r.status, 200);
  auto list = Json(r.body);
  ASSERT_TRUE(list.IsArray());
  ASSERT_EQ(list.Size(), 1u);
  EXPECT_STREQ(list[0]["name"].GetString(), "weighted-upstream");
}

TEST_F(EdgeAdminIT, PutAcceptsWhatGetReturnedAndIgnoresReadOnlyFields) {
  std::string gw = Create("/api/v1/gateways", R"({"name": "g"})");
  std::string up = Create("/api/v1/gateways/" + gw + "/upstreams", kUpstreamBody);
  auto r = Admin("GET", "/api/v1/gateways/" + gw + "/upstreams/" + up);
  ASSERT_EQ(r.status, 200);
  // GET's body as it is, with the read-only fields changed and a new name.
  std::string body = r.body;
  auto replace = [&](const std::string& from, const std::string& to) {
    auto pos = body.find(from);
    ASSERT_NE(pos, std::string::npos) << from << " in " << body;
    body.replace(pos, from.size(), to);
  };
  replace("\"id\":\"" + up + "\"", "\"id\":\"forged-id\"");
  replace("\"gateway_id\":\"" + gw + "\"", "\"gateway_id\":\"forged-gw\"");
  replace("\"name\":\"weighted-upstream\"", "\"name\":\"renamed\"");
  std::string created_at = Json(r.body)["created_at"].GetString();
  replace(created_at, "2001-01-01T00:00:00Z");

  r = Admin("PUT", "/api/v1/gateways/" + gw + "/upstreams/" + up, body);
  ASSERT_EQ(r.status, 200) << r.body;
  auto sent = config_.last_upstream_update();
  ASSERT_TRUE(sent.has_value());
  EXPECT_EQ(sent->upstream().id(), up);
  EXPECT_EQ(sent->upstream().gateway_id(), gw);
  EXPECT_FALSE(sent->upstream().has_created_at());
  EXPECT_FALSE(sent->upstream().has_updated_at());
  EXPECT_EQ(sent->upstream().name(), "renamed");
  EXPECT_EQ(sent->upstream().targets_size(), 2);

  auto u = Json(r.body);
  EXPECT_STREQ(u["id"].GetString(), up.c_str());
  EXPECT_STREQ(u["name"].GetString(), "renamed");
  EXPECT_EQ(watcher_->snapshot()->FindUpstream(up)->name(), "renamed");
}

TEST_F(EdgeAdminIT, StatusCodesEndToEnd) {
  std::string gw = Create("/api/v1/gateways", R"({"name": "g"})");
  std::string up = Create("/api/v1/gateways/" + gw + "/upstreams", kUpstreamBody);

  auto r = Admin("GET", "/api/v1/gateways/" + gw + "/upstreams/missing");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.body, R"({"error":"upstream missing not found"})");

  config_.FailNext("DeleteUpstream", grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                                                  "upstream is used by service s-1"));
  r = Admin("DELETE", "/api/v1/gateways/" + gw + "/upstreams/" + up);
  EXPECT_EQ(r.status, 409);
  EXPECT_EQ(r.body, R"({"error":"upstream is used by service s-1"})");

  config_.FailNext("ListServices",
                   grpc::Status(grpc::StatusCode::UNAVAILABLE, "database unavailable"));
  r = Admin("GET", "/api/v1/gateways/" + gw + "/services");
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(r.body, R"({"error":"database unavailable"})");

  config_.FailNext("CreateGateway",
                   grpc::Status(grpc::StatusCode::ALREADY_EXISTS, "subdomain \"acme\" is taken"));
  r = Admin("POST", "/api/v1/gateways", R"({"name": "x", "subdomain": "acme"})");
  EXPECT_EQ(r.status, 409);
  EXPECT_EQ(r.body, R"({"error":"subdomain \"acme\" is taken"})");

  r = Admin("POST", "/api/v1/gateways/" + gw + "/upstreams", R"({"targets": []})");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.body, R"({"error":"name: required"})");

  config_.FailNext("GetGateway",
                   grpc::Status(grpc::StatusCode::INTERNAL, "pqxx::broken_connection at 10.1.2.3"));
  r = Admin("GET", "/api/v1/gateways/" + gw);
  EXPECT_EQ(r.status, 500);
  EXPECT_EQ(r.body, R"({"error":"internal error"})");

  config_.FailNext("ListGateways", grpc::Status(grpc::StatusCode::PERMISSION_DENIED, "nope"));
  EXPECT_EQ(Admin("GET", "/api/v1/gateways").status, 403);

  r = Admin("DELETE", "/api/v1/gateways/" + gw + "/upstreams/" + up);
  EXPECT_EQ(r.status, 204);
  EXPECT_EQ(r.body, "");
  EXPECT_EQ(watcher_->snapshot()->FindUpstream(up), nullptr);
  EXPECT_EQ(Admin("DELETE", "/api/v1/gateways/" + gw + "/upstreams/" + up).status, 404);
}

TEST_F(EdgeAdminIT, WriteAnswerWaitsForTheWatchToReachItsRevision) {
  std::string gw = Create("/api/v1/gateways", R"({"name": "g"})");
  config_.SetPublishDelay(milliseconds(400));
  auto start = Clock::now();
  auto r = Admin("POST", "/api/v1/gateways/" + gw + "/upstreams", kUpstreamBody);
  auto took = Clock::now() - start;
  ASSERT_EQ(r.status, 201) << r.body;
  EXPECT_GE(took, milliseconds(350));
  EXPECT_LT(took, milliseconds(1900));  // reached, not timed out
  std::string id = Json(r.body)["id"].GetString();
  // The moment the client has its 201, the edge's snapshot has the upstream.
  EXPECT_NE(watcher_->snapshot()->FindUpstream(id), nullptr);
  EXPECT_GE(watcher_->revision(), config_.revision());
}

TEST_F(EdgeAdminIT, WriteIsAnsweredAnywayWhenTheWatchLags) {
  std::string gw = Create("/api/v1/gateways", R"({"name": "g"})");
  config_.SetPublish(false);
  auto start = Clock::now();
  auto r = Admin("POST", "/api/v1/gateways/" + gw + "/upstreams", kUpstreamBody);
  auto took = Clock::now() - start;
  EXPECT_EQ(r.status, 201) << r.body;  // the write is durable
  EXPECT_GE(took, milliseconds(1900));
  EXPECT_LT(took, milliseconds(4000));
  // Reads do not wait.
  start = Clock::now();
  EXPECT_EQ(Admin("GET", "/api/v1/gateways/" + gw).status, 200);
  EXPECT_LT(Clock::now() - start, milliseconds(1000));
}

TEST_F(EdgeAdminIT, Keys) {
  std::string gw = Create("/api/v1/gateways", R"({"name": "g"})");
  auto r = Admin("POST", "/api/v1/gateways/" + gw + "/keys",
                 R"({"name": "test-key", "expires_at": "2099-01-01T00:00:00Z", "key": "chosen"})");
  ASSERT_EQ(r.status, 201) << r.body;
  auto k = Json(r.body);
  EXPECT_STREQ(k["key"].GetString(), "tg_THE-SECRET-KEY-VALUE");  // shown once, here
  EXPECT_STREQ(k["name"].GetString(), "test-key");
  EXPECT_STREQ(k["expires_at"].GetString(), "2099-01-01T00:00:00Z");
  std::string id = k["id"].GetString();
  auto sent = keyauth_.last_create();
  ASSERT_TRUE(sent.has_value());
  EXPECT_EQ(sent->gateway_id(), gw);
  EXPECT_EQ(sent->key().key(), "");  // a client never chooses its key

  r = Admin("GET", "/api/v1/gateways/" + gw + "/keys");
  ASSERT_EQ(r.status, 200);
  auto list = Json(r.body);
  ASSERT_TRUE(list.IsArray());
  ASSERT_EQ(list.Size(), 1u);
  EXPECT_FALSE(list[0].HasMember("key"));

  r = Admin("GET", "/api/v1/gateways/" + gw + "/keys/" + id);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body.find("THE-SECRET-KEY-VALUE"), std::string::npos);

  r = Admin("PUT", "/api/v1/gateways/" + gw + "/keys/" + id, R"({"name": "x"})");
  EXPECT_EQ(r.status, 405);
  EXPECT_EQ(r.headers["allow"], "GET, DELETE");

  r = Admin("DELETE", "/api/v1/gateways/" + gw + "/keys/" + id);
  EXPECT_EQ(r.status, 204);
  EXPECT_EQ(r.body, "");
  EXPECT_EQ(Admin("GET", "/api/v1/gateways/" + gw + "/keys/" + id).status, 404);
}

TEST_F(EdgeAdminIT, DeletingAGatewayRevokesItsKeysAndDropsItsChildren) {
  std::string gw = Create("/api/v1/gateways", R"({"name": "g"})");
  std::string up = Create("/api/v1/gateways/" + gw + "/upstreams", kUpstreamBody);
  ASSERT_NE(watcher_->snapshot()->FindUpstream(up), nullptr);

  auto r = Admin("DELETE", "/api/v1/gateways/" + gw);
  EXPECT_EQ(r.status, 204) << r.body;
  EXPECT_EQ(keyauth_.deleted_gateways(), std::vector<std::string>{gw});
  EXPECT_EQ(watcher_->snapshot()->FindGateway(gw), nullptr);
  EXPECT_EQ(watcher_->snapshot()->FindUpstream(up), nullptr);

  // A failing key revocation does not undo or fail the delete.
  std::string gw2 = Create("/api/v1/gateways", R"({"name": "g2"})");
  keyauth_.FailGatewayDelete(true);
  r = Admin("DELETE", "/api/v1/gateways/" + gw2);
  EXPECT_EQ(r.status, 204);
  EXPECT_EQ(keyauth_.deleted_gateways().size(), 2u);

  // A failed config delete does not touch the keys.
  r = Admin("DELETE", "/api/v1/gateways/" + gw2);
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(keyauth_.deleted_gateways().size(), 2u);
}

TEST_F(EdgeAdminIT, WatchReconnectsAndResumesFromItsRevision) {
  std::string gw = Create("/api/v1/gateways", R"({"name": "g"})");
  int64_t held = watcher_->revision();
  ASSERT_EQ(held, config_.revision());
  config_.EndStreams();
  ASSERT_TRUE(WaitFor([&] { return config_.watch_requests().size() >= 2; }));
  auto requests = config_.watch_requests();
  EXPECT_EQ(requests[0].from_revision(), 0);
  EXPECT_EQ(requests.back().from_revision(), held);
  for (const auto& w : requests) EXPECT_FALSE(w.include_credentials());
  ASSERT_TRUE(WaitFor([&] { return watcher_->connected(); }));
  // And it keeps following changes on the new stream.
  std::string up = Create("/api/v1/gateways/" + gw + "/upstreams", kUpstreamBody);
  EXPECT_NE(watcher_->snapshot()->FindUpstream(up), nullptr);
}

TEST_F(EdgeAdminIT, RulesGoToTheConfigService) {
  std::string gw = Create("/api/v1/gateways", R"({"name": "g"})");
  auto r = Admin("POST", "/api/v1/gateways/" + gw + "/rules",
                 R"({"path": "/ai", "service_id": "s", "methods": ["POST"], "strip_path": true,
                     "active": true})");
  ASSERT_EQ(r.status, 201) << r.body;
  std::string id = Json(r.body)["id"].GetString();
  const auto* rule = watcher_->snapshot()->FindRule(id);
  ASSERT_NE(rule, nullptr);
  EXPECT_EQ(rule->gateway_id(), gw);
  EXPECT_TRUE(rule->strip_path());
  EXPECT_EQ(watcher_->snapshot()->RulesOf(gw).size(), 1u);
}

TEST_F(EdgeAdminIT, HealthzStaysUpDegradedWhenTheConfigServiceGoesAway) {
  // The edge holds a configuration and can serve from it: taking it out of
  // its Service would turn a tg-config outage into an outage of the proxy.
  config_.Stop();  // ends the Watch stream; the reconnect gets nothing
  grpc_->Shutdown();
  ASSERT_TRUE(WaitFor([&] { return !watcher_->connected(); }));
  auto r = testing::HttpCall(http_->port(), "GET", "/healthz");
  EXPECT_EQ(r.status, 200);
  EXPECT_THAT(r.body, HasSubstr(R"("status":"degraded")"));
  EXPECT_THAT(r.body, HasSubstr("config watch down since "));
  r = Admin("GET", "/api/v1/gateways");
  EXPECT_EQ(r.status, 503);
  EXPECT_THAT(r.body, ::testing::Not(HasSubstr("127.0.0.1")));
}

}  // namespace
}  // namespace tg::edge
