#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "tg/balancer/excluded_members.h"
#include "tg/balancer/random.h"

namespace tg::balancer {

// Weight-proportional random choice.
//
// The members' weights are laid end to end on [0, W): weights 5:1:1 give a on
// [0, 5), b on [5, 6), c on [6, 7). A uniform draw r in [0, W) lands in a's
// interval with probability 5/7. The prefix sums (5, 6, 7) make finding the
// interval a binary search: O(log n), immutable, so picks need no lock.
//
// Excluding members shrinks the line instead of redrawing: draw r in
// [0, W - excluded weight) and, walking the excluded intervals left to right,
// shift r past each one that starts at or before it. Excluding a (weight 5)
// from 5:1:1: r in [0, 2); r = 0 starts at a's interval, moves by 5 to 5: b;
// r = 1 becomes 6: c. Each remaining member keeps exactly its share.
class WeightedRandom {
 public:
  // One weight per member, each >= 1; at least one member.
  explicit WeightedRandom(std::span<const int32_t> weights);

  size_t size() const { return prefix_.size(); }
  uint32_t Pick(Random& random, ExcludedMembers excluded = {}) const;

 private:
  std::vector<uint64_t> prefix_;  // prefix_[i] = w[0] + ... + w[i]
};

}  // namespace tg::balancer
