#include "tg/balancer/algorithm.h"

#include "tg/common/canonical_names.h"

namespace tg::balancer {

std::optional<Algorithm> ParseAlgorithm(const std::string& name) {
  if (name.empty()) return Algorithm::kRoundRobin;
  // One spelling table for the whole suite.
  const std::string canonical = tg::CanonicalAlgorithm(name);
  if (canonical == "round-robin") return Algorithm::kRoundRobin;
  if (canonical == "weighted-round-robin") return Algorithm::kWeightedRoundRobin;
  if (canonical == "least-connections") return Algorithm::kLeastConnections;
  if (canonical == "random") return Algorithm::kRandom;
  return std::nullopt;
}

std::string_view AlgorithmName(Algorithm algorithm) {
  switch (algorithm) {
    case Algorithm::kRoundRobin:
      return "round-robin";
    case Algorithm::kWeightedRoundRobin:
      return "weighted-round-robin";
    case Algorithm::kLeastConnections:
      return "least-connections";
    case Algorithm::kRandom:
      return "random";
  }
  return "round-robin";
}

}  // namespace tg::balancer
