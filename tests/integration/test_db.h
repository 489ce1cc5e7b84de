#pragma once

#include <string>

namespace tg::testing {

// A throwaway database on the PostgreSQL that scripts/test started
// (TG_TEST_PG_DSN), or on the one `admin_dsn` names. Created on construction,
// dropped on destruction.
class TestDatabase {
 public:
  explicit TestDatabase(const std::string& prefix, const std::string& admin_dsn = "");
  ~TestDatabase();
  TestDatabase(const TestDatabase&) = delete;
  TestDatabase& operator=(const TestDatabase&) = delete;

  // Empty when neither admin_dsn nor TG_TEST_PG_DSN is set (tests then skip).
  const std::string& dsn() const { return dsn_; }
  const std::string& name() const { return name_; }
  static bool Available();

 private:
  std::string admin_dsn_;
  std::string name_;
  std::string dsn_;
};

}  // namespace tg::testing
