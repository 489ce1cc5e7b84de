// tg-config against a real PostgreSQL: the service runs in-process on a real
// gRPC server and is called through real stubs.
#include <google/protobuf/util/message_differencer.h>
#include <google/protobuf/util/time_util.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <future>
#include <set>
#include <thread>

#include "test_db.h"
#include "test_tls.h"
#include "tg/common/config_watcher.h"
#include "tg/common/grpc_server.h"
#include "tg/common/json_util.h"
#include "tg/common/pg.h"
#include "tg/common/plugin_settings.h"
#include "tg/common/worker_pool.h"
#include "tg/config/config_feed.h"
#include "tg/config/config_service.h"
#include "tg/config/config_store.h"
#include "tg/config/snapshot_parts.h"
#include "tg/v1/config.grpc.pb.h"

namespace tg::config {
namespace {

using grpc::StatusCode;
using std::chrono::milliseconds;

const std::string kSecretKey(32, 'K');

// One tg-config replica: what main.cc wires, on port 0.
struct Replica {
  explicit Replica(const std::string& dsn,
                   ConfigServiceOptions options = {.heartbeat = std::chrono::seconds(1)})
      : pool({.dsn = dsn, .size = 2}),
        store(pool, crypto::SecretBox::FromKey(kSecretKey).value(),
              [] {
                return google::protobuf::util::TimeUtil::MicrosecondsToTimestamp(
                    std::chrono::duration_cast<std::chrono::microseconds>(
                        std::chrono::system_clock::now().time_since_epoch())
                        .count());
              }),
        feed(store, dsn, {}),
        workers(2),
        service(store, feed, workers, options) {
    auto conn = pg::ConnectWithRetry(dsn, std::chrono::seconds(5));
    pg::ApplyMigrations(*conn, "config", ConfigStore::Migrations());
    EXPECT_TRUE(feed.Start().ok());
    std::string error;
    server = GrpcServer::Start(
        {.listen = "127.0.0.1:0", .health_names = {}, .tls = tg::testing::TestTls(kConfigIdentity)},
        {&service}, &error);
    EXPECT_NE(server, nullptr) << error;
    stub =
        tg::v1::ConfigService::NewStub(tg::testing::TestChannel(server->port(), kConfigIdentity));
  }
  ~Replica() {
    feed.Close();
    server->Shutdown();
    feed.Stop();
  }

  pg::Pool pool;
  ConfigStore store;
  ConfigFeed feed;
  WorkerPool workers;
  ConfigServiceImpl service;
  std::unique_ptr<GrpcServer> server;
  std::unique_ptr<tg::v1::ConfigService::Stub> stub;
};

template <typename Req, typename Resp, typename Method>
grpc::Status Call(Replica& r, Method method, const Req& req, Resp* resp) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  return ((*r.stub).*method)(&ctx, req, resp);
}

template <typename T>
T FromJson(const std::string& json) {
  T msg;
  std::string err;
  EXPECT_TRUE(json::ParseProto(json, &msg, &err)) << err;
  return msg;
}

class ConfigIT : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!testing::TestDatabase::Available()) GTEST_SKIP() << "TG_TEST_PG_DSN not set";
    db_ = std::make_unique<testing::TestDatabase>("config_it");
    a_ = std::make_unique<Replica>(db_->dsn());
  }
  void TearDown() override {
    b_.reset();
    a_.reset();
    db_.reset();
  }

  std::string CreateGateway(Replica& r, const std::string& name, const std::string& sub = "") {
    tg::v1::CreateGatewayRequest req;
    req.mutable_gateway()->set_name(name);
    req.mutable_gateway()->set_subdomain(sub);
    tg::v1::GatewayResult res;
    auto st = Call(r, &tg::v1::ConfigService::Stub::CreateGateway, req, &res);
    EXPECT_TRUE(st.ok()) << st.error_message();
    return res.gateway().id();
  }

  tg::v1::UpstreamResult CreateUpstream(const std::string& gw) {
    tg::v1::CreateUpstreamRequest req;
    *req.mutable_upstream() = FromJson<tg::v1::Upstream>(R"({
      "name": "ai-providers-upstream", "algorithm": "round-robin",
      "targets": [
        {"path": "/v1/chat/completions", "provider": "openai", "weight": 50,
         "default_model": "gpt-4o-mini", "models": ["gpt-4", "gpt-4o-mini"],
         "credentials": {"api_key": "sk-proj-abcdefghijklmnop1234"}},
        {"path": "/v1/messages", "provider": "anthropic", "weight": 50,
         "default_model": "claude-3-sonnet", "models": ["claude-3-sonnet"],
         "headers": {"anthropic-version": "2023-06-01"},
         "credentials": {"header_name": "x-api-key", "header_value": "your-anthropic-key"}}],
      "health_checks": {"passive": true, "threshold": 3, "interval": 60}})");
    req.mutable_upstream()->set_gateway_id(gw);
    tg::v1::UpstreamResult res;
    auto st = Call(*a_, &tg::v1::ConfigService::Stub::CreateUpstream, req, &res);
    EXPECT_TRUE(st.ok()) << st.error_message();
    return res;
  }

  std::unique_ptr<testing::TestDatabase> db_;
  std::unique_ptr<Replica> a_;
  std::unique_ptr<Replica> b_;
};

TEST_F(ConfigIT, GatewayCrudAndStatusCodes) {
  auto id = CreateGateway(*a_, "multi-provider-gateway", "your-subdomain");
  ASSERT_FALSE(id.empty());

  tg::v1::GetGatewayRequest get;
  get.set_id(id);
  tg::v1::GatewayResult got;
  ASSERT_TRUE(Call(*a_, &tg::v1::ConfigService::Stub::GetGateway, get, &got).ok());
  EXPECT_EQ(got.gateway().name(), "multi-provider-gateway");
  EXPECT_TRUE(got.gateway().has_created_at());

  tg::v1::CreateGatewayRequest dup;
  dup.mutable_gateway()->set_name("other");
  dup.mutable_gateway()->set_subdomain("your-subdomain");
  tg::v1::GatewayResult res;
  EXPECT_EQ(Call(*a_, &tg::v1::ConfigService::Stub::CreateGateway, dup, &res).error_code(),
            StatusCode::ALREADY_EXISTS);

  tg::v1::CreateGatewayRequest nameless;
  auto st = Call(*a_, &tg::v1::ConfigService::Stub::CreateGateway, nameless, &res);
  EXPECT_EQ(st.error_code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(st.error_message(), "name is required");

  get.set_id("00000000-0000-4000-8000-000000000000");
  EXPECT_EQ(Call(*a_, &tg::v1::ConfigService::Stub::GetGateway, get, &got).error_code(),
            StatusCode::NOT_FOUND);
  get.set_id("'; DROP TABLE gateways; --");
  EXPECT_EQ(Call(*a_, &tg::v1::ConfigService::Stub::GetGateway, get, &got).error_code(),
            StatusCode::NOT_FOUND);

  tg::v1::UpdateGatewayRequest upd;
  upd.mutable_gateway()->set_id(id);
  upd.mutable_gateway()->set_name("renamed");
  ASSERT_TRUE(Call(*a_, &tg::v1::ConfigService::Stub::UpdateGateway, upd, &res).ok());
  EXPECT_EQ(res.gateway().name(), "renamed");
  EXPECT_EQ(res.gateway().created_at().seconds(), got.gateway().created_at().seconds());
  EXPECT_EQ(res.gateway().created_at().nanos(), got.gateway().created_at().nanos());

  tg::v1::ListGatewaysResponse list;
  ASSERT_TRUE(
      Call(*a_, &tg::v1::ConfigService::Stub::ListGateways, tg::v1::ListGatewaysRequest(), &list)
          .ok());
  ASSERT_EQ(list.gateways_size(), 1);

  tg::v1::DeleteGatewayRequest del;
  del.set_id(id);
  tg::v1::DeleteResult dres;
  ASSERT_TRUE(Call(*a_, &tg::v1::ConfigService::Stub::DeleteGateway, del, &dres).ok());
  EXPECT_GT(dres.revision(), res.revision());
  EXPECT_EQ(Call(*a_, &tg::v1::ConfigService::Stub::DeleteGateway, del, &dres).error_code(),
            StatusCode::NOT_FOUND);
}

TEST_F(ConfigIT, CredentialsAreEncryptedAtRestMaskedInAnswersAndKeptOnMaskedUpdate) {
  auto gw = CreateGateway(*a_, "gw");
  auto created = CreateUpstream(gw);
  const auto& u = created.upstream();
  EXPECT_EQ(u.targets(0).credentials().api_key(), "****1234");
  EXPECT_EQ(u.targets(1).credentials().header_value(), "****-key");  // 18 characters
  EXPECT_EQ(u.targets(1).credentials().header_name(), "x-api-key");

  pqxx::connection c(db_->dsn());
  pqxx::read_transaction tx(c);
  std::string doc =
      tx.exec_params("SELECT doc FROM upstreams WHERE id = $1", u.id())[0][0].as<std::string>();
  EXPECT_EQ(doc.find("sk-proj-abcdefghijklmnop1234"), std::string::npos);
  EXPECT_EQ(doc.find("your-anthropic-key"), std::string::npos);
  EXPECT_NE(doc.find("enc:v1:"), std::string::npos);
  std::string log = tx.exec("SELECT string_agg(doc, '') FROM change_log")[0][0].as<std::string>();
  EXPECT_EQ(log.find("sk-proj-abcdefghijklmnop1234"), std::string::npos);

  // GET shows the same masks as the create answer (opened, then masked).
  tg::v1::GetUpstreamRequest get;
  get.set_gateway_id(gw);
  get.set_id(u.id());
  tg::v1::UpstreamResult got;
  ASSERT_TRUE(Call(*a_, &tg::v1::ConfigService::Stub::GetUpstream, get, &got).ok());
  EXPECT_EQ(got.upstream().targets(0).credentials().api_key(), "****1234");
  EXPECT_EQ(got.upstream().targets(1).credentials().header_value(), "****-key");

  // PUT back exactly what was returned, with one weight changed.
  tg::v1::UpdateUpstreamRequest upd;
  *upd.mutable_upstream() = got.upstream();
  upd.mutable_upstream()->mutable_targets(0)->set_weight(70);
  tg::v1::UpstreamResult res;
  ASSERT_TRUE(Call(*a_, &tg::v1::ConfigService::Stub::UpdateUpstream, upd, &res).ok());
  EXPECT_EQ(res.upstream().targets(0).weight(), 70);
  EXPECT_EQ(res.upstream().targets(0).id(), u.targets(0).id());

  // The adapter's view (include_credentials) still has the original secrets.
  grpc::ClientContext ctx;
  tg::v1::WatchRequest wreq;
  wreq.set_include_credentials(true);
  auto adapter = tg::v1::ConfigService::NewStub(
      testing::TestChannel(a_->server->port(), kConfigIdentity, kAdapterIdentity));
  auto reader = adapter->Watch(&ctx, wreq);
  tg::v1::WatchEvent ev;
  ASSERT_TRUE(reader->Read(&ev));
  ASSERT_TRUE(ev.has_snapshot());
  ASSERT_EQ(ev.snapshot().upstreams_size(), 1);
  EXPECT_EQ(ev.snapshot().upstreams(0).targets(0).credentials().api_key(),
            "sk-proj-abcdefghijklmnop1234");
  EXPECT_EQ(ev.snapshot().upstreams(0).targets(1).credentials().header_value(),
            "your-anthropic-key");
  ctx.TryCancel();
}

TEST_F(ConfigIT, ReferencesAreEnforced) {
  auto gw = CreateGateway(*a_, "gw");
  auto up = CreateUpstream(gw).upstream();

  tg::v1::CreateServiceRequest sreq;
  *sreq.mutable_service() = FromJson<tg::v1::Service>(R"({"name": "ai-chat-service",
      "description": "Load balanced AI chat completion service", "type": "upstream",
      "tags": ["ai", "chat"]})");
  sreq.mutable_service()->set_gateway_id(gw);
  sreq.mutable_service()->set_upstream_id("00000000-0000-4000-8000-000000000000");
  tg::v1::ServiceResult sres;
  EXPECT_EQ(Call(*a_, &tg::v1::ConfigService::Stub::CreateService, sreq, &sres).error_code(),
            StatusCode::INVALID_ARGUMENT);
  sreq.mutable_service()->set_upstream_id(up.id());
  ASSERT_TRUE(Call(*a_, &tg::v1::ConfigService::Stub::CreateService, sreq, &sres).ok());

  tg::v1::CreateRuleRequest rreq;
  *rreq.mutable_rule() = FromJson<tg::v1::Rule>(
      R"({"path": "/v1", "methods": ["POST"], "strip_path": false, "active": true})");
  rreq.mutable_rule()->set_gateway_id(gw);
  rreq.mutable_rule()->set_service_id(sres.service().id());
  tg::v1::RuleResult rres;
  ASSERT_TRUE(Call(*a_, &tg::v1::ConfigService::Stub::CreateRule, rreq, &rres).ok());

  tg::v1::DeleteResult dres;
  tg::v1::DeleteUpstreamRequest du;
  du.set_gateway_id(gw);
  du.set_id(up.id());
  auto st = Call(*a_, &tg::v1::ConfigService::Stub::DeleteUpstream, du, &dres);
  EXPECT_EQ(st.error_code(), StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(st.error_message().find(sres.service().id()), std::string::npos);

  tg::v1::DeleteServiceRequest ds;
  ds.set_gateway_id(gw);
  ds.set_id(sres.service().id());
  EXPECT_EQ(Call(*a_, &tg::v1::ConfigService::Stub::DeleteService, ds, &dres).error_code(),
            StatusCode::FAILED_PRECONDITION);

  // Another gateway cannot see (or use) this gateway's resources.
  auto other = CreateGateway(*a_, "other");
  du.set_gateway_id(other);
  EXPECT_EQ(Call(*a_, &tg::v1::ConfigService::Stub::DeleteUpstream, du, &dres).error_code(),
            StatusCode::NOT_FOUND);

  // In dependency order everything goes.
  tg::v1::DeleteRuleRequest dr;
  dr.set_gateway_id(gw);
  dr.set_id(rres.rule().id());
  ASSERT_TRUE(Call(*a_, &tg::v1::ConfigService::Stub::DeleteRule, dr, &dres).ok());
  ASSERT_TRUE(Call(*a_, &tg::v1::ConfigService::Stub::DeleteService, ds, &dres).ok());
  du.set_gateway_id(gw);
  ASSERT_TRUE(Call(*a_, &tg::v1::ConfigService::Stub::DeleteUpstream, du, &dres).ok());
}

TEST_F(ConfigIT, WatchSendsSnapshotThenChangesAndResumesFromARevision) {
  auto gw = CreateGateway(*a_, "gw");
  grpc::ClientContext ctx;
  auto reader = a_->stub->Watch(&ctx, tg::v1::WatchRequest());
  tg::v1::WatchEvent ev;
  ASSERT_TRUE(reader->Read(&ev));
  ASSERT_TRUE(ev.has_snapshot());
  ASSERT_EQ(ev.snapshot().gateways_size(), 1);
  int64_t snap_rev = ev.revision();

  auto up = CreateUpstream(gw);
  ASSERT_TRUE(reader->Read(&ev));
  ASSERT_TRUE(ev.has_change()) << ev.DebugString();
  EXPECT_EQ(ev.revision(), up.revision());
  EXPECT_EQ(ev.change().upstream().id(), up.upstream().id());
  EXPECT_EQ(ev.change().upstream().targets(0).credentials().api_key(), "****1234")
      << "without include_credentials secrets are masked";
  ctx.TryCancel();

  // Resuming from the snapshot's revision replays only what came after it.
  grpc::ClientContext ctx2;
  tg::v1::WatchRequest resume;
  resume.set_from_revision(snap_rev);
  auto reader2 = a_->stub->Watch(&ctx2, resume);
  ASSERT_TRUE(reader2->Read(&ev));
  ASSERT_TRUE(ev.has_change()) << ev.DebugString();
  EXPECT_EQ(ev.revision(), up.revision());
  // Nothing new: the next event is a heartbeat at the same revision.
  ASSERT_TRUE(reader2->Read(&ev));
  EXPECT_TRUE(ev.heartbeat());
  EXPECT_EQ(ev.revision(), up.revision());
  ctx2.TryCancel();
}

// TrustGate's plugins (a gateway's required_plugins, a rule's plugin_chain)
// and the targets' quotas are stored as written, shown by every read, refused
// with the field's path when invalid, and carried by the Watch feed.
TEST_F(ConfigIT, PluginsAndTargetQuotasRoundTripAndReachTheWatch) {
  const std::string gateway_plugins = R"([
    {"name": "rate_limiter", "enabled": true, "stage": "pre_request", "priority": 1,
     "level": "gateway", "id": "3f1c2e8a-0000-4000-8000-000000000001", "parallel": false,
     "settings": {"limits": {"global": {"limit": 1000, "window": "1m"},
                             "per_ip": {"limit": 60, "window": "1m"},
                             "per_user": {"limit": 100, "window": "1m"}},
                  "actions": {"type": "reject", "retry_after": "60"}}},
    {"name": "token_rate_limiter", "enabled": false,
     "settings": {"tokens_per_minute": 10000, "requests_per_minute": 60, "bucket_size": 20000,
                  "tokens_per_request": 4000}}])";
  // Only the plugins of an entity. Compared as messages: settings are a
  // google.protobuf.Struct, whose keys print in no particular order.
  auto gateway_plugins_of = [](const tg::v1::Gateway& g) {
    tg::v1::Gateway only;
    *only.mutable_required_plugins() = g.required_plugins();
    return only;
  };
  auto rule_plugins_of = [](const tg::v1::Rule& r) {
    tg::v1::Rule only;
    *only.mutable_plugin_chain() = r.plugin_chain();
    return only;
  };
  auto same = [](const google::protobuf::Message& a, const google::protobuf::Message& b) {
    return google::protobuf::util::MessageDifferencer::Equals(a, b)
               ? ::testing::AssertionSuccess()
               : ::testing::AssertionFailure() << json::PrintProto(a) << "\n  vs\n"
                                               << json::PrintProto(b);
  };

  tg::v1::CreateGatewayRequest greq;
  *greq.mutable_gateway() = FromJson<tg::v1::Gateway>(
      R"({"name": "limited", "required_plugins": )" + gateway_plugins + "}");
  const tg::v1::Gateway written = gateway_plugins_of(greq.gateway());
  ASSERT_EQ(written.required_plugins_size(), 2);
  const auto& actions =
      written.required_plugins(0).settings().fields().at("actions").struct_value().fields();
  EXPECT_EQ(actions.at("retry_after").string_value(), "60");  // a string stays a string
  tg::v1::GatewayResult gres;
  ASSERT_TRUE(Call(*a_, &tg::v1::ConfigService::Stub::CreateGateway, greq, &gres).ok());
  EXPECT_TRUE(same(gateway_plugins_of(gres.gateway()), written));
  const std::string gw = gres.gateway().id();
  tg::v1::GetGatewayRequest gget;
  gget.set_id(gw);
  ASSERT_TRUE(Call(*a_, &tg::v1::ConfigService::Stub::GetGateway, gget, &gres).ok());
  EXPECT_TRUE(same(gateway_plugins_of(gres.gateway()), written));

  // PUT back what GET returned, one priority changed.
  tg::v1::UpdateGatewayRequest gupd;
  *gupd.mutable_gateway() = gres.gateway();
  gupd.mutable_gateway()->mutable_required_plugins(1)->set_priority(7);
  ASSERT_TRUE(Call(*a_, &tg::v1::ConfigService::Stub::UpdateGateway, gupd, &gres).ok());
  const tg::v1::Gateway updated = gateway_plugins_of(gupd.gateway());
  EXPECT_TRUE(same(gateway_plugins_of(gres.gateway()), updated));
  ASSERT_TRUE(Call(*a_, &tg::v1::ConfigService::Stub::GetGateway, gget, &gres).ok());
  EXPECT_TRUE(same(gateway_plugins_of(gres.gateway()), updated));

  // An unsupported plugin: INVALID_ARGUMENT naming the field, nothing stored.
  gupd.mutable_gateway()->mutable_required_plugins(1)->set_name("data_masking");
  auto st = Call(*a_, &tg::v1::ConfigService::Stub::UpdateGateway, gupd, &gres);
  EXPECT_EQ(st.error_code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(st.error_message(),
            "required_plugins[1].name: plugin \"data_masking\" is not supported by this gateway "
            "(supported: rate_limiter, token_rate_limiter)");
  ASSERT_TRUE(Call(*a_, &tg::v1::ConfigService::Stub::GetGateway, gget, &gres).ok());
  EXPECT_TRUE(same(gateway_plugins_of(gres.gateway()), updated));

  // Targets' quotas.
  tg::v1::CreateUpstreamRequest ureq;
  *ureq.mutable_upstream() = FromJson<tg::v1::Upstream>(R"({"name": "u", "targets": [
      {"provider": "openai", "requests_per_minute": 500, "tokens_per_minute": 0}]})");
  ureq.mutable_upstream()->set_gateway_id(gw);
  tg::v1::UpstreamResult ures;
  st = Call(*a_, &tg::v1::ConfigService::Stub::CreateUpstream, ureq, &ures);
  EXPECT_EQ(st.error_code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(st.error_message(), "targets[0].tokens_per_minute must be between 1 and 2000000000");
  ureq.mutable_upstream()->mutable_targets(0)->set_tokens_per_minute(2'000'000);
  ASSERT_TRUE(Call(*a_, &tg::v1::ConfigService::Stub::CreateUpstream, ureq, &ures).ok());
  EXPECT_EQ(ures.upstream().targets(0).requests_per_minute(), 500);
  EXPECT_EQ(ures.upstream().targets(0).tokens_per_minute(), 2'000'000);

  tg::v1::CreateServiceRequest sreq;
  sreq.mutable_service()->set_gateway_id(gw);
  sreq.mutable_service()->set_name("s");
  sreq.mutable_service()->set_upstream_id(ures.upstream().id());
  tg::v1::ServiceResult sres;
  ASSERT_TRUE(Call(*a_, &tg::v1::ConfigService::Stub::CreateService, sreq, &sres).ok());

  tg::v1::CreateRuleRequest rreq;
  *rreq.mutable_rule() = FromJson<tg::v1::Rule>(R"({"path": "/v1", "methods": ["POST"],
      "plugin_chain": [
        {"name": "token_rate_limiter", "level": "rule", "stage": "post_response", "priority": 2,
         "settings": {"tokens_per_minute": 5000, "scope": "model"}},
        {"name": "rate_limiter",
         "settings": {"limits": {"per_api_key": {"limit": 10, "window": "30s"}}}}]})");
  rreq.mutable_rule()->set_gateway_id(gw);
  rreq.mutable_rule()->set_service_id(sres.service().id());
  const tg::v1::Rule chain = rule_plugins_of(rreq.rule());
  tg::v1::RuleResult rres;
  ASSERT_TRUE(Call(*a_, &tg::v1::ConfigService::Stub::CreateRule, rreq, &rres).ok());
  EXPECT_TRUE(same(rule_plugins_of(rres.rule()), chain));
  tg::v1::GetRuleRequest rget;
  rget.set_gateway_id(gw);
  rget.set_id(rres.rule().id());
  ASSERT_TRUE(Call(*a_, &tg::v1::ConfigService::Stub::GetRule, rget, &rres).ok());
  EXPECT_TRUE(same(rule_plugins_of(rres.rule()), chain));
  // A gateway-level entry in a rule's chain is refused.
  tg::v1::UpdateRuleRequest rupd;
  *rupd.mutable_rule() = rres.rule();
  rupd.mutable_rule()->mutable_plugin_chain(1)->set_level("gateway");
  st = Call(*a_, &tg::v1::ConfigService::Stub::UpdateRule, rupd, &rres);
  EXPECT_EQ(st.error_code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(st.error_message(),
            "plugin_chain[1].level: must be \"rule\" or empty here, not \"gateway\"");

  // The Watch snapshot carries all of it, and a change carries the new chain.
  grpc::ClientContext ctx;
  auto reader = a_->stub->Watch(&ctx, tg::v1::WatchRequest());
  tg::v1::WatchEvent ev;
  ASSERT_TRUE(reader->Read(&ev));
  ASSERT_TRUE(ev.has_snapshot());
  ASSERT_EQ(ev.snapshot().gateways_size(), 1);
  EXPECT_TRUE(same(gateway_plugins_of(ev.snapshot().gateways(0)), updated));
  ASSERT_EQ(ev.snapshot().rules_size(), 1);
  EXPECT_TRUE(same(rule_plugins_of(ev.snapshot().rules(0)), chain));
  ASSERT_EQ(ev.snapshot().upstreams_size(), 1);
  EXPECT_EQ(ev.snapshot().upstreams(0).targets(0).requests_per_minute(), 500);
  EXPECT_EQ(ev.snapshot().upstreams(0).targets(0).tokens_per_minute(), 2'000'000);
  // What the edge runs: the gateway's enabled plugin, then the rule's by priority.
  auto compiled = plugins::CompileChain(&ev.snapshot().gateways(0), &ev.snapshot().rules(0));
  ASSERT_EQ(compiled.size(), 3u);
  EXPECT_EQ(compiled[0].name, "rate_limiter");
  EXPECT_EQ(compiled[1].name, "rate_limiter");
  EXPECT_EQ(compiled[2].name, "token_rate_limiter");

  rupd.mutable_rule()->mutable_plugin_chain(1)->clear_level();
  rupd.mutable_rule()->mutable_plugin_chain(1)->set_enabled(false);
  ASSERT_TRUE(Call(*a_, &tg::v1::ConfigService::Stub::UpdateRule, rupd, &rres).ok());
  ASSERT_TRUE(reader->Read(&ev));
  ASSERT_TRUE(ev.has_change()) << ev.DebugString();
  EXPECT_TRUE(same(rule_plugins_of(ev.change().rule()), rule_plugins_of(rupd.rule())));
  ctx.TryCancel();
}

TEST_F(ConfigIT, AWriteOnOneReplicaReachesAWatchOnAnotherWithinOneSecond) {
  b_ = std::make_unique<Replica>(db_->dsn());
  grpc::ClientContext ctx;
  auto reader = b_->stub->Watch(&ctx, tg::v1::WatchRequest());
  tg::v1::WatchEvent ev;
  ASSERT_TRUE(reader->Read(&ev));
  ASSERT_TRUE(ev.has_snapshot());

  auto start = std::chrono::steady_clock::now();
  auto id = CreateGateway(*a_, "written-on-a");
  ASSERT_TRUE(reader->Read(&ev));
  auto elapsed = std::chrono::steady_clock::now() - start;
  ASSERT_TRUE(ev.has_change());
  EXPECT_EQ(ev.change().gateway().id(), id);
  EXPECT_LT(elapsed, milliseconds(1000));
  ctx.TryCancel();
}

TEST_F(ConfigIT, ConcurrentMigrationsOnAFreshDatabaseAreSafe) {
  testing::TestDatabase fresh("config_mig");
  auto migrate = [&] {
    auto conn = pg::ConnectWithRetry(fresh.dsn(), std::chrono::seconds(5));
    pg::ApplyMigrations(*conn, "config", ConfigStore::Migrations());
  };
  auto f1 = std::async(std::launch::async, migrate);
  auto f2 = std::async(std::launch::async, migrate);
  EXPECT_NO_THROW(f1.get());
  EXPECT_NO_THROW(f2.get());
  pqxx::connection c(fresh.dsn());
  pqxx::read_transaction tx(c);
  EXPECT_EQ(
      tx.exec("SELECT count(*) FROM schema_migrations WHERE component = 'config'")[0][0].as<int>(),
      3);
}

TEST_F(ConfigIT, DeletingAGatewayRemovesItsChildrenFromTheFeed) {
  auto gw = CreateGateway(*a_, "gw");
  CreateUpstream(gw);
  tg::v1::DeleteGatewayRequest del;
  del.set_id(gw);
  tg::v1::DeleteResult dres;
  ASSERT_TRUE(Call(*a_, &tg::v1::ConfigService::Stub::DeleteGateway, del, &dres).ok());
  a_->feed.PollOnce();
  tg::v1::ConfigSnapshot snap;
  int64_t rev = 0;
  a_->feed.Snapshot(&snap, &rev);
  EXPECT_EQ(rev, dres.revision());
  EXPECT_EQ(snap.gateways_size(), 0);
  EXPECT_EQ(snap.upstreams_size(), 0);
}

// A snapshot larger than one Watch part comes as snapshot_part events (whole
// entities, the last one marked), nothing between them; the changes follow;
// ConfigWatcher gathers the parts and holds the whole configuration.
TEST_F(ConfigIT, ALargeSnapshotComesInPartsAndAWatcherAssemblesThem) {
  b_ = std::make_unique<Replica>(
      db_->dsn(),
      ConfigServiceOptions{.heartbeat = std::chrono::seconds(1), .watch_part_bytes = 600});
  std::vector<std::string> gateways;
  for (int i = 0; i < 6; ++i) gateways.push_back(CreateGateway(*a_, "gw-" + std::to_string(i)));
  for (const auto& gw : gateways) CreateUpstream(gw);
  b_->feed.PollOnce();

  // One message from a replica with the default part size.
  grpc::ClientContext whole_ctx;
  auto whole_reader = a_->stub->Watch(&whole_ctx, tg::v1::WatchRequest());
  tg::v1::WatchEvent whole;
  ASSERT_TRUE(whole_reader->Read(&whole));
  ASSERT_TRUE(whole.has_snapshot());
  whole_ctx.TryCancel();

  grpc::ClientContext ctx;
  auto reader = b_->stub->Watch(&ctx, tg::v1::WatchRequest());
  tg::v1::ConfigSnapshot gathered;
  tg::v1::WatchEvent ev;
  int parts = 0;
  int64_t rev = 0;
  for (;;) {
    ASSERT_TRUE(reader->Read(&ev));
    ASSERT_TRUE(ev.has_snapshot_part()) << "nothing between the parts: " << ev.DebugString();
    EXPECT_LE(ev.ByteSizeLong(), 600u + 1024u) << "about one part's size each";
    if (parts == 0) rev = ev.revision();
    EXPECT_EQ(ev.revision(), rev);
    ++parts;
    gathered.MergeFrom(ev.snapshot_part().entities());
    if (ev.snapshot_part().last()) break;
  }
  EXPECT_GT(parts, 3);
  EXPECT_EQ(rev, whole.revision());
  // The parts concatenate to the snapshot (each replica may order it its own way).
  auto entities = [](const tg::v1::ConfigSnapshot& s) {
    std::multiset<std::string> out;
    for (const auto& g : s.gateways()) out.insert("g" + g.SerializeAsString());
    for (const auto& u : s.upstreams()) out.insert("u" + u.SerializeAsString());
    for (const auto& v : s.services()) out.insert("s" + v.SerializeAsString());
    for (const auto& r : s.rules()) out.insert("r" + r.SerializeAsString());
    return out;
  };
  EXPECT_EQ(entities(gathered), entities(whole.snapshot()));
  EXPECT_EQ(gathered.upstreams_size(), 6);
  auto up = CreateUpstream(gateways[0]);
  ASSERT_TRUE(reader->Read(&ev));
  ASSERT_TRUE(ev.has_change()) << ev.DebugString();
  EXPECT_EQ(ev.revision(), up.revision());
  ctx.TryCancel();

  // ConfigWatcher: the whole configuration, then resumes without a snapshot.
  ConfigWatcher watcher(testing::TestChannel(b_->server->port(), kConfigIdentity));
  watcher.Start();
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!watcher.connected() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(10));
  }
  ASSERT_TRUE(watcher.connected());
  ASSERT_TRUE(watcher.health().loaded);
  b_->feed.PollOnce();
  auto snap = watcher.snapshot();
  for (const auto& gw : gateways) EXPECT_NE(snap->FindGateway(gw), nullptr) << gw;
  EXPECT_EQ(snap->upstreams().size(), 7u);
  EXPECT_NE(snap->FindUpstream(up.upstream().id()), nullptr);
  watcher.Stop();
}

TEST(SnapshotParts, SplitKeepsEveryEntityInOrderAndMarksTheLast) {
  tg::v1::ConfigSnapshot snap;
  for (int i = 0; i < 50; ++i) {
    snap.add_gateways()->set_name("gateway-" + std::to_string(i));
    snap.add_rules()->set_path("/rule-" + std::to_string(i));
  }
  snap.add_services()->set_description(std::string(5000, 'd'));  // larger than a part
  const std::string original = snap.SerializeAsString();
  auto parts = SplitSnapshot(tg::v1::ConfigSnapshot(snap), 300);
  ASSERT_GT(parts.size(), 5u);
  tg::v1::ConfigSnapshot joined;
  for (size_t i = 0; i < parts.size(); ++i) {
    EXPECT_EQ(parts[i].last(), i + 1 == parts.size());
    EXPECT_GT(parts[i].entities().ByteSizeLong(), 0u) << "no empty part";
    if (parts[i].entities().services_size() == 0) {
      EXPECT_LE(parts[i].entities().ByteSizeLong(), 300u);
    }
    joined.MergeFrom(parts[i].entities());
  }
  EXPECT_EQ(joined.SerializeAsString(), original);
  auto empty = SplitSnapshot(tg::v1::ConfigSnapshot(), 300);
  ASSERT_EQ(empty.size(), 1u);
  EXPECT_TRUE(empty[0].last());
}

}  // namespace
}  // namespace tg::config
