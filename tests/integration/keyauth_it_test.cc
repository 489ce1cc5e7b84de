// Size: one service's tests (tg-keyauth) on one PostgreSQL fixture.
// tg-keyauth against a real PostgreSQL (TG_TEST_PG_DSN), served in-process on
// real gRPC servers and called through real stubs. Skipped without a DSN.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <memory>
#include <mutex>
#include <pqxx/pqxx>
#include <set>
#include <string>
#include <thread>

#include "fake_config.h"
#include "test_tls.h"
#include "tg/common/crypto.h"
#include "tg/common/grpc_server.h"
#include "tg/common/pg.h"
#include "tg/common/worker_pool.h"
#include "tg/keyauth/clock.h"
#include "tg/keyauth/gateway_directory.h"
#include "tg/keyauth/key_feed.h"
#include "tg/keyauth/key_format.h"
#include "tg/keyauth/key_index.h"
#include "tg/keyauth/key_store.h"
#include "tg/keyauth/keyauth_service.h"
#include "tg/keyauth/revocation_hub.h"
#include "tg/v1/config.grpc.pb.h"
#include "tg/v1/keyauth.grpc.pb.h"

namespace tg::keyauth {
namespace {

using namespace std::chrono_literals;
using grpc::StatusCode;

constexpr char kGateway[] = "6f1c2a9e-3b4d-4e5f-8a7b-9c0d1e2f3a4b";
constexpr char kOtherGateway[] = "0a1b2c3d-4e5f-4a6b-8c7d-8e9f0a1b2c3d";
constexpr char kMissingGateway[] = "99999999-9999-4999-8999-999999999999";

class FakeClock final : public Clock {
 public:
  TimePoint Now() const override {
    std::lock_guard lock(mu_);
    return now_;
  }
  void Advance(std::chrono::system_clock::duration d) {
    std::lock_guard lock(mu_);
    now_ += d;
  }

 private:
  mutable std::mutex mu_;
  TimePoint now_ = std::chrono::system_clock::now();
};

class FakeGatewayDirectory final : public GatewayDirectory {
 public:
  grpc::Status Exists(const std::string& gateway_id) override {
    if (unavailable) return grpc::Status(StatusCode::UNAVAILABLE, "config service unavailable");
    if (gateway_id == kMissingGateway) {
      return grpc::Status(StatusCode::NOT_FOUND, "gateway not found");
    }
    return grpc::Status::OK;
  }
  std::atomic<bool> unavailable{false};
};

// One tg-keyauth replica: everything main.cc builds, on port 0.
class Replica {
 public:
  Replica(const std::string& dsn, GatewayDirectory* gateways, const Clock* clock,
          RevocationHubOptions hub_options = {}) {
    {
      auto conn = pg::ConnectWithRetry(dsn, 10s);
      pg::ApplyMigrations(*conn, "keyauth", KeyStore::Migrations());
    }
    pool_ = std::make_unique<pg::Pool>(pg::PoolOptions{.dsn = dsn, .size = 2});
    store_ = std::make_unique<KeyStore>(pool_.get());
    hub_ = std::make_unique<RevocationHub>(hub_options);
    feed_ =
        std::make_unique<KeyFeed>(KeyFeedOptions{.dsn = dsn}, store_.get(), &index_, hub_.get());
    feed_->Load();
    feed_->Start();
    workers_ = std::make_unique<WorkerPool>(2);
    service_ = std::make_unique<KeyAuthServiceImpl>(KeyAuthDeps{.store = store_.get(),
                                                                .feed = feed_.get(),
                                                                .index = &index_,
                                                                .hub = hub_.get(),
                                                                .gateways = gateways,
                                                                .workers = workers_.get(),
                                                                .clock = clock});
    std::string error;
    server_ = GrpcServer::Start(GrpcServerOptions{.listen = "127.0.0.1:0",
                                                  .health_names = {"tg.v1.KeyAuthService"},
                                                  .shutdown_grace = 2s,
                                                  .tls = tg::testing::TestTls(kKeyauthIdentity)},
                                {service_.get()}, &error);
    if (!server_) throw std::runtime_error(error);
    stub_ = tg::v1::KeyAuthService::NewStub(
        tg::testing::TestChannel(server_->port(), kKeyauthIdentity));
  }

  ~Replica() {
    service_->BeginShutdown();
    server_->Shutdown();
    server_.reset();
    feed_->Stop();
    workers_.reset();
  }

  tg::v1::KeyAuthService::Stub& stub() { return *stub_; }
  KeyAuthServiceImpl& service() { return *service_; }
  RevocationHub& hub() { return *hub_; }

 private:
  std::unique_ptr<pg::Pool> pool_;
  std::unique_ptr<KeyStore> store_;
  KeyIndex index_;
  std::unique_ptr<RevocationHub> hub_;
  std::unique_ptr<KeyFeed> feed_;
  std::unique_ptr<WorkerPool> workers_;
  std::unique_ptr<KeyAuthServiceImpl> service_;
  std::unique_ptr<GrpcServer> server_;
  std::unique_ptr<tg::v1::KeyAuthService::Stub> stub_;
};

// Reads a WatchKeys stream on its own thread so tests can wait with a deadline.
class WatchReader {
 public:
  WatchReader(tg::v1::KeyAuthService::Stub& stub, int64_t from_revision) {
    tg::v1::WatchKeysRequest req;
    req.set_from_revision(from_revision);
    reader_ = stub.WatchKeys(&ctx_, req);
    thread_ = std::thread([this] {
      tg::v1::KeyEvent ev;
      while (reader_->Read(&ev)) {
        std::lock_guard lock(mu_);
        events_.push_back(ev);
        cv_.notify_all();
      }
      grpc::Status st = reader_->Finish();
      std::lock_guard lock(mu_);
      status_ = st;
      done_ = true;
      cv_.notify_all();
    });
  }
  ~WatchReader() {
    ctx_.TryCancel();
    thread_.join();
  }

  // The next event, or nullopt after `timeout`.
  std::optional<tg::v1::KeyEvent> Next(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    if (!cv_.wait_for(lock, timeout, [this] { return !events_.empty() || done_; })) {
      return std::nullopt;
    }
    if (events_.empty()) return std::nullopt;
    auto ev = events_.front();
    events_.pop_front();
    return ev;
  }
  // The next event that is not a heartbeat.
  std::optional<tg::v1::KeyEvent> NextNonHeartbeat(std::chrono::milliseconds timeout) {
    auto until = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          until - std::chrono::steady_clock::now());
      if (left <= 0ms) return std::nullopt;
      auto ev = Next(left);
      if (!ev || !ev->heartbeat()) return ev;
    }
  }
  std::optional<grpc::Status> WaitDone(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    if (!cv_.wait_for(lock, timeout, [this] { return done_; })) return std::nullopt;
    return status_;
  }

 private:
  grpc::ClientContext ctx_;
  std::unique_ptr<grpc::ClientReader<tg::v1::KeyEvent>> reader_;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<tg::v1::KeyEvent> events_;
  bool done_ = false;
  grpc::Status status_;
};

class KeyAuthIntegrationTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const char* base = std::getenv("TG_TEST_PG_DSN");
    if (base == nullptr || *base == '\0') return;
    base_dsn_ = new std::string(base);
    db_name_ = new std::string("keyauth_it_" + crypto::HexEncode(crypto::RandomBytes(6)));
    pqxx::connection conn(*base_dsn_);
    pqxx::nontransaction tx(conn);
    tx.exec("CREATE DATABASE " + tx.quote_name(*db_name_));
    // A later keyword overrides an earlier one in a libpq connection string.
    dsn_ = new std::string(*base_dsn_ + " dbname=" + *db_name_);
  }

  static void TearDownTestSuite() {
    if (base_dsn_ == nullptr) return;
    try {
      pqxx::connection conn(*base_dsn_);
      pqxx::nontransaction tx(conn);
      tx.exec("DROP DATABASE IF EXISTS " + tx.quote_name(*db_name_) + " WITH (FORCE)");
    } catch (const std::exception& e) {
      ADD_FAILURE() << "could not drop " << *db_name_ << ": " << e.what();
    }
    delete base_dsn_;
    delete db_name_;
    delete dsn_;
    base_dsn_ = db_name_ = dsn_ = nullptr;
  }

  void SetUp() override {
    if (dsn_ == nullptr) GTEST_SKIP() << "TG_TEST_PG_DSN is not set";
    replica_ = std::make_unique<Replica>(*dsn_, &gateways_, &clock_);
  }

  std::unique_ptr<Replica> NewReplica(RevocationHubOptions hub_options = {}) {
    return std::make_unique<Replica>(*dsn_, &gateways_, &clock_, hub_options);
  }

  tg::v1::ApiKey Create(Replica& r, const std::string& name,
                        std::optional<TimePoint> expires_at = std::nullopt,
                        const std::string& gateway = kGateway, int64_t* revision = nullptr) {
    grpc::ClientContext ctx;
    tg::v1::CreateKeyRequest req;
    req.set_gateway_id(gateway);
    req.mutable_key()->set_name(name);
    if (expires_at) *req.mutable_key()->mutable_expires_at() = ToProtoTime(*expires_at);
    tg::v1::KeyResult resp;
    grpc::Status st = r.stub().CreateKey(&ctx, req, &resp);
    EXPECT_TRUE(st.ok()) << st.error_message();
    if (revision != nullptr) *revision = resp.revision();
    return resp.key();
  }

  grpc::Status Verify(Replica& r, const std::string& key, const std::string& gateway = "",
                      tg::v1::VerifyKeyResponse* out = nullptr) {
    grpc::ClientContext ctx;
    tg::v1::VerifyKeyRequest req;
    req.set_key(key);
    req.set_gateway_id(gateway);
    tg::v1::VerifyKeyResponse resp;
    grpc::Status st = r.stub().VerifyKey(&ctx, req, &resp);
    if (out != nullptr) *out = resp;
    return st;
  }

  grpc::Status Delete(Replica& r, const std::string& gateway, const std::string& id,
                      int64_t* revision = nullptr) {
    grpc::ClientContext ctx;
    tg::v1::DeleteKeyRequest req;
    req.set_gateway_id(gateway);
    req.set_id(id);
    tg::v1::DeleteKeyResult resp;
    grpc::Status st = r.stub().DeleteKey(&ctx, req, &resp);
    if (revision != nullptr) *revision = resp.revision();
    return st;
  }

  // Polls `pred` every 10 ms; returns how long it took to hold, or nullopt.
  template <typename Pred>
  static std::optional<std::chrono::milliseconds> WaitFor(Pred pred,
                                                          std::chrono::milliseconds timeout) {
    auto start = std::chrono::steady_clock::now();
    for (;;) {
      if (pred()) {
        return std::chrono::duration_cast<std::chrono::milliseconds>(
            std::chrono::steady_clock::now() - start);
      }
      if (std::chrono::steady_clock::now() - start > timeout) return std::nullopt;
      std::this_thread::sleep_for(10ms);
    }
  }

  static std::string* base_dsn_;
  static std::string* db_name_;
  static std::string* dsn_;
  FakeGatewayDirectory gateways_;
  FakeClock clock_;
  std::unique_ptr<Replica> replica_;
};

std::string* KeyAuthIntegrationTest::base_dsn_ = nullptr;
std::string* KeyAuthIntegrationTest::db_name_ = nullptr;
std::string* KeyAuthIntegrationTest::dsn_ = nullptr;

TEST_F(KeyAuthIntegrationTest, CreateGetListDelete) {
  int64_t created_rev = 0;
  TimePoint expires = ToMicros(clock_.Now() + 24h);
  tg::v1::ApiKey created = Create(*replica_, "ci key", expires, kGateway, &created_rev);
  EXPECT_TRUE(crypto::IsUuid(created.id()));
  EXPECT_EQ(created.gateway_id(), kGateway);
  EXPECT_EQ(created.name(), "ci key");
  EXPECT_TRUE(HasKeyShape(created.key()));
  EXPECT_EQ(created.prefix(), created.key().substr(0, 12));
  EXPECT_TRUE(created.has_created_at());
  EXPECT_TRUE(created.has_updated_at());
  EXPECT_EQ(FromProtoTime(created.expires_at()), expires);
  EXPECT_GT(created_rev, 0);

  {
    grpc::ClientContext ctx;
    tg::v1::GetKeyRequest req;
    req.set_gateway_id(kGateway);
    req.set_id(created.id());
    tg::v1::KeyResult resp;
    ASSERT_TRUE(replica_->stub().GetKey(&ctx, req, &resp).ok());
    EXPECT_EQ(resp.key().id(), created.id());
    EXPECT_EQ(resp.key().name(), "ci key");
    EXPECT_EQ(resp.key().prefix(), created.prefix());
    EXPECT_TRUE(resp.key().key().empty());
    EXPECT_EQ(FromProtoTime(resp.key().created_at()), FromProtoTime(created.created_at()));
    EXPECT_EQ(FromProtoTime(resp.key().expires_at()), expires);
    EXPECT_GE(resp.revision(), created_rev);
  }
  {
    grpc::ClientContext ctx;
    tg::v1::ListKeysRequest req;
    req.set_gateway_id(kGateway);
    tg::v1::ListKeysResponse resp;
    ASSERT_TRUE(replica_->stub().ListKeys(&ctx, req, &resp).ok());
    int seen = 0;
    for (const auto& k : resp.keys()) {
      EXPECT_TRUE(k.key().empty());
      if (k.id() == created.id()) ++seen;
    }
    EXPECT_EQ(seen, 1);
  }

  int64_t deleted_rev = 0;
  ASSERT_TRUE(Delete(*replica_, kGateway, created.id(), &deleted_rev).ok());
  EXPECT_GT(deleted_rev, created_rev);
  {
    grpc::ClientContext ctx;
    tg::v1::GetKeyRequest req;
    req.set_gateway_id(kGateway);
    req.set_id(created.id());
    tg::v1::KeyResult resp;
    grpc::Status st = replica_->stub().GetKey(&ctx, req, &resp);
    EXPECT_EQ(st.error_code(), StatusCode::NOT_FOUND);
    EXPECT_EQ(st.error_message(), "key not found");
  }
  grpc::Status again = Delete(*replica_, kGateway, created.id());
  EXPECT_EQ(again.error_code(), StatusCode::NOT_FOUND);
  EXPECT_EQ(again.error_message(), "key not found");
}

TEST_F(KeyAuthIntegrationTest, KeyIsScopedToItsGateway) {
  tg::v1::ApiKey created = Create(*replica_, "scoped");
  grpc::ClientContext ctx;
  tg::v1::GetKeyRequest req;
  req.set_gateway_id(kOtherGateway);
  req.set_id(created.id());
  tg::v1::KeyResult resp;
  EXPECT_EQ(replica_->stub().GetKey(&ctx, req, &resp).error_code(), StatusCode::NOT_FOUND);
  EXPECT_EQ(Delete(*replica_, kOtherGateway, created.id()).error_code(), StatusCode::NOT_FOUND);
  EXPECT_TRUE(Verify(*replica_, created.key()).ok());
}

TEST_F(KeyAuthIntegrationTest, PlaintextKeyIsNeverStored) {
  tg::v1::ApiKey created = Create(*replica_, "secret-check");
  pqxx::connection conn(*dsn_);
  pqxx::read_transaction tx(conn);
  auto rows = tx.exec_params(
      "SELECT id, gateway_id, name, prefix, encode(hash, 'hex'), expires_at::text, "
      "created_at::text, updated_at::text FROM api_keys WHERE id = $1",
      created.id());
  ASSERT_EQ(rows.size(), 1u);
  for (const auto& field : rows[0]) {
    if (field.is_null()) continue;
    EXPECT_EQ(field.as<std::string>().find(created.key()), std::string::npos);
  }
  EXPECT_EQ(rows[0][4].as<std::string>(), crypto::HexEncode(crypto::Sha256(created.key())));
  EXPECT_EQ(rows[0][3].as<std::string>(), created.prefix());

  // Nor in the change log every replica reads.
  auto log = tx.exec("SELECT doc FROM change_log WHERE topic = 'keys'");
  ASSERT_GE(log.size(), 1u);
  for (const auto& row : log) {
    EXPECT_EQ(row[0].as<std::string>().find(created.key()), std::string::npos);
  }
  // And no column anywhere in the schema is wide enough to hold it unnoticed:
  // the whole table dumped as text does not contain it.
  auto dump = tx.exec("SELECT string_agg(t::text, '|') FROM api_keys t");
  EXPECT_EQ(dump[0][0].as<std::string>().find(created.key()), std::string::npos);
}

TEST_F(KeyAuthIntegrationTest, Validation) {
  auto create = [this](const std::string& gateway, const std::string& name,
                       std::optional<TimePoint> expires) {
    grpc::ClientContext ctx;
    tg::v1::CreateKeyRequest req;
    req.set_gateway_id(gateway);
    req.mutable_key()->set_name(name);
    if (expires) *req.mutable_key()->mutable_expires_at() = ToProtoTime(*expires);
    tg::v1::KeyResult resp;
    return replica_->stub().CreateKey(&ctx, req, &resp);
  };
  grpc::Status st = create("not-a-uuid", "x", std::nullopt);
  EXPECT_EQ(st.error_code(), StatusCode::NOT_FOUND);
  EXPECT_EQ(st.error_message(), "gateway not found");

  st = create(kMissingGateway, "x", std::nullopt);
  EXPECT_EQ(st.error_code(), StatusCode::NOT_FOUND);
  EXPECT_EQ(st.error_message(), "gateway not found");

  st = create(kGateway, "", std::nullopt);
  EXPECT_EQ(st.error_code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(st.error_message(), "name is required");
  EXPECT_EQ(create(kGateway, "   ", std::nullopt).error_code(), StatusCode::INVALID_ARGUMENT);

  st = create(kGateway, "x", clock_.Now() - 1s);
  EXPECT_EQ(st.error_code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(st.error_message(), "expires_at must be in the future");

  gateways_.unavailable = true;
  st = create(kGateway, "x", std::nullopt);
  gateways_.unavailable = false;
  EXPECT_EQ(st.error_code(), StatusCode::UNAVAILABLE);

  grpc::ClientContext ctx;
  tg::v1::GetKeyRequest get;
  get.set_gateway_id(kGateway);
  get.set_id("nope");
  tg::v1::KeyResult resp;
  st = replica_->stub().GetKey(&ctx, get, &resp);
  EXPECT_EQ(st.error_code(), StatusCode::NOT_FOUND);
  EXPECT_EQ(st.error_message(), "key not found");

  grpc::ClientContext list_ctx;
  tg::v1::ListKeysRequest list;
  list.set_gateway_id(kMissingGateway);
  tg::v1::ListKeysResponse list_resp;
  EXPECT_EQ(replica_->stub().ListKeys(&list_ctx, list, &list_resp).error_code(),
            StatusCode::NOT_FOUND);
}

TEST_F(KeyAuthIntegrationTest, VerifyThenDeleteIsUnauthenticated) {
  tg::v1::ApiKey created = Create(*replica_, "verify me");
  tg::v1::VerifyKeyResponse v;
  grpc::Status st = Verify(*replica_, created.key(), "", &v);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(v.key_id(), created.id());
  EXPECT_EQ(v.gateway_id(), kGateway);
  EXPECT_FALSE(v.has_expires_at());
  EXPECT_GT(v.revision(), 0);

  EXPECT_TRUE(Verify(*replica_, created.key(), kGateway).ok());
  st = Verify(*replica_, created.key(), kOtherGateway);
  EXPECT_EQ(st.error_code(), StatusCode::UNAUTHENTICATED);
  std::string wrong = created.key();
  wrong.back() = wrong.back() == 'A' ? 'B' : 'A';
  grpc::Status wrong_st = Verify(*replica_, wrong);
  EXPECT_EQ(wrong_st.error_code(), StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(wrong_st.error_message(), st.error_message());  // the reason is not revealed

  ASSERT_TRUE(Delete(*replica_, kGateway, created.id()).ok());
  // The deleting replica has applied its own write before answering.
  EXPECT_EQ(Verify(*replica_, created.key()).error_code(), StatusCode::UNAUTHENTICATED);
}

TEST_F(KeyAuthIntegrationTest, ExpiredKeyIsRejected) {
  TimePoint expires = ToMicros(clock_.Now() + 1h);
  tg::v1::ApiKey created = Create(*replica_, "short-lived", expires);
  tg::v1::VerifyKeyResponse v;
  ASSERT_TRUE(Verify(*replica_, created.key(), "", &v).ok());
  EXPECT_EQ(FromProtoTime(v.expires_at()), expires);
  clock_.Advance(2h);
  grpc::Status st = Verify(*replica_, created.key());
  EXPECT_EQ(st.error_code(), StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(st.error_message(), "invalid API key");
}

TEST_F(KeyAuthIntegrationTest, DeleteGatewayKeysRevokesEveryKeyOfTheGateway) {
  // A gateway of its own: the suite's database is shared by every test.
  const std::string gateway = crypto::NewUuid();
  tg::v1::ApiKey a = Create(*replica_, "a", std::nullopt, gateway);
  tg::v1::ApiKey b = Create(*replica_, "b", std::nullopt, gateway);
  tg::v1::ApiKey other = Create(*replica_, "other", std::nullopt, kOtherGateway);
  WatchReader watch(replica_->stub(), 0);
  ASSERT_TRUE(watch.NextNonHeartbeat(2s).value_or(tg::v1::KeyEvent()).reset());

  grpc::ClientContext ctx;
  tg::v1::DeleteGatewayKeysRequest req;
  req.set_gateway_id(gateway);
  tg::v1::DeleteKeyResult resp;
  ASSERT_TRUE(replica_->stub().DeleteGatewayKeys(&ctx, req, &resp).ok());
  EXPECT_GT(resp.revision(), 0);
  EXPECT_EQ(Verify(*replica_, a.key()).error_code(), StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(Verify(*replica_, b.key()).error_code(), StatusCode::UNAUTHENTICATED);
  EXPECT_TRUE(Verify(*replica_, other.key()).ok());

  std::set<std::string> revoked;
  while (revoked.size() < 2) {
    auto ev = watch.NextNonHeartbeat(1s);
    ASSERT_TRUE(ev.has_value());
    ASSERT_TRUE(ev->has_revoked());
    EXPECT_EQ(ev->revoked().gateway_id(), gateway);
    revoked.insert(ev->revoked().key_id());
  }
  EXPECT_EQ(revoked, (std::set<std::string>{a.id(), b.id()}));
}

TEST_F(KeyAuthIntegrationTest, RevocationOnOneReplicaReachesAnotherWithinASecond) {
  auto replica_b = NewReplica();
  tg::v1::ApiKey created = Create(*replica_, "replicated");

  auto appeared = WaitFor([&] { return Verify(*replica_b, created.key()).ok(); }, 1000ms);
  ASSERT_TRUE(appeared.has_value()) << "key created on A never verified on B";

  WatchReader watch(replica_b->stub(), 0);
  auto first = watch.NextNonHeartbeat(2s);
  ASSERT_TRUE(first.has_value());
  EXPECT_TRUE(first->reset());

  int64_t deleted_rev = 0;
  ASSERT_TRUE(Delete(*replica_, kGateway, created.id(), &deleted_rev).ok());
  auto start = std::chrono::steady_clock::now();

  auto revoked = WaitFor(
      [&] { return Verify(*replica_b, created.key()).error_code() == StatusCode::UNAUTHENTICATED; },
      1000ms);
  ASSERT_TRUE(revoked.has_value()) << "B still verified the key after 1 s";
  RecordProperty("revoked_on_b_after_ms", static_cast<int>(revoked->count()));

  auto left = 1000ms - std::chrono::duration_cast<std::chrono::milliseconds>(
                           std::chrono::steady_clock::now() - start);
  auto ev = watch.NextNonHeartbeat(std::max(left, 1ms));
  ASSERT_TRUE(ev.has_value()) << "no revoked event on B within 1 s";
  ASSERT_TRUE(ev->has_revoked());
  EXPECT_EQ(ev->revoked().key_id(), created.id());
  EXPECT_EQ(ev->revoked().gateway_id(), kGateway);
  EXPECT_EQ(ev->revision(), deleted_rev);
}

TEST_F(KeyAuthIntegrationTest, PollingAppliesChangesThatWereNeverNotified) {
  tg::v1::ApiKey created = Create(*replica_, "unnotified");
  WatchReader watch(replica_->stub(), 0);
  ASSERT_TRUE(watch.NextNonHeartbeat(2s).value_or(tg::v1::KeyEvent()).reset());
  {
    // A deletion committed without NOTIFY, as if the notification were lost.
    pqxx::connection conn(*dsn_);
    pqxx::work tx(conn);
    tx.exec_params("DELETE FROM api_keys WHERE id = $1", created.id());
    tx.exec_params(
        "INSERT INTO change_log (revision, topic, kind, entity_id, gateway_id, deleted) "
        "VALUES (nextval('change_revision'), 'keys', 'key', $1, $2, true)",
        created.id(), created.gateway_id());
    tx.commit();
  }
  auto revoked = WaitFor(
      [&] { return Verify(*replica_, created.key()).error_code() == StatusCode::UNAUTHENTICATED; },
      1000ms);
  ASSERT_TRUE(revoked.has_value()) << "the poll did not pick the change up within 1 s";
  auto ev = watch.NextNonHeartbeat(1s);
  ASSERT_TRUE(ev.has_value());
  ASSERT_TRUE(ev->has_revoked());
  EXPECT_EQ(ev->revoked().key_id(), created.id());
}

TEST_F(KeyAuthIntegrationTest, WatchResumesFromARevisionInTheWindow) {
  int64_t rev = 0;
  tg::v1::ApiKey first = Create(*replica_, "first", std::nullopt, kGateway, &rev);
  tg::v1::ApiKey second = Create(*replica_, "second");
  ASSERT_TRUE(Delete(*replica_, kGateway, second.id()).ok());

  // From the revision of the first creation: no reset, the deletion replayed.
  WatchReader watch(replica_->stub(), rev);
  auto ev = watch.NextNonHeartbeat(1s);
  ASSERT_TRUE(ev.has_value());
  ASSERT_TRUE(ev->has_revoked());
  EXPECT_EQ(ev->revoked().key_id(), second.id());

  // A replica started after those writes has no window before its load: reset.
  auto late = NewReplica();
  WatchReader stale(late->stub(), rev);
  ev = stale.NextNonHeartbeat(1s);
  ASSERT_TRUE(ev.has_value());
  EXPECT_TRUE(ev->reset());
}

TEST_F(KeyAuthIntegrationTest, WatchSendsHeartbeatsAndEndsOnShutdown) {
  auto replica = NewReplica(RevocationHubOptions{.heartbeat_interval = 100ms});
  WatchReader watch(replica->stub(), 0);
  auto ev = watch.Next(2s);
  ASSERT_TRUE(ev.has_value());
  EXPECT_TRUE(ev->reset());
  ev = watch.Next(2s);
  ASSERT_TRUE(ev.has_value());
  EXPECT_TRUE(ev->heartbeat());

  replica->service().BeginShutdown();
  auto status = watch.WaitDone(2s);
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(status->error_code(), StatusCode::UNAVAILABLE);
  // OnDone (which unsubscribes) may run just after the client saw the status.
  EXPECT_TRUE(WaitFor([&] { return replica->hub().subscribers() == 0; }, 2000ms).has_value());
}

TEST_F(KeyAuthIntegrationTest, CancelledWatchIsCleanedUp) {
  {
    WatchReader watch(replica_->stub(), 0);
    ASSERT_TRUE(watch.Next(2s).has_value());
    EXPECT_EQ(replica_->hub().subscribers(), 1u);
  }  // cancels
  auto gone = WaitFor([&] { return replica_->hub().subscribers() == 0; }, 2000ms);
  EXPECT_TRUE(gone.has_value());
}

TEST_F(KeyAuthIntegrationTest, ReplicaStartingLaterLoadsExistingKeys) {
  tg::v1::ApiKey created = Create(*replica_, "preexisting", ToMicros(clock_.Now() + 1h));
  auto late = NewReplica();
  tg::v1::VerifyKeyResponse v;
  ASSERT_TRUE(Verify(*late, created.key(), kGateway, &v).ok());
  EXPECT_EQ(v.key_id(), created.id());
  EXPECT_TRUE(v.has_expires_at());
}

// ---- the real GatewayDirectory against an in-process ConfigService --------

// tg-config knowing one gateway, kGateway.
tg::v1::ConfigSnapshot OneGateway() {
  tg::v1::ConfigSnapshot snapshot;
  snapshot.add_gateways()->set_id(kGateway);
  return snapshot;
}

TEST(ConfigGatewayDirectoryTest, MapsConfigAnswers) {
  fakes::FakeConfigService config(OneGateway());
  std::string error;
  auto server = GrpcServer::Start(GrpcServerOptions{.listen = "127.0.0.1:0",
                                                    .health_names = {},
                                                    .tls = tg::testing::TestTls(kConfigIdentity)},
                                  {&config}, &error);
  ASSERT_NE(server, nullptr) << error;
  ConfigGatewayDirectory directory(
      tg::testing::TestChannel(server->port(), kConfigIdentity, kKeyauthIdentity));
  EXPECT_TRUE(directory.Exists(kGateway).ok());
  grpc::Status st = directory.Exists(kOtherGateway);
  EXPECT_EQ(st.error_code(), StatusCode::NOT_FOUND);
  EXPECT_EQ(st.error_message(), "gateway not found");
}

TEST(ConfigGatewayDirectoryTest, UnreachableConfigIsUnavailable) {
  // Bind and release a port so that nothing listens there.
  int port = 0;
  {
    fakes::FakeConfigService config(OneGateway());
    std::string error;
    auto server = GrpcServer::Start(GrpcServerOptions{.listen = "127.0.0.1:0",
                                                      .health_names = {},
                                                      .tls = tg::testing::TestTls(kConfigIdentity)},
                                    {&config}, &error);
    ASSERT_NE(server, nullptr) << error;
    port = server->port();
  }
  ConfigGatewayDirectory directory(
      tg::testing::TestChannel(port, kConfigIdentity, kKeyauthIdentity), 300ms);
  auto start = std::chrono::steady_clock::now();
  grpc::Status st = directory.Exists(kGateway);
  EXPECT_EQ(st.error_code(), StatusCode::UNAVAILABLE);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
}

// VerifyKey's min_revision: a replica answers only from a key state at least
// that new (catching up first), else UNAVAILABLE; a revision drawn by another
// topic's write (tg-config shares the sequence) is reachable too.
TEST_F(KeyAuthIntegrationTest, VerifyHonoursMinRevision) {
  auto other = NewReplica();
  tg::v1::ApiKey created = Create(*replica_, "min-rev");
  int64_t deleted_rev = 0;
  ASSERT_TRUE(Delete(*replica_, kGateway, created.id(), &deleted_rev).ok());

  auto verify = [&](Replica& r, int64_t min_revision, tg::v1::VerifyKeyResponse* out) {
    grpc::ClientContext ctx;
    tg::v1::VerifyKeyRequest req;
    req.set_key(created.key());
    req.set_min_revision(min_revision);
    return r.stub().VerifyKey(&ctx, req, out);
  };
  tg::v1::VerifyKeyResponse resp;
  // Whatever the other replica's feed has done, the revocation is applied
  // before it answers.
  EXPECT_EQ(verify(*other, deleted_rev, &resp).error_code(), StatusCode::UNAUTHENTICATED);

  tg::v1::ApiKey live = Create(*replica_, "min-rev-live");
  int64_t config_rev = 0;
  {
    pqxx::connection c(*dsn_);
    pqxx::work tx(c);
    pg::LockWrites(tx);
    config_rev = pg::AppendChange(tx, pg::Change{"config", "gateway", "x", "", true, ""});
    tx.commit();
  }
  grpc::ClientContext ctx;
  tg::v1::VerifyKeyRequest req;
  req.set_key(live.key());
  req.set_min_revision(config_rev);
  ASSERT_TRUE(other->stub().VerifyKey(&ctx, req, &resp).ok());
  EXPECT_GE(resp.revision(), config_rev);

  grpc::ClientContext ahead;
  req.set_min_revision(config_rev + 1000);
  EXPECT_EQ(other->stub().VerifyKey(&ahead, req, &resp).error_code(), StatusCode::UNAVAILABLE);
}

// A write whose deadline passes while it waits for the write lock rolls
// back: nothing commits once the lock is free.
TEST_F(KeyAuthIntegrationTest, CreateKeyPastItsDeadlineNeverCommits) {
  pqxx::connection blocker(*dsn_);
  auto lock = std::make_unique<pqxx::work>(blocker);
  pg::LockWrites(*lock);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + 500ms);
  tg::v1::CreateKeyRequest req;
  req.set_gateway_id(kGateway);
  req.mutable_key()->set_name("never-committed");
  tg::v1::KeyResult resp;
  EXPECT_EQ(replica_->stub().CreateKey(&ctx, req, &resp).error_code(),
            StatusCode::DEADLINE_EXCEEDED);
  std::this_thread::sleep_for(700ms);
  lock->commit();
  lock.reset();
  std::this_thread::sleep_for(300ms);
  pqxx::connection c(*dsn_);
  pqxx::read_transaction tx(c);
  EXPECT_EQ(
      tx.exec("SELECT count(*) FROM api_keys WHERE name = 'never-committed'")[0][0].as<int64_t>(),
      0);
}

}  // namespace
}  // namespace tg::keyauth
