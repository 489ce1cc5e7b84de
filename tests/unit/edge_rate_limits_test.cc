// Rate limits at the edge (gateway-edge/rate_limits.h): TrustGate's
// rate_limiter and token_rate_limiter plugins admitted over a LocalQuotaStore
// on a manual clock (exact remaining, reset and retry_after), settlement of
// the token estimate, the targets' own quotas and cooling.
#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <optional>
#include <string>
#include <thread>
#include <utility>

#include "tg/edge/quota/gcra.h"
#include "tg/edge/quota/quota_store.h"
#include "tg/edge/rate_limits.h"
#include "tg/edge/token_estimate.h"

namespace tg::edge {
namespace {

using namespace std::chrono_literals;
using std::chrono::milliseconds;

constexpr tg::v1::ClientFormat kChat = tg::v1::CLIENT_FORMAT_OPENAI_CHAT;
constexpr const char* kBody =
    R"({"model": "gpt-4", "messages": [{"role": "user", "content": "Hello there, how are you today? Tell me about the weather in Paris."}]})";

tg::v1::PluginConfig PluginFromJson(const std::string& json) {
  tg::v1::PluginConfig config;
  const auto status = google::protobuf::util::JsonStringToMessage(json, &config);
  EXPECT_TRUE(status.ok()) << status.ToString() << "\n" << json;
  return config;
}

std::string RateLimiter(const std::string& limits, const std::string& extra = "") {
  return R"({"name": "rate_limiter", )" + extra + R"("settings": {"limits": )" + limits + "}}";
}

std::string TokenLimiter(const std::string& settings, const std::string& extra = "") {
  return R"({"name": "token_rate_limiter", )" + extra + R"("settings": )" + settings + "}";
}

bool HasHeader(const HeaderList& h, const std::string& name, const std::string& value) {
  return std::find(h.begin(), h.end(), std::make_pair(name, value)) != h.end();
}

bool HasHeaderNamed(const HeaderList& h, const std::string& name) {
  return std::any_of(h.begin(), h.end(), [&](const auto& kv) { return kv.first == name; });
}

class RateLimitsTest : public ::testing::Test {
 protected:
  RateLimitsTest() {
    gateway_.set_id("g1");
    rule_.set_id("r1");
  }

  void GatewayPlugin(const std::string& json) {
    *gateway_.add_required_plugins() = PluginFromJson(json);
  }
  void RulePlugin(const std::string& json) { *rule_.add_plugin_chain() = PluginFromJson(json); }

  struct Who {
    std::string_view key = "k1";
    std::string_view ip = "10.0.0.1";
    std::string_view user;
    std::string_view model = "gpt-4";
    std::string_view body = kBody;
  };

  Admission Admit(const Who& who) {
    LimitSubject s;
    s.gateway = &gateway_;
    s.rule = &rule_;
    s.revision = revision_;
    s.key_id = who.key;
    s.client_ip = who.ip;
    s.user_id = who.user;
    s.model = who.model;
    s.body = who.body;
    s.format = kChat;
    return limits_.Admit(s);
  }
  Admission Admit() { return Admit(Who{}); }
  Admission AdmitKey(std::string_view key) { return Admit(Who{.key = key}); }

  // The prompt estimate every token bucket takes for kBody.
  static int64_t Estimate() {
    return std::max<int64_t>(1, EstimateRequestTokens(kBody, kChat).prompt);
  }

  quota::ManualClock clock_;
  quota::LocalQuotaStore store_{&clock_};
  RateLimits limits_{&store_};
  tg::v1::Gateway gateway_;
  tg::v1::Rule rule_;
  int64_t revision_ = 1;
};

// ------------------------------------------------------------- headers, addresses

// From 1 s up, rounded up to whole seconds: a client waiting that long finds
// the unit there.
TEST(FormatResetDurationTest, OpenAisFormat) {
  const std::pair<milliseconds, const char*> cases[] = {
      {0ms, "0ms"},          {-5ms, "0ms"},         {20ms, "20ms"},        {999ms, "999ms"},
      {1000ms, "1s"},        {1001ms, "2s"},        {1999ms, "2s"},        {59000ms, "59s"},
      {59001ms, "1m0s"},     {60000ms, "1m0s"},     {360000ms, "6m0s"},    {3599001ms, "1h0m0s"},
      {3600000ms, "1h0m0s"}, {3723000ms, "1h2m3s"}, {3722001ms, "1h2m3s"},
  };
  for (const auto& [d, want] : cases) {
    EXPECT_EQ(FormatResetDuration(d), want) << d.count() << " ms";
  }
}

TEST(ClientIpTest, PeerWithoutPortOrLastHeaderEntry) {
  EXPECT_EQ(ClientIp("1.2.3.4:5", ""), "1.2.3.4");
  EXPECT_EQ(ClientIp("[::1]:80", ""), "::1");
  EXPECT_EQ(ClientIp("[::1]", ""), "::1");
  EXPECT_EQ(ClientIp("::1", ""), "::1");  // bare IPv6: no port to cut
  EXPECT_EQ(ClientIp("1.2.3.4", ""), "1.2.3.4");
  EXPECT_EQ(ClientIp("1.2.3.4:5", "a, b,  c "), "c");  // the nearest proxy's entry
  EXPECT_EQ(ClientIp("1.2.3.4:5", "\t9.9.9.9\t"), "9.9.9.9");
  EXPECT_EQ(ClientIp("1.2.3.4:5", " "), "1.2.3.4");  // nothing in it: the peer
}

// ------------------------------------------------------------- no plugins

TEST_F(RateLimitsTest, AppliesOnlyWithPlugins) {
  EXPECT_FALSE(RateLimits::Applies(nullptr, nullptr));
  EXPECT_FALSE(RateLimits::Applies(&gateway_, &rule_));
  GatewayPlugin(RateLimiter(R"({"global": {"limit": 1, "window": "1m"}})"));
  EXPECT_TRUE(RateLimits::Applies(&gateway_, nullptr));
  EXPECT_TRUE(RateLimits::Applies(&gateway_, &rule_));
  EXPECT_FALSE(RateLimits::Applies(nullptr, &rule_));
  RulePlugin(RateLimiter(R"({"global": {"limit": 1, "window": "1m"}})"));
  EXPECT_TRUE(RateLimits::Applies(nullptr, &rule_));
}

TEST_F(RateLimitsTest, NoPluginsAdmitsWithoutLimit) {
  for (int i = 0; i < 5; ++i) {
    Admission a = Admit();
    EXPECT_TRUE(a.admitted);
    EXPECT_FALSE(a.limited);
    EXPECT_FALSE(a.requests);
    EXPECT_FALSE(a.tokens);
    EXPECT_TRUE(a.Headers(false).empty());
  }
  EXPECT_EQ(store_.size(), 0u);
}

// ------------------------------------------------------------- rate_limiter

TEST_F(RateLimitsTest, GlobalLimitAdmitsThreeThenWaitsAThirdOfTheWindow) {
  GatewayPlugin(RateLimiter(R"({"global": {"limit": 3, "window": "1m"}})"));
  for (int64_t i = 0; i < 3; ++i) {
    Admission a = AdmitKey("k" + std::to_string(i));  // global: every key shares it
    ASSERT_TRUE(a.admitted) << i;
    EXPECT_TRUE(a.limited);
    ASSERT_TRUE(a.requests);
    EXPECT_EQ(a.requests->limit, 3);
    EXPECT_EQ(a.requests->remaining, 2 - i);
    EXPECT_EQ(a.requests->reset, milliseconds(20000 * (i + 1)));  // one unit per 20 s
    EXPECT_FALSE(a.tokens);
  }
  Admission refused = Admit();
  EXPECT_FALSE(refused.admitted);
  EXPECT_TRUE(refused.limited);
  EXPECT_TRUE(refused.can_retry);
  EXPECT_EQ(refused.limit_type, "requests");
  EXPECT_EQ(refused.message, "global rate limit exceeded: 3 requests per 1m0s");
  EXPECT_EQ(refused.retry_after, 20000ms);  // window / limit
  EXPECT_FALSE(refused.configured_retry_after);
  ASSERT_TRUE(refused.requests);
  EXPECT_EQ(refused.requests->remaining, 0);
  EXPECT_EQ(refused.Headers(true), (HeaderList{{"x-ratelimit-limit-requests", "3"},
                                               {"x-ratelimit-remaining-requests", "0"},
                                               {"x-ratelimit-reset-requests", "1m0s"},
                                               {"Retry-After", "20"},
                                               {"retry-after-ms", "20000"}}));

  clock_.Advance(19999ms);
  EXPECT_FALSE(Admit().admitted);
  clock_.Advance(1ms);
  Admission again = Admit();
  EXPECT_TRUE(again.admitted);
  EXPECT_EQ(again.requests->remaining, 0);
}

TEST_F(RateLimitsTest, HeadersOfAnAdmissionAreExactlyTheRateLimitOnes) {
  GatewayPlugin(RateLimiter(R"({"global": {"limit": 10, "window": "1m"}})"));
  Admission a = Admit();
  ASSERT_TRUE(a.admitted);
  EXPECT_EQ(a.Headers(false), (HeaderList{{"x-ratelimit-limit-requests", "10"},
                                          {"x-ratelimit-remaining-requests", "9"},
                                          {"x-ratelimit-reset-requests", "6s"}}));

  RulePlugin(TokenLimiter(R"({"tokens_per_minute": 1000})"));
  ++revision_;
  const int64_t e = Estimate();
  a = Admit();
  ASSERT_TRUE(a.admitted);
  EXPECT_EQ(a.Headers(false),
            (HeaderList{{"x-ratelimit-limit-requests", "10"},
                        {"x-ratelimit-remaining-requests", "8"},
                        {"x-ratelimit-reset-requests", "12s"},
                        {"x-ratelimit-limit-tokens", "1000"},
                        {"x-ratelimit-remaining-tokens", std::to_string(1000 - e)},
                        {"x-ratelimit-reset-tokens", FormatResetDuration(milliseconds(60 * e))}}));
}

TEST_F(RateLimitsTest, PerApiKeyKeysAreIndependent) {
  GatewayPlugin(RateLimiter(R"({"per_api_key": {"limit": 1, "window": "1m"}})"));
  EXPECT_TRUE(AdmitKey("k1").admitted);
  Admission refused = AdmitKey("k1");
  EXPECT_FALSE(refused.admitted);
  EXPECT_EQ(refused.message, "per_api_key rate limit exceeded: 1 requests per 1m0s");
  EXPECT_EQ(refused.retry_after, 60000ms);
  EXPECT_TRUE(AdmitKey("k2").admitted);
  EXPECT_FALSE(AdmitKey("k2").admitted);
}

TEST_F(RateLimitsTest, PerIpByClientIp) {
  GatewayPlugin(RateLimiter(R"({"per_ip": {"limit": 1, "window": "10s"}})"));
  EXPECT_TRUE(Admit(Who{.key = "k1", .ip = "1.1.1.1"}).admitted);
  EXPECT_FALSE(Admit(Who{.key = "k2", .ip = "1.1.1.1"}).admitted);  // the key does not matter
  EXPECT_TRUE(Admit(Who{.key = "k1", .ip = "2.2.2.2"}).admitted);
}

TEST_F(RateLimitsTest, PerUserSkipsAnonymousRequests) {
  GatewayPlugin(RateLimiter(R"({"per_user": {"limit": 1, "window": "1m"}})"));
  for (int i = 0; i < 3; ++i) {
    Admission a = Admit(Who{.user = ""});
    EXPECT_TRUE(a.admitted) << i;
    EXPECT_FALSE(a.requests);  // no limit applied: nothing to show
  }
  EXPECT_TRUE(Admit(Who{.user = "u1"}).admitted);
  Admission refused = Admit(Who{.user = "u1"});
  EXPECT_FALSE(refused.admitted);
  EXPECT_EQ(refused.message, "per_user rate limit exceeded: 1 requests per 1m0s");
  EXPECT_TRUE(Admit(Who{.user = "u2"}).admitted);
  EXPECT_TRUE(Admit(Who{.user = ""}).admitted);
}

TEST_F(RateLimitsTest, PerModel) {
  GatewayPlugin(RateLimiter(R"({"per_model": {"limit": 1, "window": "1m"}})"));
  EXPECT_TRUE(Admit(Who{.key = "k1", .model = "gpt-4"}).admitted);
  EXPECT_FALSE(Admit(Who{.key = "k2", .model = "gpt-4"}).admitted);
  EXPECT_TRUE(Admit(Who{.key = "k1", .model = "gpt-4o-mini"}).admitted);
}

// per_api_key runs before global (narrowest first); a refusal by global gives
// back the per-key unit, so refusals never drain the per-key bucket.
TEST_F(RateLimitsTest, RefusalBySecondLimitGivesBackTheFirstsUnit) {
  GatewayPlugin(RateLimiter(R"({"per_api_key": {"limit": 2, "window": "1h"},
                                "global": {"limit": 1, "window": "1m"}})"));
  Admission first = Admit();
  ASSERT_TRUE(first.admitted);
  EXPECT_EQ(first.requests->limit, 1);  // the tighter of the two: global, 0 left
  EXPECT_EQ(first.requests->remaining, 0);
  for (int i = 0; i < 3; ++i) {
    Admission refused = Admit();
    EXPECT_FALSE(refused.admitted);
    EXPECT_EQ(refused.message, "global rate limit exceeded: 1 requests per 1m0s");
  }
  // Global is full again after 1 m; the per-key bucket (one unit per 30 m)
  // still has the unit the refusals took and gave back.
  clock_.Advance(60s);
  Admission second = Admit();
  EXPECT_TRUE(second.admitted);
  clock_.Advance(60s);
  Admission third = Admit();
  EXPECT_FALSE(third.admitted);
  EXPECT_EQ(third.message, "per_api_key rate limit exceeded: 2 requests per 1h0m0s");
  EXPECT_EQ(third.retry_after, milliseconds(30 * 60000 - 2 * 60000));
}

TEST_F(RateLimitsTest, ConfiguredRetryAfterInRefusalHeaders) {
  // TrustGate's example entry, as documented.
  GatewayPlugin(R"({"name": "rate_limiter", "enabled": true, "stage": "pre_request",
      "priority": 1, "level": "gateway", "parallel": false,
      "settings": {"limits": {"global": {"limit": 1, "window": "1m"}},
                   "actions": {"type": "reject", "retry_after": "60"}}})");
  EXPECT_TRUE(Admit().admitted);
  Admission refused = Admit();
  EXPECT_FALSE(refused.admitted);
  ASSERT_TRUE(refused.configured_retry_after);
  EXPECT_EQ(*refused.configured_retry_after, 60s);
  const HeaderList h = refused.Headers(true);
  EXPECT_TRUE(HasHeader(h, "Retry-After", "60"));
  EXPECT_TRUE(HasHeader(h, "retry-after-ms", "60000"));
  EXPECT_FALSE(HasHeaderNamed(h, "x-should-retry"));
  EXPECT_FALSE(HasHeaderNamed(refused.Headers(false), "Retry-After"));
}

TEST_F(RateLimitsTest, DisabledPluginIsNotEnforced) {
  GatewayPlugin(
      RateLimiter(R"({"global": {"limit": 1, "window": "1m"}})", R"("enabled": false, )"));
  EXPECT_TRUE(RateLimits::Applies(&gateway_, &rule_));
  for (int i = 0; i < 3; ++i) {
    Admission a = Admit();
    EXPECT_TRUE(a.admitted);
    EXPECT_FALSE(a.limited);
  }
  EXPECT_EQ(store_.size(), 0u);
}

TEST_F(RateLimitsTest, GatewayAndRulePluginsBothApply) {
  GatewayPlugin(RateLimiter(R"({"global": {"limit": 2, "window": "1m"}})"));
  RulePlugin(RateLimiter(R"({"per_api_key": {"limit": 1, "window": "1m"}})"));
  EXPECT_TRUE(AdmitKey("k1").admitted);
  Admission by_rule = AdmitKey("k1");
  EXPECT_FALSE(by_rule.admitted);
  EXPECT_EQ(by_rule.message, "per_api_key rate limit exceeded: 1 requests per 1m0s");
  Admission second = AdmitKey("k2");  // the global unit given back by k1's refusal
  EXPECT_TRUE(second.admitted);
  EXPECT_EQ(second.requests->remaining, 0);
  Admission by_gateway = AdmitKey("k3");
  EXPECT_FALSE(by_gateway.admitted);
  EXPECT_EQ(by_gateway.message, "global rate limit exceeded: 2 requests per 1m0s");
}

// docs/API.md: "the gateway's required_plugins, then the rule's plugin_chain;
// in each list by priority, then position". Which entry refuses first decides
// the 429 (its message and its actions.retry_after).
TEST_F(RateLimitsTest, GatewayPluginsRunBeforeRulePluginsWhateverTheirPriority) {
  GatewayPlugin(R"({"name": "rate_limiter", "priority": 5, "settings": {
      "limits": {"global": {"limit": 1, "window": "1m"}}, "actions": {"retry_after": "60"}}})");
  RulePlugin(R"({"name": "rate_limiter", "priority": 0, "settings": {
      "limits": {"global": {"limit": 1, "window": "1m"}}, "actions": {"retry_after": "7"}}})");
  EXPECT_TRUE(Admit().admitted);
  Admission refused = Admit();
  EXPECT_FALSE(refused.admitted);
  ASSERT_TRUE(refused.configured_retry_after);
  EXPECT_EQ(*refused.configured_retry_after, 60s);  // the gateway's entry refused
}

TEST_F(RateLimitsTest, WithinAListLowerPriorityRunsFirst) {
  RulePlugin(R"({"name": "rate_limiter", "priority": 2, "settings": {
      "limits": {"global": {"limit": 1, "window": "1m"}}, "actions": {"retry_after": "60"}}})");
  RulePlugin(R"({"name": "rate_limiter", "priority": 1, "settings": {
      "limits": {"global": {"limit": 1, "window": "1m"}}, "actions": {"retry_after": "7"}}})");
  EXPECT_TRUE(Admit().admitted);
  Admission refused = Admit();
  EXPECT_FALSE(refused.admitted);
  ASSERT_TRUE(refused.configured_retry_after);
  EXPECT_EQ(*refused.configured_retry_after, 7s);
}

TEST_F(RateLimitsTest, ChainCacheFollowsTheRevision) {
  GatewayPlugin(RateLimiter(R"({"per_api_key": {"limit": 1, "window": "1m"}})"));
  EXPECT_EQ(AdmitKey("k1").requests->limit, 1);
  *gateway_.mutable_required_plugins(0) =
      PluginFromJson(RateLimiter(R"({"per_api_key": {"limit": 3, "window": "1m"}})"));
  EXPECT_EQ(AdmitKey("k2").requests->limit, 1);  // same revision: the compiled chain stands
  ++revision_;
  for (int64_t i = 0; i < 3; ++i) {
    Admission a = AdmitKey("k3");
    ASSERT_TRUE(a.admitted) << i;
    EXPECT_EQ(a.requests->limit, 3);
    EXPECT_EQ(a.requests->remaining, 2 - i);
  }
  EXPECT_FALSE(AdmitKey("k3").admitted);
}

// ------------------------------------------------------------- token_rate_limiter

TEST_F(RateLimitsTest, TokenLimiterTakesThePromptEstimate) {
  RulePlugin(TokenLimiter(R"({"tokens_per_minute": 1000})"));
  const int64_t e = Estimate();
  ASSERT_GT(e, 10);
  Admission a = Admit();
  ASSERT_TRUE(a.admitted);
  EXPECT_TRUE(a.limited);
  EXPECT_EQ(a.estimated_tokens, e);
  ASSERT_EQ(a.token_buckets.size(), 1u);
  ASSERT_TRUE(a.tokens);
  EXPECT_EQ(a.tokens->limit, 1000);
  EXPECT_EQ(a.tokens->remaining, 1000 - e);
  EXPECT_EQ(a.tokens->reset, milliseconds(60 * e));  // 1000 per minute: one per 60 ms
  EXPECT_FALSE(a.requests);
  EXPECT_EQ(a.Headers(false).size(), 3u);
  EXPECT_EQ(Admit().tokens->remaining, 1000 - 2 * e);
}

TEST_F(RateLimitsTest, TokenLimiterWaitsForTheTokensItNeeds) {
  const int64_t e = Estimate();
  RulePlugin(TokenLimiter(R"({"tokens_per_minute": 600, "bucket_size": )" +
                          std::to_string(e + e / 2) + "}"));
  EXPECT_TRUE(Admit().admitted);  // e / 2 left (rounded down)
  Admission refused = Admit();
  EXPECT_FALSE(refused.admitted);
  EXPECT_TRUE(refused.can_retry);
  EXPECT_EQ(refused.limit_type, "tokens");
  ASSERT_TRUE(refused.tokens);
  EXPECT_EQ(refused.tokens->remaining, e + e / 2 - e);
  // 600 per minute: one token per 100 ms, and e - remaining are missing.
  EXPECT_EQ(refused.retry_after, milliseconds(100 * (e - (e + e / 2 - e))));
  EXPECT_TRUE(refused.token_buckets.empty());
  EXPECT_TRUE(HasHeaderNamed(refused.Headers(true), "Retry-After"));
}

TEST_F(RateLimitsTest, TokensPerRequestExceededCannotBeRetried) {
  // A request bucket in the same entry shows that the refusal gives its unit back.
  RulePlugin(TokenLimiter(
      R"({"tokens_per_minute": 100000, "tokens_per_request": 10, "requests_per_minute": 1})"));
  const int64_t e = Estimate();
  ASSERT_GT(e, 10);
  for (int i = 0; i < 2; ++i) {
    Admission refused = Admit();
    EXPECT_FALSE(refused.admitted);
    EXPECT_FALSE(refused.can_retry);
    EXPECT_EQ(refused.limit_type, "tokens");
    EXPECT_EQ(refused.message, "request too large: about " + std::to_string(e) +
                                   " prompt tokens, over the limit of 10 tokens per request");
    const HeaderList h = refused.Headers(true);
    EXPECT_TRUE(HasHeader(h, "x-should-retry", "false"));
    EXPECT_FALSE(HasHeaderNamed(h, "Retry-After"));
    EXPECT_FALSE(HasHeaderNamed(h, "retry-after-ms"));
  }
  const std::string small =
      R"({"model": "gpt-4", "messages": [{"role": "user", "content": "Hi"}]})";
  ASSERT_LE(EstimateRequestTokens(small, kChat).prompt, 10);
  EXPECT_TRUE(Admit(Who{.body = small}).admitted);  // the request unit was given back
  EXPECT_FALSE(Admit(Who{.body = small}).admitted);
}

TEST_F(RateLimitsTest, EstimateOverBucketSizeCannotBeRetried) {
  RulePlugin(TokenLimiter(R"({"tokens_per_minute": 1000, "bucket_size": 3})"));
  const int64_t e = Estimate();
  Admission refused = Admit();
  EXPECT_FALSE(refused.admitted);
  EXPECT_FALSE(refused.can_retry);
  EXPECT_EQ(refused.message, "request too large: about " + std::to_string(e) +
                                 " prompt tokens, over the limit of 3 tokens at once");
  const HeaderList h = refused.Headers(true);
  EXPECT_TRUE(HasHeader(h, "x-should-retry", "false"));
  EXPECT_FALSE(HasHeaderNamed(h, "Retry-After"));
}

TEST_F(RateLimitsTest, TokenLimiterRequestsPerMinute) {
  RulePlugin(TokenLimiter(R"({"tokens_per_minute": 100000, "requests_per_minute": 2})"));
  Admission a = Admit();
  ASSERT_TRUE(a.admitted);
  ASSERT_TRUE(a.requests);
  EXPECT_EQ(a.requests->limit, 2);
  EXPECT_EQ(a.Headers(false).size(), 6u);
  EXPECT_TRUE(Admit().admitted);
  Admission refused = Admit();
  EXPECT_FALSE(refused.admitted);
  EXPECT_TRUE(refused.can_retry);
  EXPECT_EQ(refused.limit_type, "requests");
  EXPECT_EQ(refused.message, "rate limit exceeded: 2 requests per minute");
  EXPECT_EQ(refused.retry_after, 30000ms);
}

TEST_F(RateLimitsTest, SettleTakesTheDifferenceWhenMoreWasUsed) {
  RulePlugin(TokenLimiter(R"({"tokens_per_minute": 1000})"));
  const int64_t e = Estimate();
  Admission a = Admit();
  limits_.Settle(a, e + 100);
  EXPECT_TRUE(a.settled);
  EXPECT_EQ(Admit().tokens->remaining, 1000 - e - 100 - e);
}

TEST_F(RateLimitsTest, SettleGivesBackWhenLessWasUsed) {
  RulePlugin(TokenLimiter(R"({"tokens_per_minute": 1000})"));
  const int64_t e = Estimate();
  ASSERT_GT(e, 10);
  Admission a = Admit();
  limits_.Settle(a, 10);
  EXPECT_EQ(Admit().tokens->remaining, 1000 - 10 - e);
}

TEST_F(RateLimitsTest, SettleWithUnknownUsageLeavesTheEstimate) {
  RulePlugin(TokenLimiter(R"({"tokens_per_minute": 1000})"));
  const int64_t e = Estimate();
  Admission a = Admit();
  limits_.Settle(a, -1);
  EXPECT_TRUE(a.settled);
  EXPECT_EQ(Admit().tokens->remaining, 1000 - 2 * e);
}

TEST_F(RateLimitsTest, SettleTwiceIsANoOp) {
  RulePlugin(TokenLimiter(R"({"tokens_per_minute": 1000})"));
  const int64_t e = Estimate();
  Admission a = Admit();
  limits_.Settle(a, e + 100);
  limits_.Settle(a, e + 500);
  limits_.Settle(a, 0);
  EXPECT_EQ(Admit().tokens->remaining, 1000 - e - 100 - e);
}

TEST_F(RateLimitsTest, SettleOfARefusalDoesNothing) {
  GatewayPlugin(RateLimiter(R"({"per_api_key": {"limit": 1, "window": "1h"}})"));
  RulePlugin(TokenLimiter(R"({"tokens_per_minute": 1000, "scope": "gateway"})"));
  const int64_t e = Estimate();
  EXPECT_TRUE(AdmitKey("k1").admitted);
  Admission refused = AdmitKey("k1");
  ASSERT_FALSE(refused.admitted);
  limits_.Settle(refused, 500);
  EXPECT_FALSE(refused.settled);
  EXPECT_EQ(AdmitKey("k2").tokens->remaining, 1000 - 2 * e);
}

TEST_F(RateLimitsTest, TokenScopeGatewaySharesOneBucketAcrossKeys) {
  RulePlugin(TokenLimiter(R"({"tokens_per_minute": 1000, "scope": "gateway"})"));
  const int64_t e = Estimate();
  EXPECT_EQ(AdmitKey("k1").tokens->remaining, 1000 - e);
  EXPECT_EQ(AdmitKey("k2").tokens->remaining, 1000 - 2 * e);
}

TEST_F(RateLimitsTest, TokenScopeApiKeyIsPerKey) {
  RulePlugin(TokenLimiter(R"({"tokens_per_minute": 1000, "scope": "api_key"})"));
  const int64_t e = Estimate();
  EXPECT_EQ(AdmitKey("k1").tokens->remaining, 1000 - e);
  EXPECT_EQ(AdmitKey("k2").tokens->remaining, 1000 - e);
  EXPECT_EQ(AdmitKey("k1").tokens->remaining, 1000 - 2 * e);
}

TEST_F(RateLimitsTest, TokenScopeModelIsPerModel) {
  RulePlugin(TokenLimiter(R"({"tokens_per_minute": 1000, "scope": "model"})"));
  const int64_t e = Estimate();
  EXPECT_EQ(Admit(Who{.key = "k1", .model = "gpt-4"}).tokens->remaining, 1000 - e);
  EXPECT_EQ(Admit(Who{.key = "k2", .model = "gpt-4"}).tokens->remaining, 1000 - 2 * e);
  EXPECT_EQ(Admit(Who{.key = "k1", .model = "gpt-4o"}).tokens->remaining, 1000 - e);
}

// ------------------------------------------------------------- targets

tg::v1::Target MakeTarget(std::string id, std::optional<int32_t> rpm, std::optional<int32_t> tpm) {
  tg::v1::Target t;
  t.set_id(std::move(id));
  if (rpm) t.set_requests_per_minute(*rpm);
  if (tpm) t.set_tokens_per_minute(*tpm);
  return t;
}

TEST_F(RateLimitsTest, TargetRequestsPerMinute) {
  const tg::v1::Target t = MakeTarget("t1", 2, std::nullopt);
  EXPECT_EQ(limits_.TakeTarget("u1", t, 10), std::nullopt);
  EXPECT_EQ(limits_.TakeTarget("u1", t, 10), std::nullopt);
  EXPECT_EQ(limits_.TakeTarget("u1", t, 10), std::optional<milliseconds>(30000ms));
  EXPECT_EQ(limits_.TakeTarget("u2", t, 10), std::nullopt);  // same id, another upstream
  clock_.Advance(30s);
  EXPECT_EQ(limits_.TakeTarget("u1", t, 10), std::nullopt);
  EXPECT_TRUE(limits_.TakeTarget("u1", t, 10));
}

TEST_F(RateLimitsTest, TargetTokensPerMinute) {
  const tg::v1::Target t = MakeTarget("t1", std::nullopt, 100);  // one token per 600 ms
  EXPECT_EQ(limits_.TakeTarget("u1", t, 60), std::nullopt);
  EXPECT_EQ(limits_.TakeTarget("u1", t, 60), std::optional<milliseconds>(12000ms));
  EXPECT_EQ(limits_.TakeTarget("u1", t, 40), std::nullopt);
  EXPECT_EQ(limits_.TakeTarget("u1", t, 1), std::optional<milliseconds>(600ms));

  // More than the whole quota takes the whole quota (it can never fit otherwise).
  const tg::v1::Target big = MakeTarget("t2", std::nullopt, 100);
  EXPECT_EQ(limits_.TakeTarget("u1", big, 1000), std::nullopt);
  EXPECT_TRUE(limits_.TakeTarget("u1", big, 1));
}

TEST_F(RateLimitsTest, TargetTokenRefusalGivesBackTheRequestUnit) {
  const tg::v1::Target t = MakeTarget("t1", 2, 100);
  EXPECT_EQ(limits_.TakeTarget("u1", t, 50), std::nullopt);
  EXPECT_TRUE(limits_.TakeTarget("u1", t, 60));              // tokens refuse
  EXPECT_EQ(limits_.TakeTarget("u1", t, 50), std::nullopt);  // the second request unit is there
  EXPECT_TRUE(limits_.TakeTarget("u1", t, 1));
}

TEST_F(RateLimitsTest, SettleTargetTakesOrGivesTheDifference) {
  const tg::v1::Target t = MakeTarget("t1", std::nullopt, 100);
  EXPECT_EQ(limits_.TakeTarget("u1", t, 50), std::nullopt);
  limits_.SettleTarget("u1", t, 50, 80);  // 20 left
  EXPECT_TRUE(limits_.TakeTarget("u1", t, 21));
  EXPECT_EQ(limits_.TakeTarget("u1", t, 20), std::nullopt);

  const tg::v1::Target t2 = MakeTarget("t2", std::nullopt, 100);
  EXPECT_EQ(limits_.TakeTarget("u1", t2, 50), std::nullopt);
  limits_.SettleTarget("u1", t2, 50, 10);  // 90 left
  limits_.SettleTarget("u1", t2, 50, -1);  // unknown: nothing
  EXPECT_TRUE(limits_.TakeTarget("u1", t2, 91));
  EXPECT_EQ(limits_.TakeTarget("u1", t2, 90), std::nullopt);
}

TEST_F(RateLimitsTest, BlockTargetRefusesAndCools) {
  const tg::v1::Target t = MakeTarget("t1", 2, std::nullopt);
  milliseconds left{0};
  EXPECT_FALSE(limits_.TargetCooling("u1", "t1", &left));
  limits_.BlockTarget("u1", t, 10s);
  const auto wait = limits_.TakeTarget("u1", t, 1);
  ASSERT_TRUE(wait);
  // Empty for 10 s, then refilled at its rate: the first unit after 30 s more.
  EXPECT_EQ(*wait, 40000ms);
  ASSERT_TRUE(limits_.TargetCooling("u1", "t1", &left));
  EXPECT_GT(left, 9000ms);  // the real steady clock: some of it may have passed
  EXPECT_LE(left, 10000ms);
  EXPECT_FALSE(limits_.TargetCooling("u1", "t2", &left));
  EXPECT_FALSE(limits_.TargetCooling("u2", "t1", &left));
  clock_.Advance(40s);
  EXPECT_EQ(limits_.TakeTarget("u1", t, 1), std::nullopt);
}

TEST_F(RateLimitsTest, CoolTargetKeepsTheLongerAndEnds) {
  milliseconds left{0};
  limits_.CoolTarget("u1", "t1", 0ms);
  EXPECT_FALSE(limits_.TargetCooling("u1", "t1", &left));
  limits_.CoolTarget("u1", "t1", 20s);
  limits_.CoolTarget("u1", "t1", 1s);  // a shorter one does not shorten it
  ASSERT_TRUE(limits_.TargetCooling("u1", "t1", &left));
  EXPECT_GT(left, 19000ms);
  EXPECT_TRUE(limits_.TargetCooling("u1", "t1", nullptr));

  limits_.CoolTarget("u1", "t2", 1ms);
  std::this_thread::sleep_for(5ms);
  EXPECT_FALSE(limits_.TargetCooling("u1", "t2", &left));
}

TEST_F(RateLimitsTest, TargetWithoutQuotasIsNeverRefused) {
  const tg::v1::Target t = MakeTarget("t1", std::nullopt, std::nullopt);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(limits_.TakeTarget("u1", t, 1'000'000), std::nullopt);
  limits_.BlockTarget("u1", t, 10s);  // cools it, but there is no bucket to block
  EXPECT_EQ(limits_.TakeTarget("u1", t, 1), std::nullopt);
  EXPECT_TRUE(limits_.TargetCooling("u1", "t1", nullptr));
  limits_.SettleTarget("u1", t, 1, 1'000'000);
  EXPECT_EQ(limits_.TakeTarget("u1", t, 1), std::nullopt);
  EXPECT_EQ(store_.size(), 0u);
}

}  // namespace
}  // namespace tg::edge
