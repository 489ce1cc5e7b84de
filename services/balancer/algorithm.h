#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace tg::balancer {

// How a pool of targets is chosen from (DESIGN §5). round-robin and
// weighted-round-robin are the same smooth weighted round robin: equal
// weights make it plain rotation, and a round-robin upstream whose targets
// carry weights honours them (the seeds' round-robin example sets 50:50).
enum class Algorithm {
  kRoundRobin,
  kWeightedRoundRobin,
  kLeastConnections,
  kRandom,
};

// Accepts every spelling tg-config accepts (aliases weighted, least-conn);
// nullopt otherwise. Empty means round-robin, tg-config's default.
std::optional<Algorithm> ParseAlgorithm(const std::string& name);
std::string_view AlgorithmName(Algorithm algorithm);

}  // namespace tg::balancer
