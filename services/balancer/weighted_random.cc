#include "tg/balancer/weighted_random.h"

#include <algorithm>
#include <cstdlib>

namespace tg::balancer {

WeightedRandom::WeightedRandom(std::span<const int32_t> weights) {
  if (weights.empty()) std::abort();  // a pool always has a member
  prefix_.reserve(weights.size());
  uint64_t sum = 0;
  for (int32_t w : weights) {
    sum += static_cast<uint64_t>(w < 1 ? 1 : w);
    prefix_.push_back(sum);
  }
}

uint32_t WeightedRandom::Pick(Random& random, ExcludedMembers excluded) const {
  uint64_t total = prefix_.back();
  for (uint32_t m : excluded) total -= prefix_[m] - (m == 0 ? 0 : prefix_[m - 1]);
  if (total == 0) std::abort();  // every member excluded: the caller's contract was broken
  uint64_t r = random.Uniform(total);
  for (uint32_t m : excluded) {  // ascending, so intervals are visited left to right
    const uint64_t start = m == 0 ? 0 : prefix_[m - 1];
    if (start > r) break;
    r += prefix_[m] - start;
  }
  // The first member whose interval ends after r.
  auto it = std::upper_bound(prefix_.begin(), prefix_.end(), r);
  return static_cast<uint32_t>(it - prefix_.begin());
}

}  // namespace tg::balancer
