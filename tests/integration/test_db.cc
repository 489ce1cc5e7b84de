#include "test_db.h"

#include <cstdlib>
#include <pqxx/pqxx>

#include "tg/common/crypto.h"

namespace tg::testing {

bool TestDatabase::Available() {
  const char* v = std::getenv("TG_TEST_PG_DSN");
  return v != nullptr && *v != '\0';
}

TestDatabase::TestDatabase(const std::string& prefix, const std::string& admin_dsn) {
  if (!admin_dsn.empty()) {
    admin_dsn_ = admin_dsn;
  } else if (Available()) {
    admin_dsn_ = std::getenv("TG_TEST_PG_DSN");
  } else {
    return;
  }
  name_ = prefix + "_" + crypto::HexEncode(crypto::RandomBytes(6));
  pqxx::connection c(admin_dsn_);
  pqxx::nontransaction tx(c);
  tx.exec("CREATE DATABASE " + name_);
  // Replace dbname=... in the admin DSN (libpq takes the last occurrence).
  dsn_ = admin_dsn_ + " dbname=" + name_;
}

TestDatabase::~TestDatabase() {
  if (name_.empty()) return;
  try {
    pqxx::connection c(admin_dsn_);
    pqxx::nontransaction tx(c);
    tx.exec("DROP DATABASE IF EXISTS " + name_ + " WITH (FORCE)");
  } catch (...) {
  }
}

}  // namespace tg::testing
