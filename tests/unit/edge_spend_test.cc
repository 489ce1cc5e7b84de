// Prices (the built-in table, a gateway's overrides), costs, budget periods
// and the ledger on this edge's memory alone (the Redis side:
// tests/integration/spend_redis_it_test.cc).
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <limits>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tg/edge/spend.h"

namespace tg::edge {
namespace {

using namespace std::chrono_literals;
using std::chrono::system_clock;

constexpr int64_t kMax = std::numeric_limits<int64_t>::max();

// 2026-12-05T13:45:10Z and friends.
system_clock::time_point Utc(int y, unsigned m, unsigned d, int hh = 0, int mm = 0, int ss = 0) {
  using namespace std::chrono;
  return sys_days(year(y) / month(m) / day(d)) + hours(hh) + minutes(mm) + seconds(ss);
}

void ExpectPrice(std::string_view model, double in, double out) {
  const std::optional<Price> p = DefaultPrice(model);
  ASSERT_TRUE(p) << model;
  EXPECT_DOUBLE_EQ(p->input_per_million, in) << model;
  EXPECT_DOUBLE_EQ(p->output_per_million, out) << model;
}

TEST(DefaultPriceTest, ExactNames) {
  ExpectPrice("gpt-4o", 2.50, 10.00);
  ExpectPrice("gpt-4o-mini", 0.15, 0.60);
  ExpectPrice("gpt-4.1", 2.00, 8.00);
  ExpectPrice("gpt-4", 30.00, 60.00);
  ExpectPrice("o1", 15.00, 60.00);
  ExpectPrice("claude-3-5-sonnet", 3.00, 15.00);
  ExpectPrice("gemini-1.5-flash", 0.075, 0.30);
  ExpectPrice("text-embedding-3-small", 0.02, 0);
  ExpectPrice("text-embedding-004", 0, 0);  // known, and free
}

TEST(DefaultPriceTest, DatedAndVersionedNamesFindTheirModel) {
  ExpectPrice("gpt-4o-mini-2024-07-18", 0.15, 0.60);  // not gpt-4o
  ExpectPrice("gpt-4o-2024-08-06", 2.50, 10.00);
  ExpectPrice("gpt-4o-2024-05-13", 5.00, 15.00);       // an entry of its own
  ExpectPrice("gpt-4.1-mini-2025-04-14", 0.40, 1.60);  // not gpt-4 (by '.')
  ExpectPrice("gpt-4-turbo-2024-04-09", 10.00, 30.00);
  ExpectPrice("gpt-4-0613", 30.00, 60.00);
  ExpectPrice("gpt-3.5-turbo-0125", 0.50, 1.50);
  ExpectPrice("o1-mini-2024-09-12", 1.10, 4.40);  // not o1
  ExpectPrice("o1-2024-12-17", 15.00, 60.00);
  ExpectPrice("o3-mini-2025-01-31", 1.10, 4.40);
  ExpectPrice("claude-3-5-sonnet-20241022", 3.00, 15.00);
  ExpectPrice("claude-3-5-sonnet-latest", 3.00, 15.00);
  ExpectPrice("claude-3-5-haiku-20241022", 0.80, 4.00);
  ExpectPrice("claude-3-haiku-20240307", 0.25, 1.25);
  ExpectPrice("claude-sonnet-4-20250514", 3.00, 15.00);
  ExpectPrice("claude-opus-4-1-20250805", 15.00, 75.00);
  ExpectPrice("claude-opus-4-5-20251101", 5.00, 25.00);
  ExpectPrice("claude-3-5-sonnet-v2@20241022", 3.00, 15.00);  // Vertex AI
  ExpectPrice("claude-3-opus@20240229", 15.00, 75.00);
  ExpectPrice("gemini-1.5-pro-002", 1.25, 5.00);
  ExpectPrice("gemini-1.5-flash-8b-001", 0.0375, 0.15);  // not gemini-1.5-flash
  ExpectPrice("gemini-2.0-flash-001", 0.10, 0.40);
  ExpectPrice("gemini-2.5-flash-preview-05-20", 0.30, 2.50);
}

TEST(DefaultPriceTest, BedrockIdsAndInferenceProfiles) {
  ExpectPrice("anthropic.claude-3-5-sonnet-20240620-v1:0", 3.00, 15.00);
  ExpectPrice("anthropic.claude-3-5-sonnet-20241022-v2:0", 3.00, 15.00);
  ExpectPrice("anthropic.claude-3-haiku-20240307-v1:0", 0.25, 1.25);
  ExpectPrice("us.anthropic.claude-3-7-sonnet-20250219-v1:0", 3.00, 15.00);
  ExpectPrice("eu.anthropic.claude-3-5-sonnet-20240620-v1:0", 3.00, 15.00);
  ExpectPrice("apac.anthropic.claude-sonnet-4-20250514-v1:0", 3.00, 15.00);
  ExpectPrice("us.anthropic.claude-opus-4-20250514-v1:0", 15.00, 75.00);
  ExpectPrice("amazon.titan-embed-text-v2:0", 0.02, 0);
  ExpectPrice("amazon.nova-pro-v1:0", 0.80, 3.20);
  ExpectPrice("us.amazon.nova-lite-v1:0", 0.06, 0.24);
  ExpectPrice("cohere.embed-english-v3", 0.10, 0);
}

TEST(DefaultPriceTest, UnknownNames) {
  for (std::string_view model :
       {"", "foo", "gpt-4ox", "gpt-4o_mini", "xgpt-4o", "GPT-4O", "us.", "us.foo", "eu.gpt-5x",
        "anthropic.claude-v2", "ca.anthropic.claude-3-5-sonnet-20240620-v1:0", "claude"}) {
    EXPECT_FALSE(DefaultPrice(model)) << model;
  }
  EXPECT_FALSE(DefaultPrice("gpt-4o-" + std::string(300, 'x')));  // too long to look at
}

TEST(DefaultPriceTest, EveryEntryIsFoundWithItsOwnPrice) {
  const auto table = DefaultPriceTable();
  ASSERT_GE(table.size(), 25u);
  std::set<std::string_view> names;
  for (const auto& [name, price] : table) {
    EXPECT_TRUE(names.insert(name).second) << "duplicate " << name;
    EXPECT_GE(price.input_per_million, 0) << name;
    EXPECT_GE(price.output_per_million, 0) << name;
    ExpectPrice(name, price.input_per_million, price.output_per_million);
    const std::string dated = std::string(name) + "-20250101";
    ExpectPrice(dated, price.input_per_million, price.output_per_million);
  }
  for (std::string_view required : {"gpt-4o",
                                    "gpt-4o-mini",
                                    "gpt-4.1",
                                    "gpt-4.1-mini",
                                    "gpt-4-turbo",
                                    "gpt-4",
                                    "gpt-3.5-turbo",
                                    "o1",
                                    "o3-mini",
                                    "text-embedding-3-small",
                                    "text-embedding-3-large",
                                    "text-embedding-ada-002",
                                    "claude-3-5-sonnet",
                                    "claude-3-7-sonnet",
                                    "claude-sonnet-4",
                                    "claude-3-5-haiku",
                                    "claude-3-haiku",
                                    "claude-3-opus",
                                    "claude-opus-4",
                                    "gemini-1.5-pro",
                                    "gemini-1.5-flash",
                                    "gemini-2.0-flash",
                                    "gemini-2.5-pro",
                                    "gemini-2.5-flash",
                                    "text-embedding-004",
                                    "anthropic.claude-3-5-sonnet",
                                    "amazon.titan-embed-text-v2",
                                    "cohere.embed-english-v3"}) {
    EXPECT_TRUE(names.count(required)) << required;
  }
}

tg::v1::Gateway GatewayWithPrices() {
  tg::v1::Gateway gw;
  auto& prices = *gw.mutable_model_prices();
  prices["gpt-4o"].set_input_per_million(2.0);
  prices["gpt-4o"].set_output_per_million(8.0);
  prices["claude-3-5-sonnet"].set_output_per_million(12.0);  // input from the table
  prices["my-llama"].set_input_per_million(0.5);             // output: 0
  prices["anthropic.claude-3-haiku"].set_input_per_million(0.2);
  prices["gpt-4"].set_input_per_million(1.0);
  return gw;
}

TEST(PriceOfTest, GatewayOverridesFirst) {
  const tg::v1::Gateway gw = GatewayWithPrices();
  auto p = PriceOf(gw, "gpt-4o");
  ASSERT_TRUE(p);
  EXPECT_DOUBLE_EQ(p->input_per_million, 2.0);
  EXPECT_DOUBLE_EQ(p->output_per_million, 8.0);
  p = PriceOf(gw, "gpt-4o-2024-08-06");  // same matching rules
  ASSERT_TRUE(p);
  EXPECT_DOUBLE_EQ(p->input_per_million, 2.0);
  p = PriceOf(gw, "us.anthropic.claude-3-haiku-20240307-v1:0");
  ASSERT_TRUE(p);
  EXPECT_DOUBLE_EQ(p->input_per_million, 0.2);
  EXPECT_DOUBLE_EQ(p->output_per_million, 1.25);
}

TEST(PriceOfTest, PartialOverrideTakesTheRestFromTheTableElseZero) {
  const tg::v1::Gateway gw = GatewayWithPrices();
  auto p = PriceOf(gw, "claude-3-5-sonnet-20241022");
  ASSERT_TRUE(p);
  EXPECT_DOUBLE_EQ(p->input_per_million, 3.0);
  EXPECT_DOUBLE_EQ(p->output_per_million, 12.0);
  p = PriceOf(gw, "my-llama");  // not in the table
  ASSERT_TRUE(p);
  EXPECT_DOUBLE_EQ(p->input_per_million, 0.5);
  EXPECT_DOUBLE_EQ(p->output_per_million, 0.0);
  p = PriceOf(gw, "my-llama:8b");
  ASSERT_TRUE(p);
  EXPECT_DOUBLE_EQ(p->input_per_million, 0.5);
}

TEST(PriceOfTest, ALessSpecificOverrideLeavesAModelWithItsOwnEntry) {
  const tg::v1::Gateway gw = GatewayWithPrices();
  auto p = PriceOf(gw, "gpt-4o-mini-2024-07-18");  // "gpt-4o" overridden, "gpt-4o-mini" is not
  ASSERT_TRUE(p);
  EXPECT_DOUBLE_EQ(p->input_per_million, 0.15);
  EXPECT_DOUBLE_EQ(p->output_per_million, 0.60);
  p = PriceOf(gw, "gpt-4-turbo");
  ASSERT_TRUE(p);
  EXPECT_DOUBLE_EQ(p->input_per_million, 10.0);
  p = PriceOf(gw, "gpt-4-0613");  // as specific as the table's "gpt-4": the override
  ASSERT_TRUE(p);
  EXPECT_DOUBLE_EQ(p->input_per_million, 1.0);
  EXPECT_DOUBLE_EQ(p->output_per_million, 60.0);
}

TEST(PriceOfTest, FallsBackToTheTableThenUnknown) {
  const tg::v1::Gateway gw = GatewayWithPrices();
  auto p = PriceOf(gw, "gemini-2.0-flash");
  ASSERT_TRUE(p);
  EXPECT_DOUBLE_EQ(p->input_per_million, 0.10);
  EXPECT_FALSE(PriceOf(gw, "mystery-model"));
  EXPECT_FALSE(PriceOf(tg::v1::Gateway(), "mystery-model"));
  EXPECT_TRUE(PriceOf(tg::v1::Gateway(), "gpt-4o"));
}

TEST(CostMicrosTest, RoundsUpToTheMicroDollar) {
  const Price mini{0.15, 0.60};
  EXPECT_EQ(CostMicros(mini, 1000, 0), 150);  // exactly, no floating-point excess
  EXPECT_EQ(CostMicros(mini, 0, 1000), 600);
  EXPECT_EQ(CostMicros(mini, 1000, 1000), 750);
  EXPECT_EQ(CostMicros(mini, 1, 0), 1);                                     // 0.15 micro-dollars
  EXPECT_EQ(CostMicros(mini, 7, 0), 2);                                     // 1.05
  EXPECT_EQ(CostMicros(Price{2.5, 10}, 3, 0), 8);                           // 7.5
  EXPECT_EQ(CostMicros(Price{2.5, 10}, 1'000'000, 1'000'000), 12'500'000);  // $12.50
  EXPECT_EQ(CostMicros(Price{0.0375, 0.15}, 1'000'000, 0), 37'500);
  EXPECT_EQ(CostMicros(mini, 0, 0), 0);
  EXPECT_EQ(CostMicros(Price{}, 1'000'000, 1'000'000), 0);
}

TEST(CostMicrosTest, NeverNegative) {
  EXPECT_EQ(CostMicros(Price{1, 1}, -5, -5), 0);
  EXPECT_EQ(CostMicros(Price{-1, -2}, 1000, 1000), 0);
  EXPECT_EQ(CostMicros(Price{std::nan(""), 1}, 1000, 1000), 1000);
  EXPECT_EQ(CostMicros(Price{1, 1}, kMax, -1), kMax);
}

TEST(CostMicrosTest, SaturatesInsteadOfOverflowing) {
  EXPECT_EQ(CostMicros(Price{1e6, 1e6}, kMax, kMax), kMax);
  EXPECT_EQ(CostMicros(Price{1e300, 0}, 2, 0), kMax);
  EXPECT_EQ(CostMicros(Price{std::numeric_limits<double>::infinity(), 0}, 1, 0), kMax);
  EXPECT_EQ(CostMicros(Price{0, 0}, kMax, kMax), 0);
  // 9.2e12 tokens at $1M per million: 9.2e18 micro-dollars, still below the limit.
  EXPECT_EQ(CostMicros(Price{1e6, 0}, 9'200'000'000'000, 0), 9'200'000'000'000'000'000);
  EXPECT_EQ(CostMicros(Price{1e6, 0}, 9'300'000'000'000, 0), kMax);
}

TEST(PeriodOfTest, DailyAndMonthlyIdsAndEnds) {
  const auto now = Utc(2026, 12, 5, 13, 45, 10);
  Period d = PeriodOf("daily", now);
  EXPECT_EQ(d.id, "d20261205");
  EXPECT_EQ(d.end, Utc(2026, 12, 6));
  Period m = PeriodOf("monthly", now);
  EXPECT_EQ(m.id, "m202612");
  EXPECT_EQ(m.end, Utc(2027, 1, 1));  // December rolls over into January
  EXPECT_EQ(PeriodOf("", now).id, "m202612");
  EXPECT_EQ(PeriodOf("", now).end, Utc(2027, 1, 1));

  EXPECT_EQ(PeriodOf("monthly", Utc(2026, 1, 31, 23, 59, 59)).end, Utc(2026, 2, 1));
  EXPECT_EQ(PeriodOf("daily", Utc(2026, 12, 31, 23, 59, 59)).id, "d20261231");
  EXPECT_EQ(PeriodOf("daily", Utc(2026, 12, 31, 23, 59, 59)).end, Utc(2027, 1, 1));
}

TEST(PeriodOfTest, BoundariesAndLeapDays) {
  // The first instant of a period belongs to it.
  EXPECT_EQ(PeriodOf("daily", Utc(2026, 12, 6)).id, "d20261206");
  EXPECT_EQ(PeriodOf("monthly", Utc(2027, 1, 1)).id, "m202701");
  EXPECT_EQ(PeriodOf("daily", Utc(2026, 12, 6) - 1ns).id, "d20261205");

  const Period leap = PeriodOf("daily", Utc(2024, 2, 29, 12));
  EXPECT_EQ(leap.id, "d20240229");
  EXPECT_EQ(leap.end, Utc(2024, 3, 1));
  EXPECT_EQ(PeriodOf("daily", Utc(2024, 2, 28, 12)).end, Utc(2024, 2, 29));
  EXPECT_EQ(PeriodOf("daily", Utc(2025, 2, 28, 12)).end, Utc(2025, 3, 1));
  EXPECT_EQ(PeriodOf("monthly", Utc(2024, 2, 10)).end, Utc(2024, 3, 1));
  EXPECT_EQ(PeriodOf("monthly", Utc(2024, 2, 10)).id, "m202402");
}

SpendLedger::Options LocalOptions() {
  SpendLedger::Options o;
  o.flush_interval = 10ms;
  o.refresh = 10ms;
  return o;
}

constexpr char kGw[] = "3f0c1e5a-8d1b-4c7e-9a0b-2f6d4e8c1a7b";
constexpr char kKey1[] = "k-1";
constexpr char kKey2[] = "k_2";

TEST(SpendLedgerLocalTest, AddThenGet) {
  SpendLedger ledger(LocalOptions());
  const std::string period = PeriodOf("monthly", system_clock::now()).id;
  EXPECT_FALSE(ledger.redis_up());
  EXPECT_EQ(ledger.GatewaySpent(kGw, period).usd_micros, 0);
  ledger.Add(kGw, kKey1, period, {.usd_micros = 150, .input_tokens = 1000, .requests = 1});
  ledger.Add(kGw, kKey2, period,
             {.usd_micros = 600, .input_tokens = 10, .output_tokens = 1000, .requests = 1});
  ledger.Add(kGw, kKey1, period, {.usd_micros = 1, .output_tokens = 2, .requests = 1});
  ledger.Add(kGw, "", period, {.usd_micros = 5, .requests = 1});  // no key: the gateway only

  const SpendTotals gw = ledger.GatewaySpent(kGw, period);
  EXPECT_EQ(gw.usd_micros, 756);
  EXPECT_EQ(gw.input_tokens, 1010);
  EXPECT_EQ(gw.output_tokens, 1002);
  EXPECT_EQ(gw.requests, 4);
  const SpendTotals k1 = ledger.KeySpent(kGw, kKey1, period);
  EXPECT_EQ(k1.usd_micros, 151);
  EXPECT_EQ(k1.input_tokens, 1000);
  EXPECT_EQ(k1.output_tokens, 2);
  EXPECT_EQ(k1.requests, 2);
  EXPECT_EQ(ledger.KeySpent(kGw, kKey2, period).usd_micros, 600);
  EXPECT_EQ(ledger.KeySpent(kGw, "k-3", period).usd_micros, 0);
  EXPECT_EQ(ledger.KeySpent(kGw, "", period).usd_micros, 0);

  // Another period, another gateway: apart.
  EXPECT_EQ(ledger.GatewaySpent(kGw, "m202001").usd_micros, 0);
  EXPECT_EQ(ledger.GatewaySpent("other-gw", period).usd_micros, 0);

  // Still there after the background thread ran a few times.
  std::this_thread::sleep_for(50ms);
  EXPECT_EQ(ledger.GatewaySpent(kGw, period).usd_micros, 756);
}

TEST(SpendLedgerLocalTest, ReadReportsTheLocalView) {
  SpendLedger ledger(LocalOptions());
  const std::string period = PeriodOf("daily", system_clock::now()).id;
  ledger.Add(kGw, kKey1, period, {.usd_micros = 10, .input_tokens = 1, .requests = 1});
  ledger.Add(kGw, kKey2, period, {.usd_micros = 20, .output_tokens = 2, .requests = 1});
  const SpendLedger::Report r = ledger.Read(kGw, period);
  EXPECT_EQ(r.period_id, period);
  EXPECT_FALSE(r.from_redis);
  EXPECT_EQ(r.gateway.usd_micros, 30);
  EXPECT_EQ(r.gateway.requests, 2);
  ASSERT_EQ(r.keys.size(), 2u);
  EXPECT_EQ(r.keys.at(kKey1).usd_micros, 10);
  EXPECT_EQ(r.keys.at(kKey1).input_tokens, 1);
  EXPECT_EQ(r.keys.at(kKey2).output_tokens, 2);

  const SpendLedger::Report empty = ledger.Read(kGw, "d20200101");
  EXPECT_EQ(empty.period_id, "d20200101");
  EXPECT_EQ(empty.gateway.requests, 0);
  EXPECT_TRUE(empty.keys.empty());
}

TEST(SpendLedgerLocalTest, RefusesIdsThatCannotBePartOfAKey) {
  SpendLedger ledger(LocalOptions());
  const std::string period = PeriodOf("monthly", system_clock::now()).id;
  const SpendTotals one{.usd_micros = 1, .requests = 1};
  for (const std::string& bad : {std::string(""), std::string("a:b"), std::string("a b"),
                                 std::string(65, 'a'), std::string("gw\n"), std::string("é")}) {
    ledger.Add(bad, kKey1, period, one);
    EXPECT_EQ(ledger.GatewaySpent(bad, period).requests, 0) << bad;
    EXPECT_FALSE(ledger.Read(bad, period).from_redis);
    EXPECT_EQ(ledger.Read(bad, period).gateway.requests, 0);
    // A bad key id still counts for the gateway.
    ledger.Add(kGw, bad, period, one);
    EXPECT_EQ(ledger.KeySpent(kGw, bad, period).requests, 0) << bad;
  }
  EXPECT_EQ(ledger.GatewaySpent(kGw, period).requests, 6);  // each counted once, for the gateway
  EXPECT_EQ(ledger.Read(kGw, period).keys.size(), 0u);
  ledger.Add(std::string(64, 'a'), kKey1, period, one);  // 64 bytes: fine
  EXPECT_EQ(ledger.GatewaySpent(std::string(64, 'a'), period).requests, 1);
  for (const char* bad_period : {"", "daily", "d2026120", "m2026123", "d20261305", "m202613",
                                 "d20260230", "x202612", "m2026a2"}) {
    ledger.Add(kGw, kKey1, bad_period, one);
    EXPECT_EQ(ledger.GatewaySpent(kGw, bad_period).requests, 0) << bad_period;
  }
}

TEST(SpendLedgerLocalTest, SaturatesInsteadOfOverflowing) {
  SpendLedger ledger(LocalOptions());
  const std::string period = PeriodOf("monthly", system_clock::now()).id;
  ledger.Add(kGw, kKey1, period, {.usd_micros = kMax - 1, .requests = 1});
  ledger.Add(kGw, kKey1, period, {.usd_micros = 10, .requests = 1});
  EXPECT_EQ(ledger.GatewaySpent(kGw, period).usd_micros, kMax);
  EXPECT_EQ(ledger.KeySpent(kGw, kKey1, period).requests, 2);
}

TEST(SpendLedgerLocalTest, ConcurrentAddsAllCount) {
  SpendLedger ledger(LocalOptions());
  const std::string period = PeriodOf("monthly", system_clock::now()).id;
  constexpr int kThreads = 4;
  constexpr int kAdds = 5000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      const std::string key = "key-" + std::to_string(t % 2);
      for (int i = 0; i < kAdds; ++i) {
        ledger.Add(kGw, key, period, {.usd_micros = 3, .input_tokens = 2, .requests = 1});
        if (i % 100 == 0) ledger.KeySpent(kGw, key, period);
      }
    });
  }
  for (auto& t : threads) t.join();
  const SpendTotals gw = ledger.GatewaySpent(kGw, period);
  EXPECT_EQ(gw.requests, kThreads * kAdds);
  EXPECT_EQ(gw.usd_micros, 3 * kThreads * kAdds);
  EXPECT_EQ(ledger.KeySpent(kGw, "key-0", period).requests, kThreads / 2 * kAdds);
  const SpendLedger::Report r = ledger.Read(kGw, period);
  EXPECT_EQ(r.keys.at("key-1").input_tokens, 2 * kThreads / 2 * kAdds);
}

}  // namespace
}  // namespace tg::edge
