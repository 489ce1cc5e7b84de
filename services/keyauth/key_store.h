#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "key_record.h"
#include "tg/common/change_log.h"
#include "tg/common/pg.h"

namespace tg::keyauth {

// The change-log topic and kind of every key write.
inline constexpr std::string_view kKeysTopic = "keys";
inline constexpr std::string_view kKeyKind = "key";

// Every key and the revision that state reflects, read in one snapshot.
struct KeySnapshot {
  std::vector<KeyRecord> keys;
  int64_t revision = 0;
};

// PostgreSQL persistence of API keys. Every write is one transaction that
// takes the change-log write lock, changes api_keys and appends to the change
// log, so a revision names exactly one committed state. Methods block and throw
// (pg::Unavailable, pqxx errors): they run on worker threads, and the service
// layer turns exceptions into statuses.
class KeyStore {
 public:
  explicit KeyStore(pg::Pool* pool) : pool_(pool) {}

  // Migrations of component "keyauth".
  static const std::vector<pg::Migration>& Migrations();

  // Returns the revision created. `record.hash` must be unique.
  int64_t Create(const KeyRecord& record);
  // nullopt when the key does not exist in that gateway. *revision: the current one.
  std::optional<KeyRecord> Get(const std::string& gateway_id, const std::string& id,
                               int64_t* revision);
  std::vector<KeyRecord> List(const std::string& gateway_id, int64_t* revision);
  // The revision of the deletion, or nullopt when the key does not exist there.
  std::optional<int64_t> Delete(const std::string& gateway_id, const std::string& id);
  // Deletes every key of the gateway, one change each. Returns the last
  // revision created, or the current one when there was nothing to delete.
  int64_t DeleteGateway(const std::string& gateway_id, int* deleted);

  // Start-up load, with hashes.
  KeySnapshot LoadAll();
  // Change-log rows of topic "keys" after `after`.
  std::vector<pg::ChangeRow> ReadChanges(int64_t after, int limit);

 private:
  pg::Pool* pool_;
};

}  // namespace tg::keyauth
