// The pure pick algorithms: exact sequences, exact shares, exclusions.
#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "balancer_fakes.h"
#include "tg/balancer/least_connections.h"
#include "tg/balancer/smooth_weighted_round_robin.h"
#include "tg/balancer/weighted_random.h"

namespace tg::balancer {
namespace {

using testing::FakeRandom;

std::string Letters(SmoothWeightedRoundRobin& rr, int n) {
  std::string out;
  for (int i = 0; i < n; ++i) out += static_cast<char>('a' + rr.Next());
  return out;
}

TEST(SmoothWeightedRoundRobinTest, FiveOneOneIsSmooth) {
  std::vector<int32_t> w = {5, 1, 1};
  SmoothWeightedRoundRobin rr(w);
  EXPECT_EQ(Letters(rr, 14), "aabacaaaabacaa");
}

TEST(SmoothWeightedRoundRobinTest, EqualWeightsRotate) {
  std::vector<int32_t> w = {1, 1, 1};
  SmoothWeightedRoundRobin rr(w);
  EXPECT_EQ(Letters(rr, 7), "abcabca");
  std::vector<int32_t> w50 = {50, 50};  // the seeds' round-robin example: gcd reduces to 1:1
  SmoothWeightedRoundRobin rr50(w50);
  EXPECT_EQ(rr50.schedule().size(), 2u);
  EXPECT_EQ(Letters(rr50, 4), "abab");
}

TEST(SmoothWeightedRoundRobinTest, OneTwoStartsWithTheHeavier) {
  // STYLE.md's example: weights 1:2 give h1,h0,h1.
  std::vector<int32_t> w = {1, 2};
  SmoothWeightedRoundRobin rr(w);
  EXPECT_EQ(Letters(rr, 6), "babbab");
}

TEST(SmoothWeightedRoundRobinTest, MoreWeightSets) {
  struct Case {
    std::vector<int32_t> weights;
    std::string sequence;
  };
  const std::vector<Case> cases = {
      {{3, 2, 1}, "abacba"}, {{4, 3, 2, 1}, "abcabdacba"},
      {{2, 1}, "aba"},       {{10, 10, 5}, "abcab"},  // gcd 5: 2:2:1
      {{1}, "aaa"},          {{100, 1}, std::string(50, 'a') + "b" + std::string(50, 'a')},
  };
  for (const auto& c : cases) {
    SmoothWeightedRoundRobin rr(c.weights);
    EXPECT_EQ(Letters(rr, static_cast<int>(c.sequence.size())), c.sequence)
        << "weights " << ::testing::PrintToString(c.weights);
  }
}

TEST(SmoothWeightedRoundRobinTest, EveryPeriodHoldsExactShares) {
  std::vector<int32_t> w = {7, 3, 5, 1};
  SmoothWeightedRoundRobin rr(w);
  ASSERT_EQ(rr.schedule().size(), 16u);
  std::map<uint32_t, int> counts;
  for (int i = 0; i < 16 * 100; ++i) ++counts[rr.Next()];
  EXPECT_EQ(counts[0], 700);
  EXPECT_EQ(counts[1], 300);
  EXPECT_EQ(counts[2], 500);
  EXPECT_EQ(counts[3], 100);
}

TEST(WeightedRandomTest, DrawsMapOntoWeightIntervals) {
  std::vector<int32_t> w = {5, 1, 1};
  WeightedRandom wr(w);
  FakeRandom random;
  random.Script({0, 4, 5, 6});
  EXPECT_EQ(wr.Pick(random), 0u);
  EXPECT_EQ(wr.Pick(random), 0u);
  EXPECT_EQ(wr.Pick(random), 1u);
  EXPECT_EQ(wr.Pick(random), 2u);
}

TEST(WeightedRandomTest, ExclusionShiftsPastExcludedIntervals) {
  std::vector<int32_t> w = {5, 1, 1};
  WeightedRandom wr(w);
  FakeRandom random;
  const std::vector<uint32_t> without_a = {0};
  random.Script({0, 1});  // drawn from [0, 2)
  EXPECT_EQ(wr.Pick(random, without_a), 1u);
  EXPECT_EQ(wr.Pick(random, without_a), 2u);
  const std::vector<uint32_t> without_b = {1};
  random.Script({4, 5});  // drawn from [0, 6): 5 skips b's [5, 6) to c
  EXPECT_EQ(wr.Pick(random, without_b), 0u);
  EXPECT_EQ(wr.Pick(random, without_b), 2u);
}

TEST(WeightedRandomTest, TenThousandPicksFollowTheWeights) {
  const std::vector<std::vector<int32_t>> weight_sets = {
      {5, 1, 1}, {50, 50}, {1, 2, 3, 4}, {100, 1}};
  for (const auto& w : weight_sets) {
    WeightedRandom wr(w);
    FakeRandom random(7);
    std::vector<int> counts(w.size());
    constexpr int kPicks = 10'000;
    for (int i = 0; i < kPicks; ++i) ++counts[wr.Pick(random)];
    int total = 0;
    for (int x : w) total += x;
    for (size_t i = 0; i < w.size(); ++i) {
      const double share = static_cast<double>(counts[i]) / kPicks;
      const double expected = static_cast<double>(w[i]) / total;
      EXPECT_NEAR(share, expected, 0.01) << "member " << i << " of " << ::testing::PrintToString(w);
    }
  }
}

TEST(LeastConnectionsTest, FewestInFlightWins) {
  std::vector<int32_t> w = {1, 1, 1};
  LeastConnections lc(w);
  FakeRandom random;
  lc.SetLoad(0, 5);
  lc.SetLoad(1, 2);
  lc.SetLoad(2, 7);
  EXPECT_EQ(lc.Pick(random), 1u);
  EXPECT_EQ(random.calls(), 0);  // no tie, no draw
}

TEST(LeastConnectionsTest, LoadIsRelativeToWeight) {
  // a: 4 in flight on weight 4 (ratio 1); b: 2 on weight 1 (ratio 2).
  std::vector<int32_t> w = {4, 1};
  LeastConnections lc(w);
  FakeRandom random;
  lc.SetLoad(0, 4);
  lc.SetLoad(1, 2);
  EXPECT_EQ(lc.Pick(random), 0u);
}

TEST(LeastConnectionsTest, UnevenLoadConvergesToWeights) {
  // Picks with +1 each and no reports: 3:1 weights end up loaded 3:1 after
  // the lighter one's head start is used up.
  std::vector<int32_t> w = {3, 1};
  LeastConnections lc(w);
  FakeRandom random;
  random.Script(std::vector<uint64_t>(8, 0));  // ties: both draws take rank 0 (a)
  lc.SetLoad(1, 5);                            // b starts with 5 in flight
  std::string picks;
  for (int i = 0; i < 19; ++i) {
    uint32_t m = lc.Pick(random);
    picks += static_cast<char>('a' + m);
    lc.SetLoad(m, lc.load(m) + 1);
  }
  // a takes everything until 15/3 = 5/1; from then on a,a,a,b per round.
  EXPECT_EQ(picks, "aaaaaaaaaaaaaaaabaa");
  EXPECT_EQ(lc.load(0), 18);
  EXPECT_EQ(lc.load(1), 6);
}

TEST(LeastConnectionsTest, TiesUsePowerOfTwoChoices) {
  std::vector<int32_t> w = {1, 1, 1, 1};
  LeastConnections lc(w);
  FakeRandom random;
  lc.SetLoad(0, 3);
  // b, c, d tie at 0; the draws pick ranks among them: 2 -> d, 0 -> b.
  random.Script({2, 0});
  EXPECT_EQ(lc.Pick(random), 3u);  // equal weights: the first draw wins
  EXPECT_EQ(random.calls(), 2);
}

TEST(LeastConnectionsTest, TiesPreferTheHeavierOfTheTwoDraws) {
  // Weights a=1, b=2, c=2 with loads 1, 2, 4: a and b tie at ratio 1.
  std::vector<int32_t> w = {1, 2, 2};
  LeastConnections lc(w);
  FakeRandom random;
  lc.SetLoad(0, 1);
  lc.SetLoad(1, 2);
  lc.SetLoad(2, 4);
  random.Script({0, 1});  // a, then b: b wins (ratio 3/2 after the pick, not 2)
  EXPECT_EQ(lc.Pick(random), 1u);
  random.Script({0, 0});  // a twice: a
  EXPECT_EQ(lc.Pick(random), 0u);
}

TEST(LeastConnectionsTest, ExcludedMembersLeaveTheRunningForOnePick) {
  std::vector<int32_t> w = {1, 1, 1};
  LeastConnections lc(w);
  FakeRandom random;
  lc.SetLoad(0, 0);
  lc.SetLoad(1, 1);
  lc.SetLoad(2, 2);
  const std::vector<uint32_t> without_a = {0};
  EXPECT_EQ(lc.Pick(random, without_a), 1u);
  EXPECT_EQ(lc.Pick(random), 0u);  // a is back
  const std::vector<uint32_t> without_a_b = {0, 1};
  EXPECT_EQ(lc.Pick(random, without_a_b), 2u);
}

TEST(LeastConnectionsTest, ManyMembers) {
  std::vector<int32_t> w(100, 1);
  LeastConnections lc(w);
  FakeRandom random;
  for (uint32_t i = 0; i < 100; ++i) lc.SetLoad(i, 10 + (i * 37) % 50);
  lc.SetLoad(63, 3);
  EXPECT_EQ(lc.Pick(random), 63u);
  lc.SetLoad(63, 100);
  // Now the minimum is 10, held by i with (i*37)%50 == 0: i = 0, 50.
  random.Script({1, 1});
  EXPECT_EQ(lc.Pick(random), 50u);
}

}  // namespace
}  // namespace tg::balancer
