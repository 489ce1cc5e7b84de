#include "tg/balancer/pick_registry.h"

#include <charconv>

namespace tg::balancer {
namespace {

constexpr char kHex[] = "0123456789abcdef";

void PutHex(uint64_t v, int digits, char* out) {
  for (int i = digits - 1; i >= 0; --i) {
    out[i] = kHex[v & 0xf];
    v >>= 4;
  }
}

bool GetHex(std::string_view s, uint64_t* out) {
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), *out, 16);
  return ec == std::errc() && ptr == s.data() + s.size();
}

}  // namespace

PickRegistry::PickRegistry(uint32_t instance) : instance_(instance) {}

std::string PickRegistry::Add(Record record) {
  const uint64_t n = next_.fetch_add(1, std::memory_order_relaxed);
  {
    Shard& shard = shards_[n % kShards];
    std::lock_guard lock(shard.mu);
    shard.records.emplace(n, std::move(record));
  }
  std::string id(24, '0');
  PutHex(instance_, 8, id.data());
  PutHex(n, 16, id.data() + 8);
  return id;
}

std::optional<PickRegistry::Record> PickRegistry::Take(std::string_view pick_id) {
  uint64_t instance = 0, n = 0;
  if (pick_id.size() != 24 || !GetHex(pick_id.substr(0, 8), &instance) || instance != instance_ ||
      !GetHex(pick_id.substr(8), &n)) {
    return std::nullopt;
  }
  Shard& shard = shards_[n % kShards];
  std::lock_guard lock(shard.mu);
  auto it = shard.records.find(n);
  if (it == shard.records.end()) return std::nullopt;
  Record r = std::move(it->second);
  shard.records.erase(it);
  return r;
}

std::vector<PickRegistry::Record> PickRegistry::TakeExpired(int64_t now_ms) {
  std::vector<Record> expired;
  for (Shard& shard : shards_) {
    std::lock_guard lock(shard.mu);
    for (auto it = shard.records.begin(); it != shard.records.end();) {
      if (it->second.deadline_ms <= now_ms) {
        expired.push_back(std::move(it->second));
        it = shard.records.erase(it);
      } else {
        ++it;
      }
    }
  }
  return expired;
}

size_t PickRegistry::size() const {
  size_t n = 0;
  for (const Shard& shard : shards_) {
    std::lock_guard lock(shard.mu);
    n += shard.records.size();
  }
  return n;
}

}  // namespace tg::balancer
