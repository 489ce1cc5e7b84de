#pragma once

#include <algorithm>
#include <cstdint>
#include <span>

namespace tg::balancer {

// Members of one pool that a pick must pass over (targets the request already
// tried): indices into the pool, sorted ascending, without duplicates, and
// never all of the pool's members. A retry excludes a handful at most, so a
// span over a caller's stack array is all it takes.
using ExcludedMembers = std::span<const uint32_t>;

inline bool IsExcluded(ExcludedMembers excluded, uint32_t member) {
  return std::binary_search(excluded.begin(), excluded.end(), member);
}

}  // namespace tg::balancer
