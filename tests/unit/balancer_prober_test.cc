// Active probes: which targets the prober probes and when, and what their
// answers do to the circuit, on a fake clock with a fake adapter.
#include <google/protobuf/util/time_util.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "balancer_fakes.h"
#include "balancer_test_util.h"
#include "tg/balancer/balancer.h"
#include "tg/balancer/prober.h"

namespace tg::balancer {
namespace {

using testing::FakeClock;
using testing::FakeHealthStore;
using testing::FakeProbeClient;
using testing::FakeRandom;
using testing::HealthSpec;
using testing::MakeUpstream;

const ProbeOutcome kHealthy{.answered = true, .healthy = true, .http_status = 200};
const ProbeOutcome kDown{
    .answered = true, .healthy = false, .http_status = 503, .error_class = "http_503"};

class ProberTest : public ::testing::Test {
 protected:
  ProberTest()
      : balancer_(&clock_, &random_, &store_, BalancerOptions{.instance_id = 7}),
        prober_(&balancer_, &probes_, &store_, &clock_) {
    store_.Start(&balancer_);
  }

  // primary (priority 1) and backup (2): threshold 2, ejection 30 s, probes
  // of GET /v1/models every second.
  void Load(HealthSpec health = {.threshold = 2,
                                 .interval_s = 30,
                                 .probe_path = "/v1/models",
                                 .probe_interval_s = 1}) {
    auto u = std::make_shared<tg::v1::Upstream>(
        *MakeUpstream("u", "round-robin",
                      {{.id = "primary", .priority = 1}, {.id = "backup", .priority = 2}}, health));
    (*u->mutable_health_checks()->mutable_headers())["x-probe"] = "1";
    UpstreamSet set;
    set.revision = 4;
    set.upstreams = {u};
    balancer_.ApplyConfig(set);
  }

  std::string PickAndReport(tg::v1::Outcome outcome, int http = 0) {
    tg::v1::PickRequest req;
    req.set_upstream_id("u");
    tg::v1::PickResponse resp;
    EXPECT_TRUE(balancer_.Pick(req, &resp).ok());
    tg::v1::ReportRequest report;
    report.set_pick_id(resp.pick_id());
    report.set_outcome(outcome);
    report.set_http_status(http);
    EXPECT_TRUE(balancer_.Report(report).ok());
    return resp.target().id();
  }

  void EjectPrimary() {
    ASSERT_EQ(PickAndReport(tg::v1::OUTCOME_HTTP_STATUS, 503), "primary");
    ASSERT_EQ(PickAndReport(tg::v1::OUTCOME_HTTP_STATUS, 503), "primary");
    ASSERT_EQ(Health("primary").state(), tg::v1::TargetHealth::STATE_EJECTED);
  }

  tg::v1::TargetHealth Health(const std::string& target) {
    tg::v1::GetHealthRequest req;
    req.set_upstream_id("u");
    tg::v1::GetHealthResponse resp;
    EXPECT_TRUE(balancer_.GetHealth(req, &resp).ok());
    for (const auto& t : resp.targets()) {
      if (t.target_id() == target) return t;
    }
    ADD_FAILURE() << "no target " << target;
    return {};
  }

  int64_t EjectedUntil(const std::string& target) {
    return google::protobuf::util::TimeUtil::TimestampToMilliseconds(
        Health(target).ejected_until());
  }

  FakeClock clock_;
  FakeRandom random_;
  FakeHealthStore store_;
  FakeProbeClient probes_;
  Balancer balancer_;
  Prober prober_;
};

TEST_F(ProberTest, ClosedCircuitsAreNeverProbed) {
  Load();
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(prober_.Tick(), 0u);
    clock_.AdvanceSeconds(1);
  }
  EXPECT_TRUE(probes_.tasks().empty());
}

TEST_F(ProberTest, OpenCircuitIsProbedOncePerIntervalOneAtATime) {
  Load();
  EjectPrimary();
  const int64_t until = EjectedUntil("primary");
  ASSERT_EQ(prober_.Tick(), 1u);
  const auto task = probes_.tasks().at(0);
  EXPECT_EQ(task.upstream_id, "u");
  EXPECT_EQ(task.target.id(), "primary");
  EXPECT_FALSE(task.target.has_credentials()) << "credentials stay with tg-adapter";
  EXPECT_EQ(task.path, "/v1/models");
  EXPECT_EQ(task.headers.at("x-probe"), "1");
  EXPECT_EQ(task.min_config_revision, 4);
  EXPECT_EQ(store_.claims(), std::vector<std::string>{"u:primary:1000"});

  clock_.AdvanceSeconds(5);
  EXPECT_EQ(prober_.Tick(), 0u) << "one probe in flight per target, however long it takes";
  ASSERT_TRUE(probes_.AnswerNext(kDown));
  // A failed probe leaves the circuit open and its ejection as it was.
  EXPECT_EQ(Health("primary").state(), tg::v1::TargetHealth::STATE_EJECTED);
  EXPECT_EQ(EjectedUntil("primary"), until);
  EXPECT_EQ(Health("primary").last_probe_result(), "http_503");
  EXPECT_TRUE(store_.events().size() == 2u) << "no health event for a failed probe";

  // The interval counts from the last probe sent.
  ASSERT_EQ(prober_.Tick(), 1u);
  EXPECT_EQ(prober_.Tick(), 0u);
  ASSERT_TRUE(probes_.AnswerNext(kDown));
  clock_.Advance(999);
  EXPECT_EQ(prober_.Tick(), 0u);
  clock_.Advance(1);
  EXPECT_EQ(prober_.Tick(), 1u);
  EXPECT_EQ(probes_.tasks().size(), 3u);
  EXPECT_EQ(prober_.in_flight(), 1u);
  ASSERT_TRUE(probes_.AnswerNext(kDown));
  EXPECT_EQ(prober_.in_flight(), 0u);
}

// The scenario on a fake clock: down for a while, healthy again 7 s
// into a 30 s ejection; the next probe half-opens the circuit and the next
// request (the trial) closes it, 23 s before the ejection would have ended.
TEST_F(ProberTest, HealthyProbeHalfOpensAndTheTrialCloses) {
  Load();
  EjectPrimary();
  const int64_t until = EjectedUntil("primary");
  for (int s = 0; s < 7; ++s) {
    ASSERT_EQ(prober_.Tick(), 1u) << s;
    ASSERT_TRUE(probes_.AnswerNext(kDown));
    EXPECT_EQ(PickAndReport(tg::v1::OUTCOME_SUCCESS), "backup");
    clock_.AdvanceSeconds(1);
  }
  ASSERT_EQ(prober_.Tick(), 1u);
  ASSERT_TRUE(probes_.AnswerNext(kHealthy));
  auto h = Health("primary");
  EXPECT_EQ(h.state(), tg::v1::TargetHealth::STATE_TRIAL);
  EXPECT_EQ(h.last_probe_result(), "healthy");
  EXPECT_EQ(google::protobuf::util::TimeUtil::TimestampToMilliseconds(h.last_probe_at()),
            clock_.NowMs());
  EXPECT_LT(clock_.NowMs(), until);
  // Shared like a report's verdict.
  ASSERT_EQ(store_.events().size(), 3u);
  EXPECT_EQ(store_.events()[2].verdict, Verdict::kProbeHealthy);
  EXPECT_EQ(store_.events()[2].target_id, "primary");
  // Half-open is not probed.
  clock_.AdvanceSeconds(2);
  EXPECT_EQ(prober_.Tick(), 0u);

  // Half-open admits one request at a time: the trial goes to primary while
  // the others keep to backup until it is reported.
  tg::v1::PickRequest req;
  req.set_upstream_id("u");
  tg::v1::PickResponse trial, other;
  ASSERT_TRUE(balancer_.Pick(req, &trial).ok());
  ASSERT_TRUE(balancer_.Pick(req, &other).ok());
  EXPECT_EQ(trial.target().id(), "primary");
  EXPECT_EQ(other.target().id(), "backup");
  tg::v1::ReportRequest report;
  report.set_pick_id(trial.pick_id());
  report.set_outcome(tg::v1::OUTCOME_SUCCESS);
  ASSERT_TRUE(balancer_.Report(report).ok());
  EXPECT_EQ(Health("primary").state(), tg::v1::TargetHealth::STATE_HEALTHY);
  EXPECT_EQ(PickAndReport(tg::v1::OUTCOME_SUCCESS), "primary");
}

TEST_F(ProberTest, FailedTrialAfterAProbeReopensForDoubleTheInterval) {
  Load();
  EjectPrimary();
  ASSERT_EQ(prober_.Tick(), 1u);
  ASSERT_TRUE(probes_.AnswerNext(kHealthy));
  ASSERT_EQ(Health("primary").state(), tg::v1::TargetHealth::STATE_TRIAL);
  EXPECT_EQ(PickAndReport(tg::v1::OUTCOME_CONNECT_ERROR), "primary");
  auto h = Health("primary");
  EXPECT_EQ(h.state(), tg::v1::TargetHealth::STATE_EJECTED);
  EXPECT_EQ(h.ejections(), 2);
  EXPECT_EQ(EjectedUntil("primary"), clock_.NowMs() + 60'000);
  clock_.AdvanceSeconds(1);
  EXPECT_EQ(prober_.Tick(), 1u) << "open again: probed again";
}

TEST_F(ProberTest, AnotherReplicasClaimSkipsTheProbeForAnInterval) {
  Load();
  EjectPrimary();
  store_.DenyClaims(true);
  EXPECT_EQ(prober_.Tick(), 0u);
  EXPECT_EQ(store_.claims().size(), 1u);
  EXPECT_EQ(prober_.Tick(), 0u);
  EXPECT_EQ(store_.claims().size(), 1u) << "not asked again before the interval";
  store_.DenyClaims(false);
  clock_.AdvanceSeconds(1);
  EXPECT_EQ(prober_.Tick(), 1u);
  // The other replica's healthy probe arrives through the shared state.
  ASSERT_TRUE(probes_.AnswerNext(kDown));
}

TEST_F(ProberTest, UnansweredProbeLeavesTheCircuitOpen) {
  Load();
  EjectPrimary();
  ASSERT_EQ(prober_.Tick(), 1u);
  ASSERT_TRUE(probes_.AnswerNext(ProbeOutcome{.answered = false, .error_class = "adapter: 14"}));
  EXPECT_EQ(Health("primary").state(), tg::v1::TargetHealth::STATE_EJECTED);
  EXPECT_EQ(Health("primary").last_probe_result(), "adapter: 14");
}

TEST_F(ProberTest, NoPathOrNoPassiveChecksMeansNoProbes) {
  Load({.threshold = 2, .interval_s = 30, .probe_path = "", .probe_interval_s = 1});
  EjectPrimary();
  EXPECT_EQ(prober_.Tick(), 0u);
  Load({.passive = false, .threshold = 2, .interval_s = 30, .probe_path = "/v1/models"});
  EXPECT_EQ(prober_.Tick(), 0u);
  EXPECT_TRUE(probes_.tasks().empty());
}

TEST_F(ProberTest, DefaultProbeIntervalIsFiveSeconds) {
  Load({.threshold = 2, .interval_s = 30, .probe_path = "/v1/models"});
  EjectPrimary();
  ASSERT_EQ(prober_.Tick(), 1u);
  ASSERT_TRUE(probes_.AnswerNext(kDown));
  clock_.Advance(4'999);
  EXPECT_EQ(prober_.Tick(), 0u);
  clock_.Advance(1);
  EXPECT_EQ(prober_.Tick(), 1u);
  ASSERT_TRUE(probes_.AnswerNext(kDown));
}

TEST_F(ProberTest, CircuitStatesForMetrics) {
  Load();
  EjectPrimary();
  std::map<std::string, std::string> states;
  balancer_.VisitTargets([&](const std::string&, const std::string& t, HealthPhase p) {
    states[t] = CircuitStateName(p);
  });
  EXPECT_EQ(states["primary"], "open");
  EXPECT_EQ(states["backup"], "closed");
  ASSERT_EQ(prober_.Tick(), 1u);
  ASSERT_TRUE(probes_.AnswerNext(kHealthy));
  balancer_.VisitTargets([&](const std::string&, const std::string& t, HealthPhase p) {
    states[t] = CircuitStateName(p);
  });
  EXPECT_EQ(states["primary"], "half_open");
}

TEST_F(ProberTest, StopCancelsProbesInFlight) {
  Load();
  EjectPrimary();
  ASSERT_EQ(prober_.Tick(), 1u);
  prober_.Stop();
  EXPECT_EQ(prober_.in_flight(), 0u);
  EXPECT_EQ(probes_.pending(), 0u);
}

}  // namespace
}  // namespace tg::balancer
