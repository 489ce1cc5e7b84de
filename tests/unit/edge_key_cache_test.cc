// KeyCache against the fake tg-keyauth over in-process gRPC, with time moved
// by a ManualClock instead of slept through.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <future>
#include <memory>
#include <thread>

#include "fake_keyauth.h"
#include "tg/common/clock.h"
#include "tg/edge/key_cache.h"

namespace tg::edge {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

class KeyCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    keyauth_.AddKey("good", {"k1", "g1", std::nullopt});
    grpc::ServerBuilder b;
    int port = 0;
    b.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    b.RegisterService(&keyauth_);
    server_ = b.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    channel_ = grpc::CreateChannel("127.0.0.1:" + std::to_string(port),
                                   grpc::InsecureChannelCredentials());
    KeyCacheOptions o;
    o.clock = &clock_;
    cache_ = std::make_unique<KeyCache>(channel_, o);
  }
  void TearDown() override {
    cache_.reset();
    keyauth_.Stop();
    server_->Shutdown();
  }

  // The answer, whether it came inline (a hit) or from a gRPC thread.
  std::pair<std::optional<KeyCache::Verified>, grpc::Status> Verify(const std::string& key) {
    std::promise<std::pair<std::optional<KeyCache::Verified>, grpc::Status>> p;
    auto f = p.get_future();
    cache_->Verify(key, [&](std::optional<KeyCache::Verified> v, grpc::Status s) {
      p.set_value({std::move(v), std::move(s)});
    });
    EXPECT_EQ(f.wait_for(seconds(5)), std::future_status::ready);
    return f.get();
  }

  ManualClock clock_;
  fakes::FakeKeyAuthService keyauth_;
  std::unique_ptr<grpc::Server> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<KeyCache> cache_;
};

TEST_F(KeyCacheTest, AVerifiedKeyIsAnsweredFromTheCache) {
  cache_->Start();
  ASSERT_TRUE(std::async([&] {
                for (int i = 0; i < 200 && !cache_->watching(); ++i) {
                  std::this_thread::sleep_for(milliseconds(10));
                }
                return cache_->watching();
              }).get());
  auto [v, s] = Verify("good");
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(v->key_id, "k1");
  EXPECT_EQ(v->gateway_id, "g1");
  clock_.Advance(seconds(299));
  EXPECT_TRUE(Verify("good").second.ok());
  EXPECT_EQ(keyauth_.verifications(), 1) << "one call, then the cache";
  clock_.Advance(seconds(2));  // past positive_ttl (300 s): checked again
  EXPECT_TRUE(Verify("good").second.ok());
  EXPECT_EQ(keyauth_.verifications(), 2);
}

TEST_F(KeyCacheTest, AnUnknownKeyIsRememberedForTheNegativeTtlOnly) {
  EXPECT_EQ(Verify("bad").second.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  clock_.Advance(milliseconds(900));
  EXPECT_EQ(Verify("bad").second.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(keyauth_.verifications(), 1) << "a client hammering with a bad key costs one call";
  clock_.Advance(milliseconds(200));
  EXPECT_EQ(Verify("bad").second.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(keyauth_.verifications(), 2);
}

TEST_F(KeyCacheTest, ACachedKeyThatExpiresIsRefusedWithoutACall) {
  keyauth_.AddKey("short", {"k2", "g1", clock_.Now() + seconds(10)});
  cache_->Start();
  for (int i = 0; i < 200 && !cache_->watching(); ++i)
    std::this_thread::sleep_for(milliseconds(10));
  ASSERT_TRUE(cache_->watching());
  EXPECT_TRUE(Verify("short").second.ok());
  clock_.Advance(seconds(10));
  auto [v, s] = Verify("short");
  EXPECT_FALSE(v.has_value());
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(keyauth_.verifications(), 1) << "expired in the cache: no call";
}

TEST_F(KeyCacheTest, WhileTheRevocationStreamIsDownEntriesOlderThanASecondAreRechecked) {
  // Not started: no revocation can arrive, so a verification is trusted for
  // disconnected_ttl (1 s) only.
  EXPECT_TRUE(Verify("good").second.ok());
  clock_.Advance(milliseconds(900));
  EXPECT_TRUE(Verify("good").second.ok());
  EXPECT_EQ(keyauth_.verifications(), 1);
  clock_.Advance(milliseconds(200));
  EXPECT_TRUE(Verify("good").second.ok());
  EXPECT_EQ(keyauth_.verifications(), 2);
}

TEST_F(KeyCacheTest, ARevocationDropsTheKeyAtOnceAndRaisesTheRequiredRevision) {
  cache_->Start();
  for (int i = 0; i < 200 && !cache_->watching(); ++i)
    std::this_thread::sleep_for(milliseconds(10));
  ASSERT_TRUE(cache_->watching());
  ASSERT_TRUE(Verify("good").second.ok());
  ASSERT_EQ(cache_->size(), 1u);
  keyauth_.Revoke("k1", 7);
  for (int i = 0; i < 200 && cache_->size() != 0; ++i)
    std::this_thread::sleep_for(milliseconds(10));
  EXPECT_EQ(cache_->size(), 0u) << "the revocation event dropped the entry";
  EXPECT_GE(cache_->required_revision(), 7);
  EXPECT_EQ(Verify("good").second.error_code(), grpc::StatusCode::UNAUTHENTICATED);
}

}  // namespace
}  // namespace tg::edge
