#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <pqxx/pqxx>

namespace tg::pg {

struct PoolOptions {
  std::string dsn;                                  // libpq connection string
  size_t size = 4;                                  // connections kept open
  std::chrono::milliseconds acquire_timeout{2000};  // wait for a free connection
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
