#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "tg/keyauth/key_record.h"

namespace tg::keyauth {

// What a successful verification tells the caller.
struct VerifiedKey {
  std::string key_id;
  std::string gateway_id;
  std::optional<TimePoint> expires_at;
  int64_t revision = 0;  // the key-state revision the answer reflects
};

// One change from the change feed: a key created or replaced, or deleted.
struct KeyUpdate {
  std::string id;
  bool deleted = false;
  KeyRecord record;  // when !deleted
};

// The in-memory verifier behind VerifyKey. Lookups read an immutable snapshot
// (one atomic shared_ptr load, no lock), so verification never waits for the
// change feed and the feed never waits for verification. Writers copy the
// snapshot, change the copy and publish it; admin writes are rare, so the copy
// costs nothing that matters.
class KeyIndex {
 public:
  KeyIndex();

  // Replaces everything (start-up load).
  void Reset(const std::vector<KeyRecord>& keys, int64_t revision);
  // Applies changes in revision order; `revision` is the last one they cover.
  void Apply(const std::vector<KeyUpdate>& updates, int64_t revision);

  // The key's identity, or nullopt when it is unknown, revoked, expired at
  // `now`, or (gateway_id non-empty) of another gateway. Callers answer every
  // nullopt the same way so the reason is never revealed.
  std::optional<VerifiedKey> Verify(std::string_view key, std::string_view gateway_id,
                                    TimePoint now) const;

  int64_t revision() const;
  size_t size() const;

 private:
  struct Entry {
    std::string id;
    std::string gateway_id;
    std::string hash;
    std::optional<TimePoint> expires_at;
  };
  struct Snapshot {
    // Keyed by prefix; a prefix collision simply makes a longer vector.
    std::unordered_map<std::string, std::vector<Entry>> by_prefix;
    std::unordered_map<std::string, std::string> prefix_of;  // key id -> prefix
    int64_t revision = 0;
  };

  static void Remove(Snapshot& s, const std::string& id);
  static void Insert(Snapshot& s, const KeyRecord& r);

  std::mutex write_mu_;  // serializes writers only
  std::atomic<std::shared_ptr<const Snapshot>> snapshot_;
  // The revision the keys are current up to; ahead of snapshot_->revision
  // when later writes touched no key (config writes share the revisions).
  std::atomic<int64_t> current_revision_{0};
};

}  // namespace tg::keyauth
