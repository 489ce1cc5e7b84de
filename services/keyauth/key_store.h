#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "tg/common/change_log.h"
#include "tg/common/idempotency.h"
#include "tg/common/pg.h"
#include "tg/keyauth/key_record.h"

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
// log, so a revision names exactly one committed state. Writes honour their
// pg::WriteBounds (nothing commits after the caller's deadline). Methods block
// and throw (pg::Unavailable, pg::WriteAborted, pqxx errors): they run on
// worker threads, and the service layer turns exceptions into statuses.
class KeyStore {
 public:
  explicit KeyStore(pg::Pool* pool) : pool_(pool) {}

  // Migrations of component "keyauth".
  static const std::vector<pg::Migration>& Migrations();

  struct Created {
    enum class Outcome { kCreated, kRepeated, kMismatch } outcome = Outcome::kCreated;
    int64_t revision = 0;     // kCreated: the revision created
    std::string existing_id;  // kRepeated: the key the first create made
  };
  // `record.hash` must be unique. With a claim, a repeated create (same key,
  // same request, within 24 h) creates nothing and names the first key; only
  // its id is remembered, never the key.
  Created Create(const KeyRecord& record, const pg::WriteBounds& bounds = {},
                 const std::optional<idempotency::Claim>& claim = std::nullopt);
  // nullopt when the key does not exist in that gateway. *revision: the current one.
  std::optional<KeyRecord> Get(const std::string& gateway_id, const std::string& id,
                               int64_t* revision);
  std::vector<KeyRecord> List(const std::string& gateway_id, int64_t* revision);
  // The revision of the deletion, or nullopt when the key does not exist there.
  std::optional<int64_t> Delete(const std::string& gateway_id, const std::string& id,
                                const pg::WriteBounds& bounds = {});
  // Deletes every key of the gateway, one change each. Returns the last
  // revision created, or the current one when there was nothing to delete.
  int64_t DeleteGateway(const std::string& gateway_id, int* deleted,
                        const pg::WriteBounds& bounds = {});

  // Start-up load, with hashes.
  KeySnapshot LoadAll();
  // Change-log rows of topic "keys" after `after`, at most `limit`; when they
  // are fewer, *as_of gets the highest committed revision of any topic read in
  // the same snapshot (the key state is then current up to it), else 0.
  std::vector<pg::ChangeRow> ReadChanges(int64_t after, int limit, int64_t* as_of);

 private:
  pg::Pool* pool_;
};

}  // namespace tg::keyauth
