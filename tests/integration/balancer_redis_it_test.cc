// Passive health shared through a real Redis: two balancer replicas (each a
// Balancer with its own RedisHealthStore, in process) agree within a second;
// Redis killed and restarted mid-run costs no pick and resynchronises.
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
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "balancer_fakes.h"
#include "balancer_test_util.h"
#include "tg/balancer/balancer.h"
#include "tg/balancer/redis_health_store.h"

namespace tg::balancer {
namespace {

using namespace std::chrono_literals;
using testing::HealthSpec;
using testing::MakeUpstream;

bool WaitFor(const std::function<bool()>& probe, std::chrono::milliseconds timeout) {
  const auto until = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < until) {
    if (probe()) return true;
    std::this_thread::sleep_for(10ms);
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
  return "tg:balancer:test:" + std::to_string(rd()) + std::to_string(rd());
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
  std::string HGet(const std::string& key, const std::string& field) {
    auto* r =
        static_cast<redisReply*>(redisCommand(ctx_, "HGET %s %s", key.c_str(), field.c_str()));
    std::string out = r && r->type == REDIS_REPLY_STRING ? std::string(r->str, r->len) : "";
    if (r) freeReplyObject(r);
    return out;
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

// One balancer replica: its own store, sharing Redis with the others.
struct Replica {
  Replica(RedisHealthStoreOptions options, const UpstreamSet& config)
      : store(std::move(options), &clock), balancer(&clock, &random, &store) {
    store.SetStatusListener(
        [this](const HealthStoreStatus& s) { (s.degraded ? degraded_events : restored_events)++; });
    store.Start(&balancer);
    balancer.ApplyConfig(config);
  }
  ~Replica() { store.Stop(); }

  bool Shared() { return !store.status().degraded; }

  tg::v1::TargetHealth Health(const std::string& upstream, const std::string& target) {
    tg::v1::GetHealthRequest req;
    req.set_upstream_id(upstream);
    tg::v1::GetHealthResponse resp;
    EXPECT_TRUE(balancer.GetHealth(req, &resp).ok());
    last_degraded = resp.degraded();
    last_reason = resp.degraded_reason();
    for (const auto& t : resp.targets()) {
      if (t.target_id() == target) return t;
    }
    return {};
  }

  bool Ejected(const std::string& upstream, const std::string& target) {
    return Health(upstream, target).state() == tg::v1::TargetHealth::STATE_EJECTED;
  }

  void Fail(const std::string& upstream, const std::string& target) {
    tg::v1::ReportRequest rep;
    rep.set_upstream_id(upstream);
    rep.set_target_id(target);
    rep.set_outcome(tg::v1::OUTCOME_HTTP_STATUS);
    rep.set_http_status(503);
    EXPECT_TRUE(balancer.Report(rep).ok());
  }

  void Succeed(const std::string& upstream, const std::string& target) {
    tg::v1::ReportRequest rep;
    rep.set_upstream_id(upstream);
    rep.set_target_id(target);
    rep.set_outcome(tg::v1::OUTCOME_SUCCESS);
    EXPECT_TRUE(balancer.Report(rep).ok());
  }

  SystemClock clock;
  SystemRandom random;
  RedisHealthStore store;
  Balancer balancer;
  std::atomic<int> degraded_events{0};
  std::atomic<int> restored_events{0};
  bool last_degraded = false;
  std::string last_reason;
};

UpstreamSet TwoTargets(int threshold) {
  UpstreamSet set;
  set.revision = 1;
  set.upstreams = {MakeUpstream("u1", "round-robin", {{.id = "a"}, {.id = "b"}},
                                HealthSpec{.threshold = threshold, .interval_s = 30})};
  return set;
}

class SharedRedisTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* addr = std::getenv("TG_TEST_REDIS_ADDR");
    if (addr == nullptr || *addr == '\0') GTEST_SKIP() << "TG_TEST_REDIS_ADDR is not set";
    std::string error;
    auto o = ParseRedisUrl(std::string("redis://") + addr, &error);
    ASSERT_TRUE(o) << error;
    options_ = *o;
    options_.prefix = UniquePrefix();  // tests share the server, not their keys
  }

  RedisHealthStoreOptions options_;
};

TEST_F(SharedRedisTest, ReplicasShareAnEjectionWithinOneSecond) {
  Replica a(options_, TwoTargets(2));
  Replica b(options_, TwoTargets(2));
  ASSERT_TRUE(WaitFor([&] { return a.Shared() && b.Shared(); }, 3s));

  a.Fail("u1", "a");
  a.Fail("u1", "a");
  ASSERT_TRUE(a.Ejected("u1", "a"));  // locally at once
  const auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(WaitFor([&] { return b.Ejected("u1", "a"); }, 1s));
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1s);
  EXPECT_EQ(b.Health("u1", "a").consecutive_failures(), 2);
  EXPECT_EQ(b.Health("u1", "a").ejections(), 1);

  // b's picks now avoid a.
  for (int i = 0; i < 4; ++i) {
    tg::v1::PickRequest req;
    req.set_upstream_id("u1");
    tg::v1::PickResponse resp;
    ASSERT_TRUE(b.balancer.Pick(req, &resp).ok());
    EXPECT_EQ(resp.target().id(), "b");
  }

  // The documented key, with a TTL of the ejection plus 10 intervals.
  RedisProbe probe(options_.host, options_.port);
  ASSERT_TRUE(probe.ok());
  const std::string key = options_.prefix + ":health:u1:a";
  EXPECT_EQ(a.store.KeyOf("u1", "a"), key);
  EXPECT_EQ(probe.HGet(key, "failures"), "2");
  EXPECT_EQ(probe.HGet(key, "ejections"), "1");
  EXPECT_NE(probe.HGet(key, "ejected_until_ms"), "0");
  const long long ttl = probe.PTtl(key);
  EXPECT_GT(ttl, 300'000);
  EXPECT_LE(ttl, 330'000);

  // A success anywhere restores it everywhere.
  b.Succeed("u1", "a");
  EXPECT_TRUE(WaitFor([&] { return !a.Ejected("u1", "a"); }, 1s));
  EXPECT_EQ(probe.HGet(key, "failures"), "0");
}

TEST_F(SharedRedisTest, FailuresFromTwoReplicasCountTowardsOneThreshold) {
  Replica a(options_, TwoTargets(3));
  Replica b(options_, TwoTargets(3));
  ASSERT_TRUE(WaitFor([&] { return a.Shared() && b.Shared(); }, 3s));
  a.Fail("u1", "b");
  ASSERT_TRUE(WaitFor([&] { return b.Health("u1", "b").consecutive_failures() == 1; }, 1s));
  b.Fail("u1", "b");
  ASSERT_TRUE(WaitFor([&] { return a.Health("u1", "b").consecutive_failures() == 2; }, 1s));
  a.Fail("u1", "b");
  EXPECT_TRUE(WaitFor([&] { return a.Ejected("u1", "b") && b.Ejected("u1", "b"); }, 1s));
}

TEST_F(SharedRedisTest, ANewReplicaLoadsTheSharedState) {
  Replica a(options_, TwoTargets(1));
  ASSERT_TRUE(WaitFor([&] { return a.Shared(); }, 3s));
  a.Fail("u1", "a");
  RedisProbe probe(options_.host, options_.port);
  ASSERT_TRUE(WaitFor(
      [&] { return probe.HGet(options_.prefix + ":health:u1:a", "ejections") == "1"; }, 1s));
  Replica late(options_, TwoTargets(1));
  EXPECT_TRUE(WaitFor([&] { return late.Ejected("u1", "a"); }, 2s));
}

// Active probes: replicas share one probe per target and interval.
TEST_F(SharedRedisTest, ProbeClaimsGoToOneReplicaPerInterval) {
  SystemClock clock;
  RedisHealthStore one(options_, &clock), two(options_, &clock);
  EXPECT_TRUE(one.ClaimProbe("u1", "a", 300));
  EXPECT_FALSE(two.ClaimProbe("u1", "a", 300)) << "the first replica probes this interval";
  EXPECT_FALSE(one.ClaimProbe("u1", "a", 300));
  EXPECT_TRUE(two.ClaimProbe("u1", "b", 300)) << "per target";
  std::this_thread::sleep_for(400ms);
  EXPECT_TRUE(two.ClaimProbe("u1", "a", 300)) << "the next interval is anyone's";
  // Redis unreachable: every replica probes.
  RedisHealthStoreOptions nowhere = options_;
  nowhere.port = 1;
  RedisHealthStore lost(nowhere, &clock);
  EXPECT_TRUE(lost.ClaimProbe("u1", "a", 300));
  EXPECT_TRUE(lost.ClaimProbe("u1", "a", 300));
}

// ------------------------------------------------ Redis killed mid-run

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

TEST(RedisOutageTest, KilledAndRestartedRedisCostsNoPickAndResynchronises) {
  if (access("/usr/bin/redis-server", X_OK) != 0) GTEST_SKIP() << "no /usr/bin/redis-server";
  const int port = FreePort();
  RedisChild redis(port);
  ASSERT_TRUE(redis.Start());

  RedisHealthStoreOptions options;
  options.port = port;
  options.initial_backoff = 50ms;
  options.max_backoff = 250ms;
  options.prefix = UniquePrefix();
  Replica a(options, TwoTargets(2));
  Replica b(options, TwoTargets(2));
  ASSERT_TRUE(WaitFor([&] { return a.Shared() && b.Shared(); }, 3s));

  // Both replicas pick and report without pause for the whole test.
  std::atomic<bool> stop{false};
  std::atomic<int> picks{0}, failed{0};
  // The load keeps off target a on both replicas: a success of a pick made
  // just before a replica learns of the ejection below (on a, when it
  // ejects; on b, when it adopts a's state after the resync) would rightly
  // restore the target.
  auto load = [&](Replica* r) {
    while (!stop) {
      tg::v1::PickRequest req;
      req.set_upstream_id("u1");
      req.add_exclude_target_ids("a");
      tg::v1::PickResponse resp;
      if (!r->balancer.Pick(req, &resp).ok()) {
        ++failed;
        continue;
      }
      ++picks;
      tg::v1::ReportRequest rep;
      rep.set_pick_id(resp.pick_id());
      rep.set_outcome(tg::v1::OUTCOME_SUCCESS);
      if (!r->balancer.Report(rep).ok()) ++failed;
      std::this_thread::sleep_for(1ms);
    }
  };
  std::thread load_a(load, &a), load_b(load, &b);

  redis.Kill();
  ASSERT_TRUE(WaitFor([&] { return !a.Shared() && !b.Shared(); }, 2s));
  a.Health("u1", "a");
  EXPECT_TRUE(a.last_degraded);
  EXPECT_FALSE(a.last_reason.empty());
  const int picks_before = picks;

  // While Redis is away, a ejects target a on its own evidence; b cannot know.
  a.Fail("u1", "a");
  a.Fail("u1", "a");
  EXPECT_TRUE(a.Ejected("u1", "a"));
  std::this_thread::sleep_for(300ms);
  EXPECT_FALSE(b.Ejected("u1", "a"));
  EXPECT_GT(picks.load(), picks_before);  // picks went on during the outage

  // Redis returns, empty. Both replicas resynchronise: a's newer local state
  // is written back and b adopts it.
  ASSERT_TRUE(redis.Start());
  const auto back = std::chrono::steady_clock::now();
  ASSERT_TRUE(WaitFor([&] { return a.Shared() && b.Shared(); }, 3s));
  EXPECT_TRUE(WaitFor([&] { return b.Ejected("u1", "a"); }, 1s));
  EXPECT_LT(std::chrono::steady_clock::now() - back, 3s);
  RedisProbe probe("127.0.0.1", port);
  EXPECT_EQ(probe.HGet(options.prefix + ":health:u1:a", "ejections"), "1");
  b.Health("u1", "a");
  EXPECT_FALSE(b.last_degraded);

  stop = true;
  load_a.join();
  load_b.join();
  EXPECT_EQ(failed.load(), 0);
  EXPECT_GT(picks.load(), 100);

  // And sharing works again as before (with the load stopped: its successes
  // on b would reset the count between the two failures).
  b.Fail("u1", "b");
  b.Fail("u1", "b");
  EXPECT_TRUE(WaitFor([&] { return a.Ejected("u1", "b"); }, 1s));
  EXPECT_GE(a.degraded_events.load(), 1);
  EXPECT_GE(a.restored_events.load(), 1);
}

TEST(RedisUrlTest, Parses) {
  std::string error;
  auto o = ParseRedisUrl("redis://127.0.0.1:6380", &error);
  ASSERT_TRUE(o);
  EXPECT_EQ(o->host, "127.0.0.1");
  EXPECT_EQ(o->port, 6380);
  o = ParseRedisUrl("redis://:s3cret@cache.internal/2", &error);
  ASSERT_TRUE(o);
  EXPECT_EQ(o->host, "cache.internal");
  EXPECT_EQ(o->port, 6379);
  EXPECT_EQ(o->password, "s3cret");
  EXPECT_EQ(o->db, 2);
  o = ParseRedisUrl("redis://user:pw@[::1]:7000", &error);
  ASSERT_TRUE(o);
  EXPECT_EQ(o->host, "::1");
  EXPECT_EQ(o->port, 7000);
  EXPECT_FALSE(ParseRedisUrl("http://x", &error));
  EXPECT_FALSE(ParseRedisUrl("redis://x:0", &error));
  EXPECT_FALSE(ParseRedisUrl("redis://x/abc", &error));
  EXPECT_FALSE(ParseRedisUrl("redis://", &error));
}

}  // namespace
}  // namespace tg::balancer
