#include "tg/keyauth/key_store.h"

#include "tg/common/crypto.h"

namespace tg::keyauth {
namespace {

constexpr std::string_view kApiKeysSchema = R"sql(
CREATE TABLE IF NOT EXISTS api_keys (
  id         text PRIMARY KEY,
  gateway_id text NOT NULL,
  name       text NOT NULL,
  prefix     text NOT NULL,
  hash       bytea NOT NULL UNIQUE,
  expires_at timestamptz NULL,
  created_at timestamptz NOT NULL,
  updated_at timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS api_keys_gateway_id ON api_keys (gateway_id);
)sql";

// Times travel as integer microseconds since the epoch (exact, independent of
// the session's TimeZone); the hash only when LoadAll needs it.
constexpr std::string_view kColumns =
    "id, gateway_id, name, prefix, "
    "(extract(epoch FROM expires_at) * 1000000)::bigint, "
    "(extract(epoch FROM created_at) * 1000000)::bigint, "
    "(extract(epoch FROM updated_at) * 1000000)::bigint";

KeyRecord FromRow(const pqxx::row& row) {
  KeyRecord r;
  r.id = row[0].as<std::string>();
  r.gateway_id = row[1].as<std::string>();
  r.name = row[2].as<std::string>();
  r.prefix = row[3].as<std::string>();
  if (!row[4].is_null()) r.expires_at = FromUnixMicros(row[4].as<int64_t>());
  r.created_at = FromUnixMicros(row[5].as<int64_t>());
  r.updated_at = FromUnixMicros(row[6].as<int64_t>());
  return r;
}

pg::Change KeyChange(const std::string& id, const std::string& gateway_id, bool deleted,
                     std::string doc) {
  pg::Change c;
  c.topic = std::string(kKeysTopic);
  c.kind = std::string(kKeyKind);
  c.entity_id = id;
  c.gateway_id = gateway_id;
  c.deleted = deleted;
  c.doc = std::move(doc);
  return c;
}

}  // namespace

const std::vector<pg::Migration>& KeyStore::Migrations() {
  // The change log is created by whichever component migrates first; every
  // component includes it so none depends on another having started.
  static const std::string v1 = std::string(pg::kChangeLogSchema) + std::string(kApiKeysSchema);
  static const std::vector<pg::Migration> migrations = {{1, v1}, {2, idempotency::kSchema}};
  return migrations;
}

KeyStore::Created KeyStore::Create(const KeyRecord& r, const pg::WriteBounds& bounds,
                                   const std::optional<idempotency::Claim>& claim) {
  Created out;
  pool_->Run([&](pqxx::connection& conn) {
    pqxx::work tx(conn);
    pg::BeginWrite(tx, bounds);
    if (claim) {
      std::string first_id;
      switch (idempotency::Lookup(tx, *claim, &first_id)) {
        case idempotency::Found::kNone:
          break;
        case idempotency::Found::kSameRequest:
          out.outcome = Created::Outcome::kRepeated;
          out.existing_id = std::move(first_id);
          return;  // nothing written; the transaction rolls back
        case idempotency::Found::kOtherRequest:
          out.outcome = Created::Outcome::kMismatch;
          return;
      }
    }
    std::string expires = r.expires_at ? FormatTime(*r.expires_at) : std::string();
    tx.exec_params(
        "INSERT INTO api_keys (id, gateway_id, name, prefix, hash, expires_at, created_at, "
        "updated_at) VALUES ($1, $2, $3, $4, decode($5, 'hex'), $6::timestamptz, "
        "$7::timestamptz, $8::timestamptz)",
        r.id, r.gateway_id, r.name, r.prefix, crypto::HexEncode(r.hash),
        r.expires_at ? expires.c_str() : nullptr, FormatTime(r.created_at),
        FormatTime(r.updated_at));
    out.revision = pg::AppendChange(tx, KeyChange(r.id, r.gateway_id, false, ToChangeDoc(r)));
    if (claim) idempotency::Remember(tx, *claim, r.id);
    pg::CommitWrite(tx, bounds);
  });
  return out;
}

std::optional<KeyRecord> KeyStore::Get(const std::string& gateway_id, const std::string& id,
                                       int64_t* revision) {
  std::optional<KeyRecord> out;
  pool_->Run([&](pqxx::connection& conn) {
    pqxx::transaction<pqxx::repeatable_read, pqxx::read_only> tx(conn);
    auto res = tx.exec_params(
        "SELECT " + std::string(kColumns) + " FROM api_keys WHERE gateway_id = $1 AND id = $2",
        gateway_id, id);
    if (!res.empty()) out = FromRow(res[0]);
    *revision = pg::CurrentRevision(tx);
    tx.commit();
  });
  return out;
}

std::vector<KeyRecord> KeyStore::List(const std::string& gateway_id, int64_t* revision) {
  std::vector<KeyRecord> out;
  pool_->Run([&](pqxx::connection& conn) {
    pqxx::transaction<pqxx::repeatable_read, pqxx::read_only> tx(conn);
    auto res = tx.exec_params("SELECT " + std::string(kColumns) +
                                  " FROM api_keys WHERE gateway_id = $1 ORDER BY created_at, id",
                              gateway_id);
    out.reserve(res.size());
    for (const auto& row : res) out.push_back(FromRow(row));
    *revision = pg::CurrentRevision(tx);
    tx.commit();
  });
  return out;
}

std::optional<int64_t> KeyStore::Delete(const std::string& gateway_id, const std::string& id,
                                        const pg::WriteBounds& bounds) {
  std::optional<int64_t> revision;
  pool_->Run([&](pqxx::connection& conn) {
    pqxx::work tx(conn);
    pg::BeginWrite(tx, bounds);
    auto res = tx.exec_params("DELETE FROM api_keys WHERE gateway_id = $1 AND id = $2 RETURNING id",
                              gateway_id, id);
    if (res.empty()) return;  // the transaction rolls back: nothing was written
    revision = pg::AppendChange(tx, KeyChange(id, gateway_id, true, ""));
    pg::CommitWrite(tx, bounds);
  });
  return revision;
}

int64_t KeyStore::DeleteGateway(const std::string& gateway_id, int* deleted,
                                const pg::WriteBounds& bounds) {
  int64_t revision = 0;
  pool_->Run([&](pqxx::connection& conn) {
    pqxx::work tx(conn);
    pg::BeginWrite(tx, bounds);
    auto res =
        tx.exec_params("DELETE FROM api_keys WHERE gateway_id = $1 RETURNING id", gateway_id);
    *deleted = static_cast<int>(res.size());
    // One change per key: watchers learn each revoked key id.
    for (const auto& row : res) {
      revision = pg::AppendChange(tx, KeyChange(row[0].as<std::string>(), gateway_id, true, ""));
    }
    if (res.empty()) revision = pg::CurrentRevision(tx);
    pg::CommitWrite(tx, bounds);
  });
  return revision;
}

KeySnapshot KeyStore::LoadAll() {
  KeySnapshot out;
  pool_->Run([&](pqxx::connection& conn) {
    // One snapshot for rows and revision: the feed then continues exactly
    // after what was loaded.
    pqxx::transaction<pqxx::repeatable_read, pqxx::read_only> tx(conn);
    auto res = tx.exec("SELECT " + std::string(kColumns) + ", hash FROM api_keys");
    out.keys.reserve(res.size());
    for (const auto& row : res) {
      KeyRecord r = FromRow(row);
      r.hash = pqxx::binarystring(row[7]).str();
      out.keys.push_back(std::move(r));
    }
    out.revision = pg::CurrentRevision(tx);
    tx.commit();
  });
  return out;
}

std::vector<pg::ChangeRow> KeyStore::ReadChanges(int64_t after, int limit, int64_t* as_of) {
  std::vector<pg::ChangeRow> rows;
  pool_->Run([&](pqxx::connection& conn) {
    // One snapshot: the key rows and the revision they are complete up to.
    pqxx::transaction<pqxx::repeatable_read, pqxx::read_only> tx(conn);
    rows = pg::ReadChanges(tx, kKeysTopic, after, limit);
    *as_of = static_cast<int>(rows.size()) < limit ? pg::CurrentRevision(tx) : 0;
    tx.commit();
  });
  return rows;
}

}  // namespace tg::keyauth
