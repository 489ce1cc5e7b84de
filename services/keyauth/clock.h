#pragma once

#include <chrono>

namespace tg::keyauth {

// Time as tg-keyauth sees it: expiry checks and created_at/updated_at. A seam
// so tests can move time instead of sleeping through an expiry.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual std::chrono::system_clock::time_point Now() const = 0;
};

class SystemClock final : public Clock {
 public:
  std::chrono::system_clock::time_point Now() const override {
    return std::chrono::system_clock::now();
  }
};

}  // namespace tg::keyauth
