#include "tg/common/pg.h"

#include <algorithm>
#include <condition_variable>
#include <cstdlib>
#include <thread>

#include "tg/common/change_log.h"
#include "tg/common/log.h"

namespace tg::pg {

Pool::Pool(PoolOptions options) : options_(std::move(options)) {}
Pool::~Pool() = default;

std::unique_ptr<pqxx::connection> Pool::Acquire() {
  std::unique_lock lock(mu_);
  auto deadline = std::chrono::steady_clock::now() + options_.acquire_timeout;
  for (;;) {
    if (!idle_.empty()) {
      auto conn = std::move(idle_.back());
      idle_.pop_back();
      return conn;
    }
    if (open_ < options_.size) {
      ++open_;
      lock.unlock();
      try {
        auto conn = std::make_unique<pqxx::connection>(options_.dsn);
        if (options_.statement_timeout.count() > 0) {
          pqxx::nontransaction nt(*conn);
          nt.exec("SET statement_timeout = " + std::to_string(options_.statement_timeout.count()));
        }
        return conn;
      } catch (const std::exception& e) {
        lock.lock();
        --open_;
        cv_.notify_one();
        throw Unavailable("database unavailable");
      }
    }
    if (cv_.wait_until(lock, deadline) == std::cv_status::timeout) {
      throw Unavailable("database busy: no free connection");
    }
  }
}

void Pool::Release(std::unique_ptr<pqxx::connection> conn) {
  std::lock_guard lock(mu_);
  if (conn && conn->is_open()) {
    idle_.push_back(std::move(conn));
  } else {
    --open_;
  }
  cv_.notify_one();
}

void Pool::Run(const std::function<void(pqxx::connection&)>& fn) {
  auto conn = Acquire();
  try {
    fn(*conn);
  } catch (const pqxx::broken_connection&) {
    conn.reset();
    Release(nullptr);
    throw Unavailable("database connection lost");
  } catch (...) {
    Release(std::move(conn));
    throw;
  }
  Release(std::move(conn));
}

void CheckWriteBounds(const WriteBounds& b) {
  if (b.cancelled && b.cancelled()) throw WriteAborted(true, "write cancelled by its caller");
  if (b.deadline == std::chrono::system_clock::time_point::max()) return;
  if (std::chrono::system_clock::now() + b.commit_margin >= b.deadline) {
    throw WriteAborted(false, "write deadline exceeded");
  }
}

void BeginWrite(pqxx::transaction_base& tx, const WriteBounds& b) {
  CheckWriteBounds(b);
  if (b.deadline != std::chrono::system_clock::time_point::max()) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        b.deadline - b.commit_margin - std::chrono::system_clock::now());
    // SET LOCAL ends with the transaction; the pool's default applies again after.
    tx.exec("SET LOCAL statement_timeout = " + std::to_string(std::max<int64_t>(1, left.count())));
  }
  LockWrites(tx);
}

void CommitWrite(pqxx::transaction_base& tx, const WriteBounds& b) {
  CheckWriteBounds(b);
  tx.commit();
}

bool IsStatementTimeout(const pqxx::sql_error& e) { return e.sqlstate() == "57014"; }

void ApplyMigrations(pqxx::connection& conn, std::string_view component,
                     const std::vector<Migration>& migrations) {
  // Any 64-bit constant works as long as every TrustGate service uses the same.
  // Any 64-bit constant works as long as every TrustGate service uses the same.
  constexpr long long kMigrationLock = 0x7467'6d69'6772;  // "tgmigr"
  auto exec = [&conn](const std::string& sql) {
    pqxx::nontransaction nt(conn);
    nt.exec(sql);
  };
  exec("SELECT pg_advisory_lock(" + std::to_string(kMigrationLock) + ")");
  try {
    exec(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " component text NOT NULL, version int NOT NULL,"
        " applied_at timestamptz NOT NULL DEFAULT now(),"
        " PRIMARY KEY (component, version))");
    for (const auto& m : migrations) {
      pqxx::work tx(conn);
      auto r =
          tx.exec_params("SELECT 1 FROM schema_migrations WHERE component = $1 AND version = $2",
                         std::string(component), m.version);
      if (!r.empty()) continue;
      tx.exec(std::string(m.sql));
      tx.exec_params("INSERT INTO schema_migrations (component, version) VALUES ($1, $2)",
                     std::string(component), m.version);
      tx.commit();
      log::Info("migration applied",
                {{"component", component}, {"version", std::to_string(m.version)}});
    }
  } catch (...) {
    exec("SELECT pg_advisory_unlock(" + std::to_string(kMigrationLock) + ")");
    throw;
  }
  exec("SELECT pg_advisory_unlock(" + std::to_string(kMigrationLock) + ")");
}

void SetDefaultConnectTimeout(int seconds) {
  ::setenv("PGCONNECT_TIMEOUT", std::to_string(seconds).c_str(), /*overwrite=*/0);
}

std::unique_ptr<pqxx::connection> ConnectWithRetry(const std::string& dsn,
                                                   std::chrono::seconds deadline) {
  auto until = std::chrono::steady_clock::now() + deadline;
  for (;;) {
    try {
      return std::make_unique<pqxx::connection>(dsn);
    } catch (const std::exception& e) {
      if (std::chrono::steady_clock::now() >= until) throw Unavailable("database unavailable");
      log::Warn("waiting for PostgreSQL");
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
    }
  }
}

}  // namespace tg::pg
