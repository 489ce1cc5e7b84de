#pragma once

// What every end-to-end suite that shares one stack does around its tests.

#include <gtest/gtest.h>

#include <cstdlib>
#include <memory>
#include <string>
#include <utility>

#include "fake_provider.h"
#include "stack.h"
#include "test_db.h"

namespace tg::testing {

inline const char* TestRedisAddr() { return std::getenv("TG_TEST_REDIS_ADDR"); }

// One stack for the whole suite (and, for a suite that proxies, the fake
// provider with tg-balancer, tg-adapter and Redis); each test is skipped
// without PostgreSQL (or Redis, when proxying) and fails when the stack did
// not start; the fake's faults, answer and recorded requests are reset
// before each test. `Suite` (the deriving fixture) keeps the statics apart.
template <typename Suite>
class E2eSuite : public ::testing::Test {
 public:
  static void TearDownTestSuite() {
    stack_.reset();
    fake_.reset();
  }

 protected:
  // From the suite's SetUpTestSuite; false when there is nothing to set up
  // (skipped, or the stack did not start: every test then says so).
  static bool StartSuite(const std::string& name, StackOptions options, bool proxy) {
    proxy_ = proxy;
    if (!Available()) return false;
    if (proxy) {
      fake_ = std::make_unique<fakes::FakeProvider>();
      std::string error;
      if (!fake_->Start(&error)) {
        ADD_FAILURE() << error;
        fake_.reset();
        return false;
      }
      options.balancer = true;
      options.adapter = true;
      options.redis_addr = TestRedisAddr();
    }
    stack_ = std::make_unique<Stack>(name, std::move(options));
    if (!stack_->StartAll()) {
      stack_.reset();
      return false;
    }
    return true;
  }

  void SetUp() override {
    if (!Available()) {
      GTEST_SKIP() << (proxy_ ? "TG_TEST_PG_DSN / TG_TEST_REDIS_ADDR not set"
                              : "TG_TEST_PG_DSN not set");
    }
    ASSERT_NE(stack_, nullptr) << "the stack did not start";
    if (fake_) {
      fake_->ClearFaults();
      fake_->ClearRequests();
      fake_->SetAnswer({});
    }
  }

  static bool Available() {
    return TestDatabase::Available() && (!proxy_ || TestRedisAddr() != nullptr);
  }

  static inline std::unique_ptr<Stack> stack_;
  static inline std::unique_ptr<fakes::FakeProvider> fake_;
  static inline bool proxy_ = false;
};

}  // namespace tg::testing
