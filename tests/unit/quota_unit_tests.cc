// GCRA math and LocalQuotaStore on a manual clock: exact admissions,
// retry_after, refill, Adjust, BlockFor, remaining/reset.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <limits>
#include <string>
#include <thread>
#include <vector>

#include "tg/edge/quota/gcra.h"
#include "tg/edge/quota/quota_store.h"
#include "tg/edge/quota/redis_quota_store.h"

namespace tg::edge::quota {
namespace {

using namespace std::chrono_literals;

Spec MakeSpec(int64_t capacity, std::chrono::milliseconds period, std::string key = "k") {
  return Spec{.key = std::move(key), .capacity = capacity, .period = period};
}

// ------------------------------------------------------------- Gcra

TEST(GcraTest, EmissionIntervalAndTolerance) {
  const Gcra g(10, 60'000'000);
  EXPECT_DOUBLE_EQ(g.emission_us(), 6'000'000);
  EXPECT_DOUBLE_EQ(g.tau_us(), 60'000'000);
  EXPECT_EQ(g.Available(0), 10);
  EXPECT_EQ(g.Available(6'000'000), 9);
  EXPECT_EQ(g.Available(6'000'001), 8);
  EXPECT_EQ(g.Available(60'000'000), 0);
  EXPECT_EQ(g.Available(90'000'000), 0);  // below empty
}

TEST(GcraTest, TakeGrantsUpToWantWhenMinFits) {
  const Gcra g(10, 1'000'000);           // T = 100 ms
  GcraResult r = g.Take(800'000, 5, 1);  // 2 left
  EXPECT_EQ(r.granted, 2);
  EXPECT_DOUBLE_EQ(r.ahead, 1'000'000);
  EXPECT_EQ(r.remaining, 0);
  EXPECT_EQ(r.retry_after_us, 0);
  EXPECT_EQ(r.reset_us, 1'000'000);

  r = g.Take(800'000, 5, 3);  // needs 3, has 2: nothing taken
  EXPECT_EQ(r.granted, 0);
  EXPECT_DOUBLE_EQ(r.ahead, 800'000);
  EXPECT_EQ(r.remaining, 2);
  EXPECT_EQ(r.retry_after_us, 100'000);
  EXPECT_EQ(r.reset_us, 800'000);

  r = g.Take(0, 11, 11);  // can never fit
  EXPECT_EQ(r.granted, 0);
  EXPECT_EQ(r.retry_after_us, 0);
}

TEST(GcraTest, AdjustAndBlock) {
  const Gcra g(10, 1'000'000);
  EXPECT_DOUBLE_EQ(g.Adjust(0, 15).ahead, 1'500'000);  // no cap above
  EXPECT_EQ(g.Adjust(0, 15).remaining, 0);
  EXPECT_DOUBLE_EQ(g.Adjust(300'000, -5).ahead, 0);  // never above full
  EXPECT_DOUBLE_EQ(g.Adjust(700'000, -5).ahead, 200'000);
  EXPECT_DOUBLE_EQ(g.Block(0, 500'000).ahead, 1'500'000);
  EXPECT_DOUBLE_EQ(g.Block(2'000'000, 500'000).ahead, 2'000'000);  // already longer
}

// A TAT near Redis's epoch microseconds (~1.7e15) with T = 333333.33 µs: a
// plain double would round every take the same way and refuse the third.
TEST(GcraTest, SplitTatKeepsBurstsExactAtEpochScale) {
  for (int64_t capacity : {3, 7, 9, 1000}) {
    const Gcra g(capacity, 1'000'000);
    const int64_t now = 1'731'000'000'123'457;
    Tat tat{};
    int64_t admitted = 0;
    for (int64_t i = 0; i < capacity + 1; ++i) {
      const GcraResult r = g.Take(AheadOf(tat, now), 1, 1);
      admitted += r.granted;
      tat = TatAt(now, r.ahead);
    }
    EXPECT_EQ(admitted, capacity) << capacity;
  }
}

TEST(GcraTest, TatRoundTrip) {
  const int64_t now = 1'731'000'000'000'000;
  const Tat t = TatAt(now, 1234.75);
  EXPECT_EQ(t.micros, now + 1234);
  EXPECT_DOUBLE_EQ(t.frac, 0.75);
  EXPECT_DOUBLE_EQ(AheadOf(t, now), 1234.75);
  EXPECT_DOUBLE_EQ(AheadOf(t, now + 2000), 0);  // past: full
  EXPECT_EQ(TatAt(now, -5).micros, now);
}

TEST(GcraTest, CeilMillis) {
  EXPECT_EQ(CeilMillis(0), 0ms);
  EXPECT_EQ(CeilMillis(1), 1ms);
  EXPECT_EQ(CeilMillis(1000), 1ms);
  EXPECT_EQ(CeilMillis(1001), 2ms);
}

TEST(GcraTest, ScriptUsesRedisTime) {
  EXPECT_NE(kGcraScript.find("redis.call('TIME')"), std::string_view::npos);
  EXPECT_NE(kGcraScript.find("1e-9"), std::string_view::npos);
}

// ------------------------------------------------------------- LocalQuotaStore

TEST(LocalQuotaStoreTest, CapacityAtOnceThenExactRetryAfter) {
  ManualClock clock;
  LocalQuotaStore store(&clock);
  const Spec spec = MakeSpec(10, 1000ms);  // T = 100 ms
  for (int i = 0; i < 10; ++i) {
    const Answer a = store.Take(spec, 1);
    ASSERT_TRUE(a.admitted) << i;
    EXPECT_EQ(a.limit, 10);
    EXPECT_EQ(a.remaining, 9 - i);
    EXPECT_EQ(a.retry_after, 0ms);
    EXPECT_EQ(a.reset, std::chrono::milliseconds(100 * (i + 1)));
    EXPECT_TRUE(a.local);
  }
  const Answer refused = store.Take(spec, 1);
  EXPECT_FALSE(refused.admitted);
  EXPECT_EQ(refused.retry_after, 100ms);  // period / capacity
  EXPECT_EQ(refused.remaining, 0);
  EXPECT_EQ(refused.reset, 1000ms);

  const Answer two = store.Take(spec, 2);
  EXPECT_FALSE(two.admitted);
  EXPECT_EQ(two.retry_after, 200ms);
}

TEST(LocalQuotaStoreTest, NonIntegerEmissionInterval) {
  ManualClock clock(1'731'000'000'000'000);  // epoch-scale, as Redis's TIME
  LocalQuotaStore store(&clock);
  const Spec spec = MakeSpec(3, 1000ms);  // T = 333.33 ms
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(store.Take(spec, 1).admitted) << i;
  const Answer refused = store.Take(spec, 1);
  EXPECT_FALSE(refused.admitted);
  EXPECT_EQ(refused.retry_after, 334ms);  // 333,334 µs rounded up
  clock.Advance(333'333us);
  EXPECT_FALSE(store.Take(spec, 1).admitted);
  clock.Advance(1us);
  EXPECT_TRUE(store.Take(spec, 1).admitted);
}

TEST(LocalQuotaStoreTest, RefillsContinuously) {
  ManualClock clock;
  LocalQuotaStore store(&clock);
  const Spec spec = MakeSpec(10, 1000ms);
  EXPECT_TRUE(store.Take(spec, 10).admitted);
  clock.Advance(99ms);
  Answer a = store.Take(spec, 1);
  EXPECT_FALSE(a.admitted);
  EXPECT_EQ(a.retry_after, 1ms);
  clock.Advance(1ms);
  EXPECT_TRUE(store.Take(spec, 1).admitted);
  clock.Advance(250ms);  // 2.5 units back
  EXPECT_TRUE(store.Take(spec, 1).admitted);
  EXPECT_TRUE(store.Take(spec, 1).admitted);
  a = store.Take(spec, 1);
  EXPECT_FALSE(a.admitted);
  EXPECT_EQ(a.retry_after, 50ms);
  clock.Advance(10s);  // never more than full
  EXPECT_EQ(store.Peek(spec).remaining, 10);
  EXPECT_TRUE(store.Take(spec, 10).admitted);
  EXPECT_FALSE(store.Take(spec, 1).admitted);
}

TEST(LocalQuotaStoreTest, PartialTakeTakesNothing) {
  ManualClock clock;
  LocalQuotaStore store(&clock);
  const Spec spec = MakeSpec(10, 1000ms);
  EXPECT_TRUE(store.Take(spec, 8).admitted);
  const Answer a = store.Take(spec, 3);
  EXPECT_FALSE(a.admitted);
  EXPECT_EQ(a.remaining, 2);
  EXPECT_EQ(a.retry_after, 100ms);  // one more unit
  EXPECT_TRUE(store.Take(spec, 2).admitted);
}

TEST(LocalQuotaStoreTest, AdjustPositiveDrivesBelowEmpty) {
  ManualClock clock;
  LocalQuotaStore store(&clock);
  const Spec spec = MakeSpec(10, 1000ms);
  EXPECT_TRUE(store.Take(spec, 10).admitted);
  store.Adjust(spec, 5);  // five more were used than taken
  Answer a = store.Take(spec, 1);
  EXPECT_FALSE(a.admitted);
  EXPECT_EQ(a.retry_after, 600ms);  // the 5 owed, then 1
  EXPECT_EQ(a.reset, 1500ms);
  EXPECT_EQ(a.remaining, 0);

  // From full, more than capacity: the same.
  const Spec other = MakeSpec(10, 1000ms, "other");
  store.Adjust(other, 15);
  a = store.Take(other, 1);
  EXPECT_FALSE(a.admitted);
  EXPECT_EQ(a.retry_after, 600ms);
  clock.Advance(600ms);
  EXPECT_TRUE(store.Take(other, 1).admitted);
  EXPECT_FALSE(store.Take(other, 1).admitted);
}

TEST(LocalQuotaStoreTest, AdjustNegativeRestoresNeverAboveFull) {
  ManualClock clock;
  LocalQuotaStore store(&clock);
  const Spec spec = MakeSpec(10, 1000ms);
  EXPECT_TRUE(store.Take(spec, 10).admitted);
  store.Adjust(spec, -3);
  EXPECT_EQ(store.Peek(spec).remaining, 3);
  EXPECT_TRUE(store.Take(spec, 3).admitted);
  EXPECT_FALSE(store.Take(spec, 1).admitted);

  store.Adjust(spec, -100);
  const Answer full = store.Peek(spec);
  EXPECT_EQ(full.remaining, 10);
  EXPECT_EQ(full.reset, 0ms);
  EXPECT_TRUE(store.Take(spec, 10).admitted);
  EXPECT_FALSE(store.Take(spec, 1).admitted);
}

TEST(LocalQuotaStoreTest, BlockForRefusesUntilThen) {
  ManualClock clock;
  LocalQuotaStore store(&clock);
  const Spec spec = MakeSpec(10, 1000ms);
  store.BlockFor(spec, 500ms);
  Answer a = store.Take(spec, 1);
  EXPECT_FALSE(a.admitted);
  EXPECT_EQ(a.retry_after, 600ms);  // empty for 500 ms, then one unit per 100 ms
  EXPECT_EQ(a.reset, 1500ms);
  clock.Advance(500ms);
  a = store.Take(spec, 1);
  EXPECT_FALSE(a.admitted);
  EXPECT_EQ(a.retry_after, 100ms);
  clock.Advance(100ms);
  EXPECT_TRUE(store.Take(spec, 1).admitted);
  // Another block extends it; a shorter one than what is left changes nothing.
  store.BlockFor(spec, 2000ms);
  EXPECT_EQ(store.Take(spec, 1).retry_after, 2100ms);
  store.BlockFor(spec, 1ms);
  EXPECT_EQ(store.Take(spec, 1).retry_after, 2100ms);
}

TEST(LocalQuotaStoreTest, MoreThanCapacityNeverFits) {
  ManualClock clock;
  LocalQuotaStore store(&clock);
  const Spec spec = MakeSpec(10, 1000ms);
  const Answer a = store.Take(spec, 11);
  EXPECT_FALSE(a.admitted);
  EXPECT_EQ(a.retry_after, 0ms);
  EXPECT_EQ(a.limit, 10);
  EXPECT_TRUE(store.Take(spec, 10).admitted);  // nothing was taken
}

TEST(LocalQuotaStoreTest, RemainingAndReset) {
  ManualClock clock;
  LocalQuotaStore store(&clock);
  const Spec spec = MakeSpec(100, 60s);  // T = 600 ms
  Answer a = store.Peek(spec);
  EXPECT_TRUE(a.admitted);
  EXPECT_EQ(a.remaining, 100);
  EXPECT_EQ(a.reset, 0ms);
  a = store.Take(spec, 4);
  EXPECT_EQ(a.remaining, 96);
  EXPECT_EQ(a.reset, 2400ms);
  a = store.Take(spec, 30);
  EXPECT_EQ(a.remaining, 66);
  EXPECT_EQ(a.reset, 20400ms);
  clock.Advance(1200ms);
  a = store.Peek(spec);
  EXPECT_EQ(a.remaining, 68);
  EXPECT_EQ(a.reset, 19200ms);
  EXPECT_EQ(store.Peek(spec).remaining, 68);  // Peek takes nothing
}

TEST(LocalQuotaStoreTest, InvalidSpecsAndZeroTakes) {
  LocalQuotaStore store;
  EXPECT_FALSE(store.Take(MakeSpec(0, 1000ms), 1).admitted);
  EXPECT_FALSE(store.Take(MakeSpec(10, 0ms), 1).admitted);
  const Answer zero = store.Take(MakeSpec(10, 1000ms), 0);
  EXPECT_TRUE(zero.admitted);
  EXPECT_EQ(zero.remaining, 10);
}

TEST(LocalQuotaStoreTest, FullBucketsAreSweptOut) {
  ManualClock clock;
  LocalQuotaStore store(&clock);
  for (int i = 0; i < 3000; ++i) store.Take(MakeSpec(10, 1000ms, "k" + std::to_string(i)), 1);
  EXPECT_GE(store.size(), 1024u);
  clock.Advance(2s);  // all full again
  for (int i = 0; i < 3000; ++i) store.Take(MakeSpec(10, 1000ms, "n" + std::to_string(i)), 1);
  EXPECT_EQ(store.size(), 3000u);  // the first 3000 were full, and swept out
  // A bucket given back to full is no entry at all.
  store.Adjust(MakeSpec(10, 1000ms, "n0"), -1);
  EXPECT_EQ(store.size(), 2999u);
  EXPECT_TRUE(store.Take(MakeSpec(10, 1000ms, "n0"), 10).admitted);
}

TEST(LocalQuotaStoreTest, ConcurrentTakesAdmitExactlyCapacity) {
  ManualClock clock;  // time stands still: no refill
  LocalQuotaStore store(&clock);
  const Spec spec = MakeSpec(1000, 60s);
  std::atomic<int> admitted{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 200; ++i) {
        if (store.Take(spec, 1).admitted) ++admitted;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(admitted.load(), 1000);
}

// ------------------------------------------------------------- options

TEST(RedisQuotaOptionsTest, ChunkOfCapacity) {
  RedisQuotaOptions o;
  o.port = 1;  // never called
  RedisQuotaStore store(o);
  EXPECT_EQ(store.ChunkOf(1), 1);
  EXPECT_EQ(store.ChunkOf(10), 1);
  EXPECT_EQ(store.ChunkOf(39), 1);  // < 2 * divisor: exact
  EXPECT_EQ(store.ChunkOf(40), 2);
  EXPECT_EQ(store.ChunkOf(1000), 50);
  EXPECT_EQ(store.ChunkOf(10'000'000), 1000);
  // Takes of many units (a token bucket): a chunk covers 16 of them, within
  // 1/20 of the bucket.
  EXPECT_EQ(store.ChunkOf(1'000'000, 1500), 24'000);
  EXPECT_EQ(store.ChunkOf(100'000, 1500), 5'000);
  EXPECT_EQ(store.ChunkOf(1000, 30), 50);
  EXPECT_EQ(store.ChunkOf(10'000'000, 10), 1000);  // 16 x 10 < max_lease
  EXPECT_EQ(store.ChunkOf(39, 5), 1);
  EXPECT_EQ(store.ChunkOf(std::numeric_limits<int64_t>::max(), std::numeric_limits<int64_t>::max()),
            std::numeric_limits<int64_t>::max() / 20);
  EXPECT_EQ(store.KeyOf(MakeSpec(1, 1s, "gw:key")), "tg:quota:v1:gw:key");
}

TEST(RedisQuotaOptionsTest, ParsesUrls) {
  std::string error;
  auto o = ParseRedisQuotaUrl("redis://127.0.0.1:6380", &error);
  ASSERT_TRUE(o) << error;
  EXPECT_EQ(o->host, "127.0.0.1");
  EXPECT_EQ(o->port, 6380);
  EXPECT_EQ(o->db, 0);
  EXPECT_TRUE(o->password.empty());
  o = ParseRedisQuotaUrl("redis://:s3cret@cache.internal/2", &error);
  ASSERT_TRUE(o) << error;
  EXPECT_EQ(o->host, "cache.internal");
  EXPECT_EQ(o->port, 6379);
  EXPECT_EQ(o->password, "s3cret");
  EXPECT_EQ(o->db, 2);
  o = ParseRedisQuotaUrl("redis://user:p@ss:w@[::1]:7000/", &error);
  ASSERT_TRUE(o) << error;
  EXPECT_EQ(o->host, "::1");
  EXPECT_EQ(o->port, 7000);
  EXPECT_EQ(o->password, "p@ss:w");
  o = ParseRedisQuotaUrl("redis://[::1]", &error);
  ASSERT_TRUE(o) << error;
  EXPECT_EQ(o->host, "::1");
  EXPECT_EQ(o->port, 6379);
  EXPECT_EQ(o->prefix, "tg:quota:v1");
  EXPECT_FALSE(ParseRedisQuotaUrl("http://x", &error));
  EXPECT_FALSE(ParseRedisQuotaUrl("redis://x:0", &error));
  EXPECT_FALSE(ParseRedisQuotaUrl("redis://x:65536", &error));
  EXPECT_FALSE(ParseRedisQuotaUrl("redis://x/abc", &error));
  EXPECT_FALSE(ParseRedisQuotaUrl("redis://", &error));
  EXPECT_FALSE(error.empty());
}

}  // namespace
}  // namespace tg::edge::quota
