#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>

#include "tg/edge/quota/gcra.h"

namespace tg::edge::quota {

// A bucket: at most `capacity` units, refilled continuously at capacity per
// `period` (GCRA, gcra.h; "limit per window" = capacity limit, period window).
struct Spec {
  std::string key;                      // caller-built, <= 200 bytes, already safe
                                        // (no spaces/newlines)
  int64_t capacity = 0;                 // > 0
  std::chrono::milliseconds period{0};  // > 0
};

struct Answer {
  bool admitted = false;
  int64_t limit = 0;      // spec.capacity
  int64_t remaining = 0;  // units left after this take (best local knowledge), >= 0
  std::chrono::milliseconds retry_after{0};  // refused: until n units will be available
                                             // (>= 1 ms); admitted: 0
  std::chrono::milliseconds reset{0};        // until the bucket is full again
  bool local = false;  // answered without Redis (Redis unreachable, or LocalQuotaStore)
};

// Every method may be called concurrently from any thread. A spec with
// capacity <= 0 or period <= 0 is refused with retry_after 0 (nothing fits);
// n <= 0 in Take is answered as Peek.
class Store {
 public:
  virtual ~Store() = default;
  // Takes n (>= 1) units or refuses (then nothing is taken). n > capacity is
  // always refused with retry_after = 0 (it can never fit) — callers check
  // that case themselves first.
  virtual Answer Take(const Spec& spec, int64_t n) = 0;
  // Settles units after the fact without admission: n > 0 takes more (may
  // drive the bucket below empty, so later takes wait), n < 0 gives units
  // back (never above full). Never blocks on Redis: applied to the local lease
  // or queued for a background flush.
  virtual void Adjust(const Spec& spec, int64_t n) = 0;
  // The bucket is empty until `d` from now at least (a provider said
  // Retry-After): Take refuses until then. Best effort, never blocks on Redis
  // (queued).
  virtual void BlockFor(const Spec& spec, std::chrono::milliseconds d) = 0;
  // Read-only view for headers (no Redis call): remaining/reset as far as
  // known locally; admitted=true. May be stale.
  virtual Answer Peek(const Spec& spec) = 0;
};

// True when a spec can describe a bucket at all.
bool ValidSpec(const Spec& spec);
// The answer to a take that can never be admitted (n > capacity, bad spec).
Answer NeverFits(const Spec& spec);

// GCRA buckets in this process: a mutex-protected map, one Tat per key. Used
// for tests and, inside RedisQuotaStore, as the shape of its fallback.
// Every answer has local=true. Memory: a full bucket is the same as no entry,
// so full buckets are swept out whenever the map has doubled since the last
// sweep; the map holds the buckets that are refilling, plus at most as many.
class LocalQuotaStore final : public Store {
 public:
  explicit LocalQuotaStore(const Clock* clock = nullptr /* steady clock by default */);

  Answer Take(const Spec& spec, int64_t n) override;
  void Adjust(const Spec& spec, int64_t n) override;
  void BlockFor(const Spec& spec, std::chrono::milliseconds d) override;
  Answer Peek(const Spec& spec) override;

  size_t size() const;  // buckets held (tests)

 private:
  // Runs op on the bucket's ahead, stores the new TAT; mu_ held.
  template <typename Op>
  GcraResult Apply(const Spec& spec, Op op);
  void MaybeSweep(int64_t now_us);

  const Clock* clock_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, Tat> buckets_;
  size_t sweep_at_ = 1024;
};

// What a GcraResult means to a caller (limit, ms rounding); local as given.
Answer AnswerOf(const Spec& spec, const GcraResult& r, bool admitted, bool local);

}  // namespace tg::edge::quota
