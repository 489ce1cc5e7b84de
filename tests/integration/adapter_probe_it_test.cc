// tg-adapter's Probe (active health checks) through real gRPC over mutual
// TLS, a real ConfigWatcher and libcurl, against the in-process fake
// provider: each provider's model list with its real auth, a target that is
// down, one that does not listen, the probe's path and headers, and who may
// call it.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <map>
#include <thread>

#include "fake_config.h"
#include "fake_provider.h"
#include "http/curl_http_client.h"
#include "service/adapter_service.h"
#include "test_tls.h"
#include "tg/common/config_watcher.h"
#include "tg/common/grpc_server.h"
#include "tg/common/worker_pool.h"
#include "tg/v1/adapter.grpc.pb.h"
#include "tg/v1/config.grpc.pb.h"

namespace tg::adapter {
namespace {

using std::chrono::milliseconds;

int ClosedPort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(a);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

class AdapterProbeIT : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string error;
    ASSERT_TRUE(fake_.Start(&error)) << error;
    tg::v1::ConfigSnapshot snapshot;
    auto* up = snapshot.add_upstreams();
    up->set_id("u1");
    up->set_name("ai");
    const auto& c = fake_.credentials();
    auto add = [&](const std::string& id, const std::string& provider, int port = -1) {
      auto* t = up->add_targets();
      t->set_id(id);
      t->set_provider(provider);
      if (provider != "azure") {
        t->set_host("127.0.0.1");
        t->set_port(port < 0 ? fake_.port() : port);
        t->set_protocol("http");
      }
      auto* cr = t->mutable_credentials();
      if (provider == "openai") cr->set_api_key(c.openai_key);
      if (provider == "anthropic") cr->set_api_key(c.anthropic_key);
      if (provider == "gemini") cr->set_api_key(c.gemini_key);
      if (provider == "azure") {
        cr->set_api_key(c.azure_key);
        cr->set_azure_endpoint(fake_.base_url());
      }
      if (provider == "bedrock") {
        cr->set_aws_access_key_id(c.aws.access_key_id);
        cr->set_aws_secret_access_key(c.aws.secret_access_key);
        cr->set_aws_region(c.aws_region);
      }
      return t;
    };
    for (const char* p : {"openai", "anthropic", "gemini", "bedrock", "azure"}) {
      add(std::string("t-") + p, p);
    }
    add("t-closed", "openai", ClosedPort());
    add("t-wrong-key", "openai")->mutable_credentials()->set_api_key("sk-wrong");
    for (const auto& t : up->targets()) {
      targets_[t.id()] = t;
      targets_[t.id()].clear_credentials();  // as the balancer knows them
    }

    config_ = std::make_unique<fakes::FakeConfigService>(snapshot);
    config_server_ = GrpcServer::Start({.listen = "127.0.0.1:0",
                                        .health_names = {},
                                        .shutdown_grace = std::chrono::seconds(0),
                                        .tls = tg::testing::TestTls(kConfigIdentity)},
                                       {config_.get()}, &error);
    ASSERT_NE(config_server_, nullptr) << error;
    ConfigWatcherOptions wo;
    wo.include_credentials = true;
    watcher_ = std::make_unique<ConfigWatcher>(
        tg::testing::TestChannel(config_server_->port(), kConfigIdentity, kAdapterIdentity), wo);
    watcher_->Start();
    auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (watcher_->revision() < 3 && std::chrono::steady_clock::now() < until) {
      std::this_thread::sleep_for(milliseconds(5));
    }
    ASSERT_EQ(watcher_->revision(), 3);

    http::CurlHttpClientOptions ho;
    ho.egress.allow_private = true;  // the fake provider listens on loopback
    client_ = std::make_unique<http::CurlHttpClient>(ho);
    workers_ = std::make_unique<WorkerPool>(1);
    AdapterServiceOptions ao;
    ao.config_wait = milliseconds(300);
    ao.probe.total_timeout = milliseconds(1000);  // the hang test's timeout
    service_ = std::make_unique<AdapterServiceImpl>(*watcher_, *client_, nullptr, *workers_, ao);
    server_ = GrpcServer::Start({.listen = "127.0.0.1:0",
                                 .health_names = {},
                                 .shutdown_grace = std::chrono::seconds(1),
                                 .tls = tg::testing::TestTls(kAdapterIdentity)},
                                {service_.get()}, &error);
    ASSERT_NE(server_, nullptr) << error;
    balancer_stub_ = tg::v1::ProviderAdapterService::NewStub(
        tg::testing::TestChannel(server_->port(), kAdapterIdentity, kBalancerIdentity));
  }

  void TearDown() override {
    if (server_) server_->Shutdown();
    server_.reset();
    service_.reset();
    if (watcher_) watcher_->Stop();
    if (config_server_) config_server_->Shutdown();
    client_.reset();
    workers_.reset();
    fake_.Stop();
  }

  tg::v1::ProbeRequest Request(const std::string& target, const std::string& path,
                               std::map<std::string, std::string> headers = {}) {
    tg::v1::ProbeRequest req;
    req.set_upstream_id("u1");
    *req.mutable_target() = targets_.at(target);
    req.set_path(path);
    req.mutable_headers()->insert(headers.begin(), headers.end());
    return req;
  }

  grpc::Status Call(tg::v1::ProviderAdapterService::Stub& stub, const tg::v1::ProbeRequest& req,
                    tg::v1::ProbeResponse* resp) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    return stub.Probe(&ctx, req, resp);
  }

  tg::v1::ProbeResponse Probe(const tg::v1::ProbeRequest& req) {
    tg::v1::ProbeResponse resp;
    grpc::Status s = Call(*balancer_stub_, req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return resp;
  }

  fakes::FakeProvider fake_;
  std::map<std::string, tg::v1::Target> targets_;
  std::unique_ptr<fakes::FakeConfigService> config_;
  std::unique_ptr<GrpcServer> config_server_;
  std::unique_ptr<ConfigWatcher> watcher_;
  std::unique_ptr<http::CurlHttpClient> client_;
  std::unique_ptr<WorkerPool> workers_;
  std::unique_ptr<AdapterServiceImpl> service_;
  std::unique_ptr<GrpcServer> server_;
  std::unique_ptr<tg::v1::ProviderAdapterService::Stub> balancer_stub_;
};

// Each provider's model list, called with the provider's own auth (the fake
// refuses a wrong or missing one in the provider's format).
TEST_F(AdapterProbeIT, EachProvidersModelListWithItsRealAuth) {
  const std::map<std::string, std::string> paths = {
      {"openai", "/v1/models"},
      {"anthropic", "/v1/models"},
      {"gemini", "/v1beta/models"},
      {"bedrock", "/foundation-models"},
      {"azure", "/openai/models?api-version=2024-10-21"}};
  for (const auto& [provider, path] : paths) {
    SCOPED_TRACE(provider);
    fake_.ClearRequests();
    auto r = Probe(Request("t-" + provider, path));
    EXPECT_TRUE(r.healthy()) << r.error_class();
    EXPECT_EQ(r.http_status(), 200);
    EXPECT_EQ(r.error_class(), "");
    auto requests = fake_.Requests();
    ASSERT_EQ(requests.size(), 1u);
    EXPECT_EQ(requests[0].method, "GET");
    EXPECT_TRUE(requests[0].body.empty());
    EXPECT_EQ(requests[0].Header("content-type"), "") << "a GET without a body";
    EXPECT_EQ(ApiName(requests[0].api), provider);
  }
  // What each provider checks, seen at the fake.
  fake_.ClearRequests();
  Probe(Request("t-anthropic", "/v1/models"));
  auto q = fake_.Requests().at(0);
  EXPECT_EQ(q.Header("x-api-key"), fake_.credentials().anthropic_key);
  EXPECT_FALSE(q.Header("anthropic-version").empty());
  fake_.ClearRequests();
  Probe(Request("t-bedrock", "/foundation-models"));
  EXPECT_EQ(fake_.Requests().at(0).Header("authorization").rfind("AWS4-HMAC-SHA256 ", 0), 0u)
      << "SigV4-signed GET with an empty body";
}

TEST_F(AdapterProbeIT, DownTargetIsUnhealthyWithTheStatus) {
  fakes::FakeFault down;
  down.api = "openai";
  down.status = 503;
  fake_.AddFault(down);
  auto r = Probe(Request("t-openai", "/v1/models"));
  EXPECT_FALSE(r.healthy());
  EXPECT_EQ(r.http_status(), 503);
  EXPECT_EQ(r.error_class(), "http_503");
  EXPECT_EQ(fake_.Requests().size(), 1u) << "no retry";
  fake_.ClearFaults();
  EXPECT_TRUE(Probe(Request("t-openai", "/v1/models")).healthy()) << "and back";

  auto wrong = Probe(Request("t-wrong-key", "/v1/models"));
  EXPECT_FALSE(wrong.healthy());
  EXPECT_EQ(wrong.error_class(), "http_401");
  auto closed = Probe(Request("t-closed", "/v1/models"));
  EXPECT_FALSE(closed.healthy());
  EXPECT_EQ(closed.http_status(), 0);
  EXPECT_EQ(closed.error_class(), "connect");

  fakes::FakeFault hang;
  hang.api = "openai";
  hang.hang = true;
  fake_.AddFault(hang);
  const auto started = std::chrono::steady_clock::now();
  auto hung = Probe(Request("t-openai", "/v1/models"));
  EXPECT_EQ(hung.error_class(), "timeout");
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(3))
      << "the probe's own short timeout";
}

TEST_F(AdapterProbeIT, PathAndHeadersGoAsConfiguredOnTheTargetsOrigin) {
  auto r = Probe(
      Request("t-openai", "/v1/models?limit=1",
              {{"x-probe", "yes"}, {"Authorization", "Bearer " + fake_.credentials().openai_key}}));
  EXPECT_TRUE(r.healthy()) << r.error_class();
  auto q = fake_.Requests().at(0);
  EXPECT_EQ(q.path, "/v1/models");
  EXPECT_EQ(q.query, "limit=1");
  EXPECT_EQ(q.Header("x-probe"), "yes");
  int authorizations = 0;
  for (const auto& [k, v] : q.headers)
    authorizations += strcasecmp(k.c_str(), "authorization") == 0;
  EXPECT_EQ(authorizations, 1) << "a probe header replaces the auth header of the same name";

  // Whatever the path holds stays a path on the target's host.
  fake_.ClearRequests();
  r = Probe(Request("t-openai", "/@evil.example.com/../v1 models#x"));
  ASSERT_EQ(fake_.Requests().size(), 1u) << "sent to the fake, nowhere else";
  EXPECT_EQ(fake_.Requests()[0].path.find(' '), std::string::npos);
  EXPECT_EQ(Probe(Request("t-openai", "v1/models")).error_class(), "configuration");
  EXPECT_EQ(Probe(Request("t-openai", "/v1/models", {{"x-a", "1\r\nHost: evil"}})).error_class(),
            "configuration");
}

TEST_F(AdapterProbeIT, UnknownTargetAndCallers) {
  auto req = Request("t-openai", "/v1/models");
  req.mutable_target()->set_id("gone");
  auto r = Probe(req);
  EXPECT_FALSE(r.healthy());
  EXPECT_EQ(r.error_class(), "unknown_target");
  EXPECT_TRUE(fake_.Requests().empty());

  if (tg::testing::TestGrpcInsecure()) GTEST_SKIP() << "no identities in plaintext";
  for (auto identity : {kEdgeIdentity, kOperatorIdentity}) {
    auto stub = tg::v1::ProviderAdapterService::NewStub(
        tg::testing::TestChannel(server_->port(), kAdapterIdentity, identity));
    tg::v1::ProbeResponse resp;
    EXPECT_EQ(Call(*stub, Request("t-openai", "/v1/models"), &resp).error_code(),
              grpc::StatusCode::PERMISSION_DENIED)
        << identity;
  }
  EXPECT_TRUE(fake_.Requests().empty()) << "a refused caller spends no provider call";
}

}  // namespace
}  // namespace tg::adapter
