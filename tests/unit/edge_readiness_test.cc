// /healthz of tg-edge: 503 only before the first configuration and while
// shutting down; 200 "degraded" with its reasons while it serves from what it
// holds.
#include "tg/edge/edge_readiness.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace tg::edge {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

ReadinessState Up() {
  ReadinessState s;
  s.config.loaded = true;
  s.config.connected = true;
  s.config_revision = 42;
  s.now = std::chrono::system_clock::time_point(std::chrono::seconds(1'700'000'060));
  return s;
}

TEST(EdgeReadiness, EverythingUpIsOk) {
  auto r = ReadinessAnswer(Up());
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, R"({"status":"ok","config_revision":42})");
}

TEST(EdgeReadiness, NoConfigurationYetIsUnavailable) {
  ReadinessState s;
  auto r = ReadinessAnswer(s);
  EXPECT_EQ(r.status, 503);
  EXPECT_THAT(r.body, HasSubstr("no configuration loaded yet"));
}

TEST(EdgeReadiness, ShuttingDownIsUnavailableWhateverElse) {
  auto s = Up();
  s.shutting_down = true;
  auto r = ReadinessAnswer(s);
  EXPECT_EQ(r.status, 503);
  EXPECT_THAT(r.body, HasSubstr("shutting down"));
}

TEST(EdgeReadiness, ConfigWatchDownAfterALoadIsDegradedNotUnavailable) {
  auto s = Up();
  s.config.connected = false;
  s.config.down_since = std::chrono::system_clock::time_point(std::chrono::seconds(1'700'000'000));
  auto r = ReadinessAnswer(s);
  EXPECT_EQ(r.status, 200);
  EXPECT_THAT(r.body, HasSubstr(R"("status":"degraded")"));
  EXPECT_THAT(r.body, HasSubstr("config watch down since 2023-11-14T22:13:20Z (60 s)"));
  EXPECT_THAT(r.body, HasSubstr("revision 42"));
}

TEST(EdgeReadiness, EveryReasonIsListed) {
  auto s = Up();
  s.keys_watching = false;
  s.balancer_reachable = false;
  s.adapter_reachable = false;
  auto r = ReadinessAnswer(s);
  EXPECT_EQ(r.status, 200);
  EXPECT_THAT(r.body, HasSubstr("key revocation watch down"));
  EXPECT_THAT(r.body, HasSubstr("tg-balancer unreachable"));
  EXPECT_THAT(r.body, HasSubstr("tg-adapter unreachable"));
  EXPECT_THAT(r.body, Not(HasSubstr("config watch")));
}

}  // namespace
}  // namespace tg::edge
