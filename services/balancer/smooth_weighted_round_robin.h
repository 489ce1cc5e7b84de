#pragma once

#include <atomic>
#include <cstdint>
#include <span>
#include <vector>

namespace tg::balancer {

// Smooth weighted round robin (nginx's algorithm), precomputed.
//
// The classic step keeps a running value c[i] per member: add each member's
// weight w[i] to c[i], pick the member with the largest c (the first on a
// tie), and subtract the total weight W from the winner. With weights 5:1:1
// (W = 7) for a, b, c:
//
//   c before pick   pick   c after
//   5  1  1         a      -2  1  1
//   3  2  2         a      -4  2  2
//   1  3  3         b       1 -4  3
//   6 -3  4         a      -1 -3  4
//   4 -2  5         c       4 -2 -2
//   9 -1 -1         a       2 -1 -1
//   7  0  0         a       0  0  0   <- back to the start: the period is W
//
// so a,a,b,a,c,a,a: each member gets exactly its share of every period, spread
// out rather than in bursts (a,a,a,a,a,b,c). Equal weights give plain rotation.
// After W / gcd(w) steps every c is zero again, so the sequence repeats with
// that period. The constructor runs one period once (O(n * period), rebuilt
// only when the members or their health change) and a pick is one atomic
// increment of a shared cursor and an array read: O(1), lock-free, no
// allocation.
class SmoothWeightedRoundRobin {
 public:
  // One weight per member, each >= 1; at least one member.
  explicit SmoothWeightedRoundRobin(std::span<const int32_t> weights);
  SmoothWeightedRoundRobin(const SmoothWeightedRoundRobin&) = delete;
  SmoothWeightedRoundRobin& operator=(const SmoothWeightedRoundRobin&) = delete;

  size_t size() const { return size_; }

  // The next member of the schedule. (A pick that must pass over members is
  // not a schedule question: skipping ahead to the next allowed entry would
  // favour whoever follows the excluded member's runs, e.g. b over c at 5 to 2
  // when a is excluded from 5:1:1. PickPlan draws those weight-proportionally.)
  uint32_t Next();

  // One full period, for tests and documentation.
  const std::vector<uint32_t>& schedule() const { return schedule_; }

 private:
  size_t size_;
  std::vector<uint32_t> schedule_;
  std::atomic<uint64_t> cursor_{0};
};

}  // namespace tg::balancer
