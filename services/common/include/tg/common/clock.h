#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>

namespace tg {

// Time as a service sees it: the one seam through which tests move time
// instead of sleeping (ejections, key expiry, cache lifetimes).
//   Now():    wall time (expiry, deadlines shared through Redis; replicas'
//             clocks are assumed NTP-synchronised);
//   Steady(): for intervals inside one process (cache ages).
class Clock {
 public:
  virtual ~Clock() = default;
  virtual std::chrono::system_clock::time_point Now() const = 0;
  virtual std::chrono::steady_clock::time_point Steady() const {
    return std::chrono::steady_clock::now();
  }
  // Now() in milliseconds since the Unix epoch.
  int64_t NowMs() const {
    return std::chrono::duration_cast<std::chrono::milliseconds>(Now().time_since_epoch()).count();
  }
};

class SystemClock final : public Clock {
 public:
  std::chrono::system_clock::time_point Now() const override {
    return std::chrono::system_clock::now();
  }
  // The process's one instance.
  static const Clock& Get() {
    static const SystemClock clock;
    return clock;
  }
};

// Time that stands still until a test moves it (both readings move
// together). Thread-safe.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(
      std::chrono::system_clock::time_point start = std::chrono::system_clock::now())
      : wall_(start) {}
  std::chrono::system_clock::time_point Now() const override {
    std::lock_guard lock(mu_);
    return wall_ + offset_;
  }
  std::chrono::steady_clock::time_point Steady() const override {
    std::lock_guard lock(mu_);
    return steady_ + offset_;
  }
  void Advance(std::chrono::steady_clock::duration d) {
    std::lock_guard lock(mu_);
    offset_ += d;
  }

 private:
  mutable std::mutex mu_;
  const std::chrono::system_clock::time_point wall_;
  const std::chrono::steady_clock::time_point steady_ = std::chrono::steady_clock::now();
  std::chrono::steady_clock::duration offset_{0};
};

}  // namespace tg
