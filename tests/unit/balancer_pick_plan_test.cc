// PickPlan: priority groups, exclusion, model eligibility, degraded picks,
// trials, and the algorithms as an upstream uses them.
#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "balancer_fakes.h"
#include "tg/balancer/pick_plan.h"

namespace tg::balancer {
namespace {

using testing::FakeRandom;

PlanTarget T(std::string id, int32_t weight = 1, int32_t priority = 1) {
  PlanTarget t;
  t.id = std::move(id);
  t.weight = weight;
  t.priority = priority;
  return t;
}

PlanTarget Ejected(PlanTarget t, int64_t until_ms) {
  t.ejected = true;
  t.ejected_until_ms = until_ms;
  return t;
}

constexpr int64_t kNow = 1'000'000;

struct Picker {
  explicit Picker(PickPlan& p, uint64_t seed = 42) : plan(p), random(seed) {}

  PickPlan& plan;
  FakeRandom random;
  std::vector<std::string_view> exclude;

  PickChoice Pick(std::string_view model = "", int64_t now = kNow) {
    return plan.Pick(PickQuery{model, exclude, now}, random);
  }
  std::string Id(const PickChoice& c) { return plan.targets()[c.target].id; }
  // n picks, each released at once (no load builds up).
  std::string Sequence(int n, std::string_view model = "") {
    std::string out;
    for (int i = 0; i < n; ++i) {
      PickChoice c = Pick(model);
      EXPECT_EQ(c.status, PickStatus::kOk);
      if (c.status != PickStatus::kOk) break;
      if (!out.empty()) out += ",";
      out += Id(c);
      plan.Release(c.target, c.trial);
    }
    return out;
  }
};

TEST(PickPlanTest, WeightedRoundRobinSequence) {
  PickPlan plan(Algorithm::kWeightedRoundRobin, {T("a", 5), T("b", 1), T("c", 1)});
  Picker p(plan);
  EXPECT_EQ(p.Sequence(7), "a,a,b,a,c,a,a");
}

// A retry of the target that just failed (PickRequest.prefer_target_id) gets
// it back while it is healthy; an ejected, excluded or ineligible one is not
// forced: the algorithm picks as usual.
TEST(PickPlanTest, APreferredTargetIsPickedOnlyWhileHealthyAndEligible) {
  PickPlan plan(Algorithm::kRoundRobin, {T("a", 1, 1), T("b", 1, 1), T("backup", 1, 2),
                                         Ejected(T("sick", 1, 1), kNow + 5000)});
  FakeRandom random(1);
  auto pick = [&](std::string_view prefer, std::vector<std::string_view> exclude = {}) {
    PickChoice c = plan.Pick(PickQuery{"", exclude, kNow, prefer}, random);
    EXPECT_EQ(c.status, PickStatus::kOk);
    std::string id = plan.targets()[c.target].id;
    plan.Release(c.target, c.trial);
    return id;
  };
  for (int i = 0; i < 4; ++i) EXPECT_EQ(pick("b"), "b");
  EXPECT_EQ(pick("backup"), "backup") << "priority does not override a retry";
  EXPECT_NE(pick("sick"), "sick") << "ejected: not retried";
  EXPECT_NE(pick("b", {"b"}), "b") << "excluded: not retried";
  EXPECT_NE(pick("unknown"), "unknown");
}

// A prompt over one model's context: targets whose effective model is
// excluded are skipped, whichever their priority.
TEST(PickPlanTest, ExcludedModelsAreNeverPicked) {
  PlanTarget a = T("a", 1, 1), b = T("b", 1, 1), big = T("big", 1, 2);
  a.default_model = "gpt-4";
  b.default_model = "gpt-4";
  big.default_model = "claude";
  PickPlan plan(Algorithm::kRoundRobin, {a, b, big});
  FakeRandom random(1);
  std::vector<std::string_view> models = {"gpt-4"};
  for (int i = 0; i < 3; ++i) {
    PickChoice c = plan.Pick(PickQuery{"", {}, kNow, "", models}, random);
    ASSERT_EQ(c.status, PickStatus::kOk);
    EXPECT_EQ(plan.targets()[c.target].id, "big");
    EXPECT_EQ(c.effective_model, "claude");
    plan.Release(c.target, c.trial);
  }
  std::vector<std::string_view> all = {"gpt-4", "claude"};
  EXPECT_EQ(plan.Pick(PickQuery{"", {}, kNow, "", all}, random).status, PickStatus::kAllExcluded);
}

TEST(PickPlanTest, RoundRobinRotatesEqualWeights) {
  PickPlan plan(Algorithm::kRoundRobin, {T("a"), T("b"), T("c")});
  Picker p(plan);
  EXPECT_EQ(p.Sequence(6), "a,b,c,a,b,c");
}

TEST(PickPlanTest, TenThousandWeightedPicksWithinOnePercent) {
  for (Algorithm algorithm :
       {Algorithm::kWeightedRoundRobin, Algorithm::kRandom, Algorithm::kLeastConnections}) {
    PickPlan plan(algorithm, {T("a", 50), T("b", 30), T("c", 15), T("d", 5)});
    // Random's spread at 10,000 draws is about half a percentage point (one
    // sigma): a fixed seed keeps the test exact.
    Picker p(plan, 1);
    std::map<std::string, int> counts;
    constexpr int kPicks = 10'000;
    for (int i = 0; i < kPicks; ++i) {
      PickChoice c = p.Pick();
      ++counts[p.Id(c)];
      // Least-connections follows weights through load: keep every pick in
      // flight, so loads (and with them the counts) grow 50:30:15:5.
      if (algorithm != Algorithm::kLeastConnections) plan.Release(c.target, false);
    }
    const std::map<std::string, double> expected = {{"a", .50}, {"b", .30}, {"c", .15}, {"d", .05}};
    for (const auto& [id, share] : expected) {
      EXPECT_NEAR(static_cast<double>(counts[id]) / kPicks, share, 0.01)
          << id << " with " << AlgorithmName(algorithm);
    }
    if (algorithm == Algorithm::kWeightedRoundRobin) {
      EXPECT_EQ(counts["a"], 5000);  // exact: 100 whole periods
      EXPECT_EQ(counts["d"], 500);
    }
  }
}

TEST(PickPlanTest, LeastConnectionsFollowsUnevenInFlightLoad) {
  PickPlan plan(Algorithm::kLeastConnections, {T("a"), T("b"), T("c")});
  Picker p(plan);
  // Three picks spread over a, b, c (all empty: ties); then b's finishes.
  p.random.Script({0, 0, 0, 0, 0, 0});
  std::vector<PickChoice> held;
  for (int i = 0; i < 3; ++i) held.push_back(p.Pick());
  EXPECT_EQ(plan.in_flight(0) + plan.in_flight(1) + plan.in_flight(2), 3);
  EXPECT_EQ(plan.in_flight(0), 1);
  EXPECT_EQ(plan.in_flight(1), 1);
  EXPECT_EQ(plan.in_flight(2), 1);
  plan.Release(1, false);
  EXPECT_EQ(p.Id(p.Pick()), "b");  // the only one with a free slot
  // b, c finish twice over: a is busiest, c idle.
  plan.Release(1, false);
  plan.Release(2, false);
  EXPECT_EQ(p.Id(p.Pick()), "b");  // b and c tie at 0; rank 0 is b
  EXPECT_EQ(p.Id(p.Pick()), "c");
}

TEST(PickPlanTest, LeastConnectionsRelativeToWeight) {
  // a has weight 3: it takes three requests for each one of b's.
  PickPlan plan(Algorithm::kLeastConnections, {T("a", 3), T("b", 1)});
  Picker p(plan);
  p.random.Script(std::vector<uint64_t>(64, 0));
  std::string seq;
  for (int i = 0; i < 8; ++i) seq += p.Id(p.Pick());
  // Loads (a,b): (0,0) tie -> a; (1,0) -> b; a at 1/3 and 2/3 of b's 1/1;
  // (3,1) ties -> a; (4,1) -> b; then a twice more.
  EXPECT_EQ(seq, "abaaabaa");
  EXPECT_EQ(plan.in_flight(0), 6);
  EXPECT_EQ(plan.in_flight(1), 2);
}

TEST(PickPlanTest, LowerPriorityNumberServesFirst) {
  PickPlan plan(Algorithm::kRoundRobin, {T("backup", 1, 2), T("p1", 1, 1), T("p1b", 1, 1)});
  Picker p(plan);
  EXPECT_EQ(p.Sequence(4), "p1,p1b,p1,p1b");
}

TEST(PickPlanTest, FailoverExcludesTriedTargetsThenMovesToTheNextGroup) {
  PickPlan plan(Algorithm::kRoundRobin, {T("a", 1, 1), T("b", 1, 1), T("c", 1, 2), T("d", 1, 3)});
  Picker p(plan);
  // A request tries a, fails; its retry excludes a: same group first.
  p.exclude = {"a"};
  EXPECT_EQ(p.Id(p.Pick()), "b");
  p.exclude = {"a", "b"};
  EXPECT_EQ(p.Id(p.Pick()), "c");
  p.exclude = {"a", "b", "c"};
  EXPECT_EQ(p.Id(p.Pick()), "d");
  p.exclude = {"a", "b", "c", "d"};
  EXPECT_EQ(p.Pick().status, PickStatus::kAllExcluded);
  p.exclude = {"unknown-id", "b"};  // ids config no longer has are ignored
  EXPECT_EQ(p.Id(p.Pick()), "a");
}

TEST(PickPlanTest, ExclusionKeepsRemainingShares) {
  // 5:1:1 with a excluded: b and c split evenly (not 5:2, which is what
  // skipping ahead in the schedule would give).
  PickPlan plan(Algorithm::kWeightedRoundRobin, {T("a", 5), T("b", 1), T("c", 1)});
  Picker p(plan);
  p.exclude = {"a"};
  std::map<std::string, int> counts;
  for (int i = 0; i < 10'000; ++i) {
    PickChoice c = p.Pick();
    ++counts[p.Id(c)];
    plan.Release(c.target, false);
  }
  EXPECT_EQ(counts["a"], 0);
  EXPECT_NEAR(counts["b"] / 10'000.0, 0.5, 0.02);
}

TEST(PickPlanTest, EjectedTargetsLeaveRotationAndPriorityFailsOver) {
  PickPlan plan(Algorithm::kRoundRobin,
                {Ejected(T("a", 1, 1), kNow + 5000), Ejected(T("b", 1, 1), kNow + 5000),
                 T("c", 1, 2), T("d", 1, 2)});
  Picker p(plan);
  EXPECT_EQ(p.Sequence(4), "c,d,c,d");
  PickChoice c = p.Pick();
  EXPECT_FALSE(c.degraded);
}

TEST(PickPlanTest, EveryTargetEjectedStillAnswersBestPriorityDegraded) {
  PickPlan plan(Algorithm::kRoundRobin,
                {Ejected(T("low", 1, 2), kNow + 5000), Ejected(T("a", 1, 1), kNow + 5000),
                 Ejected(T("b", 1, 1), kNow + 5000)});
  Picker p(plan);
  PickChoice c = p.Pick();
  ASSERT_EQ(c.status, PickStatus::kOk);
  EXPECT_TRUE(c.degraded);
  EXPECT_EQ(p.Id(c), "a");
  EXPECT_EQ(p.Id(p.Pick()), "b");
  p.exclude = {"a", "b"};
  c = p.Pick();
  EXPECT_EQ(p.Id(c), "low");
  EXPECT_TRUE(c.degraded);
}

TEST(PickPlanTest, DueTrialGoesFirstAndOnlyOnce) {
  PickPlan plan(Algorithm::kRoundRobin, {Ejected(T("a"), kNow), T("b")});
  Picker p(plan);
  // Before the deadline a is out.
  EXPECT_EQ(p.Id(p.Pick("", kNow - 1)), "b");
  // At the deadline the next pick is a's trial...
  PickChoice trial = p.Pick("", kNow);
  EXPECT_EQ(p.Id(trial), "a");
  EXPECT_TRUE(trial.trial);
  EXPECT_TRUE(plan.trial_claimed(0));
  // ...and while it runs, everything else goes to b.
  EXPECT_EQ(p.Sequence(3), "b,b,b");
  // A trial that ends without a verdict (cancelled) frees the claim.
  plan.Release(trial.target, true);
  EXPECT_FALSE(plan.trial_claimed(0));
  EXPECT_TRUE(p.Pick().trial);
}

TEST(PickPlanTest, TrialWaitsForTrafficToReachItsGroup) {
  PickPlan plan(Algorithm::kRoundRobin, {T("a", 1, 1), Ejected(T("backup", 1, 2), kNow)});
  Picker p(plan);
  EXPECT_EQ(p.Sequence(3), "a,a,a");
  p.exclude = {"a"};
  PickChoice c = p.Pick();
  EXPECT_EQ(p.Id(c), "backup");
  EXPECT_TRUE(c.trial);
}

// The seeds' multi-provider upstream (001): openai lists gpt-3.5-turbo and
// gpt-4 with default gpt-4; anthropic lists claude-3-sonnet, its default.
std::vector<PlanTarget> SeedTargets() {
  PlanTarget openai = T("openai", 50);
  openai.default_model = "gpt-4";
  openai.models = {"gpt-3.5-turbo", "gpt-4"};
  PlanTarget anthropic = T("anthropic", 50);
  anthropic.default_model = "claude-3-sonnet";
  anthropic.models = {"claude-3-sonnet"};
  return {openai, anthropic};
}

TEST(PickPlanTest, SeedGpt4RequestOnAnthropicUsesItsDefaultModel) {
  PickPlan plan(Algorithm::kRoundRobin, SeedTargets());
  Picker p(plan);
  PickChoice first = p.Pick("gpt-4");
  EXPECT_EQ(p.Id(first), "openai");
  EXPECT_EQ(first.effective_model, "gpt-4");
  PickChoice second = p.Pick("gpt-4");
  EXPECT_EQ(p.Id(second), "anthropic");
  EXPECT_EQ(second.effective_model, "claude-3-sonnet");
  // gpt-3.5-turbo is listed by openai: kept there.
  PickChoice third = p.Pick("gpt-3.5-turbo");
  EXPECT_EQ(third.effective_model, "gpt-3.5-turbo");
}

TEST(PickPlanTest, NoModelUsesEachTargetsDefault) {
  PickPlan plan(Algorithm::kRoundRobin, SeedTargets());
  Picker p(plan);
  EXPECT_EQ(p.Pick("").effective_model, "gpt-4");
  EXPECT_EQ(p.Pick("").effective_model, "claude-3-sonnet");
}

TEST(PickPlanTest, ModelEligibility) {
  PlanTarget listed = T("listed");  // lists models, no default: only those
  listed.models = {"m1", "m2"};
  PlanTarget open = T("open");                // lists nothing: takes any model as is
  PlanTarget fallback = T("fallback", 1, 2);  // has a default: takes anything, sends its default
  fallback.default_model = "fb-model";
  fallback.models = {"fb-model"};

  {
    PickPlan plan(Algorithm::kRoundRobin, {listed, open, fallback});
    Picker p(plan);
    // m1: listed and open are eligible in group 1.
    PickChoice c = p.Pick("m1");
    EXPECT_EQ(p.Id(c), "listed");
    EXPECT_EQ(c.effective_model, "m1");
    c = p.Pick("m1");
    EXPECT_EQ(p.Id(c), "open");
    EXPECT_EQ(c.effective_model, "m1");
    // x: only open in group 1.
    EXPECT_EQ(p.Sequence(3, "x"), "open,open,open");
    // Without open, x falls to the fallback group with its default.
    p.exclude = {"open"};
    c = p.Pick("x");
    EXPECT_EQ(p.Id(c), "fallback");
    EXPECT_EQ(c.effective_model, "fb-model");
    // No model at all: listed uses its first model.
    p.exclude = {"open"};
    c = p.Pick("");
    EXPECT_EQ(p.Id(c), "listed");
    EXPECT_EQ(c.effective_model, "m1");
  }
  {
    PickPlan plan(Algorithm::kRoundRobin, {listed});
    Picker p(plan);
    EXPECT_EQ(p.Pick("other").status, PickStatus::kNoEligibleTarget);
    EXPECT_EQ(p.Pick("m2").effective_model, "m2");
  }
}

TEST(PickPlanTest, EffectiveModelRules) {
  PlanTarget t = T("t");
  EXPECT_EQ(EffectiveModel(t, "any"), "any");
  EXPECT_EQ(EffectiveModel(t, ""), "");
  t.models = {"a", "b"};
  EXPECT_EQ(EffectiveModel(t, "b"), "b");
  EXPECT_FALSE(EffectiveModel(t, "c").has_value());
  EXPECT_EQ(EffectiveModel(t, ""), "a");
  t.default_model = "b";
  EXPECT_EQ(EffectiveModel(t, "c"), "b");
  EXPECT_EQ(EffectiveModel(t, "a"), "a");
  EXPECT_EQ(EffectiveModel(t, ""), "b");
}

TEST(PickPlanTest, ManyExclusionsSpillToTheHeap) {
  std::vector<PlanTarget> targets;
  for (int i = 0; i < 50; ++i) targets.push_back(T("t" + std::to_string(i)));
  PickPlan plan(Algorithm::kRandom, targets);
  Picker p(plan);
  std::vector<std::string> ids;
  for (int i = 0; i < 49; ++i) ids.push_back("t" + std::to_string(i));
  for (const auto& id : ids) p.exclude.push_back(id);
  EXPECT_EQ(p.Id(p.Pick()), "t49");
}

}  // namespace
}  // namespace tg::balancer
