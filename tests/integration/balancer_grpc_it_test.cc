// tg.v1.BalancerService over real gRPC: an in-process GrpcServer on
// 127.0.0.1:0 and a real stub; upstreams from a fake tg-config Watch feed.
#include <google/protobuf/util/time_util.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <future>
#include <mutex>
#include <thread>
#include <vector>

#include "balancer_fakes.h"
#include "balancer_test_util.h"
#include "fake_config.h"
#include "test_tls.h"
#include "tg/balancer/balancer.h"
#include "tg/balancer/balancer_service.h"
#include "tg/balancer/config_watcher_source.h"
#include "tg/common/config_watcher.h"
#include "tg/common/grpc_server.h"
#include "tg/common/health_client.h"
#include "tg/v1/balancer.grpc.pb.h"
#include "tg/v1/config.grpc.pb.h"

namespace tg::balancer {
namespace {

using namespace std::chrono_literals;
using testing::FakeHealthStore;
using testing::HealthSpec;
using testing::MakeUpstream;

// A tg-config that serves Watch only: a snapshot first, then whatever the
// test pushes, then heartbeats.
// tg-config as the balancer follows it: the shared fake, fed upstreams.
struct ConfigFeedFake {
  fakes::FakeConfigService service;

  void SetSnapshot(const std::vector<std::shared_ptr<const tg::v1::Upstream>>& ups, int64_t rev) {
    tg::v1::ConfigSnapshot snapshot;
    for (const auto& u : ups) *snapshot.add_upstreams() = *u;
    service.SetSnapshot(std::move(snapshot), rev);
  }
  void PushUpstream(const tg::v1::Upstream& u, int64_t rev) {
    tg::v1::WatchEvent e;
    e.set_revision(rev);
    *e.mutable_change()->mutable_upstream() = u;
    service.Push(std::move(e));
  }
  void PushDeleteGateway(const std::string& gateway_id, int64_t rev) {
    tg::v1::WatchEvent e;
    e.set_revision(rev);
    auto* d = e.mutable_change()->mutable_deleted();
    d->set_kind(tg::v1::RESOURCE_KIND_GATEWAY);
    d->set_id(gateway_id);
    service.Push(std::move(e));
  }
  void PushHeartbeat(int64_t rev) {
    tg::v1::WatchEvent e;
    e.set_revision(rev);
    e.set_heartbeat(true);
    service.Push(std::move(e));
  }
  void Stop() { service.Stop(); }
};

bool WaitUntil(const std::function<bool()>& ok, std::chrono::milliseconds timeout = 3s) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!ok()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

class BalancerGrpcTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string error;
    config_server_ =
        GrpcServer::Start(GrpcServerOptions{.listen = "127.0.0.1:0",
                                            .health_names = {},
                                            .shutdown_grace = 1s,
                                            .tls = tg::testing::TestTls(kConfigIdentity)},
                          {&config_.service}, &error);
    ASSERT_TRUE(config_server_) << error;

    balancer_ = std::make_unique<Balancer>(&clock_, &random_, &store_);
    store_.Start(balancer_.get());
    service_ = std::make_unique<BalancerServiceImpl>(
        balancer_.get(), BalancerServiceOptions{.revision_wait = 500ms, .sweep_interval = 100ms});
    watcher_ = std::make_unique<ConfigWatcher>(
        tg::testing::TestChannel(config_server_->port(), kConfigIdentity, kBalancerIdentity));
    source_ = std::make_unique<ConfigWatcherSource>(watcher_.get());
    source_->SetOnChange([this] {
      if (auto set = source_->Current()) {
        balancer_->ApplyConfig(*set);
        service_->OnConfigApplied();
      }
    });
    server_ = GrpcServer::Start(GrpcServerOptions{.listen = "127.0.0.1:0",
                                                  .health_names = {"tg.v1.BalancerService"},
                                                  .shutdown_grace = 1s,
                                                  .tls = tg::testing::TestTls(kBalancerIdentity)},
                                {service_.get()}, &error);
    ASSERT_TRUE(server_) << error;
    address_ = "127.0.0.1:" + std::to_string(server_->port());
    stub_ = tg::v1::BalancerService::NewStub(tg::testing::TestChannel(address_, kBalancerIdentity));
  }

  void TearDown() override {
    if (service_) service_->BeginShutdown();
    if (server_) server_->Shutdown();
    if (source_) source_->Stop();
    if (watcher_) watcher_->Stop();
    config_.Stop();
    if (config_server_) config_server_->Shutdown();
  }

  void StartFeed() {
    watcher_->Start();
    source_->Start();
  }

  grpc::Status Pick(const tg::v1::PickRequest& req, tg::v1::PickResponse* resp,
                    std::chrono::milliseconds deadline = 5s) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + deadline);
    return stub_->Pick(&ctx, req, resp);
  }

  grpc::Status Report(const tg::v1::ReportRequest& req) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 5s);
    tg::v1::ReportResponse resp;
    return stub_->Report(&ctx, req, &resp);
  }

  grpc::Status GetHealth(const std::string& upstream, tg::v1::GetHealthResponse* resp) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 5s);
    tg::v1::GetHealthRequest req;
    req.set_upstream_id(upstream);
    return stub_->GetHealth(&ctx, req, resp);
  }

  static tg::v1::PickRequest PickFor(const std::string& upstream, int64_t min_revision = 0) {
    tg::v1::PickRequest req;
    req.set_upstream_id(upstream);
    req.set_min_config_revision(min_revision);
    return req;
  }

  // Polls Pick until `ok` holds or `timeout` passes; returns the time taken.
  // Its picks are reported as cancelled: no slot stays taken, no health moves.
  std::chrono::milliseconds WaitForPick(
      const tg::v1::PickRequest& req,
      const std::function<bool(const grpc::Status&, const tg::v1::PickResponse&)>& ok,
      std::chrono::milliseconds timeout = 3s) {
    const auto start = std::chrono::steady_clock::now();
    while (std::chrono::steady_clock::now() - start < timeout) {
      tg::v1::PickResponse resp;
      grpc::Status st = Pick(req, &resp);
      if (st.ok()) {
        tg::v1::ReportRequest rep;
        rep.set_pick_id(resp.pick_id());
        rep.set_outcome(tg::v1::OUTCOME_CANCELLED);
        Report(rep);
      }
      if (ok(st, resp)) break;
      std::this_thread::sleep_for(10ms);
    }
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                 start);
  }

  testing::FakeClock clock_;
  SystemRandom random_;
  FakeHealthStore store_;
  ConfigFeedFake config_;
  std::unique_ptr<GrpcServer> config_server_;
  std::unique_ptr<Balancer> balancer_;
  std::unique_ptr<BalancerServiceImpl> service_;
  std::unique_ptr<ConfigWatcher> watcher_;
  std::unique_ptr<ConfigWatcherSource> source_;
  std::unique_ptr<GrpcServer> server_;
  std::string address_;
  std::unique_ptr<tg::v1::BalancerService::Stub> stub_;
};

TEST_F(BalancerGrpcTest, ServesHealthAndReflectionNames) {
  auto channel = tg::testing::TestChannel(address_, kBalancerIdentity, kOperatorIdentity);
  EXPECT_EQ(CheckHealth(channel, "", 2s), "SERVING");
  EXPECT_EQ(CheckHealth(channel, "tg.v1.BalancerService", 2s), "SERVING");
}

TEST_F(BalancerGrpcTest, PickReportGetHealthOverTheWire) {
  config_.SetSnapshot(
      {MakeUpstream("u1", "weighted", {{.id = "a", .weight = 5}, {.id = "b"}, {.id = "c"}},
                    HealthSpec{.threshold = 1, .interval_s = 30})},
      7);
  StartFeed();
  // The Pick names revision 7: it waits for the feed instead of failing.
  std::string seq;
  for (int i = 0; i < 7; ++i) {
    tg::v1::PickResponse resp;
    grpc::Status st = Pick(PickFor("u1", 7), &resp);
    ASSERT_TRUE(st.ok()) << st.error_message();
    seq += resp.target().id();
    EXPECT_FALSE(resp.pick_id().empty());
    EXPECT_FALSE(resp.target().has_credentials());
    tg::v1::ReportRequest rep;
    rep.set_pick_id(resp.pick_id());
    rep.set_outcome(tg::v1::OUTCOME_SUCCESS);
    ASSERT_TRUE(Report(rep).ok());
  }
  EXPECT_EQ(seq, "aabacaa");

  // A 503 ejects b (threshold 1); GetHealth says so.
  tg::v1::PickResponse resp;
  ASSERT_TRUE(Pick(PickFor("u1"), &resp).ok());
  tg::v1::ReportRequest rep;
  rep.set_upstream_id("u1");
  rep.set_target_id("b");
  rep.set_outcome(tg::v1::OUTCOME_HTTP_STATUS);
  rep.set_http_status(503);
  ASSERT_TRUE(Report(rep).ok());
  tg::v1::GetHealthResponse health;
  ASSERT_TRUE(GetHealth("u1", &health).ok());
  ASSERT_EQ(health.targets_size(), 3);
  EXPECT_EQ(health.targets(0).in_flight(), 1);  // the pick above, never reported
  EXPECT_EQ(health.targets(1).state(), tg::v1::TargetHealth::STATE_EJECTED);
  EXPECT_EQ(health.targets(1).ejections(), 1);
  EXPECT_FALSE(health.degraded());

  // Status codes travel as such.
  EXPECT_EQ(Pick(PickFor("nope"), &resp).error_code(), grpc::StatusCode::NOT_FOUND);
  auto req = PickFor("u1");
  req.add_exclude_target_ids("a");
  req.add_exclude_target_ids("b");
  req.add_exclude_target_ids("c");
  EXPECT_EQ(Pick(req, &resp).error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(GetHealth("nope", &health).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(Report(tg::v1::ReportRequest()).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

// Lookaside balancing: a WatchHealth stream starts with the current
// verdicts and gets a new message when a report ejects or restores a target;
// shutdown ends it.
TEST_F(BalancerGrpcTest, WatchHealthStreamsEjectionsAndRestorations) {
  config_.SetSnapshot(
      {MakeUpstream("u1", "weighted", {{.id = "a"}, {.id = "b"}},
                    HealthSpec{.threshold = 1, .interval_s = 30}),
       MakeUpstream("u2", "weighted", {{.id = "c"}}),  // no passive checks
       MakeUpstream("u3", "weighted", {{.id = "d"}}, HealthSpec{.threshold = 2, .interval_s = 30})},
      3);
  StartFeed();
  ASSERT_TRUE(WaitUntil([&] { return balancer_->revision() == 3; }));

  grpc::ClientContext ctx;
  auto reader = stub_->WatchHealth(&ctx, tg::v1::WatchHealthRequest());
  tg::v1::HealthVerdicts v;
  ASSERT_TRUE(reader->Read(&v));
  EXPECT_EQ(v.targets_size(), 0);
  EXPECT_EQ(v.config_revision(), 3);
  EXPECT_EQ(service_->health_watchers(), 1u);

  auto report = [&](const std::string& upstream, const std::string& target, int status) {
    tg::v1::ReportRequest rep;
    rep.set_upstream_id(upstream);
    rep.set_target_id(target);
    rep.set_outcome(tg::v1::OUTCOME_HTTP_STATUS);
    rep.set_http_status(status);
    ASSERT_TRUE(Report(rep).ok());
  };
  report("u1", "b", 503);  // threshold 1: ejected
  ASSERT_TRUE(reader->Read(&v));
  ASSERT_EQ(v.targets_size(), 1);
  EXPECT_EQ(v.targets(0).upstream_id(), "u1");
  EXPECT_EQ(v.targets(0).target_id(), "b");
  EXPECT_EQ(v.targets(0).ejections(), 1);
  EXPECT_EQ(google::protobuf::util::TimeUtil::TimestampToMilliseconds(v.targets(0).ejected_until()),
            clock_.NowMs() + 30'000);

  EXPECT_EQ(v.targets(0).consecutive_failures(), 1);

  report("u2", "c", 503);  // no passive checks: no verdict, no message
  report("u1", "b", 200);  // a success restores it
  ASSERT_TRUE(reader->Read(&v));
  EXPECT_EQ(v.targets_size(), 0);

  // A first failure under the threshold: listed, in rotation, one failure
  // counted (a success there is worth reporting); the success clears it.
  report("u3", "d", 503);
  ASSERT_TRUE(reader->Read(&v));
  ASSERT_EQ(v.targets_size(), 1);
  EXPECT_EQ(v.targets(0).target_id(), "d");
  EXPECT_FALSE(v.targets(0).has_ejected_until());
  EXPECT_EQ(v.targets(0).consecutive_failures(), 1);
  report("u3", "d", 200);
  ASSERT_TRUE(reader->Read(&v));
  EXPECT_EQ(v.targets_size(), 0);

  // A second stream starts from the current state.
  report("u1", "a", 503);
  ASSERT_TRUE(WaitUntil([&] {
    tg::v1::GetHealthResponse h;
    return GetHealth("u1", &h).ok() && h.targets(0).state() == tg::v1::TargetHealth::STATE_EJECTED;
  }));
  grpc::ClientContext ctx2;
  auto reader2 = stub_->WatchHealth(&ctx2, tg::v1::WatchHealthRequest());
  tg::v1::HealthVerdicts v2;
  ASSERT_TRUE(reader2->Read(&v2));
  ASSERT_EQ(v2.targets_size(), 1);
  EXPECT_EQ(v2.targets(0).target_id(), "a");

  // Shutdown ends both streams with UNAVAILABLE, promptly.
  service_->BeginShutdown();
  while (reader->Read(&v)) {
  }
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::UNAVAILABLE);
  while (reader2->Read(&v2)) {
  }
  EXPECT_EQ(reader2->Finish().error_code(), grpc::StatusCode::UNAVAILABLE);
}

TEST_F(BalancerGrpcTest, ReportBatchAppliesEachReportAndSkipsInvalidOnes) {
  config_.SetSnapshot({MakeUpstream("u1", "weighted", {{.id = "a"}, {.id = "b"}},
                                    HealthSpec{.threshold = 1, .interval_s = 30})},
                      1);
  StartFeed();
  tg::v1::PickResponse p1, p2;
  ASSERT_TRUE(Pick(PickFor("u1", 1), &p1).ok());
  ASSERT_TRUE(Pick(PickFor("u1", 1), &p2).ok());
  ASSERT_NE(p1.target().id(), p2.target().id());

  tg::v1::ReportBatchRequest batch;
  auto* ok = batch.add_reports();
  ok->set_pick_id(p1.pick_id());
  ok->set_outcome(tg::v1::OUTCOME_SUCCESS);
  batch.add_reports();  // no outcome: refused by Report, skipped here
  auto* failed = batch.add_reports();
  failed->set_pick_id(p2.pick_id());
  failed->set_outcome(tg::v1::OUTCOME_HTTP_STATUS);
  failed->set_http_status(503);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + 5s);
  tg::v1::ReportBatchResponse resp;
  ASSERT_TRUE(stub_->ReportBatch(&ctx, batch, &resp).ok());
  EXPECT_EQ(resp.applied(), 2);

  // Both picks were released, and the 503 ejected its target (threshold 1).
  tg::v1::GetHealthResponse health;
  ASSERT_TRUE(GetHealth("u1", &health).ok());
  ASSERT_EQ(health.targets_size(), 2);
  for (const auto& t : health.targets()) {
    EXPECT_EQ(t.in_flight(), 0) << t.target_id();
    EXPECT_EQ(t.state(), t.target_id() == p2.target().id() ? tg::v1::TargetHealth::STATE_EJECTED
                                                           : tg::v1::TargetHealth::STATE_HEALTHY)
        << t.target_id();
  }
}

TEST_F(BalancerGrpcTest, PickWaitsForItsRevisionThenGivesUp) {
  config_.SetSnapshot({MakeUpstream("u1", "round-robin", {{.id = "a"}})}, 3);
  StartFeed();
  WaitForPick(PickFor("u1"), [](const grpc::Status& st, const auto&) { return st.ok(); });

  // Revision 4 arrives 200 ms into the wait: the pick is answered then.
  auto pending = std::async(std::launch::async, [&] {
    tg::v1::PickResponse resp;
    return Pick(PickFor("u2", 4), &resp);
  });
  std::this_thread::sleep_for(200ms);
  config_.PushUpstream(*MakeUpstream("u2", "round-robin", {{.id = "x"}}), 4);
  EXPECT_TRUE(pending.get().ok());

  // Revision 9 never comes: UNAVAILABLE after revision_wait (500 ms).
  const auto start = std::chrono::steady_clock::now();
  tg::v1::PickResponse resp;
  EXPECT_EQ(Pick(PickFor("u1", 9), &resp).error_code(), grpc::StatusCode::UNAVAILABLE);
  const auto waited = std::chrono::steady_clock::now() - start;
  EXPECT_GE(waited, 450ms);
  EXPECT_LT(waited, 1500ms);
  // The call's own shorter deadline bounds the wait (the server gives up at
  // that deadline too, so either side may have the last word).
  const auto short_start = std::chrono::steady_clock::now();
  const grpc::StatusCode code = Pick(PickFor("u1", 9), &resp, 100ms).error_code();
  EXPECT_TRUE(code == grpc::StatusCode::DEADLINE_EXCEEDED || code == grpc::StatusCode::UNAVAILABLE)
      << code;
  EXPECT_LT(std::chrono::steady_clock::now() - short_start, 400ms);
}

TEST_F(BalancerGrpcTest, ConfigChangesTakeEffectWithinOneSecond) {
  config_.SetSnapshot({MakeUpstream("u1", "round-robin", {{.id = "a"}})}, 1);
  StartFeed();
  WaitForPick(PickFor("u1"), [](const grpc::Status& st, const auto&) { return st.ok(); });

  // A new target replaces the old one; no min revision, so this measures the
  // feed itself.
  config_.PushUpstream(*MakeUpstream("u1", "round-robin", {{.id = "b"}}), 2);
  auto took = WaitForPick(PickFor("u1"), [](const grpc::Status& st, const auto& r) {
    return st.ok() && r.target().id() == "b";
  });
  EXPECT_LT(took, 1000ms);

  // Deleting the gateway drops its upstreams.
  config_.PushDeleteGateway("gw-1", 3);
  took = WaitForPick(PickFor("u1"), [](const grpc::Status& st, const auto&) {
    return st.error_code() == grpc::StatusCode::NOT_FOUND;
  });
  EXPECT_LT(took, 1000ms);
  config_.PushHeartbeat(5);
  WaitForPick(PickFor("u1", 5), [](const grpc::Status& st, const auto&) {
    return st.error_code() == grpc::StatusCode::NOT_FOUND;
  });
  EXPECT_EQ(balancer_->revision(), 5);
}

TEST_F(BalancerGrpcTest, ShutdownAnswersWaitingPicks) {
  StartFeed();  // snapshot at revision 0: loaded, but no revision 10
  auto pending = std::async(std::launch::async, [&] {
    tg::v1::PickResponse resp;
    return Pick(PickFor("u1", 10), &resp);
  });
  std::this_thread::sleep_for(100ms);
  const auto start = std::chrono::steady_clock::now();
  service_->BeginShutdown();
  server_->Shutdown();
  EXPECT_EQ(pending.get().error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1500ms);
}

TEST_F(BalancerGrpcTest, ConcurrentCallersKeepCountsExact) {
  config_.SetSnapshot(
      {MakeUpstream("u1", "least-connections", {{.id = "a"}, {.id = "b"}, {.id = "c", .weight = 2}},
                    HealthSpec{})},
      1);
  StartFeed();
  WaitForPick(PickFor("u1"), [](const grpc::Status& st, const auto&) { return st.ok(); });
  std::vector<std::thread> callers;
  std::atomic<int> failures{0};
  for (int t = 0; t < 8; ++t) {
    callers.emplace_back([&] {
      for (int i = 0; i < 200; ++i) {
        tg::v1::PickResponse resp;
        if (!Pick(PickFor("u1"), &resp).ok()) ++failures;
        tg::v1::ReportRequest rep;
        rep.set_pick_id(resp.pick_id());
        rep.set_outcome(tg::v1::OUTCOME_SUCCESS);
        if (!Report(rep).ok()) ++failures;
      }
    });
  }
  for (auto& c : callers) c.join();
  EXPECT_EQ(failures.load(), 0);
  tg::v1::GetHealthResponse health;
  ASSERT_TRUE(GetHealth("u1", &health).ok());
  for (const auto& t : health.targets()) EXPECT_EQ(t.in_flight(), 0) << t.target_id();
  EXPECT_EQ(balancer_->outstanding_picks(), 0u);
}

}  // namespace
}  // namespace tg::balancer
