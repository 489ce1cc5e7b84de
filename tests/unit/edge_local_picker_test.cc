// LocalPicker: the edge's own picks from its config snapshot and
// tg-balancer's streamed verdicts (lookaside balancing).
#include <google/protobuf/util/time_util.h>
#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "tg/common/clock.h"
#include "tg/edge/local_picker.h"

namespace tg::edge {
namespace {

using balancer::PickQuery;
using balancer::PickStatus;
using balancer::Verdict;

// Deterministic: always the first value of the range.
class ZeroRandom final : public balancer::Random {
 public:
  uint64_t Uniform(uint64_t) override { return 0; }
};

constexpr int64_t kNow = 1'700'000'000'000;

ConfigSnapshot::Ptr<tg::v1::Upstream> Upstream(std::string algorithm, bool passive,
                                               std::vector<std::pair<std::string, int>> targets) {
  auto u = std::make_shared<tg::v1::Upstream>();
  u->set_id("u1");
  u->set_algorithm(std::move(algorithm));
  u->mutable_health_checks()->set_passive(passive);
  for (auto& [id, priority] : targets) {
    auto* t = u->add_targets();
    t->set_id(id);
    t->set_provider("openai");
    t->set_priority(priority);
  }
  return u;
}

tg::v1::HealthVerdicts Verdicts(std::map<std::string, int64_t> ejected_until) {
  tg::v1::HealthVerdicts v;
  for (auto& [target, until] : ejected_until) {
    auto* e = v.add_targets();
    e->set_upstream_id("u1");
    e->set_target_id(target);
    *e->mutable_ejected_until() = google::protobuf::util::TimeUtil::MillisecondsToTimestamp(until);
    e->set_ejections(1);
  }
  return v;
}

class LocalPickerTest : public ::testing::Test {
 protected:
  LocalPicker::Choice Pick(const ConfigSnapshot::Ptr<tg::v1::Upstream>& u,
                           std::vector<std::string_view> exclude = {}, int64_t revision = 1) {
    exclude_ = std::move(exclude);
    return picker_.Pick(u, revision, PickQuery{"", exclude_, 0});
  }
  // n picks released at once, as "a,b,a,…".
  std::string Sequence(const ConfigSnapshot::Ptr<tg::v1::Upstream>& u, int n) {
    std::string out;
    for (int i = 0; i < n; ++i) {
      auto c = Pick(u);
      if (!c.ok()) return out + "!";
      out += (out.empty() ? "" : ",") + c.target().id();
      c.Release(Verdict::kSuccess);
    }
    return out;
  }

  ManualClock clock_{std::chrono::system_clock::time_point(std::chrono::milliseconds(kNow))};
  ZeroRandom random_;
  LocalPicker picker_{&clock_, &random_};
  std::vector<std::string_view> exclude_;
};

TEST_F(LocalPickerTest, PicksByPriorityAndRoundRobinWithoutVerdicts) {
  auto u = Upstream("round-robin", true, {{"a", 1}, {"b", 1}, {"c", 2}});
  EXPECT_EQ(Sequence(u, 4), "a,b,a,b");
  auto first = Pick(u, {"a", "b"});
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first.target().id(), "c");  // the next priority once the first group was tried
  EXPECT_EQ(Pick(u, {"a", "b", "c"}).status(), PickStatus::kAllExcluded);
}

TEST_F(LocalPickerTest, AnEjectedTargetIsSkippedUntilItsVerdictIsLifted) {
  auto u = Upstream("round-robin", true, {{"a", 1}, {"b", 1}});
  EXPECT_EQ(Sequence(u, 1), "a");
  picker_.SetVerdicts(Verdicts({{"a", kNow + 60'000}}));
  EXPECT_EQ(Sequence(u, 3), "b,b,b");
  picker_.SetVerdicts(Verdicts({}));
  EXPECT_EQ(Sequence(u, 2), "a,b");
  EXPECT_EQ(picker_.verdict_updates(), 2u);
}

TEST_F(LocalPickerTest, VerdictsAreIgnoredWithoutPassiveHealthChecks) {
  auto u = Upstream("round-robin", false, {{"a", 1}, {"b", 1}});
  picker_.SetVerdicts(Verdicts({{"a", kNow + 60'000}}));
  EXPECT_EQ(Sequence(u, 2), "a,b");
}

TEST_F(LocalPickerTest, EveryTargetEjectedStillAnswersDegraded) {
  auto u = Upstream("round-robin", true, {{"a", 1}, {"b", 2}});
  picker_.SetVerdicts(Verdicts({{"a", kNow + 60'000}, {"b", kNow + 60'000}}));
  auto c = Pick(u);
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(c.degraded());
  EXPECT_EQ(c.target().id(), "a");  // best priority first
}

TEST_F(LocalPickerTest, OneTrialAtATimeAndAFailedTrialHoldsTheTarget) {
  auto u = Upstream("round-robin", true, {{"a", 1}, {"b", 1}});
  picker_.SetVerdicts(Verdicts({{"a", kNow - 1}}));  // ejection over: trial due
  auto trial = Pick(u);
  ASSERT_TRUE(trial.ok());
  EXPECT_EQ(trial.target().id(), "a");
  EXPECT_TRUE(trial.trial());
  // While the trial is out, others go to b.
  EXPECT_EQ(Sequence(u, 2), "b,b");
  trial.Release(Verdict::kFailure);
  // tg-balancer has not answered yet: no second trial here for the hold.
  EXPECT_EQ(Sequence(u, 2), "b,b");
  clock_.Advance(std::chrono::milliseconds(LocalPicker::kTrialHoldMs));
  auto again = Pick(u);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again.target().id(), "a");
  EXPECT_TRUE(again.trial());
  again.Release(Verdict::kSuccess);
  // tg-balancer restores it: plain rotation again.
  picker_.SetVerdicts(Verdicts({}));
  EXPECT_EQ(Sequence(u, 2), "a,b");
}

TEST_F(LocalPickerTest, ANewVerdictReplacesTheHoldOfAFailedTrial) {
  auto u = Upstream("round-robin", true, {{"a", 1}, {"b", 1}});
  picker_.SetVerdicts(Verdicts({{"a", kNow - 1}}));
  auto trial = Pick(u);
  ASSERT_TRUE(trial.trial());
  trial.Release(Verdict::kFailure);
  // The re-ejection tg-balancer decided from the report.
  picker_.SetVerdicts(Verdicts({{"a", kNow + 120'000}}));
  clock_.Advance(std::chrono::milliseconds(LocalPicker::kTrialHoldMs));
  EXPECT_EQ(Sequence(u, 2), "b,b");  // still ejected: its verdict, not the hold, decides
  clock_.Advance(std::chrono::milliseconds(120'000));
  auto next = Pick(u);
  EXPECT_TRUE(next.trial());
}

TEST_F(LocalPickerTest, ThresholdFailuresHereHoldATargetUntilTheVerdictComes) {
  auto u = Upstream("round-robin", true, {{"a", 1}, {"b", 2}});
  u = [&] {
    auto copy = std::make_shared<tg::v1::Upstream>(*u);
    copy->mutable_health_checks()->set_threshold(2);
    return ConfigSnapshot::Ptr<tg::v1::Upstream>(copy);
  }();
  auto fail = [&] {
    auto c = Pick(u);
    EXPECT_EQ(c.target().id(), "a");
    c.Release(Verdict::kFailure);
  };
  fail();
  fail();  // the threshold: held here before tg-balancer's verdict arrives
  EXPECT_EQ(Sequence(u, 2), "b,b");
  // tg-balancer still counting (its first failure listed): the hold stays.
  tg::v1::HealthVerdicts counting;
  auto* t = counting.add_targets();
  t->set_upstream_id("u1");
  t->set_target_id("a");
  t->set_consecutive_failures(1);
  picker_.SetVerdicts(counting);
  EXPECT_EQ(Sequence(u, 1), "b");
  // Verdicts about other targets change nothing for it either.
  t = counting.add_targets();
  t->set_upstream_id("u1");
  t->set_target_id("b");
  t->set_consecutive_failures(1);
  picker_.SetVerdicts(counting);
  EXPECT_EQ(Sequence(u, 1), "b");
  // tg-balancer did not eject it (another edge's success reset its count):
  // the verdict that no longer lists it lifts the hold.
  picker_.SetVerdicts(Verdicts({{"zzz", kNow + 1000}}));
  EXPECT_EQ(Sequence(u, 1), "a");
  // Without a verdict the hold ends in a trial, whose success ends it.
  fail();
  fail();
  EXPECT_EQ(Sequence(u, 1), "b");
  clock_.Advance(std::chrono::milliseconds(LocalPicker::kTrialHoldMs));
  auto trial = Pick(u);
  EXPECT_TRUE(trial.trial());
  trial.Release(Verdict::kSuccess);
  EXPECT_EQ(Sequence(u, 2), "a,a");
  // A success in between resets the count.
  fail();
  EXPECT_EQ(Sequence(u, 1), "a");
  fail();
  EXPECT_EQ(Sequence(u, 1), "a");
}

TEST_F(LocalPickerTest, OnlyOutcomesThatChangeHealthAreForTgBalancer) {
  auto u = Upstream("round-robin", true, {{"a", 1}, {"b", 2}});
  auto release = [&](Verdict v) { return Pick(u).Release(v); };
  EXPECT_FALSE(release(Verdict::kSuccess)) << "a healthy target's success changes nothing";
  EXPECT_FALSE(release(Verdict::kNeutral));
  EXPECT_TRUE(release(Verdict::kFailure));
  EXPECT_TRUE(release(Verdict::kSuccess)) << "this edge saw it fail: the count must be reset";
  EXPECT_FALSE(release(Verdict::kSuccess));
  // tg-balancer counts failures for it (another edge's).
  tg::v1::HealthVerdicts v;
  auto* t = v.add_targets();
  t->set_upstream_id("u1");
  t->set_target_id("a");
  t->set_consecutive_failures(2);
  picker_.SetVerdicts(v);
  EXPECT_TRUE(release(Verdict::kSuccess));
  // A trial's success restores the target: reported.
  picker_.SetVerdicts(Verdicts({{"a", kNow - 1}}));
  auto trial = Pick(u);
  ASSERT_TRUE(trial.trial());
  EXPECT_TRUE(trial.Release(Verdict::kSuccess));
  EXPECT_FALSE(trial.Release(Verdict::kSuccess)) << "released once";
  // Without passive checks only failures (GetHealth's last_error).
  auto plain = Upstream("round-robin", false, {{"a", 1}});
  EXPECT_FALSE(Pick(plain).Release(Verdict::kSuccess));
  EXPECT_TRUE(Pick(plain).Release(Verdict::kFailure));
  EXPECT_FALSE(Pick(plain).Release(Verdict::kSuccess));
}

TEST_F(LocalPickerTest, WithoutPassiveChecksFailuresHoldNothing) {
  auto u = Upstream("round-robin", false, {{"a", 1}, {"b", 2}});
  for (int i = 0; i < 5; ++i) {
    auto c = Pick(u);
    EXPECT_EQ(c.target().id(), "a");
    c.Release(Verdict::kFailure);
  }
}

TEST_F(LocalPickerTest, LeastConnectionsCountsThisEdgesRequestsAcrossRebuilds) {
  auto u = Upstream("least-connections", true, {{"a", 1}, {"b", 1}});
  auto first = Pick(u);
  ASSERT_TRUE(first.ok());
  const std::string busy = first.target().id();
  // A verdict about nothing in particular rebuilds the plan; the count stays.
  picker_.SetVerdicts(Verdicts({{"zzz", kNow + 1000}}));
  auto u2 = Upstream("least-connections", true, {{"a", 1}, {"b", 1}});  // a config change
  for (int i = 0; i < 3; ++i) {
    auto c = picker_.Pick(u2, 2, PickQuery{});
    ASSERT_TRUE(c.ok());
    EXPECT_NE(c.target().id(), busy) << i;  // the other one is idle
    c.Release(Verdict::kSuccess);
  }
  first.Release(Verdict::kSuccess);
  auto plan = picker_.PlanOf("u1");
  ASSERT_NE(plan, nullptr);
  for (uint32_t i = 0; i < plan->targets().size(); ++i) EXPECT_EQ(plan->in_flight(i), 0);
}

TEST_F(LocalPickerTest, ADestroyedChoiceGivesItsSlotBack) {
  auto u = Upstream("least-connections", true, {{"a", 1}});
  { auto c = Pick(u); }
  auto plan = picker_.PlanOf("u1");
  ASSERT_NE(plan, nullptr);
  EXPECT_EQ(plan->in_flight(0), 0);
}

TEST_F(LocalPickerTest, AnOlderSnapshotGetsItsOwnPlanWithoutReplacingTheNewer) {
  auto old_config = Upstream("round-robin", true, {{"a", 1}});
  auto new_config = Upstream("round-robin", true, {{"b", 1}});
  ASSERT_EQ(picker_.Pick(new_config, 5, PickQuery{}).target().id(), "b");
  auto old_pick = picker_.Pick(old_config, 4, PickQuery{});
  ASSERT_TRUE(old_pick.ok());
  EXPECT_EQ(old_pick.target().id(), "a");  // what its own snapshot routes by
  EXPECT_EQ(picker_.PlanOf("u1")->targets()[0].id, "b");
}

TEST_F(LocalPickerTest, ModelsAndUnknownModelsAsTgBalancerPicks) {
  auto u = std::make_shared<tg::v1::Upstream>();
  u->set_id("u1");
  auto* t = u->add_targets();
  t->set_id("claude");
  t->add_models("claude-3");
  auto c = picker_.Pick(u, 1, PickQuery{"claude-3"});
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c.effective_model(), "claude-3");
  EXPECT_EQ(picker_.Pick(u, 1, PickQuery{"gpt-4"}).status(), PickStatus::kNoEligibleTarget);
}

}  // namespace
}  // namespace tg::edge
