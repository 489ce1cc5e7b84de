// Size: one component's tests (passive health) in one place.
// Passive health: the pure policy, and ejection, trial, backoff and recovery
// through the Balancer on a fake clock.
#include <google/protobuf/util/time_util.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "balancer_fakes.h"
#include "balancer_test_util.h"
#include "tg/balancer/balancer.h"
#include "tg/balancer/health_policy.h"

namespace tg::balancer {
namespace {

using testing::FakeClock;
using testing::FakeHealthStore;
using testing::FakeRandom;
using testing::HealthSpec;
using testing::MakeUpstream;

// ---------------------------------------------------------------- policy

TEST(HealthPolicyTest, ClassifiesOutcomes) {
  EXPECT_EQ(Classify(ReportOutcome::kSuccess, 0), Verdict::kSuccess);
  EXPECT_EQ(Classify(ReportOutcome::kConnectError, 0), Verdict::kFailure);
  EXPECT_EQ(Classify(ReportOutcome::kTimeout, 0), Verdict::kFailure);
  EXPECT_EQ(Classify(ReportOutcome::kHttpStatus, 500), Verdict::kFailure);
  EXPECT_EQ(Classify(ReportOutcome::kHttpStatus, 503), Verdict::kFailure);
  EXPECT_EQ(Classify(ReportOutcome::kHttpStatus, 529), Verdict::kFailure);
  EXPECT_EQ(Classify(ReportOutcome::kHttpStatus, 429), Verdict::kFailure);
  EXPECT_EQ(Classify(ReportOutcome::kHttpStatus, 400), Verdict::kSuccess);
  EXPECT_EQ(Classify(ReportOutcome::kHttpStatus, 401), Verdict::kSuccess);
  EXPECT_EQ(Classify(ReportOutcome::kHttpStatus, 404), Verdict::kSuccess);
  EXPECT_EQ(Classify(ReportOutcome::kHttpStatus, 200), Verdict::kSuccess);
  EXPECT_EQ(Classify(ReportOutcome::kCancelled, 0), Verdict::kNeutral);
  EXPECT_EQ(Classify(ReportOutcome::kUnspecified, 0), Verdict::kNeutral);
}

TEST(HealthPolicyTest, EjectionDurationDoublesUpToTenIntervals) {
  const int64_t i = 60'000;
  EXPECT_EQ(EjectionDuration(1, i), 60'000);
  EXPECT_EQ(EjectionDuration(2, i), 120'000);
  EXPECT_EQ(EjectionDuration(3, i), 240'000);
  EXPECT_EQ(EjectionDuration(4, i), 480'000);
  EXPECT_EQ(EjectionDuration(5, i), 600'000);
  EXPECT_EQ(EjectionDuration(50, i), 600'000);
}

TEST(HealthPolicyTest, ThresholdEjectsTrialDecides) {
  const HealthOptions o{.passive = true, .threshold = 3, .interval_ms = 60'000};
  int64_t now = 1'000'000;
  TargetHealthState s;
  s = ApplyVerdict(s, Verdict::kFailure, now, o);
  s = ApplyVerdict(s, Verdict::kFailure, now, o);
  EXPECT_EQ(s.consecutive_failures, 2);
  EXPECT_FALSE(s.ejected());
  s = ApplyVerdict(s, Verdict::kSuccess, now, o);  // a success resets the count
  EXPECT_EQ(s.consecutive_failures, 0);
  for (int i = 0; i < 3; ++i) s = ApplyVerdict(s, Verdict::kFailure, now, o);
  EXPECT_TRUE(s.ejected());
  EXPECT_EQ(s.ejections, 1);
  EXPECT_EQ(s.ejected_until_ms, now + 60'000);
  EXPECT_EQ(PhaseAt(s, now + 59'999), HealthPhase::kEjected);
  EXPECT_EQ(PhaseAt(s, now + 60'000), HealthPhase::kTrial);
  // A failure during the ejection (a degraded pick) changes nothing.
  EXPECT_TRUE(ApplyVerdict(s, Verdict::kFailure, now + 1000, o).SameAs(s));
  // Failed trials: 120 s, 240 s, 480 s, then 600 s (10 x interval) for good.
  const std::vector<int64_t> sentences = {120'000, 240'000, 480'000, 600'000, 600'000};
  for (int64_t sentence : sentences) {
    now = s.ejected_until_ms;
    s = ApplyVerdict(s, Verdict::kFailure, now, o);
    EXPECT_EQ(s.ejected_until_ms - now, sentence);
  }
  EXPECT_EQ(s.ejections, 6);
  // A successful trial restores everything.
  s = ApplyVerdict(s, Verdict::kSuccess, s.ejected_until_ms, o);
  EXPECT_TRUE(s.SameAs(TargetHealthState{}));
  EXPECT_TRUE(ApplyVerdict(s, Verdict::kNeutral, now, o).SameAs(s));
}

// A healthy probe half-opens an open circuit now, keeping its counters (so
// a failed trial doubles the ejection as after any trial); it closes
// nothing and reopens nothing.
TEST(HealthPolicyTest, HealthyProbeHalfOpensOnlyAnOpenCircuit) {
  const HealthOptions o{.passive = true, .threshold = 2, .interval_ms = 30'000};
  int64_t now = 1'000'000;
  TargetHealthState s;
  EXPECT_TRUE(ApplyVerdict(s, Verdict::kProbeHealthy, now, o).SameAs(s)) << "closed stays closed";
  s = ApplyVerdict(s, Verdict::kFailure, now, o);
  EXPECT_TRUE(ApplyVerdict(s, Verdict::kProbeHealthy, now, o).SameAs(s))
      << "failures below the threshold are not reset by a probe";
  s = ApplyVerdict(s, Verdict::kFailure, now, o);
  ASSERT_EQ(PhaseAt(s, now), HealthPhase::kEjected);
  EXPECT_STREQ(CircuitStateName(PhaseAt(s, now)), "open");

  now += 5'000;  // recovered 5 s into a 30 s ejection
  const TargetHealthState half = ApplyVerdict(s, Verdict::kProbeHealthy, now, o);
  EXPECT_EQ(half.ejected_until_ms, now);
  EXPECT_EQ(half.ejections, 1);
  EXPECT_EQ(half.consecutive_failures, 2);
  EXPECT_EQ(PhaseAt(half, now), HealthPhase::kTrial);
  EXPECT_STREQ(CircuitStateName(PhaseAt(half, now)), "half_open");
  EXPECT_TRUE(ApplyVerdict(half, Verdict::kProbeHealthy, now + 10, o).SameAs(half))
      << "half-open: the trial request decides, not another probe";

  // The trial fails: open again for twice the interval.
  const TargetHealthState reopened = ApplyVerdict(half, Verdict::kFailure, now + 100, o);
  EXPECT_EQ(reopened.ejections, 2);
  EXPECT_EQ(reopened.ejected_until_ms, now + 100 + 60'000);
  // The trial succeeds: closed.
  const TargetHealthState closed = ApplyVerdict(half, Verdict::kSuccess, now + 100, o);
  EXPECT_TRUE(closed.SameAs(TargetHealthState{}));
  EXPECT_STREQ(CircuitStateName(PhaseAt(closed, now)), "closed");
}

TEST(HealthPolicyTest, VersionsGrowWithWritesAndTime) {
  EXPECT_EQ(NextVersion(0, 1000), 1000 * 1024);
  EXPECT_EQ(NextVersion(1000 * 1024, 1000), 1000 * 1024 + 1);  // same millisecond
  EXPECT_EQ(NextVersion(1000 * 1024 + 5, 2000), 2000 * 1024);  // time moved on
}

// ---------------------------------------------------------------- balancer

class BalancerHealthTest : public ::testing::Test {
 protected:
  BalancerHealthTest() : balancer_(&clock_, &random_, &store_, Options()) {
    store_.Start(&balancer_);
  }

  static BalancerOptions Options() {
    BalancerOptions o;
    o.instance_id = 0xabcdef01;
    return o;
  }

  void Load(std::vector<std::shared_ptr<const tg::v1::Upstream>> upstreams, int64_t revision = 1) {
    UpstreamSet set;
    set.revision = revision;
    set.upstreams = std::move(upstreams);
    balancer_.ApplyConfig(set);
  }

  tg::v1::PickResponse Pick(const std::string& upstream, std::vector<std::string> exclude = {},
                            const std::string& model = "") {
    tg::v1::PickRequest req;
    req.set_upstream_id(upstream);
    req.set_model(model);
    for (const auto& e : exclude) req.add_exclude_target_ids(e);
    tg::v1::PickResponse resp;
    grpc::Status st = balancer_.Pick(req, &resp);
    EXPECT_TRUE(st.ok()) << st.error_message();
    return resp;
  }

  void Report(const tg::v1::PickResponse& pick, tg::v1::Outcome outcome, int http = 0) {
    tg::v1::ReportRequest req;
    req.set_pick_id(pick.pick_id());
    req.set_outcome(outcome);
    req.set_http_status(http);
    grpc::Status st = balancer_.Report(req);
    EXPECT_TRUE(st.ok()) << st.error_message();
  }

  // Picks once and reports `outcome` for it.
  std::string PickAndReport(const std::string& upstream, tg::v1::Outcome outcome, int http = 0) {
    auto p = Pick(upstream);
    Report(p, outcome, http);
    return p.target().id();
  }

  tg::v1::TargetHealth Health(const std::string& upstream, const std::string& target) {
    tg::v1::GetHealthRequest req;
    req.set_upstream_id(upstream);
    tg::v1::GetHealthResponse resp;
    EXPECT_TRUE(balancer_.GetHealth(req, &resp).ok());
    for (const auto& t : resp.targets()) {
      if (t.target_id() == target) return t;
    }
    ADD_FAILURE() << "no target " << target;
    return {};
  }

  std::string Sequence(const std::string& upstream, int n) {
    std::string out;
    for (int i = 0; i < n; ++i) {
      if (!out.empty()) out += ",";
      out += PickAndReport(upstream, tg::v1::OUTCOME_SUCCESS);
    }
    return out;
  }

  FakeClock clock_;
  FakeRandom random_;
  FakeHealthStore store_;
  Balancer balancer_;
};

TEST_F(BalancerHealthTest, EjectionTrialBackoffAndRecovery) {
  Load({MakeUpstream("u", "round-robin", {{.id = "a"}, {.id = "b"}},
                     HealthSpec{.threshold = 2, .interval_s = 10})});
  EXPECT_EQ(Sequence("u", 4), "a,b,a,b");

  // a fails twice (503, then a connect error): ejected for 10 s.
  auto p = Pick("u");
  ASSERT_EQ(p.target().id(), "a");
  Report(p, tg::v1::OUTCOME_HTTP_STATUS, 503);
  EXPECT_EQ(Health("u", "a").consecutive_failures(), 1);
  EXPECT_EQ(PickAndReport("u", tg::v1::OUTCOME_SUCCESS), "b");
  p = Pick("u");
  ASSERT_EQ(p.target().id(), "a");
  Report(p, tg::v1::OUTCOME_CONNECT_ERROR);
  auto h = Health("u", "a");
  EXPECT_EQ(h.state(), tg::v1::TargetHealth::STATE_EJECTED);
  EXPECT_EQ(h.consecutive_failures(), 2);
  EXPECT_EQ(h.ejections(), 1);
  EXPECT_EQ(google::protobuf::util::TimeUtil::TimestampToMilliseconds(h.ejected_until()),
            clock_.NowMs() + 10'000);
  EXPECT_EQ(Sequence("u", 3), "b,b,b");

  // Every state change went to the store: 503, connect error.
  ASSERT_EQ(store_.events().size(), 2u);
  EXPECT_EQ(store_.events()[1].verdict, Verdict::kFailure);
  EXPECT_EQ(store_.events()[1].target_id, "a");

  // 10 s later the next pick is a's trial; meanwhile others go to b.
  clock_.AdvanceSeconds(10);
  EXPECT_EQ(Health("u", "a").state(), tg::v1::TargetHealth::STATE_TRIAL);
  auto trial = Pick("u");
  EXPECT_EQ(trial.target().id(), "a");
  EXPECT_EQ(Sequence("u", 2), "b,b");
  // The trial times out: ejected again, twice as long.
  Report(trial, tg::v1::OUTCOME_TIMEOUT);
  h = Health("u", "a");
  EXPECT_EQ(h.state(), tg::v1::TargetHealth::STATE_EJECTED);
  EXPECT_EQ(h.ejections(), 2);
  EXPECT_EQ(google::protobuf::util::TimeUtil::TimestampToMilliseconds(h.ejected_until()),
            clock_.NowMs() + 20'000);

  // Further failed trials: 40 s, 80 s, then the cap of 100 s.
  for (int64_t sentence : {20, 40, 80, 100, 100}) {
    clock_.AdvanceSeconds(sentence - 1);
    EXPECT_EQ(Sequence("u", 1), "b");  // still out a second before
    clock_.AdvanceSeconds(1);
    trial = Pick("u");
    ASSERT_EQ(trial.target().id(), "a");
    Report(trial, tg::v1::OUTCOME_HTTP_STATUS, 500);
  }
  EXPECT_EQ(Health("u", "a").ejections(), 7);

  // A successful trial restores a: rotation resumes.
  clock_.AdvanceSeconds(100);
  trial = Pick("u");
  ASSERT_EQ(trial.target().id(), "a");
  Report(trial, tg::v1::OUTCOME_SUCCESS);
  h = Health("u", "a");
  EXPECT_EQ(h.state(), tg::v1::TargetHealth::STATE_HEALTHY);
  EXPECT_EQ(h.consecutive_failures(), 0);
  EXPECT_EQ(h.ejections(), 0);
  EXPECT_FALSE(h.has_ejected_until());
  const std::string seq = Sequence("u", 4);
  EXPECT_TRUE(seq == "a,b,a,b" || seq == "b,a,b,a") << seq;
}

TEST_F(BalancerHealthTest, OnlyServerErrorsTimeoutsAndThrottlingCount) {
  Load({MakeUpstream("u", "round-robin", {{.id = "a"}},
                     HealthSpec{.threshold = 2, .interval_s = 10})});
  for (int status : {400, 401, 403, 404, 422}) {
    PickAndReport("u", tg::v1::OUTCOME_HTTP_STATUS, status);
    EXPECT_EQ(Health("u", "a").consecutive_failures(), 0) << status;
  }
  PickAndReport("u", tg::v1::OUTCOME_HTTP_STATUS, 429);
  EXPECT_EQ(Health("u", "a").consecutive_failures(), 1);
  PickAndReport("u", tg::v1::OUTCOME_CANCELLED);  // neither
  EXPECT_EQ(Health("u", "a").consecutive_failures(), 1);
  PickAndReport("u", tg::v1::OUTCOME_HTTP_STATUS, 404);  // the target answered: reset
  EXPECT_EQ(Health("u", "a").consecutive_failures(), 0);
  // Successes on a healthy target never reach the store (steady state).
  const size_t events = store_.events().size();
  for (int i = 0; i < 10; ++i) PickAndReport("u", tg::v1::OUTCOME_SUCCESS);
  EXPECT_EQ(store_.events().size(), events);
}

TEST_F(BalancerHealthTest, CancelledTrialLeavesTheTrialOpen) {
  Load({MakeUpstream("u", "round-robin", {{.id = "a"}, {.id = "b"}},
                     HealthSpec{.threshold = 1, .interval_s = 5})});
  auto p = Pick("u");
  ASSERT_EQ(p.target().id(), "a");
  Report(p, tg::v1::OUTCOME_TIMEOUT);
  clock_.AdvanceSeconds(5);
  auto trial = Pick("u");
  ASSERT_EQ(trial.target().id(), "a");
  Report(trial, tg::v1::OUTCOME_CANCELLED);
  EXPECT_EQ(Health("u", "a").state(), tg::v1::TargetHealth::STATE_TRIAL);
  EXPECT_EQ(Pick("u").target().id(), "a");  // the next pick is the trial again
}

TEST_F(BalancerHealthTest, UnreportedTrialIsReleasedAfterThePickTimeout) {
  Load({MakeUpstream("u", "round-robin", {{.id = "a"}, {.id = "b"}},
                     HealthSpec{.threshold = 1, .interval_s = 5})});
  Report(Pick("u"), tg::v1::OUTCOME_TIMEOUT);  // a ejected
  clock_.AdvanceSeconds(5);
  ASSERT_EQ(Pick("u").target().id(), "a");  // the trial, never reported
  EXPECT_EQ(Pick("u").target().id(), "b");
  EXPECT_EQ(Health("u", "a").in_flight(), 1);
  clock_.AdvanceSeconds(299);
  EXPECT_EQ(balancer_.ReleaseExpiredPicks(), 0u);
  clock_.AdvanceSeconds(1);
  EXPECT_EQ(balancer_.ReleaseExpiredPicks(), 2u);
  EXPECT_EQ(Health("u", "a").in_flight(), 0);
  EXPECT_EQ(Health("u", "b").in_flight(), 0);
  EXPECT_EQ(Pick("u").target().id(), "a");  // a trial again
}

TEST_F(BalancerHealthTest, PriorityFailoverAndReturn) {
  Load({MakeUpstream("u", "weighted",
                     {{.id = "primary", .priority = 1}, {.id = "backup", .priority = 2}},
                     HealthSpec{.threshold = 1, .interval_s = 30})});
  EXPECT_EQ(Sequence("u", 2), "primary,primary");
  // The request fails on primary and retries excluding it: backup.
  auto first = Pick("u");
  Report(first, tg::v1::OUTCOME_HTTP_STATUS, 502);
  auto retry = Pick("u", {"primary"});
  EXPECT_EQ(retry.target().id(), "backup");
  EXPECT_FALSE(retry.degraded());
  Report(retry, tg::v1::OUTCOME_SUCCESS);
  // primary is ejected: everything goes to backup.
  EXPECT_EQ(Sequence("u", 3), "backup,backup,backup");
  // After 30 s a trial succeeds and traffic returns.
  clock_.AdvanceSeconds(30);
  EXPECT_EQ(Sequence("u", 3), "primary,primary,primary");
}

TEST_F(BalancerHealthTest, EveryTargetEjectedAnswersDegraded) {
  Load({MakeUpstream("u", "round-robin", {{.id = "a", .priority = 1}, {.id = "b", .priority = 2}},
                     HealthSpec{.threshold = 1, .interval_s = 30})});
  Report(Pick("u"), tg::v1::OUTCOME_TIMEOUT);         // a
  Report(Pick("u", {"a"}), tg::v1::OUTCOME_TIMEOUT);  // b
  auto p = Pick("u");
  EXPECT_EQ(p.target().id(), "a");  // best priority first
  EXPECT_TRUE(p.degraded());
  // A failure of a degraded pick does not lengthen the ejection...
  const auto until = Health("u", "a").ejected_until();
  Report(p, tg::v1::OUTCOME_TIMEOUT);
  EXPECT_EQ(Health("u", "a").ejected_until(), until);
  // ...and a success restores the target.
  p = Pick("u");
  EXPECT_TRUE(p.degraded());
  Report(p, tg::v1::OUTCOME_SUCCESS);
  EXPECT_EQ(Health("u", p.target().id()).state(), tg::v1::TargetHealth::STATE_HEALTHY);
  EXPECT_FALSE(Pick("u").degraded());
}

TEST_F(BalancerHealthTest, WithoutPassiveChecksNothingIsEjected) {
  Load({MakeUpstream("u", "round-robin", {{.id = "a"}, {.id = "b"}},
                     HealthSpec{.passive = false, .threshold = 1, .interval_s = 10})});
  for (int i = 0; i < 10; ++i) PickAndReport("u", tg::v1::OUTCOME_CONNECT_ERROR);
  EXPECT_EQ(Health("u", "a").state(), tg::v1::TargetHealth::STATE_HEALTHY);
  EXPECT_EQ(Sequence("u", 2), "a,b");
  EXPECT_TRUE(store_.events().empty());
  EXPECT_TRUE(store_.followed().empty());
}

TEST_F(BalancerHealthTest, DefaultsApplyWhenHealthChecksLeaveThemUnset) {
  auto u = std::const_pointer_cast<tg::v1::Upstream>(
      MakeUpstream("u", "round-robin", {{.id = "a"}, {.id = "b"}}));
  u->mutable_health_checks()->set_passive(true);  // threshold 3, interval 60 s by default
  Load({u});
  for (int i = 0; i < 2; ++i) Report(Pick("u", {"b"}), tg::v1::OUTCOME_TIMEOUT);
  EXPECT_EQ(Health("u", "a").state(), tg::v1::TargetHealth::STATE_HEALTHY);
  Report(Pick("u", {"b"}), tg::v1::OUTCOME_TIMEOUT);
  auto h = Health("u", "a");
  EXPECT_EQ(h.state(), tg::v1::TargetHealth::STATE_EJECTED);
  EXPECT_EQ(google::protobuf::util::TimeUtil::TimestampToMilliseconds(h.ejected_until()),
            clock_.NowMs() + 60'000);
  ASSERT_EQ(store_.followed().size(), 2u);
  EXPECT_EQ(store_.followed()[0].interval_ms, 60'000);
}

TEST_F(BalancerHealthTest, SharedStateFromAnotherReplicaIsAdoptedByVersion) {
  Load({MakeUpstream("u", "round-robin", {{.id = "a"}, {.id = "b"}},
                     HealthSpec{.threshold = 3, .interval_s = 10})});
  TargetHealthState ejected;
  ejected.consecutive_failures = 3;
  ejected.ejections = 1;
  ejected.ejected_until_ms = clock_.NowMs() + 10'000;
  ejected.version = NextVersion(0, clock_.NowMs());
  store_.sink()->OnSharedState("u", "a", ejected);
  EXPECT_EQ(Health("u", "a").state(), tg::v1::TargetHealth::STATE_EJECTED);
  EXPECT_EQ(Sequence("u", 2), "b,b");
  // An older state (a message overtaken by a newer one) is ignored.
  TargetHealthState stale;
  stale.version = ejected.version - 1;
  store_.sink()->OnSharedState("u", "a", stale);
  EXPECT_EQ(Health("u", "a").state(), tg::v1::TargetHealth::STATE_EJECTED);
  // A newer healthy state restores it; unknown targets are ignored.
  TargetHealthState healthy;
  healthy.version = ejected.version + 1;
  store_.sink()->OnSharedState("u", "a", healthy);
  store_.sink()->OnSharedState("u", "zzz", healthy);
  store_.sink()->OnSharedState("zzz", "a", healthy);
  EXPECT_EQ(Health("u", "a").state(), tg::v1::TargetHealth::STATE_HEALTHY);
  EXPECT_EQ(store_.sink()->LocalState("u", "a")->version, healthy.version);
  EXPECT_FALSE(store_.sink()->LocalState("u", "zzz").has_value());
}

// Lookaside balancing: what WatchHealth streams to the edges follows every
// source of health, another replica's decision (through Redis) included.
TEST_F(BalancerHealthTest, VerdictsFollowReportsAndOtherReplicas) {
  Load({MakeUpstream("u", "round-robin", {{.id = "a"}, {.id = "b"}},
                     HealthSpec{.threshold = 2, .interval_s = 10}),
        MakeUpstream("plain", "round-robin", {{.id = "c"}})});
  int wakes = 0;
  balancer_.SetHealthListener([&] { ++wakes; });
  auto verdicts = [&] {
    tg::v1::HealthVerdicts v;
    balancer_.CollectVerdicts(&v);
    return v;
  };
  EXPECT_EQ(verdicts().targets_size(), 0);
  // A first failure: listed with its count, not ejected.
  Report(Pick("u", {"b"}), tg::v1::OUTCOME_TIMEOUT);
  EXPECT_EQ(wakes, 1);
  auto v = verdicts();
  ASSERT_EQ(v.targets_size(), 1);
  EXPECT_EQ(v.targets(0).consecutive_failures(), 1);
  EXPECT_FALSE(v.targets(0).has_ejected_until());
  // A second failure at the same target ejects it (threshold 2).
  const int before = wakes;
  Report(Pick("u", {"b"}), tg::v1::OUTCOME_TIMEOUT);
  EXPECT_GT(wakes, before);
  v = verdicts();
  ASSERT_EQ(v.targets_size(), 1);
  EXPECT_EQ(google::protobuf::util::TimeUtil::TimestampToMilliseconds(v.targets(0).ejected_until()),
            clock_.NowMs() + 10'000);
  // Another replica restores it (Redis): the verdict goes.
  const int before_shared = wakes;
  TargetHealthState healthy;
  healthy.version = store_.sink()->LocalState("u", "a")->version + 1;
  store_.sink()->OnSharedState("u", "a", healthy);
  EXPECT_GT(wakes, before_shared);
  EXPECT_EQ(verdicts().targets_size(), 0);
  // Another replica counts a first failure at b: listed, so that the edges
  // report b's next success (which resets it).
  TargetHealthState one;
  one.consecutive_failures = 1;
  one.version = NextVersion(0, clock_.NowMs());
  store_.sink()->OnSharedState("u", "b", one);
  v = verdicts();
  ASSERT_EQ(v.targets_size(), 1);
  EXPECT_EQ(v.targets(0).target_id(), "b");
  // Failures on an upstream without passive checks are no verdicts.
  Report(Pick("plain"), tg::v1::OUTCOME_TIMEOUT);
  EXPECT_EQ(verdicts().targets_size(), 1);
  balancer_.SetHealthListener(nullptr);
}

TEST_F(BalancerHealthTest, StoreDegradationShowsInGetHealth) {
  Load({MakeUpstream("u", "round-robin", {{.id = "a"}}, HealthSpec{})});
  store_.SetStatus({.degraded = true, .reason = "Redis subscriber: Connection refused"});
  tg::v1::GetHealthRequest req;
  req.set_upstream_id("u");
  tg::v1::GetHealthResponse resp;
  ASSERT_TRUE(balancer_.GetHealth(req, &resp).ok());
  EXPECT_TRUE(resp.degraded());
  EXPECT_EQ(resp.degraded_reason(), "Redis subscriber: Connection refused");
  // Picks go on regardless.
  EXPECT_EQ(Pick("u").target().id(), "a");
}

TEST_F(BalancerHealthTest, ConfigChangeKeepsHealthAndInFlightByTargetId) {
  Load({MakeUpstream("u", "round-robin", {{.id = "a"}, {.id = "b"}},
                     HealthSpec{.threshold = 1, .interval_s = 10})});
  Report(Pick("u"), tg::v1::OUTCOME_TIMEOUT);  // a ejected
  auto held = Pick("u");                       // b, in flight
  ASSERT_EQ(held.target().id(), "b");
  // b gets a weight, c joins: a stays ejected, b keeps its in-flight pick.
  Load({MakeUpstream("u", "round-robin", {{.id = "a"}, {.id = "b", .weight = 3}, {.id = "c"}},
                     HealthSpec{.threshold = 1, .interval_s = 10})},
       2);
  EXPECT_EQ(balancer_.revision(), 2);
  EXPECT_EQ(Health("u", "a").state(), tg::v1::TargetHealth::STATE_EJECTED);
  EXPECT_EQ(Health("u", "b").in_flight(), 1);
  Report(held, tg::v1::OUTCOME_SUCCESS);
  EXPECT_EQ(Health("u", "b").in_flight(), 0);
  EXPECT_EQ(Sequence("u", 4), "b,b,c,b");
  // An unchanged config keeps the plan (and its round-robin position).
  auto plan = balancer_.PlanOf("u");
  Load({MakeUpstream("u", "round-robin", {{.id = "a"}, {.id = "b", .weight = 3}, {.id = "c"}},
                     HealthSpec{.threshold = 1, .interval_s = 10})},
       3);
  EXPECT_EQ(balancer_.PlanOf("u"), plan);
  // Deleting the upstream: NOT_FOUND.
  Load({}, 4);
  tg::v1::PickRequest req;
  req.set_upstream_id("u");
  tg::v1::PickResponse resp;
  EXPECT_EQ(balancer_.Pick(req, &resp).error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(BalancerHealthTest, LeastConnectionsCountsFromPickToReport) {
  Load({MakeUpstream("u", "least-conn", {{.id = "a"}, {.id = "b"}}, HealthSpec{})});
  random_.Script(std::vector<uint64_t>(16, 0));
  auto p1 = Pick("u");  // tie: a
  auto p2 = Pick("u");  // b
  auto p3 = Pick("u");  // tie: a
  EXPECT_EQ(p1.target().id(), "a");
  EXPECT_EQ(p2.target().id(), "b");
  EXPECT_EQ(p3.target().id(), "a");
  EXPECT_EQ(Health("u", "a").in_flight(), 2);
  Report(p1, tg::v1::OUTCOME_SUCCESS);
  Report(p3, tg::v1::OUTCOME_SUCCESS);
  EXPECT_EQ(Health("u", "a").in_flight(), 0);
  EXPECT_EQ(Pick("u").target().id(), "a");  // a idle, b busy
  EXPECT_EQ(Pick("u").target().id(), "a");  // tie 1:1: a (rank 0)
}

TEST_F(BalancerHealthTest, StatusCodes) {
  tg::v1::PickRequest req;
  tg::v1::PickResponse resp;
  req.set_upstream_id("u");
  EXPECT_EQ(balancer_.Pick(req, &resp).error_code(), grpc::StatusCode::UNAVAILABLE);  // no config
  Load({MakeUpstream("u", "round-robin", {{.id = "a", .models = {"m1"}}})}, 5);
  req.set_min_config_revision(6);
  EXPECT_EQ(balancer_.Pick(req, &resp).error_code(), grpc::StatusCode::UNAVAILABLE);
  req.set_min_config_revision(5);
  req.set_model("m2");
  EXPECT_EQ(balancer_.Pick(req, &resp).error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  req.set_model("m1");
  req.add_exclude_target_ids("a");
  EXPECT_EQ(balancer_.Pick(req, &resp).error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  req.set_upstream_id("nope");
  EXPECT_EQ(balancer_.Pick(req, &resp).error_code(), grpc::StatusCode::NOT_FOUND);
  req.set_upstream_id("");
  EXPECT_EQ(balancer_.Pick(req, &resp).error_code(), grpc::StatusCode::INVALID_ARGUMENT);

  tg::v1::ReportRequest rep;
  EXPECT_EQ(balancer_.Report(rep).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  rep.set_outcome(tg::v1::OUTCOME_SUCCESS);
  EXPECT_EQ(balancer_.Report(rep).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  rep.set_upstream_id("u");
  rep.set_target_id("a");
  EXPECT_TRUE(balancer_.Report(rep).ok());  // without a pick id: health only
  rep.set_outcome(tg::v1::OUTCOME_HTTP_STATUS);
  rep.set_http_status(42);
  EXPECT_EQ(balancer_.Report(rep).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  rep.set_http_status(503);
  rep.set_upstream_id("gone");  // stale reports are fine
  EXPECT_TRUE(balancer_.Report(rep).ok());

  tg::v1::GetHealthRequest hreq;
  hreq.set_upstream_id("nope");
  tg::v1::GetHealthResponse hresp;
  EXPECT_EQ(balancer_.GetHealth(hreq, &hresp).error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(BalancerHealthTest, SeedGpt4OnAnthropicBecomesClaude3Sonnet) {
  Load({MakeUpstream("u", "round-robin",
                     {{.id = "openai",
                       .weight = 50,
                       .priority = 1,
                       .default_model = "gpt-4",
                       .models = {"gpt-3.5-turbo", "gpt-4"}},
                      {.id = "anthropic",
                       .weight = 50,
                       .priority = 1,
                       .default_model = "claude-3-sonnet",
                       .models = {"claude-3-sonnet"},
                       .provider = "anthropic"}},
                     HealthSpec{})});
  auto a = Pick("u", {}, "gpt-4");
  auto b = Pick("u", {}, "gpt-4");
  EXPECT_EQ(a.target().id(), "openai");
  EXPECT_EQ(a.effective_model(), "gpt-4");
  EXPECT_EQ(b.target().id(), "anthropic");
  EXPECT_EQ(b.target().provider(), "anthropic");
  EXPECT_EQ(b.effective_model(), "claude-3-sonnet");
  // Credentials never leave the balancer.
  EXPECT_FALSE(b.target().has_credentials());
  EXPECT_EQ(b.pick_id().substr(0, 8), "abcdef01");
}

}  // namespace
}  // namespace tg::balancer
