// tg-adapter's Probe (active health checks) through real gRPC over mutual
// TLS, a real ConfigWatcher and libcurl, against the in-process fake
// provider: each provider's model list with its real auth, a target that is
// down, one that does not listen, the probe's path and headers, and who may
// call it.
#include <gtest/gtest.h>

#include <map>
#include <thread>

#include "adapter_fixture.h"

namespace tg::adapter {
namespace {

using std::chrono::milliseconds;

class AdapterProbeIT : public it::AdapterFixture {
 protected:
  void SetUp() override {
    StartFake();
    for (const char* p : {"openai", "anthropic", "gemini", "bedrock", "azure"}) {
      AddTarget(std::string("t-") + p, p);
    }
    AddTarget("t-closed", "openai", it::ClosedPort());
    AddTarget("t-wrong-key", "openai")->mutable_credentials()->set_api_key("sk-wrong");
    AdapterServiceOptions ao;
    ao.config_wait = milliseconds(300);
    ao.probe.total_timeout = milliseconds(1000);  // the hang test's timeout
    StartAdapter(ao, 1, /*entra=*/false);
    balancer_stub_ = Stub(kBalancerIdentity);
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
