#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string_view>

namespace tg::edge::quota {

// Time for leases and the local buckets, in microseconds of a monotonic
// clock. Redis buckets never read it: the script uses Redis's own TIME, so
// edges with skewed clocks agree.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual int64_t NowMicros() const = 0;
};

class SteadyClock final : public Clock {
 public:
  int64_t NowMicros() const override;
  static const Clock& Get();  // the process's one instance
};

// Time that stands still until a test moves it. Thread-safe.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(int64_t start_micros = 1'000'000'000'000) : now_(start_micros) {}
  int64_t NowMicros() const override { return now_.load(std::memory_order_relaxed); }
  void Advance(std::chrono::microseconds d) { now_.fetch_add(d.count()); }

 private:
  std::atomic<int64_t> now_;
};

// GCRA (generic cell rate algorithm), the continuous token bucket, in
// microseconds. A bucket of `capacity` units refilled at capacity per
// `period`:
//   T   = period / capacity   emission interval: one unit comes back every T
//   tau = period              tolerance: a full bucket holds tau / T = capacity
// The whole state is one instant, the theoretical arrival time TAT; the
// bucket is full when TAT <= now. Every operation below works on
// `ahead` = max(TAT - now, 0), the time until the bucket is full again:
//   available = floor((tau - ahead) / T + 1e-9)     (never below 0)
//   take g    : ahead += g * T
//   adjust n  : ahead = max(0, ahead + n * T)      (n > 0 has no upper bound)
//   block d   : ahead = max(ahead, tau + d)         (empty for d, then refills)
// Example: capacity 10 per 60 s gives T = 6 s. Ten units at once leave ahead
// = 60 s; the eleventh is refused with retry_after 6 s, and every 6 s one
// unit comes back.
//
// The 1e-9 forgives rounding: ahead is a small number (at most tau plus what
// Adjust/BlockFor add), so the arithmetic is exact to ~1e-16 of tau and a unit
// is never lost to a rounding error of its boundary. That is why TAT is never
// handled as one double of epoch microseconds: at ~1.7e15 µs a double resolves
// 0.25 µs, and when T is not a multiple of that (period 1 s, capacity 3) every
// take rounds the same way and a burst of `capacity` units at one instant
// would be refused its last unit. A stored TAT is whole microseconds plus a
// fraction (`Tat`, and "<micros>.<12 digits>" in Redis).
struct GcraResult {
  int64_t granted = 0;         // Take: units taken (0 when refused)
  double ahead = 0;            // the new TAT - now (>= 0)
  int64_t remaining = 0;       // units available after the operation, 0..capacity
  int64_t retry_after_us = 0;  // refused Take: until `min` units are available (>= 1);
                               // 0 when granted or when min > capacity (never fits)
  int64_t reset_us = 0;        // until the bucket is full again (ceil(ahead))
};

class Gcra {
 public:
  // capacity > 0 and period_us > 0 (callers check).
  Gcra(int64_t capacity, int64_t period_us);

  int64_t capacity() const { return capacity_; }
  double emission_us() const { return emission_us_; }
  double tau_us() const { return tau_us_; }

  // Units available now (0..capacity).
  int64_t Available(double ahead) const;
  // Takes g = min(want, available) if g >= min (min >= 1, want >= min); else
  // takes nothing and reports when `min` units will be there.
  GcraResult Take(double ahead, int64_t want, int64_t min) const;
  GcraResult Adjust(double ahead, int64_t n) const;
  GcraResult Block(double ahead, int64_t block_us) const;
  GcraResult Peek(double ahead) const;

 private:
  GcraResult Result(double ahead, int64_t granted) const;

  int64_t capacity_;
  double emission_us_;
  double tau_us_;
};

// A stored TAT: whole microseconds of some clock plus a fraction in [0, 1).
struct Tat {
  int64_t micros = 0;
  double frac = 0;
};
// max(TAT - now, 0): exact integer difference first, then the small fraction.
double AheadOf(const Tat& tat, int64_t now_us);
Tat TatAt(int64_t now_us, double ahead);

// Microseconds to whole milliseconds, rounded up (a retry_after of 1 µs is 1 ms).
std::chrono::milliseconds CeilMillis(int64_t micros);

// The Redis side of the same math, one script for every operation:
//   EVALSHA <sha> 1 <key> <op> <capacity> <period_us> <a> <b>
//     op "take":   a = want, b = min
//     op "adjust": a = n (signed), b = 0
//     op "block":  a = block_us, b = 0
//   -> {granted, remaining, retry_after_us, reset_us} (integers)
// now is Redis's TIME. The key holds the TAT as "<micros>.<12 digits>" with a
// PEXPIRE of the time until full + 1 s; a full bucket is no key at all.
extern const std::string_view kGcraScript;

}  // namespace tg::edge::quota
