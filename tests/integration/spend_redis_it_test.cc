// Spend shared through a real Redis: two SpendLedger instances ("edges") in
// process on one Redis (TG_TEST_REDIS_ADDR, skipped when unset) see each
// other's spend, Read reports it exactly, hashes expire; a Redis that is
// unreachable or killed mid-run leaves every edge counting alone and the
// adds reach Redis once it is back.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <ostream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "tg/edge/spend.h"

namespace tg::edge {

// For EXPECT_EQ (found by argument-dependent lookup, so not in the unnamed namespace).
bool operator==(const SpendTotals& a, const SpendTotals& b) {
  return a.usd_micros == b.usd_micros && a.input_tokens == b.input_tokens &&
         a.output_tokens == b.output_tokens && a.requests == b.requests;
}

std::ostream& operator<<(std::ostream& os, const SpendTotals& t) {
  return os << "{usd " << t.usd_micros << ", in " << t.input_tokens << ", out " << t.output_tokens
            << ", req " << t.requests << "}";
}

namespace {

using namespace std::chrono_literals;
using Steady = std::chrono::steady_clock;
using std::chrono::system_clock;

constexpr char kGw[] = "6b1f2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";
constexpr char kKey1[] = "0a1b2c3d-0000-4000-8000-000000000001";
constexpr char kKey2[] = "0a1b2c3d-0000-4000-8000-000000000002";

bool WaitFor(const std::function<bool()>& probe, std::chrono::milliseconds timeout) {
  const auto until = Steady::now() + timeout;
  while (Steady::now() < until) {
    if (probe()) return true;
    std::this_thread::sleep_for(5ms);
  }
  return probe();
}

int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  const int port = ntohs(addr.sin_port);
  close(fd);
  return port;
}

std::string UniquePrefix() {
  std::random_device rd;
  return "tg:spend:test:" + std::to_string(rd()) + std::to_string(rd());
}

SpendTotals Times(const SpendTotals& t, int64_t n) {
  return {t.usd_micros * n, t.input_tokens * n, t.output_tokens * n, t.requests * n};
}

// A direct hiredis connection for looking at what the ledgers wrote.
class RedisProbe {
 public:
  RedisProbe(const std::string& host, int port) {
    timeval tv{1, 0};
    ctx_ = redisConnectWithTimeout(host.c_str(), port, tv);
  }
  ~RedisProbe() {
    if (ctx_) redisFree(ctx_);
  }
  bool ok() const { return ctx_ != nullptr && ctx_->err == 0; }
  std::string HGet(const std::string& key, const std::string& field) {
    auto* r =
        static_cast<redisReply*>(redisCommand(ctx_, "HGET %s %s", key.c_str(), field.c_str()));
    std::string out = r && r->type == REDIS_REPLY_STRING ? std::string(r->str, r->len) : "";
    if (r) freeReplyObject(r);
    return out;
  }
  long long HLen(const std::string& key) { return Integer("HLEN %s", key); }
  long long Ttl(const std::string& key) { return Integer("TTL %s", key); }

 private:
  long long Integer(const char* format, const std::string& key) {
    auto* r = static_cast<redisReply*>(redisCommand(ctx_, format, key.c_str()));
    long long out = r && r->type == REDIS_REPLY_INTEGER ? r->integer : -3;
    if (r) freeReplyObject(r);
    return out;
  }
  redisContext* ctx_ = nullptr;
};

class SharedSpendTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* addr = std::getenv("TG_TEST_REDIS_ADDR");
    if (addr == nullptr || *addr == '\0') GTEST_SKIP() << "TG_TEST_REDIS_ADDR is not set";
    std::string error;
    auto redis = quota::ParseRedisQuotaUrl(std::string("redis://") + addr, &error);
    ASSERT_TRUE(redis) << error;
    options_.redis = *redis;
    options_.prefix = UniquePrefix();  // tests share the server, not their keys
    options_.refresh = 50ms;
    options_.flush_interval = 50ms;
    period_ = PeriodOf("monthly", system_clock::now()).id;
  }

  SpendLedger::Options options_;
  std::string period_;
};

TEST_F(SharedSpendTest, TwoEdgesSeeEachOthersSpend) {
  SpendLedger a(options_), b(options_);
  for (SpendLedger* edge : {&a, &b}) {
    EXPECT_EQ(edge->GatewaySpent(kGw, period_), SpendTotals{});
    EXPECT_EQ(edge->KeySpent(kGw, kKey1, period_), SpendTotals{});
    EXPECT_EQ(edge->KeySpent(kGw, kKey2, period_), SpendTotals{});
  }
  const SpendTotals one{.usd_micros = 100, .input_tokens = 10, .output_tokens = 20, .requests = 1};
  const SpendTotals two{.usd_micros = 7, .input_tokens = 1, .output_tokens = 2, .requests = 1};
  a.Add(kGw, kKey1, period_, one);
  b.Add(kGw, kKey2, period_, two);
  b.Add(kGw, kKey1, period_, two);
  // Each edge's own adds count at once.
  EXPECT_EQ(a.GatewaySpent(kGw, period_), one);
  EXPECT_EQ(b.KeySpent(kGw, kKey1, period_), two);

  const SpendTotals all{.usd_micros = 114, .input_tokens = 12, .output_tokens = 24, .requests = 3};
  for (SpendLedger* edge : {&a, &b}) {
    EXPECT_TRUE(WaitFor([&] { return edge->GatewaySpent(kGw, period_) == all; }, 2s))
        << edge->GatewaySpent(kGw, period_);
  }
  const SpendTotals k1{.usd_micros = 107, .input_tokens = 11, .output_tokens = 22, .requests = 2};
  // Several flushes and refreshes later: exactly once, never twice.
  std::this_thread::sleep_for(300ms);
  for (SpendLedger* edge : {&a, &b}) {
    EXPECT_EQ(edge->GatewaySpent(kGw, period_), all);
    EXPECT_EQ(edge->KeySpent(kGw, kKey1, period_), k1);
    EXPECT_EQ(edge->KeySpent(kGw, kKey2, period_), two);
    EXPECT_TRUE(edge->redis_up());
  }

  // Many threads on both edges while refreshes run.
  constexpr int kAdds = 500;
  std::vector<std::thread> threads;
  for (SpendLedger* edge : {&a, &b, &a, &b}) {
    threads.emplace_back([edge, &two, this] {
      for (int i = 0; i < kAdds; ++i) {
        edge->Add(kGw, i % 2 == 0 ? kKey1 : kKey2, period_, two);
        if (i % 50 == 0) {
          edge->GatewaySpent(kGw, period_);
          std::this_thread::sleep_for(1ms);
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  SpendTotals total = all;
  const SpendTotals more = Times(two, 4 * kAdds);
  total = {total.usd_micros + more.usd_micros, total.input_tokens + more.input_tokens,
           total.output_tokens + more.output_tokens, total.requests + more.requests};
  for (SpendLedger* edge : {&a, &b}) {
    EXPECT_TRUE(WaitFor([&] { return edge->GatewaySpent(kGw, period_) == total; }, 2s))
        << edge->GatewaySpent(kGw, period_) << " want " << total;
  }
  std::this_thread::sleep_for(200ms);
  EXPECT_EQ(a.GatewaySpent(kGw, period_), total);
  EXPECT_EQ(b.KeySpent(kGw, kKey2, period_).requests, 1 + 2 * kAdds);
}

// With a long refresh, a counter got for the first time is still read at
// once: a new key sees other edges' spend within a round trip.
TEST_F(SharedSpendTest, AFirstGetIsReadAtOnce) {
  options_.refresh = 60s;
  SpendLedger a(options_), b(options_), c(options_);
  b.Add(kGw, kKey1, period_, {.usd_micros = 42, .requests = 1});
  // c adds nothing: its Read is what b flushed.
  ASSERT_TRUE(WaitFor([&] { return c.Read(kGw, period_).gateway.usd_micros == 42; }, 1s));
  EXPECT_EQ(a.KeySpent(kGw, kKey1, period_).usd_micros, 0);  // not read yet
  EXPECT_TRUE(WaitFor([&] { return a.KeySpent(kGw, kKey1, period_).usd_micros == 42; }, 500ms));
  EXPECT_TRUE(WaitFor([&] { return a.GatewaySpent(kGw, period_).usd_micros == 42; }, 500ms));
}

// Read: Redis's totals plus this edge's unsent adds, exactly, whenever it is
// called (a flush in progress or not); another edge sees what was flushed.
TEST_F(SharedSpendTest, ReadReportsGatewayAndKeysExactly) {
  SpendLedger a(options_), b(options_);
  const SpendTotals unit{.usd_micros = 3, .input_tokens = 5, .output_tokens = 7, .requests = 1};
  constexpr int kAdds = 200;
  for (int i = 0; i < kAdds; ++i) {
    a.Add(kGw, i % 4 == 0 ? kKey1 : kKey2, period_, unit);
    const SpendLedger::Report r = a.Read(kGw, period_);
    ASSERT_TRUE(r.from_redis) << i;
    ASSERT_EQ(r.gateway, Times(unit, i + 1)) << i;
    ASSERT_EQ(r.keys.at(kKey1), Times(unit, i / 4 + 1)) << i;
    const SpendLedger::Report other = b.Read(kGw, period_);  // no adds of its own
    ASSERT_TRUE(other.from_redis);
    ASSERT_LE(other.gateway.requests, i + 1);
    if (i % 20 == 0) std::this_thread::sleep_for(10ms);
  }
  EXPECT_TRUE(WaitFor([&] { return b.Read(kGw, period_).gateway == Times(unit, kAdds); }, 1s));
  const SpendLedger::Report r = b.Read(kGw, period_);
  EXPECT_EQ(r.period_id, period_);
  ASSERT_EQ(r.keys.size(), 2u);
  EXPECT_EQ(r.keys.at(kKey1), Times(unit, kAdds / 4));
  EXPECT_EQ(r.keys.at(kKey2), Times(unit, kAdds - kAdds / 4));
  // Another period of the same gateway is apart.
  EXPECT_EQ(b.Read(kGw, "m202001").gateway, SpendTotals{});
  EXPECT_TRUE(b.Read(kGw, "m202001").from_redis);
}

TEST_F(SharedSpendTest, OneHashPerGatewayAndPeriodWithItsExpiry) {
  const std::string daily = PeriodOf("daily", system_clock::now()).id;
  {
    SpendLedger a(options_);
    a.Add(kGw, kKey1, period_, {.usd_micros = 11, .input_tokens = 12, .requests = 1});
    a.Add(kGw, kKey2, daily, {.usd_micros = 21, .output_tokens = 22, .requests = 1});
  }  // the destructor flushes
  RedisProbe probe(options_.redis->host, options_.redis->port);
  ASSERT_TRUE(probe.ok());
  const std::string monthly_key = options_.prefix + ":" + kGw + ":" + period_;
  const std::string daily_key = options_.prefix + ":" + kGw + ":" + daily;
  EXPECT_EQ(probe.HGet(monthly_key, "gw:usd"), "11");
  EXPECT_EQ(probe.HGet(monthly_key, "gw:in"), "12");
  EXPECT_EQ(probe.HGet(monthly_key, "gw:req"), "1");
  EXPECT_EQ(probe.HGet(monthly_key, std::string("k:") + kKey1 + ":usd"), "11");
  EXPECT_EQ(probe.HGet(monthly_key, std::string("k:") + kKey1 + ":in"), "12");
  EXPECT_EQ(probe.HLen(monthly_key), 6);  // zero fields are not written
  EXPECT_EQ(probe.HGet(daily_key, std::string("k:") + kKey2 + ":out"), "22");
  const long long monthly_ttl = probe.Ttl(monthly_key);
  EXPECT_GT(monthly_ttl, 40 * 86400 - 60);
  EXPECT_LE(monthly_ttl, 40 * 86400);
  const long long daily_ttl = probe.Ttl(daily_key);
  EXPECT_GT(daily_ttl, 3 * 86400 - 60);
  EXPECT_LE(daily_ttl, 3 * 86400);
}

// Nothing listens on the port: Add and Get are answered from memory at once,
// Read says so, and stopping is bounded.
TEST(UnreachableRedisSpendTest, CountsLocallyAndFast) {
  SpendLedger::Options options;
  options.redis.emplace();
  options.redis->port = FreePort();
  options.prefix = UniquePrefix();
  options.refresh = 50ms;
  options.flush_interval = 50ms;
  const std::string period = PeriodOf("monthly", system_clock::now()).id;
  auto ledger = std::make_unique<SpendLedger>(options);
  const SpendTotals unit{.usd_micros = 2, .input_tokens = 1, .requests = 1};
  const auto start = Steady::now();
  for (int i = 0; i < 1000; ++i) {
    const auto t0 = Steady::now();
    ledger->Add(kGw, i % 2 == 0 ? kKey1 : kKey2, period, unit);
    ledger->KeySpent(kGw, kKey1, period);
    const SpendTotals gw = ledger->GatewaySpent(kGw, period);
    EXPECT_LT(Steady::now() - t0, 20ms);
    ASSERT_EQ(gw, Times(unit, i + 1));
  }
  EXPECT_LT(Steady::now() - start, 500ms);
  EXPECT_TRUE(WaitFor([&] { return !ledger->redis_up(); }, 1s));
  const auto t0 = Steady::now();
  const SpendLedger::Report r = ledger->Read(kGw, period);
  EXPECT_LT(Steady::now() - t0, 300ms);
  EXPECT_FALSE(r.from_redis);
  EXPECT_EQ(r.gateway, Times(unit, 1000));
  EXPECT_EQ(r.keys.at(kKey1), Times(unit, 500));
  const auto stop = Steady::now();
  ledger.reset();
  EXPECT_LT(Steady::now() - stop, 1s);
}

// redis-server as a child process: started, SIGKILLed and started again on
// the same port, without persistence (it comes back empty).
class RedisChild {
 public:
  explicit RedisChild(int port) : port_(port) {}
  ~RedisChild() { Kill(); }

  bool Start() {
    pid_ = fork();
    if (pid_ < 0) return false;
    if (pid_ == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlive the test
      const std::string port = std::to_string(port_);
      freopen("/dev/null", "w", stdout);
      execl("/usr/bin/redis-server", "redis-server", "--port", port.c_str(), "--bind", "127.0.0.1",
            "--save", "", "--appendonly", "no", static_cast<char*>(nullptr));
      _exit(127);
    }
    return WaitFor([&] { return RedisProbe("127.0.0.1", port_).ok(); }, 5s);
  }

  void Kill() {
    if (pid_ <= 0) return;
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

 private:
  int port_;
  pid_t pid_ = -1;
};

TEST(RedisSpendOutageTest, AddsWaitThroughAnOutageAndReachRedisAfter) {
  if (access("/usr/bin/redis-server", X_OK) != 0) GTEST_SKIP() << "no /usr/bin/redis-server";
  const int port = FreePort();
  RedisChild redis(port);
  ASSERT_TRUE(redis.Start());

  SpendLedger::Options options;
  options.redis.emplace();
  options.redis->port = port;
  options.redis->down_retry = 100ms;
  options.prefix = UniquePrefix();
  options.refresh = 50ms;
  options.flush_interval = 50ms;
  const std::string period = PeriodOf("daily", system_clock::now()).id;
  SpendLedger a(options), b(options);
  const SpendTotals unit{.usd_micros = 5, .output_tokens = 3, .requests = 1};
  for (int i = 0; i < 10; ++i) a.Add(kGw, kKey1, period, unit);
  ASSERT_TRUE(WaitFor([&] { return b.GatewaySpent(kGw, period) == Times(unit, 10); }, 2s));

  redis.Kill();
  for (int i = 0; i < 20; ++i) {
    const auto t0 = Steady::now();
    a.Add(kGw, kKey2, period, unit);
    EXPECT_EQ(a.GatewaySpent(kGw, period), Times(unit, 11 + i));
    EXPECT_LT(Steady::now() - t0, 20ms);
  }
  EXPECT_TRUE(WaitFor([&] { return !a.redis_up(); }, 2s));
  SpendLedger::Report r = a.Read(kGw, period);
  EXPECT_FALSE(r.from_redis);
  EXPECT_EQ(r.gateway, Times(unit, 30));  // what it knew of Redis, and its own adds
  EXPECT_EQ(r.keys.at(kKey2), Times(unit, 20));
  EXPECT_EQ(b.GatewaySpent(kGw, period), Times(unit, 10));  // b cannot hear of them

  // Redis returns empty: the adds made meanwhile reach it, once.
  ASSERT_TRUE(redis.Start());
  EXPECT_TRUE(WaitFor([&] { return b.Read(kGw, period).gateway == Times(unit, 20); }, 3s))
      << b.Read(kGw, period).gateway;
  EXPECT_TRUE(WaitFor([&] { return a.redis_up() && b.redis_up(); }, 2s));
  r = b.Read(kGw, period);
  EXPECT_TRUE(r.from_redis);
  EXPECT_EQ(r.keys.count(kKey1), 0u);  // lost with the server's memory
  EXPECT_EQ(r.keys.at(kKey2), Times(unit, 20));
  std::this_thread::sleep_for(200ms);
  EXPECT_EQ(b.Read(kGw, period).gateway, Times(unit, 20));
  EXPECT_TRUE(WaitFor([&] { return a.GatewaySpent(kGw, period) == Times(unit, 20); }, 1s));
}

}  // namespace
}  // namespace tg::edge
