#pragma once

#include <cstdint>

namespace tg::balancer {

// Randomness as the pick algorithms consume it. A seam so that tests assert
// exact sequences; implementations must be safe to call from many threads.
class Random {
 public:
  virtual ~Random() = default;
  // Uniform in [0, n). n > 0.
  virtual uint64_t Uniform(uint64_t n) = 0;
};

// xoshiro256** per thread, seeded from std::random_device: no lock and no
// shared cache line on the pick path. Not for secrets (pick ids are not
// secrets either).
class SystemRandom final : public Random {
 public:
  uint64_t Uniform(uint64_t n) override;
};

// Maps a uniform 64-bit value onto [0, n) without modulo bias worth speaking of:
// Lemire's multiply-shift (the high 64 bits of x * n). The bias is at most
// n / 2^64, far below anything a load balancer could observe.
inline uint64_t ScaleToRange(uint64_t x, uint64_t n) {
  return static_cast<uint64_t>((static_cast<unsigned __int128>(x) * n) >> 64);
}

}  // namespace tg::balancer
