// Two tg-balancer processes on one Redis: an ejection caused through one is
// seen by the other within a second (issue 3's replica test, as processes).
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <thread>

#include "fake_config.h"
#include "process.h"
#include "test_tls.h"
#include "tg/common/grpc_server.h"
#include "tg/common/health_client.h"
#include "tg/common/json_util.h"
#include "tg/v1/balancer.grpc.pb.h"
#include "tg/v1/config.grpc.pb.h"

namespace tg::testing {
namespace {

using std::chrono::milliseconds;

// What tg-config streams: one upstream of two targets, ejection after one
// failure. Health state in Redis outlives a run (TTLs): each run has its own
// upstream id.
tg::v1::ConfigSnapshot OneUpstream(const std::string& id) {
  auto snapshot = fakes::FakeConfigService::SnapshotFromJson(R"({
      "gateways": [{"id": "g", "name": "g"}],
      "upstreams": [{"id": "UPSTREAM", "gateway_id": "g", "name": "u", "algorithm": "round-robin",
        "targets": [{"id": "a", "provider": "openai", "priority": 1},
                    {"id": "b", "provider": "anthropic", "priority": 2}],
        "health_checks": {"passive": true, "threshold": 1, "interval": 60}}]})");
  snapshot.mutable_upstreams(0)->set_id(id);
  return snapshot;
}

TEST(BalancerProcesses, AnEjectionThroughOneIsSeenByTheOtherWithinOneSecond) {
  const char* redis = std::getenv("TG_TEST_REDIS_ADDR");
  if (redis == nullptr) GTEST_SKIP() << "TG_TEST_REDIS_ADDR not set";
  const std::string upstream_id =
      "u-" + std::to_string(FreePort()) + "-" + std::to_string(getpid());
  fakes::FakeConfigService config(OneUpstream(upstream_id));
  std::string error;
  auto server = GrpcServer::Start(
      {.listen = "127.0.0.1:0", .health_names = {}, .tls = tg::testing::TestTls(kConfigIdentity)},
      {&config}, &error);
  ASSERT_NE(server, nullptr) << error;
  std::string config_addr = "127.0.0.1:" + std::to_string(server->port());
  std::string dir = ::testing::TempDir();
  std::vector<std::unique_ptr<Process>> balancers;
  std::vector<std::unique_ptr<tg::v1::BalancerService::Stub>> stubs;
  for (int i = 0; i < 2; ++i) {
    int port = FreePort();
    balancers.push_back(
        std::make_unique<Process>("tg-balancer", BinDir() + "/tg-balancer",
                                  std::map<std::string, std::string>{
                                      {"TG_BALANCER_LISTEN", "127.0.0.1:" + std::to_string(port)},
                                      {"TG_CONFIG_ADDR", config_addr},
                                      {"TG_BALANCER_METRICS_LISTEN", "127.0.0.1:0"},
                                      {"TG_REDIS_URL", std::string("redis://") + redis},
                                      {"TG_GRPC_TLS_DIR", tg::testing::TestTlsDir()}},
                                  dir + "/balancer" + std::to_string(i) + ".log"));
    ASSERT_TRUE(balancers.back()->Start());
    ASSERT_TRUE(WaitFor(
        [&] {
          return CheckHealth(tg::testing::TestChannel(port, kBalancerIdentity, kOperatorIdentity),
                             "", milliseconds(300)) == "SERVING";
        },
        std::chrono::seconds(20)))
        << balancers.back()->LogTail();
    stubs.push_back(
        tg::v1::BalancerService::NewStub(tg::testing::TestChannel(port, kBalancerIdentity)));
  }
  auto pick = [&](int i) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(3));
    tg::v1::PickRequest req;
    req.set_upstream_id(upstream_id);
    req.set_min_config_revision(3);
    tg::v1::PickResponse resp;
    EXPECT_TRUE(stubs[i]->Pick(&ctx, req, &resp).ok());
    return resp;
  };
  ASSERT_EQ(pick(1).target().id(), "a") << "priority 1 serves while healthy";

  auto first = pick(0);
  ASSERT_EQ(first.target().id(), "a");
  grpc::ClientContext ctx;
  tg::v1::ReportRequest report;
  report.set_pick_id(first.pick_id());
  report.set_upstream_id(upstream_id);
  report.set_target_id("a");
  report.set_outcome(tg::v1::OUTCOME_HTTP_STATUS);
  report.set_http_status(503);
  tg::v1::ReportResponse ignored;
  ASSERT_TRUE(stubs[0]->Report(&ctx, report, &ignored).ok());
  auto reported = std::chrono::steady_clock::now();

  // The other process stops sending to the ejected target within a second.
  bool moved = WaitFor([&] { return pick(1).target().id() == "b"; }, milliseconds(1000));
  auto took = std::chrono::steady_clock::now() - reported;
  EXPECT_TRUE(moved) << balancers[1]->LogTail();
  EXPECT_LT(took, milliseconds(1000));
  for (auto& b : balancers) EXPECT_EQ(b->Stop(), 0) << b->LogTail();
  server->Shutdown();
}

}  // namespace
}  // namespace tg::testing
