#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <pqxx/pqxx>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace tg::pg {

struct PoolOptions {
  std::string dsn;                                  // libpq connection string
  size_t size = 4;                                  // connections kept open
  std::chrono::milliseconds acquire_timeout{2000};  // wait for a free connection
  // PostgreSQL's statement_timeout for every statement on the pool's
  // connections (0: the server's setting). A write bounds its transaction
  // further by its RPC's deadline (BeginWrite).
  std::chrono::milliseconds statement_timeout{10000};
};

// Thrown (inside worker threads only) when PostgreSQL cannot be reached; the
// service layer turns it into UNAVAILABLE.
struct Unavailable : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// A small blocking connection pool. Connections are opened lazily and replaced
// when found broken, so the pool recovers by itself when PostgreSQL returns.
class Pool {
 public:
  explicit Pool(PoolOptions options);
  ~Pool();

  // Runs `fn` with a connection. Throws Unavailable when no connection can be
  // had; other pqxx exceptions propagate to the caller.
  void Run(const std::function<void(pqxx::connection&)>& fn);

  const std::string& dsn() const { return options_.dsn; }

 private:
  std::unique_ptr<pqxx::connection> Acquire();
  void Release(std::unique_ptr<pqxx::connection> conn);

  PoolOptions options_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::unique_ptr<pqxx::connection>> idle_;
  size_t open_ = 0;
};

// The bounds of one write: its RPC's deadline and cancellation. A write
// checks them before it starts and right before COMMIT, and runs its
// statements with `SET LOCAL statement_timeout` set to the time it has left,
// so that nothing commits after its caller gave up on it.
struct WriteBounds {
  std::chrono::system_clock::time_point deadline = std::chrono::system_clock::time_point::max();
  std::function<bool()> cancelled;  // may be empty
  // The time a COMMIT and the answer's way back to the caller may take: a
  // write with less than this left rolls back instead of committing.
  std::chrono::milliseconds commit_margin{100};
};

// Thrown (inside worker threads only) when a write must not go on; the
// service layer turns it into DEADLINE_EXCEEDED or CANCELLED.
struct WriteAborted : std::runtime_error {
  WriteAborted(bool was_cancelled, const char* what)
      : std::runtime_error(what), cancelled(was_cancelled) {}
  bool cancelled;
};

// Throws WriteAborted when the write's caller cancelled or its deadline is
// closer than the commit margin.
void CheckWriteBounds(const WriteBounds& bounds);
// Starts a write transaction: checks the bounds, limits every statement of
// `tx` to the time left (SET LOCAL statement_timeout) and takes the
// change-log write lock (LockWrites), whose wait that limit bounds too.
void BeginWrite(pqxx::transaction_base& tx, const WriteBounds& bounds);
// Checks the bounds once more and commits. A write that fails the check rolls
// back (the transaction's destructor aborts it).
void CommitWrite(pqxx::transaction_base& tx, const WriteBounds& bounds);
// True for PostgreSQL's query_canceled (57014): statement_timeout fired.
bool IsStatementTimeout(const pqxx::sql_error& e);

struct Migration {
  int version;
  std::string_view sql;
};

// Applies the migrations of `component` not yet recorded in schema_migrations,
// in version order, each in its own transaction. A session advisory lock makes
// concurrent start-ups of several replicas safe: one applies, the others wait
// and then find nothing to do.
void ApplyMigrations(pqxx::connection& conn, std::string_view component,
                     const std::vector<Migration>& migrations);

// Bounds every connection attempt of this process (libpq's PGCONNECT_TIMEOUT)
// unless the environment or the DSN (connect_timeout) already says: a
// database that drops packets instead of refusing then costs a pool
// connection attempt `seconds`, not the kernel's two-minute TCP timeout.
// Call from main() before any thread starts (it sets an environment variable).
void SetDefaultConnectTimeout(int seconds);

// Connects with retries until `deadline` (services start before PostgreSQL is
// ready in compose stacks).
std::unique_ptr<pqxx::connection> ConnectWithRetry(const std::string& dsn,
                                                   std::chrono::seconds deadline);

}  // namespace tg::pg
