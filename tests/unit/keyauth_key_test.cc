// tg-keyauth pure logic: key format, hashing, constant-time comparison, the
// in-memory verifier and the revocation hub.
#include <gtest/gtest.h>

#include <chrono>
#include <set>
#include <string>
#include <vector>

#include "tg/common/crypto.h"
#include "tg/keyauth/key_format.h"
#include "tg/keyauth/key_index.h"
#include "tg/keyauth/key_record.h"
#include "tg/keyauth/revocation_hub.h"

namespace tg::keyauth {
namespace {

using std::chrono::hours;
using std::chrono::seconds;

constexpr char kGatewayA[] = "11111111-1111-4111-8111-111111111111";
constexpr char kGatewayB[] = "22222222-2222-4222-8222-222222222222";

const TimePoint kT0 = FromUnixMicros(1'700'000'000'000'000);

KeyRecord Record(const GeneratedKey& k, std::string id, std::string gateway,
                 std::optional<TimePoint> expires = std::nullopt) {
  return KeyRecord{std::move(id), std::move(gateway), "test", k.prefix, k.hash, expires, kT0, kT0};
}

// ---- key format -------------------------------------------------------------

TEST(KeyFormatTest, GeneratedKeyHasSchemeLengthAndUrlSafeAlphabet) {
  GeneratedKey k = GenerateKey();
  ASSERT_EQ(k.key.size(), 46u);  // "tg_" + 43
  EXPECT_EQ(k.key.substr(0, 3), "tg_");
  for (char c : k.key.substr(3)) {
    bool url_safe = std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_';
    EXPECT_TRUE(url_safe) << "unexpected character " << c;
  }
  EXPECT_TRUE(HasKeyShape(k.key));
}

TEST(KeyFormatTest, KeyCarries32RandomBytes) {
  std::set<std::string> seen;
  for (int i = 0; i < 200; ++i) {
    GeneratedKey k = GenerateKey();
    auto raw = crypto::Base64UrlDecode(k.key.substr(3));
    ASSERT_TRUE(raw.has_value());
    EXPECT_EQ(raw->size(), 32u);
    EXPECT_TRUE(seen.insert(k.key).second) << "duplicate key";
  }
}

TEST(KeyFormatTest, KnownRandomBytesGiveKnownKey) {
  GeneratedKey k = KeyFromRandom(std::string(32, '\0'));
  EXPECT_EQ(k.key, "tg_" + std::string(43, 'A'));
  EXPECT_EQ(k.prefix, "tg_AAAAAAAAA");
  std::string ff(32, '\xff');
  EXPECT_EQ(KeyFromRandom(ff).key, "tg_" + std::string(42, '_') + "8");
}

TEST(KeyFormatTest, PrefixIsFirstTwelveCharacters) {
  GeneratedKey k = GenerateKey();
  EXPECT_EQ(k.prefix.size(), 12u);
  EXPECT_EQ(k.prefix, k.key.substr(0, 12));
  EXPECT_EQ(KeyPrefix("tg_short"), "tg_short");
}

TEST(KeyFormatTest, HashIsSha256OfTheKey) {
  // FIPS 180-2 test vector.
  EXPECT_EQ(crypto::HexEncode(KeyHash("abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  GeneratedKey k = GenerateKey();
  EXPECT_EQ(k.hash.size(), 32u);
  EXPECT_EQ(k.hash, crypto::Sha256(k.key));
  EXPECT_EQ(k.key.find(crypto::HexEncode(k.hash)), std::string::npos);
}

TEST(KeyFormatTest, ShapeRejectsOtherStrings) {
  std::string good = GenerateKey().key;
  EXPECT_FALSE(HasKeyShape(""));
  EXPECT_FALSE(HasKeyShape(good.substr(0, 45)));
  EXPECT_FALSE(HasKeyShape(good + "A"));
  EXPECT_FALSE(HasKeyShape("xx_" + good.substr(3)));
  std::string bad = good;
  bad[10] = '+';
  EXPECT_FALSE(HasKeyShape(bad));
}

TEST(ConstantTimeEqualsTest, ComparesContentAndLength) {
  EXPECT_TRUE(crypto::ConstantTimeEquals("", ""));
  EXPECT_TRUE(crypto::ConstantTimeEquals("secret", "secret"));
  EXPECT_FALSE(crypto::ConstantTimeEquals("secret", "secreT"));
  EXPECT_FALSE(crypto::ConstantTimeEquals("secret", "Secret"));
  EXPECT_FALSE(crypto::ConstantTimeEquals("secret", "secret1"));
  EXPECT_FALSE(crypto::ConstantTimeEquals("secret", ""));
  std::string a(32, '\0');
  std::string b(32, '\0');
  b[31] = 1;
  EXPECT_FALSE(crypto::ConstantTimeEquals(a, b));  // embedded NULs are compared too
}

// ---- change documents --------------------------------------------------------

TEST(KeyRecordTest, ChangeDocRoundTripsWithoutTheKey) {
  GeneratedKey k = GenerateKey();
  KeyRecord r = Record(k, "id-1", kGatewayA, kT0 + hours(1));
  r.name = "name with \"quotes\"";
  std::string doc = ToChangeDoc(r);
  EXPECT_EQ(doc.find(k.key), std::string::npos);
  EXPECT_NE(doc.find(crypto::HexEncode(k.hash)), std::string::npos);
  auto back = FromChangeDoc(doc);
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->id, r.id);
  EXPECT_EQ(back->gateway_id, r.gateway_id);
  EXPECT_EQ(back->name, r.name);
  EXPECT_EQ(back->prefix, r.prefix);
  EXPECT_EQ(back->hash, r.hash);
  EXPECT_EQ(back->expires_at, r.expires_at);
  EXPECT_EQ(back->created_at, r.created_at);

  r.expires_at.reset();
  back = FromChangeDoc(ToChangeDoc(r));
  ASSERT_TRUE(back.has_value());
  EXPECT_FALSE(back->expires_at.has_value());

  EXPECT_FALSE(FromChangeDoc("{").has_value());
  EXPECT_FALSE(FromChangeDoc(R"({"id":"x"})").has_value());
}

// ---- index -------------------------------------------------------------------

class KeyIndexTest : public ::testing::Test {
 protected:
  KeyIndex index_;
};

TEST_F(KeyIndexTest, VerifiesAKnownKey) {
  GeneratedKey k = GenerateKey();
  index_.Reset({Record(k, "k1", kGatewayA)}, 7);
  auto v = index_.Verify(k.key, "", kT0);
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(v->key_id, "k1");
  EXPECT_EQ(v->gateway_id, kGatewayA);
  EXPECT_FALSE(v->expires_at.has_value());
  EXPECT_EQ(v->revision, 7);
}

TEST_F(KeyIndexTest, RejectsAnUnknownKey) {
  GeneratedKey k = GenerateKey();
  index_.Reset({Record(k, "k1", kGatewayA)}, 1);
  EXPECT_FALSE(index_.Verify(GenerateKey().key, "", kT0).has_value());
  EXPECT_FALSE(index_.Verify("", "", kT0).has_value());
  EXPECT_FALSE(index_.Verify(k.prefix, "", kT0).has_value());
  EXPECT_FALSE(index_.Verify(k.key + "x", "", kT0).has_value());
}

TEST_F(KeyIndexTest, SamePrefixDifferentSecretIsRejectedAndCollisionsCoexist) {
  // Keys from byte strings that differ only at the end share their prefix.
  std::string bytes1(32, 'a');
  std::string bytes2(32, 'a');
  bytes2[31] = 'b';
  std::string bytes3(32, 'a');
  bytes3[31] = 'c';
  GeneratedKey k1 = KeyFromRandom(bytes1);
  GeneratedKey k2 = KeyFromRandom(bytes2);
  GeneratedKey forged = KeyFromRandom(bytes3);
  ASSERT_EQ(k1.prefix, k2.prefix);
  ASSERT_EQ(k1.prefix, forged.prefix);
  index_.Reset({Record(k1, "k1", kGatewayA), Record(k2, "k2", kGatewayB)}, 1);

  EXPECT_FALSE(index_.Verify(forged.key, "", kT0).has_value());
  ASSERT_TRUE(index_.Verify(k1.key, "", kT0).has_value());
  EXPECT_EQ(index_.Verify(k1.key, "", kT0)->key_id, "k1");
  ASSERT_TRUE(index_.Verify(k2.key, "", kT0).has_value());
  EXPECT_EQ(index_.Verify(k2.key, "", kT0)->key_id, "k2");
}

TEST_F(KeyIndexTest, ExpiredKeyIsRejectedOnTheInjectedClock) {
  GeneratedKey k = GenerateKey();
  TimePoint expires = kT0 + seconds(60);
  index_.Reset({Record(k, "k1", kGatewayA, expires)}, 1);
  auto v = index_.Verify(k.key, "", kT0);
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(v->expires_at, expires);
  EXPECT_TRUE(index_.Verify(k.key, "", expires - std::chrono::microseconds(1)).has_value());
  EXPECT_FALSE(index_.Verify(k.key, "", expires).has_value());
  EXPECT_FALSE(index_.Verify(k.key, "", expires + hours(1)).has_value());
}

TEST_F(KeyIndexTest, GatewayFilter) {
  GeneratedKey k = GenerateKey();
  index_.Reset({Record(k, "k1", kGatewayA)}, 1);
  EXPECT_TRUE(index_.Verify(k.key, kGatewayA, kT0).has_value());
  EXPECT_FALSE(index_.Verify(k.key, kGatewayB, kT0).has_value());
}

TEST_F(KeyIndexTest, AppliesUpsertsAndDeletes) {
  GeneratedKey k1 = GenerateKey();
  GeneratedKey k2 = GenerateKey();
  index_.Reset({Record(k1, "k1", kGatewayA)}, 1);
  EXPECT_FALSE(index_.Verify(k2.key, "", kT0).has_value());

  index_.Apply({KeyUpdate{"k2", false, Record(k2, "k2", kGatewayA)}}, 5);
  EXPECT_TRUE(index_.Verify(k2.key, "", kT0).has_value());
  EXPECT_EQ(index_.revision(), 5);
  EXPECT_EQ(index_.size(), 2u);

  index_.Apply({KeyUpdate{"k1", true, {}}}, 6);
  EXPECT_FALSE(index_.Verify(k1.key, "", kT0).has_value());
  EXPECT_TRUE(index_.Verify(k2.key, "", kT0).has_value());
  EXPECT_EQ(index_.size(), 1u);

  // Deleting twice, or something unknown, is harmless (the feed may replay).
  index_.Apply({KeyUpdate{"k1", true, {}}, KeyUpdate{"nope", true, {}}}, 7);
  EXPECT_EQ(index_.size(), 1u);
  EXPECT_EQ(index_.revision(), 7);
}

TEST_F(KeyIndexTest, UpsertReplacesAnExistingEntry) {
  GeneratedKey k = GenerateKey();
  index_.Reset({Record(k, "k1", kGatewayA)}, 1);
  index_.Apply({KeyUpdate{"k1", false, Record(k, "k1", kGatewayA, kT0)}}, 2);
  EXPECT_EQ(index_.size(), 1u);
  EXPECT_FALSE(index_.Verify(k.key, "", kT0).has_value());  // now expired at kT0
}

// ---- revocation hub ----------------------------------------------------------

class RecordingSink : public KeyEventSink {
 public:
  void Send(const tg::v1::KeyEvent& event) override { events.push_back(event); }
  void Close(const grpc::Status& status) override { closed_with = status.error_code(); }
  std::vector<tg::v1::KeyEvent> events;
  std::optional<grpc::StatusCode> closed_with;
};

Revocation Revoked(int64_t revision, std::string id) {
  return Revocation{revision, std::move(id), kGatewayA};
}

TEST(RevocationHubTest, NewWatcherGetsResetThenRevocations) {
  RevocationHub hub;
  hub.Reset(10);
  RecordingSink sink;
  ASSERT_TRUE(hub.Subscribe(&sink, 0));
  hub.Publish({Revoked(12, "k1"), Revoked(13, "k2")}, 14);
  ASSERT_EQ(sink.events.size(), 3u);
  EXPECT_TRUE(sink.events[0].reset());
  EXPECT_EQ(sink.events[0].revision(), 10);
  EXPECT_EQ(sink.events[1].revoked().key_id(), "k1");
  EXPECT_EQ(sink.events[1].revision(), 12);
  EXPECT_EQ(sink.events[2].revoked().key_id(), "k2");
  EXPECT_EQ(hub.revision(), 14);
  hub.Unsubscribe(&sink);
  hub.Publish({Revoked(15, "k3")}, 15);
  EXPECT_EQ(sink.events.size(), 3u);
}

TEST(RevocationHubTest, ResumesWithinTheWindowAndResetsOutsideIt) {
  RevocationHub hub(RevocationHubOptions{.window = 2});
  hub.Reset(10);
  hub.Publish({Revoked(11, "k1"), Revoked(12, "k2")}, 12);

  RecordingSink resumed;
  hub.Subscribe(&resumed, 11);
  ASSERT_EQ(resumed.events.size(), 1u);
  EXPECT_EQ(resumed.events[0].revoked().key_id(), "k2");

  RecordingSink current;
  hub.Subscribe(&current, 12);
  EXPECT_TRUE(current.events.empty());

  hub.Publish({Revoked(13, "k3")}, 13);  // k1 leaves the window
  RecordingSink too_old;
  hub.Subscribe(&too_old, 10);
  ASSERT_EQ(too_old.events.size(), 1u);
  EXPECT_TRUE(too_old.events[0].reset());
  EXPECT_EQ(too_old.events[0].revision(), 13);

  RecordingSink from_future;
  hub.Subscribe(&from_future, 99);
  ASSERT_EQ(from_future.events.size(), 1u);
  EXPECT_TRUE(from_future.events[0].reset());
}

TEST(RevocationHubTest, HeartbeatsAtTheInterval) {
  RevocationHub hub(RevocationHubOptions{.heartbeat_interval = std::chrono::seconds(5)});
  hub.Reset(3);
  RecordingSink sink;
  hub.Subscribe(&sink, 0);
  auto t = std::chrono::steady_clock::time_point() + hours(1);
  hub.HeartbeatIfDue(t);
  hub.HeartbeatIfDue(t + seconds(4));
  hub.HeartbeatIfDue(t + seconds(5));
  ASSERT_EQ(sink.events.size(), 3u);  // reset + 2 heartbeats
  EXPECT_TRUE(sink.events[1].heartbeat());
  EXPECT_EQ(sink.events[1].revision(), 3);
  EXPECT_TRUE(sink.events[2].heartbeat());
}

TEST(RevocationHubTest, CloseAllClosesAndRefusesNewWatchers) {
  RevocationHub hub;
  hub.Reset(1);
  RecordingSink sink;
  hub.Subscribe(&sink, 0);
  hub.CloseAll(grpc::Status(grpc::StatusCode::UNAVAILABLE, "bye"));
  EXPECT_EQ(sink.closed_with, grpc::StatusCode::UNAVAILABLE);
  RecordingSink late;
  EXPECT_FALSE(hub.Subscribe(&late, 0));
  EXPECT_TRUE(late.events.empty());
}

}  // namespace
}  // namespace tg::keyauth
