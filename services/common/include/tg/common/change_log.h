#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <pqxx/pqxx>
#include <string>
#include <string_view>
#include <vector>

namespace tg::pg {

// The change log is how every TrustGate write becomes a revision and how
// replicas learn each other's writes.
//
// - Every write transaction first calls LockWrites, a transaction-scoped
//   advisory lock. Writers are therefore serialized, so revisions (drawn from
//   one sequence) commit in order: a reader that has seen revision R has seen
//   everything below R. Admin writes are rare; the cost is nothing.
// - AppendChange records the entity's new state (or its deletion) under the
//   next revision and NOTIFYs channel "tg_<topic>" with it.
// - Readers LISTEN (ChangeListener) and read rows above the revision they hold.

// SQL creating the shared change log; part of each component's first migration.
extern const std::string_view kChangeLogSchema;

void LockWrites(pqxx::transaction_base& tx);

struct Change {
  std::string topic;  // "config" | "keys"
  std::string kind;   // gateway | upstream | service | rule | key
  std::string entity_id;
  std::string gateway_id;  // empty for gateways themselves
  bool deleted = false;
  std::string doc;  // the entity's stored JSON, empty when deleted
};

struct ChangeRow {
  int64_t revision = 0;
  Change change;
};

// Returns the new revision. Must follow LockWrites in the same transaction.
int64_t AppendChange(pqxx::transaction_base& tx, const Change& change);

// Rows of `topic` with revision > after, in revision order, at most `limit`.
std::vector<ChangeRow> ReadChanges(pqxx::transaction_base& tx, std::string_view topic,
                                   int64_t after, int limit);

// The highest committed revision (of any topic).
int64_t CurrentRevision(pqxx::transaction_base& tx);

// A dedicated connection LISTENing on "tg_<topic>". Wait returns when a
// notification arrived or the timeout passed; it reconnects after failures
// (and reports them) so callers simply poll again.
class ChangeListener {
 public:
  ChangeListener(std::string dsn, std::string topic);
  ~ChangeListener();

  // true: a notification arrived; false: timeout or reconnect.
  bool Wait(std::chrono::milliseconds timeout);
  bool connected() const { return conn_ != nullptr; }

 private:
  void Connect();

  std::string dsn_;
  std::string channel_;
  std::unique_ptr<pqxx::connection> conn_;
  struct Receiver;
  std::unique_ptr<Receiver> receiver_;
  int pending_ = 0;
};

}  // namespace tg::pg
