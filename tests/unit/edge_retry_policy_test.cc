// The retry policy (issue 12): defaults and the rule's fields, the
// provider's "try again in …" headers, and the decision after a failed
// attempt.
#include <gtest/gtest.h>

#include "tg/edge/retry_policy.h"

namespace tg::edge {
namespace {

using std::chrono::seconds;

tg::v1::ProviderError Kind(tg::v1::ProviderError::Kind kind, int status = 0,
                           bool retryable = true) {
  tg::v1::ProviderError e;
  e.set_kind(kind);
  e.set_http_status(status);
  e.set_retryable(retryable);
  return e;
}

tg::v1::ProviderError Http(int status, bool retryable = true) {
  return Kind(tg::v1::ProviderError::KIND_HTTP, status, retryable);
}

AttemptState After(int attempts, int same = 0, milliseconds elapsed = milliseconds(0)) {
  AttemptState s;
  s.attempts_made = attempts;
  s.same_target_done = same;
  s.elapsed = elapsed;
  s.jitter = 0.5;  // the middle: exactly backoff * 2^n
  return s;
}

TEST(RetryPolicyTest, DefaultsAndTheRulesFields) {
  tg::v1::Rule rule;
  RetrySettings d = ResolveRetry(rule, 3);
  EXPECT_EQ(d.max_attempts, 3);
  EXPECT_EQ(d.same_target_retries, 1);
  EXPECT_EQ(d.backoff, milliseconds(200));
  EXPECT_EQ(d.max_retry_after, milliseconds(5000));
  EXPECT_EQ(d.budget, milliseconds(60000));
  rule.set_retry_attempts(0);  // TrustGate's name: calls after the first
  rule.mutable_retry_policy()->set_same_target_retries(2);
  rule.mutable_retry_policy()->set_backoff_ms(50);
  rule.mutable_retry_policy()->set_max_retry_after_ms(1000);
  rule.mutable_retry_policy()->set_budget_ms(9000);
  RetrySettings r = ResolveRetry(rule, 3);
  EXPECT_EQ(r.max_attempts, 1);
  EXPECT_EQ(r.same_target_retries, 2);
  EXPECT_EQ(r.backoff, milliseconds(50));
  EXPECT_EQ(r.max_retry_after, milliseconds(1000));
  EXPECT_EQ(r.budget, milliseconds(9000));
}

TEST(RetryPolicyTest, ProviderRetryAfterHeaders) {
  const auto now =
      std::chrono::system_clock::from_time_t(1445412480);  // Wed, 21 Oct 2015 07:28:00 GMT
  google::protobuf::Map<std::string, std::string> h;
  EXPECT_FALSE(ProviderRetryAfter(h, now));
  h["retry-after"] = "2";
  EXPECT_EQ(ProviderRetryAfter(h, now), milliseconds(2000));
  h["retry-after"] = "0.25";
  EXPECT_EQ(ProviderRetryAfter(h, now), milliseconds(250));
  h["retry-after"] = "Wed, 21 Oct 2015 07:28:03 GMT";
  EXPECT_EQ(ProviderRetryAfter(h, now), milliseconds(3000));
  h["retry-after"] = "Wed, 21 Oct 2015 07:27:00 GMT";  // past: at once
  EXPECT_EQ(ProviderRetryAfter(h, now), milliseconds(0));
  // Far away (found by fuzz/edge_http: a nanosecond time_point overflowed):
  // capped at a day, never wrapped to a short wait.
  h["retry-after"] = "Wed, 21 Oct 4030 07:28:00 GMT";
  EXPECT_EQ(ProviderRetryAfter(h, now), milliseconds(86'400'000));
  h["retry-after-ms"] = "1500";  // the more precise one wins
  EXPECT_EQ(ProviderRetryAfter(h, now), milliseconds(1500));
  h.clear();
  h["retry-after"] = "soon";
  EXPECT_FALSE(ProviderRetryAfter(h, now));
  h.clear();
  h["x-ratelimit-reset-requests"] = "1s";
  h["x-ratelimit-reset-tokens"] = "6m0s";
  EXPECT_EQ(ProviderRetryAfter(h, now), milliseconds(360000)) << "the longer reset";
  EXPECT_EQ(ParseResetDuration("1h2m3.5s"), milliseconds(3723500));
  EXPECT_EQ(ParseResetDuration("250ms"), milliseconds(250));
  EXPECT_EQ(ParseResetDuration("20us"), milliseconds(1));
  EXPECT_FALSE(ParseResetDuration("5 seconds"));
  EXPECT_FALSE(ParseResetDuration("1.2.3s"));
  EXPECT_FALSE(ParseResetDuration(""));
}

TEST(RetryPolicyTest, ThrottlingAndServerErrorsRetryTheSameTargetThenFailOver) {
  RetrySettings s;
  RetryDecision d = DecideRetry(s, Http(429), milliseconds(2000), After(1));
  EXPECT_EQ(d.step, NextStep::kSameTarget);
  EXPECT_EQ(d.wait, milliseconds(2000));
  EXPECT_EQ(d.reason, "retry_after");
  d = DecideRetry(s, Http(500), std::nullopt, After(1));
  EXPECT_EQ(d.step, NextStep::kSameTarget);
  EXPECT_EQ(d.wait, milliseconds(200));
  EXPECT_EQ(d.reason, "backoff");
  // The retry spent: the next failure of that target fails over.
  d = DecideRetry(s, Http(503), std::nullopt, After(2, 1));
  EXPECT_EQ(d.step, NextStep::kFailOver);
  EXPECT_EQ(d.reason, "same_target_spent");
  // Backoff doubles and is jittered to [0.5, 1.5) of that.
  s.same_target_retries = 3;
  s.max_attempts = 5;
  AttemptState third = After(3, 2);
  third.jitter = 0.0;
  EXPECT_EQ(DecideRetry(s, Http(502), std::nullopt, third).wait, milliseconds(400));
  third.jitter = 0.999;
  EXPECT_LT(DecideRetry(s, Http(502), std::nullopt, third).wait, milliseconds(1200));
}

TEST(RetryPolicyTest, ALongRetryAfterFailsOverAtOnce) {
  RetrySettings s;
  RetryDecision d = DecideRetry(s, Http(429), milliseconds(30000), After(1));
  EXPECT_EQ(d.step, NextStep::kFailOver);
  EXPECT_EQ(d.reason, "retry_after_too_long");
}

TEST(RetryPolicyTest, ConnectErrorsAndTimeoutsFailOverWithoutWaiting) {
  RetrySettings s;
  for (auto kind : {tg::v1::ProviderError::KIND_CONNECT, tg::v1::ProviderError::KIND_TIMEOUT,
                    tg::v1::ProviderError::KIND_PROTOCOL}) {
    RetryDecision d = DecideRetry(s, Kind(kind), std::nullopt, After(1));
    EXPECT_EQ(d.step, NextStep::kFailOver) << kind;
    EXPECT_EQ(d.wait, milliseconds(0));
  }
}

TEST(RetryPolicyTest, AttemptsBudgetAndNonRetryableErrorsAnswer) {
  RetrySettings s;
  EXPECT_EQ(DecideRetry(s, Http(400, false), std::nullopt, After(1)).step, NextStep::kAnswer);
  EXPECT_EQ(DecideRetry(s, Http(429), std::nullopt, After(3)).step, NextStep::kAnswer)
      << "three calls made, three allowed";
  s.max_attempts = 1;  // retry_attempts: 0
  EXPECT_EQ(DecideRetry(s, Http(429), milliseconds(100), After(1)).step, NextStep::kAnswer);
  s = RetrySettings();
  s.budget = seconds(3);
  EXPECT_EQ(DecideRetry(s, Http(500), std::nullopt, After(1, 0, seconds(3))).step,
            NextStep::kAnswer);
  // A wait that would end past the budget: another target now instead.
  RetryDecision d = DecideRetry(s, Http(429), milliseconds(2000), After(1, 0, seconds(2)));
  EXPECT_EQ(d.step, NextStep::kFailOver);
}

}  // namespace
}  // namespace tg::edge
