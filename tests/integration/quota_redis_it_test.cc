// Rate-limit quotas shared through a real Redis: two RedisQuotaStore
// instances ("edges") in process on one Redis (TG_TEST_REDIS_ADDR, skipped
// when unset), leases, returns, settlements; a Redis that is unreachable or
// killed mid-run (a redis-server child) answers from local buckets.
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
#include <cstdlib>
#include <functional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "tg/edge/quota/redis_quota_store.h"

namespace tg::edge::quota {
namespace {

using namespace std::chrono_literals;
using Steady = std::chrono::steady_clock;

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
  return "tg:quota:test:" + std::to_string(rd()) + std::to_string(rd());
}

Spec MakeSpec(int64_t capacity, std::chrono::milliseconds period, std::string key = "gw:k") {
  return Spec{.key = std::move(key), .capacity = capacity, .period = period};
}

// A direct hiredis connection for looking at what the stores wrote.
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
  std::string Get(const std::string& key) {
    auto* r = static_cast<redisReply*>(redisCommand(ctx_, "GET %s", key.c_str()));
    std::string out = r && r->type == REDIS_REPLY_STRING ? std::string(r->str, r->len) : "";
    if (r) freeReplyObject(r);
    return out;
  }
  void HSet(const std::string& key) {
    auto* r = static_cast<redisReply*>(redisCommand(ctx_, "HSET %s f v", key.c_str()));
    if (r) freeReplyObject(r);
  }
  void Del(const std::string& key) {
    auto* r = static_cast<redisReply*>(redisCommand(ctx_, "DEL %s", key.c_str()));
    if (r) freeReplyObject(r);
  }
  long long PTtl(const std::string& key) {
    auto* r = static_cast<redisReply*>(redisCommand(ctx_, "PTTL %s", key.c_str()));
    long long out = r && r->type == REDIS_REPLY_INTEGER ? r->integer : -3;
    if (r) freeReplyObject(r);
    return out;
  }

 private:
  redisContext* ctx_ = nullptr;
};

class SharedRedisQuotaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* addr = std::getenv("TG_TEST_REDIS_ADDR");
    if (addr == nullptr || *addr == '\0') GTEST_SKIP() << "TG_TEST_REDIS_ADDR is not set";
    std::string error;
    auto o = ParseRedisQuotaUrl(std::string("redis://") + addr, &error);
    ASSERT_TRUE(o) << error;
    options_ = *o;
    options_.prefix = UniquePrefix();  // tests share the server, not their keys
    options_.flush_interval = 20ms;
  }

  RedisQuotaOptions options_;
};

// Capacity 10 < 2 x lease_divisor: chunk 1, every take asks Redis, the limit is exact.
TEST_F(SharedRedisQuotaTest, TwoEdgesAdmitExactlyTheLimit) {
  RedisQuotaStore a(options_), b(options_);
  const Spec spec = MakeSpec(10, 60s);  // T = 6 s: nothing refills during the test
  ASSERT_EQ(a.ChunkOf(10), 1);
  const int64_t sizes[] = {1, 2, 1, 3, 2, 1, 3, 1, 1, 2, 1, 1, 1, 1, 1, 1};
  int64_t admitted = 0;
  int refusals = 0;
  for (size_t i = 0; i < std::size(sizes); ++i) {
    RedisQuotaStore& edge = i % 2 == 0 ? a : b;
    const Answer r = edge.Take(spec, sizes[i]);
    EXPECT_FALSE(r.local);
    EXPECT_EQ(r.limit, 10);
    if (r.admitted) {
      admitted += sizes[i];
      EXPECT_EQ(r.remaining, 10 - admitted);
      EXPECT_EQ(r.retry_after, 0ms);
    } else {
      ++refusals;
      EXPECT_LE(r.remaining, sizes[i] - 1);
      EXPECT_GT(r.retry_after, 0ms);
      EXPECT_LE(r.retry_after, std::chrono::milliseconds(6000 * sizes[i]));
    }
  }
  EXPECT_EQ(admitted, 10);
  EXPECT_GT(refusals, 0);
  const Answer last = b.Take(spec, 1);
  EXPECT_FALSE(last.admitted);
  EXPECT_GT(last.retry_after, 5000ms);  // the next unit is ~6 s away
  EXPECT_LE(last.retry_after, 6000ms);
  EXPECT_EQ(a.stats().lease_hits + b.stats().lease_hits, 0u);
  EXPECT_TRUE(a.redis_up());

  // The key: the TAT, kept until the bucket is full again + 1 s.
  RedisProbe probe(options_.host, options_.port);
  ASSERT_TRUE(probe.ok());
  EXPECT_NE(probe.Get(a.KeyOf(spec)).find('.'), std::string::npos);
  const long long ttl = probe.PTtl(a.KeyOf(spec));
  EXPECT_GT(ttl, 59'000);
  EXPECT_LE(ttl, 61'000);
}

TEST_F(SharedRedisQuotaTest, LeasesCutRedisCallsAndNeverOverAdmit) {
  RedisQuotaStore a(options_), b(options_);
  const Spec spec = MakeSpec(1000, 60s);  // T = 60 ms
  const int64_t chunk = a.ChunkOf(1000);
  ASSERT_EQ(chunk, 50);
  const auto start = Steady::now();
  for (int i = 0; i < 200; ++i) ASSERT_TRUE(a.Take(spec, 1).admitted) << i;
  const uint64_t max_calls = 200 / static_cast<uint64_t>(chunk) + 1;
  EXPECT_LE(a.stats().redis_takes, max_calls);
  EXPECT_GE(a.stats().lease_hits, 200 - max_calls);

  // Both edges take until the bucket is empty, concurrently, several threads each.
  std::atomic<int64_t> admitted{200};
  std::vector<std::thread> threads;
  for (RedisQuotaStore* edge : {&a, &b, &a, &b}) {
    threads.emplace_back([&admitted, edge, &spec] {
      int refused_in_a_row = 0;
      while (refused_in_a_row < 20) {
        if (edge->Take(spec, 1).admitted) {
          ++admitted;
          refused_in_a_row = 0;
        } else {
          ++refused_in_a_row;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  const int64_t elapsed_us =
      std::chrono::duration_cast<std::chrono::microseconds>(Steady::now() - start).count();
  // GCRA allows the capacity plus what refilled meanwhile; at most (chunk - 1)
  // per edge may sit unused in its lease.
  EXPECT_LE(admitted.load(), 1000 + elapsed_us / 60'000 + 1);
  EXPECT_GE(admitted.load(), 1000 - 2 * (chunk - 1));
  EXPECT_FALSE(a.stats().redis_takes == 0 || b.stats().redis_takes == 0);
}

// A token bucket's Takes are hundreds of units: the chunk grows with them
// (16 Takes a lease), so they too skip Redis, and two edges still never take
// more than the bucket holds.
TEST_F(SharedRedisQuotaTest, TokenSizedTakesLeaseTooAndNeverOverAdmit) {
  RedisQuotaStore a(options_), b(options_);
  constexpr int64_t kCapacity = 1'000'000;
  constexpr int64_t kTake = 1500;
  const Spec spec = MakeSpec(kCapacity, 600s);  // T = 600 us
  const int64_t chunk = a.ChunkOf(kCapacity, kTake);
  ASSERT_EQ(chunk, 24'000);
  const auto start = Steady::now();
  for (int i = 0; i < 160; ++i) ASSERT_TRUE(a.Take(spec, kTake).admitted) << i;
  EXPECT_LE(a.stats().redis_takes, 160u / 16 + 1);
  EXPECT_GE(a.stats().lease_hits, 160u - (160u / 16 + 1));

  std::atomic<int64_t> admitted{160 * kTake};
  std::vector<std::thread> threads;
  for (RedisQuotaStore* edge : {&a, &b, &a, &b}) {
    threads.emplace_back([&admitted, edge, &spec] {
      int refused_in_a_row = 0;
      while (refused_in_a_row < 20) {
        if (edge->Take(spec, kTake).admitted) {
          admitted += kTake;
          refused_in_a_row = 0;
        } else {
          ++refused_in_a_row;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  const int64_t elapsed_us =
      std::chrono::duration_cast<std::chrono::microseconds>(Steady::now() - start).count();
  EXPECT_LE(admitted.load(), kCapacity + elapsed_us / 600 + kTake);
  EXPECT_GE(admitted.load(), kCapacity - 2 * (chunk - 1) - kTake);
}

// Many threads on two edges, several keys, uneven sizes, Peeks and blocks on
// a key of its own: per key, never more than the capacity (T = 3 s: no
// refill during the test), and no more missing than the leases can hold.
TEST_F(SharedRedisQuotaTest, ConcurrentTakesOnTwoEdgesStayWithinTheLimit) {
  RedisQuotaStore a(options_), b(options_);
  constexpr int kKeys = 3;
  constexpr int64_t kCapacity = 200;
  const int64_t chunk = a.ChunkOf(kCapacity);
  ASSERT_EQ(chunk, 10);
  std::atomic<int64_t> admitted[kKeys] = {};
  std::vector<std::thread> threads;
  for (int t = 0; t < 6; ++t) {
    RedisQuotaStore* edge = t % 2 == 0 ? &a : &b;
    threads.emplace_back([&, edge, t] {
      std::minstd_rand rng(static_cast<unsigned>(t + 1));
      int refused_in_a_row = 0;
      while (refused_in_a_row < 50) {
        const int key = static_cast<int>(rng() % kKeys);
        const int64_t n = 1 + static_cast<int64_t>(rng() % 3);
        const Spec spec = MakeSpec(kCapacity, 600s, "gw:k" + std::to_string(key));
        const Answer r = edge->Take(spec, n);
        EXPECT_GE(r.remaining, 0);
        EXPECT_LE(r.remaining, kCapacity);
        if (r.admitted) {
          admitted[key] += n;
          refused_in_a_row = 0;
        } else {
          ++refused_in_a_row;
        }
        edge->Peek(spec);
        const Spec blocked = MakeSpec(kCapacity, 600s, "gw:blocked");
        edge->BlockFor(blocked, 5s);
        EXPECT_FALSE(edge->Take(blocked, 1).admitted);
      }
    });
  }
  for (auto& t : threads) t.join();
  for (int k = 0; k < kKeys; ++k) {
    EXPECT_LE(admitted[k].load(), kCapacity) << k;
    EXPECT_GE(admitted[k].load(), kCapacity - 2 * (chunk - 1) - 2) << k;
  }
}

TEST_F(SharedRedisQuotaTest, UnusedLeaseUnitsComeBackAfterTheTtl) {
  options_.lease_ttl = 200ms;
  RedisQuotaStore a(options_), b(options_);
  const Spec spec = MakeSpec(100, 600s);  // T = 6 s, chunk 5
  ASSERT_EQ(a.ChunkOf(100), 5);
  const auto start = Steady::now();
  const Answer first = a.Take(spec, 1);  // Redis grants 5: 4 stay in a's lease
  ASSERT_TRUE(first.admitted);
  EXPECT_EQ(first.remaining, 99);  // 95 in Redis + 4 in the lease
  EXPECT_EQ(a.Peek(spec).remaining, 99);
  ASSERT_TRUE(b.Take(spec, 95).admitted);
  const Answer refused = b.Take(spec, 1);
  EXPECT_FALSE(refused.admitted) << "a holds the last 4";

  ASSERT_TRUE(WaitFor([&] { return b.Take(spec, 1).admitted; }, 2s));
  const auto back = Steady::now() - start;
  EXPECT_GE(back, 200ms);
  EXPECT_LT(back, 1s);
  // b got the 4 (one taken, 3 in its lease); a has none left.
  EXPECT_TRUE(b.Take(spec, 3).admitted);
  EXPECT_FALSE(b.Take(spec, 1).admitted);
  EXPECT_FALSE(a.Take(spec, 1).admitted);
}

TEST_F(SharedRedisQuotaTest, AStoppingEdgeReturnsItsLease) {
  options_.lease_ttl = 60s;
  const Spec spec = MakeSpec(100, 600s);  // chunk 5
  RedisQuotaStore b(options_);
  {
    RedisQuotaStore a(options_);
    ASSERT_TRUE(a.Take(spec, 1).admitted);  // 4 in a's lease
    ASSERT_TRUE(b.Take(spec, 95).admitted);
    ASSERT_FALSE(b.Take(spec, 1).admitted);
  }
  EXPECT_TRUE(b.Take(spec, 4).admitted);
  EXPECT_FALSE(b.Take(spec, 1).admitted);
}

TEST_F(SharedRedisQuotaTest, SettlementsReachTheOtherEdge) {
  RedisQuotaStore a(options_), b(options_);
  RedisProbe probe(options_.host, options_.port);
  ASSERT_TRUE(probe.ok());
  const Spec spec = MakeSpec(10, 600s);  // chunk 1

  a.Adjust(spec, 4);  // a used 4 more than it took
  ASSERT_TRUE(WaitFor([&] { return !probe.Get(a.KeyOf(spec)).empty(); }, 1s));
  EXPECT_FALSE(b.Take(spec, 7).admitted);
  EXPECT_TRUE(b.Take(spec, 6).admitted);
  EXPECT_FALSE(b.Take(spec, 1).admitted);

  const std::string before = probe.Get(a.KeyOf(spec));
  a.Adjust(spec, -3);  // and gives 3 back
  ASSERT_TRUE(WaitFor([&] { return probe.Get(a.KeyOf(spec)) != before; }, 1s));
  EXPECT_TRUE(b.Take(spec, 3).admitted);
  EXPECT_FALSE(b.Take(spec, 1).admitted);

  // A provider's Retry-After on a: b refuses for at least as long.
  const Spec other = MakeSpec(10, 600s, "gw:other");
  a.BlockFor(other, 3000ms);
  EXPECT_FALSE(a.Take(other, 1).admitted);  // at once, locally
  ASSERT_TRUE(WaitFor([&] { return !probe.Get(a.KeyOf(other)).empty(); }, 1s));
  const Answer blocked = b.Take(other, 1);
  EXPECT_FALSE(blocked.admitted);
  EXPECT_GT(blocked.retry_after, 3000ms);
  EXPECT_EQ(blocked.remaining, 0);
}

// An error reply (here WRONGTYPE: someone else's hash at the key) counts as
// Redis down: local answers for down_retry, then Redis again.
TEST_F(SharedRedisQuotaTest, AnErrorReplyCountsAsDown) {
  options_.down_retry = 50ms;
  RedisQuotaStore a(options_);
  RedisProbe probe(options_.host, options_.port);
  ASSERT_TRUE(probe.ok());
  const Spec spec = MakeSpec(10, 600s);
  probe.HSet(a.KeyOf(spec));
  Answer r = a.Take(spec, 1);
  EXPECT_TRUE(r.admitted);
  EXPECT_TRUE(r.local);
  EXPECT_FALSE(a.redis_up());
  EXPECT_EQ(a.stats().redis_takes, 1u);
  probe.Del(a.KeyOf(spec));
  std::this_thread::sleep_for(60ms);
  r = a.Take(spec, 1);
  EXPECT_TRUE(r.admitted);
  EXPECT_FALSE(r.local);
  EXPECT_TRUE(a.redis_up());
  EXPECT_EQ(r.remaining, 9);  // the fallback's take is not in Redis
}

// Nothing listens on the port: every take is answered from local buckets, at
// once, and only one connection attempt is made per down_retry.
TEST(UnreachableRedisQuotaTest, AnswersLocallyAndFast) {
  RedisQuotaOptions options;
  options.port = FreePort();
  options.prefix = UniquePrefix();
  RedisQuotaStore a(options), b(options);
  const Spec spec = MakeSpec(5, 600s);
  for (RedisQuotaStore* edge : {&a, &b}) {
    for (int i = 0; i < 6; ++i) {
      const auto start = Steady::now();
      const Answer r = edge->Take(spec, 1);
      EXPECT_LT(Steady::now() - start, 20ms);
      EXPECT_TRUE(r.local);
      EXPECT_EQ(r.admitted, i < 5) << i;  // per edge: the full capacity
      if (!r.admitted) {
        EXPECT_EQ(r.retry_after, 120'000ms);
      }
    }
    EXPECT_FALSE(edge->redis_up());
    EXPECT_EQ(edge->stats().redis_takes, 1u);
    EXPECT_EQ(edge->stats().fallback_answers, 6u);
    EXPECT_TRUE(edge->Peek(spec).local);
    EXPECT_EQ(edge->Peek(spec).remaining, 0);
  }
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

TEST(RedisQuotaOutageTest, KilledRedisFallsBackAndSharesAgain) {
  if (access("/usr/bin/redis-server", X_OK) != 0) GTEST_SKIP() << "no /usr/bin/redis-server";
  const int port = FreePort();
  RedisChild redis(port);
  ASSERT_TRUE(redis.Start());

  RedisQuotaOptions options;
  options.port = port;
  options.prefix = UniquePrefix();
  options.down_retry = 100ms;
  options.flush_interval = 20ms;
  RedisQuotaStore a(options), b(options);
  const Spec spec = MakeSpec(10, 600s);  // chunk 1
  ASSERT_TRUE(a.Take(spec, 3).admitted);
  ASSERT_TRUE(b.Take(spec, 3).admitted);
  EXPECT_EQ(b.Peek(spec).remaining, 4);

  redis.Kill();
  for (RedisQuotaStore* edge : {&a, &b}) {
    int admitted = 0;
    for (int i = 0; i < 11; ++i) {
      const auto start = Steady::now();
      const Answer r = edge->Take(spec, 1);
      EXPECT_LT(Steady::now() - start, 50ms);
      EXPECT_TRUE(r.local);
      admitted += r.admitted ? 1 : 0;
    }
    EXPECT_EQ(admitted, 10);  // each edge alone: its own full bucket
    EXPECT_FALSE(edge->redis_up());
  }

  // Redis returns (empty): after down_retry the next take asks it again.
  ASSERT_TRUE(redis.Start());
  std::this_thread::sleep_for(150ms);
  Answer r = a.Take(spec, 1);
  EXPECT_FALSE(r.local);
  EXPECT_TRUE(r.admitted);
  EXPECT_TRUE(a.redis_up());
  EXPECT_TRUE(a.Take(spec, 4).admitted);
  r = b.Take(spec, 5);
  EXPECT_FALSE(r.local);
  EXPECT_TRUE(r.admitted);
  EXPECT_EQ(r.remaining, 0);
  EXPECT_FALSE(b.Take(spec, 1).admitted);  // shared again: 10 in all
  EXPECT_FALSE(a.Take(spec, 1).admitted);
}

}  // namespace
}  // namespace tg::edge::quota
