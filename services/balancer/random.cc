#include "tg/balancer/random.h"

#include <random>

namespace tg::balancer {
namespace {

uint64_t Rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

// xoshiro256** (Blackman and Vigna, public domain reference algorithm).
struct Xoshiro256 {
  uint64_t s[4];

  Xoshiro256() {
    std::random_device rd;
    for (auto& word : s) word = (static_cast<uint64_t>(rd()) << 32) ^ rd();
    if ((s[0] | s[1] | s[2] | s[3]) == 0) s[0] = 1;  // the all-zero state is a fixed point
  }

  uint64_t Next() {
    const uint64_t result = Rotl(s[1] * 5, 7) * 9;
    const uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = Rotl(s[3], 45);
    return result;
  }
};

}  // namespace

uint64_t SystemRandom::Uniform(uint64_t n) {
  thread_local Xoshiro256 rng;
  return ScaleToRange(rng.Next(), n);
}

}  // namespace tg::balancer
