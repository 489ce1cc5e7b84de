#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace tg::balancer {

class UpstreamEntry;

// Picks handed out and not yet reported: what Report needs to give back the
// in-flight slot (least-connections) and the trial claim, and what the
// timeout sweep releases when a caller never reports (it crashed, or its
// Report was lost).
//
// Sharded by pick number so that concurrent Pick/Report calls rarely meet on
// a lock. Pick ids are "<8 hex digits of this replica><16 hex digits of the
// pick number>": a replica recognises its own and ignores the others' (their
// Report still feeds passive health, which is shared).
class PickRegistry {
 public:
  struct Record {
    std::shared_ptr<UpstreamEntry> entry;  // the upstream as it was at pick time
    uint32_t target = 0;                   // index into that entry's targets
    bool trial = false;
    int64_t deadline_ms = 0;
  };

  explicit PickRegistry(uint32_t instance);

  std::string Add(Record record);
  std::optional<Record> Take(std::string_view pick_id);
  std::vector<Record> TakeExpired(int64_t now_ms);
  size_t size() const;

 private:
  static constexpr size_t kShards = 16;
  struct Shard {
    mutable std::mutex mu;
    std::unordered_map<uint64_t, Record> records;
  };

  const uint32_t instance_;
  std::atomic<uint64_t> next_{1};
  std::array<Shard, kShards> shards_;
};

}  // namespace tg::balancer
