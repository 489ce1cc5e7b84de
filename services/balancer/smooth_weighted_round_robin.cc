#include "tg/balancer/smooth_weighted_round_robin.h"

#include <cstdlib>
#include <numeric>

namespace tg::balancer {

SmoothWeightedRoundRobin::SmoothWeightedRoundRobin(std::span<const int32_t> weights)
    : size_(weights.size()) {
  if (weights.empty()) std::abort();  // a pool always has a member
  int64_t g = 0;
  for (int32_t w : weights) g = std::gcd(g, static_cast<int64_t>(w < 1 ? 1 : w));
  // Dividing every weight by their gcd keeps the sequence (the c values scale
  // by the same factor) and shortens the period: 50:50 is 1:1, period 2.
  std::vector<int64_t> w(weights.size());
  int64_t total = 0;
  for (size_t i = 0; i < weights.size(); ++i) {
    w[i] = (weights[i] < 1 ? 1 : weights[i]) / g;
    total += w[i];
  }
  std::vector<int64_t> current(weights.size(), 0);
  schedule_.reserve(static_cast<size_t>(total));
  for (int64_t step = 0; step < total; ++step) {
    size_t best = 0;
    for (size_t i = 0; i < w.size(); ++i) {
      current[i] += w[i];
      if (current[i] > current[best]) best = i;
    }
    current[best] -= total;
    schedule_.push_back(static_cast<uint32_t>(best));
  }
}

uint32_t SmoothWeightedRoundRobin::Next() {
  return schedule_[cursor_.fetch_add(1, std::memory_order_relaxed) % schedule_.size()];
}

}  // namespace tg::balancer
