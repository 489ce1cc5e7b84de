// Admin writes end to end: deadlines (nothing commits after the edge answered
// 504), Idempotency-Key on creates, and key revocation with two tg-keyauth
// replicas of which one lags. tg-config, tg-keyauth and tg-edge run as
// processes on a real PostgreSQL.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <pqxx/pqxx>
#include <string>
#include <thread>

#include "e2e_suite.h"
#include "process.h"
#include "stack.h"
#include "test_db.h"
#include "test_tls.h"
#include "tg/common/crypto.h"
#include "tg/v1/keyauth.grpc.pb.h"

namespace tg::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

// The change-log write lock every writer takes first (tg/common/change_log.cc).
constexpr long long kWriteLock = 0x7467'7772'6974;

std::string IdOf(const std::string& body) {
  auto d = Json(body);
  return d.IsObject() && d.HasMember("id") && d["id"].IsString() ? d["id"].GetString() : "";
}

class WritesE2E : public E2eSuite<WritesE2E> {
 protected:
  static void SetUpTestSuite() {
    StackOptions o;
    o.edge_env["TG_ADMIN_RPC_TIMEOUT_MS"] = "1000";
    StartSuite("e2e_writes", o, /*proxy=*/false);
  }

  static HttpResponse Post(const std::string& path, const std::string& body,
                           const std::string& idempotency_key = "") {
    std::vector<std::string> headers = {"Content-Type: application/json",
                                        "Authorization: Bearer " + stack_->Token()};
    if (!idempotency_key.empty()) headers.push_back("Idempotency-Key: " + idempotency_key);
    return Http("POST", stack_->AdminUrl(path), body, headers);
  }

  static int64_t Count(const std::string& sql) {
    pqxx::connection c(stack_->dsn());
    pqxx::read_transaction tx(c);
    return tx.exec(sql)[0][0].as<int64_t>();
  }
};

// The advisory write lock held by a test connection blocks every write; the
// edge's 1 s deadline passes; the write must roll back, not commit once the
// lock is released.
TEST_F(WritesE2E, AWriteWhoseDeadlinePassedNeverCommits) {
  std::string gw = IdOf(Post("/api/v1/gateways", R"({"name": "deadline-parent"})").body);
  ASSERT_FALSE(gw.empty());

  pqxx::connection blocker(stack_->dsn());
  auto lock = std::make_unique<pqxx::work>(blocker);
  lock->exec("SELECT pg_advisory_xact_lock(" + std::to_string(kWriteLock) + ")");

  auto started = std::chrono::steady_clock::now();
  auto r = Post("/api/v1/gateways", R"({"name": "too-late"})", "late-gateway-1");
  EXPECT_EQ(r.status, 504) << r.body;
  EXPECT_LT(std::chrono::steady_clock::now() - started, seconds(3));
  auto k = Post("/api/v1/gateways/" + gw + "/keys", R"({"name": "too-late-key"})");
  EXPECT_EQ(k.status, 504) << k.body;

  // Well past the deadline, then the lock goes: a write still waiting would
  // commit now.
  std::this_thread::sleep_for(milliseconds(1500));
  lock->commit();
  lock.reset();
  std::this_thread::sleep_for(milliseconds(1000));
  EXPECT_EQ(Count("SELECT count(*) FROM gateways WHERE doc LIKE '%too-late%'"), 0);
  EXPECT_EQ(Count("SELECT count(*) FROM api_keys WHERE name = 'too-late-key'"), 0);

  // The client's retry with the same key creates it, once.
  auto again = Post("/api/v1/gateways", R"({"name": "too-late"})", "late-gateway-1");
  EXPECT_EQ(again.status, 201) << again.body;
  auto third = Post("/api/v1/gateways", R"({"name": "too-late"})", "late-gateway-1");
  EXPECT_EQ(third.status, 201) << third.body;
  EXPECT_EQ(IdOf(third.body), IdOf(again.body));
  EXPECT_EQ(Count("SELECT count(*) FROM gateways WHERE doc LIKE '%too-late%'"), 1);
}

TEST_F(WritesE2E, ARetriedCreateWithTheSameIdempotencyKeyReturnsTheFirstResult) {
  auto first = Post("/api/v1/gateways", R"({"name": "idem-gw"})", "create-gw-7");
  ASSERT_EQ(first.status, 201) << first.body;
  auto second = Post("/api/v1/gateways", R"({"name": "idem-gw"})", "create-gw-7");
  ASSERT_EQ(second.status, 201) << second.body;
  std::string gw = IdOf(first.body);
  EXPECT_EQ(IdOf(second.body), gw);
  EXPECT_EQ(second.headers["location"], "/api/v1/gateways/" + gw);
  EXPECT_EQ(Count("SELECT count(*) FROM gateways WHERE doc LIKE '%idem-gw%'"), 1);

  // Same key, another body: refused, nothing created.
  auto other = Post("/api/v1/gateways", R"({"name": "idem-gw-2"})", "create-gw-7");
  EXPECT_EQ(other.status, 422) << other.body;
  EXPECT_NE(other.body.find("Idempotency-Key"), std::string::npos) << other.body;
  EXPECT_EQ(Count("SELECT count(*) FROM gateways WHERE doc LIKE '%idem-gw-2%'"), 0);

  // The key is scoped by collection: the same key creates a rule-less
  // upstream under the gateway, and repeats it there.
  std::string up_body =
      R"({"name": "u", "algorithm": "round-robin", "targets": [{"id": "t1", "provider": "openai",
          "weight": 1, "priority": 1, "default_model": "gpt-4",
          "credentials": {"api_key": "sk-secret-123"}}]})";
  auto up1 = Post("/api/v1/gateways/" + gw + "/upstreams", up_body, "create-gw-7");
  ASSERT_EQ(up1.status, 201) << up1.body;
  auto up2 = Post("/api/v1/gateways/" + gw + "/upstreams", up_body, "create-gw-7");
  ASSERT_EQ(up2.status, 201) << up2.body;
  EXPECT_EQ(IdOf(up1.body), IdOf(up2.body));
  EXPECT_EQ(up2.body.find("sk-secret-123"), std::string::npos) << "credentials stay masked";
  EXPECT_EQ(Count("SELECT count(*) FROM upstreams"), 1);
  EXPECT_EQ(Count("SELECT count(*) FROM idempotency_keys WHERE answer LIKE '%sk-secret-123%'"), 0);

  // Keys: the key is shown once; a repeat names the first key instead.
  auto key1 = Post("/api/v1/gateways/" + gw + "/keys", R"({"name": "ci"})", "key-1");
  ASSERT_EQ(key1.status, 201) << key1.body;
  auto key2 = Post("/api/v1/gateways/" + gw + "/keys", R"({"name": "ci"})", "key-1");
  EXPECT_EQ(key2.status, 409) << key2.body;
  EXPECT_NE(key2.body.find(IdOf(key1.body)), std::string::npos) << key2.body;
  EXPECT_EQ(key2.body.find("tg_"), std::string::npos) << key2.body;
  auto key3 = Post("/api/v1/gateways/" + gw + "/keys", R"({"name": "other"})", "key-1");
  EXPECT_EQ(key3.status, 422) << key3.body;
  EXPECT_EQ(Count("SELECT count(*) FROM api_keys"), 1);

  // Invalid keys.
  EXPECT_EQ(Post("/api/v1/gateways", R"({"name": "x"})", std::string(256, 'a')).status, 400);
  EXPECT_EQ(Post("/api/v1/gateways", R"({"name": "x"})", "caf\xc3\xa9").status, 400);
  EXPECT_EQ(
      Post("/api/v1/gateways/" + gw + "/keys", R"({"name": "x"})", std::string(256, 'a')).status,
      400);
  EXPECT_EQ(Count("SELECT count(*) FROM gateways WHERE doc LIKE '%\"x\"%'"), 0);
}

// Two tg-keyauth replicas behind the edge (round robin); the second one's
// database role loses SELECT on the change log, so it keeps answering
// VerifyKey from a key state that no longer moves: a lagging replica. A key
// deleted through the admin API must be refused from the moment the DELETE
// answered, whichever replica the edge's VerifyKey calls reach.
TEST(KeyRevocationE2E, ALaggingReplicaNeverReadmitsARevokedKey) {
  if (!TestDatabase::Available()) GTEST_SKIP() << "TG_TEST_PG_DSN not set";
  const std::string role = "tg_lag_" + crypto::HexEncode(crypto::RandomBytes(4));
  StackOptions o;
  o.keyauth_replica = true;
  o.keyauth_replica_pg_user = role;
  auto stack = std::make_unique<Stack>("e2e_revoke", o);
  {
    // The tables do not exist yet (the services migrate): grant ahead.
    pqxx::connection c(stack->dsn());
    pqxx::nontransaction tx(c);
    tx.exec("CREATE ROLE " + role + " LOGIN");
    tx.exec("GRANT ALL ON SCHEMA public TO " + role);
    tx.exec("ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON TABLES TO " + role);
    tx.exec("ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON SEQUENCES TO " + role);
  }
  ASSERT_TRUE(stack->StartAll());
  auto post = [&](const std::string& path, const std::string& body) {
    return stack->Admin("POST", path, body);
  };
  std::string gw = IdOf(post("/api/v1/gateways", R"({"name": "revoke"})").body);
  ASSERT_FALSE(gw.empty());
  auto created = post("/api/v1/gateways/" + gw + "/keys", R"({"name": "doomed"})");
  ASSERT_EQ(created.status, 201) << created.body;
  auto d = Json(created.body);
  const std::string key = d["key"].GetString();
  const std::string key_id = d["id"].GetString();

  auto proxy = [&] {
    // A valid key on a gateway without rules: 404 "no route"; refused: 401.
    return Http("POST", stack->ProxyUrl("/v1/chat/completions"), R"({"model": "m"})",
                {"Content-Type: application/json", "X-TG-API-Key: " + key});
  };
  // Both replicas know the key; the edge has cached it.
  ASSERT_TRUE(WaitFor([&] { return proxy().status == 404; }, seconds(5)));

  // The second replica stops following the change log.
  {
    pqxx::connection c(stack->dsn());
    pqxx::nontransaction tx(c);
    tx.exec("REVOKE SELECT ON change_log FROM " + role);
  }
  auto del = stack->Admin("DELETE", "/api/v1/gateways/" + gw + "/keys/" + key_id);
  ASSERT_EQ(del.status, 204) << del.body;

  // From the DELETE's answer on, never admitted: each request below misses
  // the cache (a refusal is cached one second) and asks a replica, the
  // round robin alternating between the current one and the lagging one.
  int refused = 0;
  for (int i = 0; i < 6; ++i) {
    auto r = proxy();
    EXPECT_TRUE(r.status == 401 || r.status == 503)
        << "attempt " << i << ": " << r.status << " " << r.body;
    refused += r.status == 401;
    std::this_thread::sleep_for(milliseconds(1100));
  }
  EXPECT_GT(refused, 0);

  // The lagging replica still vouches for the key when asked without a
  // revision: it really lags, so the edge's revision rule is what refused it.
  for (const char* replica : {"tg-keyauth", "tg-keyauth-2"}) {
    auto stub = tg::v1::KeyAuthService::NewStub(
        tg::testing::TestChannel(stack->grpc_port(replica), tg::kKeyauthIdentity));
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + seconds(2));
    tg::v1::VerifyKeyRequest req;
    req.set_key(key);
    tg::v1::VerifyKeyResponse resp;
    auto st = stub->VerifyKey(&ctx, req, &resp);
    EXPECT_EQ(st.ok(), std::string(replica) == "tg-keyauth-2") << replica;
  }

  // Caught up again, it refuses the key too.
  {
    pqxx::connection c(stack->dsn());
    pqxx::nontransaction tx(c);
    tx.exec("GRANT SELECT ON change_log TO " + role);
  }
  std::this_thread::sleep_for(milliseconds(1500));
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(proxy().status, 401);
    std::this_thread::sleep_for(milliseconds(1100));
  }
  stack.reset();
  try {
    pqxx::connection c(std::getenv("TG_TEST_PG_DSN"));
    pqxx::nontransaction tx(c);
    tx.exec("DROP ROLE IF EXISTS " + role);
  } catch (const std::exception&) {
    // the throwaway cluster goes anyway
  }
}

}  // namespace
}  // namespace tg::testing
