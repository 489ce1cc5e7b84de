#pragma once

#include <chrono>
#include <cstdint>

namespace tg::balancer {

// Wall-clock time in milliseconds since the Unix epoch, as tg-balancer sees
// it. Wall time, not steady time, because ejection deadlines are shared with
// the other replicas through Redis (their clocks are assumed NTP-synchronised;
// a skew of a few hundred milliseconds only shifts a trial by as much).
// A seam so that tests move time instead of sleeping through an ejection.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual int64_t NowMs() const = 0;
};

class SystemClock final : public Clock {
 public:
  int64_t NowMs() const override {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
};

}  // namespace tg::balancer
