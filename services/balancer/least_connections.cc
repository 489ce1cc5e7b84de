#include "tg/balancer/least_connections.h"

#include <cstdlib>

namespace tg::balancer {

LeastConnections::LeastConnections(std::span<const int32_t> weights) : size_(weights.size()) {
  if (weights.empty()) std::abort();  // a pool always has a member
  leaves_ = 1;
  while (leaves_ < size_) leaves_ *= 2;
  nodes_.assign(2 * leaves_, Node{});
  for (size_t i = 0; i < size_; ++i) {
    nodes_[leaves_ + i] = Node{0, weights[i] < 1 ? 1 : weights[i], 1};
  }
  for (size_t i = leaves_ - 1; i >= 1; --i) nodes_[i] = Combine(nodes_[2 * i], nodes_[2 * i + 1]);
}

LeastConnections::Node LeastConnections::Combine(const Node& a, const Node& b) {
  if (a.count == 0) return b;
  if (b.count == 0) return a;
  // Loads stay far below 2^56 and weights below 2^7: the products cannot overflow.
  const int64_t lhs = a.load * b.weight;
  const int64_t rhs = b.load * a.weight;
  if (lhs < rhs) return a;
  if (rhs < lhs) return b;
  return Node{a.load, a.weight, a.count + b.count};
}

void LeastConnections::Update(size_t leaf) {
  for (size_t i = leaf / 2; i >= 1; i /= 2) nodes_[i] = Combine(nodes_[2 * i], nodes_[2 * i + 1]);
}

void LeastConnections::SetLoad(uint32_t member, int64_t load) {
  Node& leaf = nodes_[leaves_ + member];
  if (leaf.load == load) return;
  leaf.load = load < 0 ? 0 : load;
  Update(leaves_ + member);
}

uint32_t LeastConnections::FindTied(uint32_t r) const {
  const Node& best = nodes_[1];
  size_t i = 1;
  while (i < leaves_) {
    const Node& left = nodes_[2 * i];
    const uint32_t in_left = left.count > 0 && SameRatio(left, best) ? left.count : 0;
    if (r < in_left) {
      i = 2 * i;
    } else {
      r -= in_left;
      i = 2 * i + 1;
    }
  }
  return static_cast<uint32_t>(i - leaves_);
}

uint32_t LeastConnections::Pick(Random& random, ExcludedMembers excluded) {
  // Excluded leaves leave the running for this pick only: O(k log n).
  for (uint32_t m : excluded) {
    nodes_[leaves_ + m].count = 0;
    Update(leaves_ + m);
  }
  const Node& best = nodes_[1];
  if (best.count == 0) std::abort();  // every member excluded: the caller's contract was broken
  uint32_t chosen;
  if (best.count == 1) {
    chosen = FindTied(0);
  } else {
    const uint32_t a = FindTied(static_cast<uint32_t>(random.Uniform(best.count)));
    const uint32_t b = FindTied(static_cast<uint32_t>(random.Uniform(best.count)));
    chosen = nodes_[leaves_ + b].weight > nodes_[leaves_ + a].weight ? b : a;
  }
  for (uint32_t m : excluded) {
    nodes_[leaves_ + m].count = 1;
    Update(leaves_ + m);
  }
  return chosen;
}

}  // namespace tg::balancer
