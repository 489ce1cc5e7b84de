#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "tg/edge/quota/gcra.h"
#include "tg/edge/quota/quota_store.h"

namespace tg::edge::quota {

struct RedisQuotaOptions {
  std::string host = "127.0.0.1";
  int port = 6379;
  std::string password;                // AUTH when set (never logged)
  int db = 0;                          // SELECT when not 0
  std::string prefix = "tg:quota:v1";  // keys are <prefix>:<spec.key>
  std::chrono::milliseconds connect_timeout{200}, command_timeout{100};
  std::chrono::milliseconds lease_ttl{1000};   // unused leased units go back after this
  std::chrono::milliseconds down_retry{1000};  // after a failure, no Redis call for this long
  // Lease chunk = clamp(capacity / lease_divisor, 1, max(max_lease, lease_takes * n)) for a
  // Take of n units: large enough for lease_takes Takes of that size (a token bucket's Takes
  // are hundreds of units each), never more than 1/lease_divisor of the bucket.
  int64_t lease_divisor = 20;
  int64_t max_lease = 1000;
  int64_t lease_takes = 16;
  size_t max_buckets = 100000;  // local entries (leases, fallback buckets); beyond: evict
                                // idle, else no lease
  std::chrono::milliseconds flush_interval{100};
};

// redis://[[user]:password@]host[:port][/db] (the user is accepted and not
// used: AUTH sends the password only); nullopt and *error otherwise. Every
// other field keeps its default.
std::optional<RedisQuotaOptions> ParseRedisQuotaUrl(std::string_view url, std::string* error);

// GCRA buckets shared by every tg-edge replica through one Redis, without a
// Redis round trip per request in the steady state.
//
// Redis: one key per bucket, <prefix>:<spec.key>, holding its TAT (gcra.h),
// changed only by kGcraScript (EVALSHA; EVAL after NOSCRIPT) on Redis's own
// clock (TIME), so edges with skewed clocks agree.
//
// Leases. chunk = clamp(capacity / lease_divisor, 1, max(max_lease,
// lease_takes * u)) for the Take of n that fetches it, u = max(n, the units
// used per Take of this key lately, positive Adjusts included: a token
// bucket's settlement is most of what a request uses): a lease covers
// lease_takes such Takes, or at least max_lease units, and never more than
// 1/lease_divisor of the bucket, so the bounds below, in units of chunk, are
// at most capacity / lease_divisor per edge. A Take that
// the local lease cannot cover makes one script call asking for
// want = n + chunk - 1 - lease, min = n - lease (the lease's units count
// towards n); on success n are spent and the rest stays in the lease, so a
// lease never holds more than chunk - 1 units and one Take never leases more
// than n + chunk - 1. Concurrent Takes of one key: one asks for a chunk, the
// others for exactly what they lack. The next Takes spend the lease without
// Redis. With capacity < 2 * lease_divisor, chunk = 1: every Take asks Redis
// for exactly n and the limit is exact. A lease lives min(lease_ttl, period)
// from its last grant; then the background thread gives its units back (a
// negative adjust) and Takes no longer spend them.
//
// Guarantees while Redis is reachable:
//   - no over-admission: every admitted unit was granted by the script, so
//     the units admitted across all edges never exceed what GCRA allows for
//     the bucket (counted when Redis granted them; a leased unit is spent at
//     most min(lease_ttl, period) later, so counted when spent, a window can
//     see up to chunk - 1 units per edge early — none with chunk = 1);
//   - under-admission: at most (chunk - 1) units per other edge per bucket
//     (what its lease holds), for at most min(lease_ttl, period) +
//     flush_interval after that edge's last grant; a refusal can come up to
//     (edges - 1) * (chunk - 1) units early.
// Adjust and BlockFor reach Redis within flush_interval: another edge's next
// script call sees them after that (a settlement is shared, never waited for).
//
// Answers: admitted/refused as Redis said (or the lease). remaining = min(
// capacity, Redis's remaining at the last script answer + what refilled since
// by the local clock + this edge's lease), reset = the last answer's reset
// counted down locally: exact for a single edge, stale by what other edges
// took since. Adjust n < 0 puts units back into the lease only up to chunk - 1
// and up to what the bucket missed at the last answer (never above full as
// far as this edge knows); the rest goes to Redis, which caps at full.
//
// Redis down (connection error, timeout, error reply): no Redis call at all
// for down_retry (a dead Redis costs a request nothing), then the next Take
// (or flush) tries once. Meanwhile Takes are answered from a local GCRA bucket
// per key and edge (full capacity per edge: fail open with local limits,
// local=true); Adjust and BlockFor apply to it too. When Redis answers again
// the fallback buckets are dropped. One log line when Redis goes down and one
// when it is back. Settlements wait through an outage for a bounded time: an
// Adjust (or a lease return) is dropped once older than its bucket's period
// (the bucket would have refilled what it corrects), a BlockFor once its
// deadline has passed. Lease units are not spent while Redis is down.
//
// Threads: one mutex for the local map; Takes share one Redis connection
// under its own mutex, never holding the map's; a background thread (its own
// connection) returns expired leases, flushes Adjust/BlockFor (pipelined, one
// script call per key and kind, adjust before block) and evicts idle entries
// every flush_interval.
//
// Memory: at most max_buckets entries. An entry is evicted once nothing is
// owed (no lease, nothing pending, no block, fallback bucket full) and it has
// been idle for lease_ttl. When the map is full, a Take without an entry asks
// Redis for exactly n (no lease) or, while Redis is down, is admitted from a
// fresh full bucket; an Adjust or BlockFor without an entry is dropped.
class RedisQuotaStore final : public Store {
 public:
  explicit RedisQuotaStore(RedisQuotaOptions options, const Clock* clock = nullptr);
  // Stops the background thread, then returns unused leases and flushes what
  // is pending (best effort: skipped while Redis is down, and bounded to
  // connect_timeout + 4 x command_timeout).
  ~RedisQuotaStore() override;
  RedisQuotaStore(const RedisQuotaStore&) = delete;
  RedisQuotaStore& operator=(const RedisQuotaStore&) = delete;

  Answer Take(const Spec& spec, int64_t n) override;
  void Adjust(const Spec& spec, int64_t n) override;
  void BlockFor(const Spec& spec, std::chrono::milliseconds d) override;
  Answer Peek(const Spec& spec) override;

  // False from a failure until the next successful call.
  bool redis_up() const;
  // Counters for metrics and tests: script calls made on the Take path,
  // Takes answered from a lease, Takes answered from a fallback bucket.
  struct Stats {
    uint64_t redis_takes = 0;
    uint64_t lease_hits = 0;
    uint64_t fallback_answers = 0;
  };
  Stats stats() const;

  std::string KeyOf(const Spec& spec) const;  // <prefix>:<spec.key>
  // The chunk a Take of n units fetches (see Leases above).
  int64_t ChunkOf(int64_t capacity, int64_t n = 1) const;

 private:
  class Connection;
  struct Entry;
  struct FlushItem;

  Entry* Find(const std::string& key);
  Entry* FindOrCreate(const Spec& spec, int64_t now_us);
  void Touch(Entry* e, const Spec& spec, int64_t now_us) const;
  // Lease units to keep (up to chunk - 1); the rest are queued for Redis.
  void AddToLease(Entry* e, int64_t units, int64_t now_us);
  int64_t LeaseExpiry(const Entry& e, int64_t now_us) const;
  void ReturnLease(Entry* e, int64_t now_us);
  void AddPending(Entry* e, int64_t n, int64_t now_us);
  // Counts n units used (take: one more Take) for the chunk's size.
  static void NoteUse(Entry* e, int64_t n, bool take);
  static int64_t UsePerTake(const Entry& e);
  Answer LeaseAnswer(const Spec& spec, const Entry& e, int64_t now_us) const;
  Answer FallbackTake(const Spec& spec, int64_t n, Entry* e, int64_t now_us);

  bool Down(int64_t now_us) const;
  void MarkDown(const std::string& reason);
  void MarkUp();

  void Loop();
  void FlushOnce(Connection& conn, bool final, int64_t deadline_us);
  void Requeue(const std::vector<FlushItem>& items, int64_t now_us);

  const RedisQuotaOptions options_;
  const Clock* clock_;

  mutable std::mutex mu_;  // entries_
  std::unordered_map<std::string, Entry> entries_;

  std::mutex take_mu_;  // take_conn_
  std::unique_ptr<Connection> take_conn_;

  std::atomic<int64_t> down_until_us_{0};
  std::atomic<bool> up_{true};
  std::atomic<uint64_t> redis_takes_{0}, lease_hits_{0}, fallback_answers_{0};

  std::mutex stop_mu_;
  std::condition_variable stop_cv_;
  bool stopping_ = false;
  std::thread flusher_;
};

}  // namespace tg::edge::quota
