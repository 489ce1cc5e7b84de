#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "tg/balancer/excluded_members.h"
#include "tg/balancer/random.h"

namespace tg::balancer {

// Least connections relative to weight: the member with the smallest
// load / weight (in-flight requests per unit of capacity) wins.
//
// Loads change on every pick and report, so a schedule cannot be precomputed;
// instead a segment tree keeps, for every range of members, the smallest
// load/weight and how many members share it. The root answers "which ratio is
// smallest, and how many tie" in O(1); updating one load is O(log n); finding
// the r-th tied member is one O(log n) descent. Ratios are compared by cross
// multiplication (l1 * w2 < l2 * w1), so no floating point and no rounding.
//
// Ties use the power of two choices: two tied members are drawn at random and
// the heavier one wins, because one more request raises its ratio the least.
// Example, weights a=1, b=2, c=2 and loads 1, 2, 4: ratios 1, 1, 2, so a and b
// tie. If the draw yields a and b, b wins: after the pick its ratio is 3/2
// whereas a's would have been 2/1. Equal weights make it a fair coin.
//
// Not thread-safe: the owner serialises picks and load updates (they must be
// serialised anyway, or two concurrent picks would both see the same minimum).
class LeastConnections {
 public:
  // One weight per member, each >= 1; at least one member. Loads start at 0.
  explicit LeastConnections(std::span<const int32_t> weights);

  size_t size() const { return size_; }
  void SetLoad(uint32_t member, int64_t load);
  int64_t load(uint32_t member) const { return nodes_[leaves_ + member].load; }

  // The member with the least load per weight; excluded members are passed
  // over. Does not change the load: the caller adds the pick's +1.
  uint32_t Pick(Random& random, ExcludedMembers excluded = {});

 private:
  // For a leaf: the member's load and weight, count 1 (0 = out of the running:
  // padding or temporarily excluded). For an inner node: the best ratio of its
  // range as (load, weight) of one member holding it, and how many hold it.
  struct Node {
    int64_t load = 0;
    int32_t weight = 1;
    uint32_t count = 0;
  };

  static Node Combine(const Node& a, const Node& b);
  static bool SameRatio(const Node& a, const Node& b) {
    return a.load * b.weight == b.load * a.weight;
  }
  void Update(size_t leaf);
  // The member holding the root's ratio with rank r among those that do.
  uint32_t FindTied(uint32_t r) const;

  size_t size_;
  size_t leaves_;  // the first leaf's index: a power of two >= size_
  std::vector<Node> nodes_;
};

}  // namespace tg::balancer
