// Internal gRPC between the services, attacked from the network: the stack as
// processes (mutual TLS, each with its own certificate), then every kind of
// caller the identity matrix names or refuses (docs/OPERATIONS.md, "Internal
// identities"). Before internal TLS, a plaintext client without any
// credential read every provider secret through Watch and minted keys.
#include <grpcpp/generic/generic_stub.h>
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <cstdlib>
#include <string>

#include "grpc/health/v1/health.grpc.pb.h"
#include "process.h"
#include "stack.h"
#include "test_db.h"
#include "test_tls.h"
#include "tg/common/cert_authority.h"
#include "tg/common/grpc_channel.h"
#include "tg/common/health_client.h"
#include "tg/v1/balancer.grpc.pb.h"
#include "tg/v1/config.grpc.pb.h"
#include "tg/v1/keyauth.grpc.pb.h"

namespace tg::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr char kSecret[] = "sk-internal-auth-secret-0123456789";

std::string JsonId(const std::string& body) {
  rapidjson::Document d;
  d.Parse(body.c_str());
  return d.IsObject() && d.HasMember("id") && d["id"].IsString() ? d["id"].GetString() : "";
}

void Deadline(grpc::ClientContext* ctx, milliseconds timeout = milliseconds(3000)) {
  ctx->set_deadline(std::chrono::system_clock::now() + timeout);
}

// The first event of a Watch: its status when the stream ends before one.
struct WatchResult {
  grpc::Status status;
  tg::v1::WatchEvent event;
  bool got_event = false;
};
WatchResult FirstWatchEvent(const std::shared_ptr<grpc::Channel>& channel, bool credentials) {
  auto stub = tg::v1::ConfigService::NewStub(channel);
  grpc::ClientContext ctx;
  Deadline(&ctx);
  tg::v1::WatchRequest req;
  req.set_include_credentials(credentials);
  auto reader = stub->Watch(&ctx, req);
  WatchResult out;
  out.got_event = reader->Read(&out.event);
  if (out.got_event) ctx.TryCancel();  // a live stream: end it (status CANCELLED)
  out.status = reader->Finish();
  return out;
}

grpc::Status ListGateways(const std::shared_ptr<grpc::Channel>& channel) {
  grpc::ClientContext ctx;
  Deadline(&ctx);
  tg::v1::ListGatewaysResponse resp;
  return tg::v1::ConfigService::NewStub(channel)->ListGateways(&ctx, {}, &resp);
}

// Credentials whose certificate comes from a CA the services do not trust.
InternalTls ForeignTls(std::string_view identity) {
  std::string error;
  auto ca = certs::CertAuthority::Create("someone-else", 1, &error);
  EXPECT_TRUE(ca) << error;
  auto issued = ca->Issue(identity, 1, &error);
  EXPECT_TRUE(issued) << error;
  InternalTls tls;
  tls.ca_pem = TestTls(identity).ca_pem;  // it trusts our CA, we do not trust it
  tls.cert_pem = issued->cert;
  tls.key_pem = issued->key;
  tls.identity = std::string(identity);
  return tls;
}

// One call of grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo
// asking list_services, as raw protobuf (the reflection protos are not part
// of this tree): the request is field 7 (list_services) = "". The answer's
// bytes hold the service names. Status and answer.
std::pair<grpc::Status, std::string> ListServicesByReflection(
    const std::shared_ptr<grpc::Channel>& channel) {
  grpc::GenericStub stub(channel);
  grpc::CompletionQueue cq;
  grpc::ClientContext ctx;
  Deadline(&ctx);
  auto call =
      stub.PrepareCall(&ctx, "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", &cq);
  void* tag = nullptr;
  bool ok = false;
  auto step = [&](int expected) {
    return cq.Next(&tag, &ok) && tag == reinterpret_cast<void*>(expected) && ok;
  };
  call->StartCall(reinterpret_cast<void*>(1));
  std::string answer;
  if (step(1)) {
    const char request[] = {0x3a, 0x00};
    grpc::Slice slice(request, sizeof request);
    grpc::ByteBuffer out(&slice, 1);
    call->Write(out, reinterpret_cast<void*>(2));
    if (step(2)) {
      grpc::ByteBuffer in;
      call->Read(&in, reinterpret_cast<void*>(3));
      if (step(3)) {
        grpc::Slice all;
        if (in.TrySingleSlice(&all).ok() || in.DumpToSingleSlice(&all).ok()) {
          answer.assign(reinterpret_cast<const char*>(all.begin()), all.size());
        }
      }
      call->WritesDone(reinterpret_cast<void*>(4));
      cq.Next(&tag, &ok);
    }
  }
  grpc::Status status;
  call->Finish(&status, reinterpret_cast<void*>(5));
  while (cq.Next(&tag, &ok) && tag != reinterpret_cast<void*>(5)) {
  }
  cq.Shutdown();
  while (cq.Next(&tag, &ok)) {
  }
  return {status, answer};
}

class InternalAuthE2E : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!TestDatabase::Available()) return;
    StackOptions options;
    options.adapter = true;
    if (const char* redis = std::getenv("TG_TEST_REDIS_ADDR")) {
      options.balancer = true;
      options.redis_addr = redis;
    }
    stack_ = new Stack("e2e_internal_auth", options);
    if (!stack_->StartAll()) {
      delete stack_;
      stack_ = nullptr;
      return;
    }
    auto gw = stack_->Admin("POST", "/api/v1/gateways", R"({"name": "g", "subdomain": "g"})");
    gateway_ = new std::string(JsonId(gw.body));
    stack_->Admin("POST", "/api/v1/gateways/" + *gateway_ + "/upstreams",
                  R"({"name": "u", "targets": [{"provider": "openai", "host": "127.0.0.1",
                      "port": 9, "protocol": "http", "credentials": {"api_key": ")" +
                      std::string(kSecret) + R"("}}]})");
  }
  static void TearDownTestSuite() {
    delete stack_;
    stack_ = nullptr;
    delete gateway_;
    gateway_ = nullptr;
  }
  void SetUp() override {
    if (!TestDatabase::Available()) GTEST_SKIP() << "TG_TEST_PG_DSN not set";
    ASSERT_NE(stack_, nullptr) << "the stack did not start";
    ASSERT_FALSE(gateway_->empty());
  }

  static std::shared_ptr<grpc::Channel> As(std::string_view service, std::string_view caller) {
    return TestChannel(stack_->grpc_port(std::string(service)), service, caller);
  }
  static std::string Address(std::string_view service) {
    return "127.0.0.1:" + std::to_string(stack_->grpc_port(std::string(service)));
  }

  static Stack* stack_;
  static std::string* gateway_;
};
Stack* InternalAuthE2E::stack_ = nullptr;
std::string* InternalAuthE2E::gateway_ = nullptr;

TEST_F(InternalAuthE2E, WatchWithCredentialsIsForTheAdapterOnly) {
  for (auto caller : {kEdgeIdentity, kBalancerIdentity, kKeyauthIdentity, kOperatorIdentity}) {
    SCOPED_TRACE(std::string(caller));
    auto r = FirstWatchEvent(As(kConfigIdentity, caller), /*credentials=*/true);
    EXPECT_FALSE(r.got_event);
    EXPECT_EQ(r.status.error_code(), grpc::StatusCode::PERMISSION_DENIED)
        << r.status.error_message();
  }
  auto adapter = FirstWatchEvent(As(kConfigIdentity, kAdapterIdentity), true);
  ASSERT_TRUE(adapter.got_event) << adapter.status.error_message();
  EXPECT_NE(adapter.event.DebugString().find(kSecret), std::string::npos);

  // The edge watches too, with credentials masked.
  auto edge = FirstWatchEvent(As(kConfigIdentity, kEdgeIdentity), false);
  ASSERT_TRUE(edge.got_event) << edge.status.error_message();
  EXPECT_EQ(edge.event.DebugString().find(kSecret), std::string::npos);
}

TEST_F(InternalAuthE2E, KeysAreMintedAndDeletedByTheEdgeOnly) {
  tg::v1::CreateKeyRequest create;
  create.set_gateway_id(*gateway_);
  create.mutable_key()->set_name("k");
  tg::v1::DeleteKeyRequest del;
  del.set_gateway_id(*gateway_);
  for (auto caller : {kBalancerIdentity, kOperatorIdentity, kAdapterIdentity, kConfigIdentity}) {
    SCOPED_TRACE(std::string(caller));
    auto stub = tg::v1::KeyAuthService::NewStub(As(kKeyauthIdentity, caller));
    grpc::ClientContext c1;
    Deadline(&c1);
    tg::v1::KeyResult created;
    EXPECT_EQ(stub->CreateKey(&c1, create, &created).error_code(),
              grpc::StatusCode::PERMISSION_DENIED);
    EXPECT_TRUE(created.key().key().empty());
  }
  auto edge = tg::v1::KeyAuthService::NewStub(As(kKeyauthIdentity, kEdgeIdentity));
  grpc::ClientContext c1;
  Deadline(&c1);
  tg::v1::KeyResult created;
  ASSERT_TRUE(edge->CreateKey(&c1, create, &created).ok());
  del.set_id(created.key().id());
  for (auto caller : {kBalancerIdentity, kOperatorIdentity}) {
    SCOPED_TRACE(std::string(caller));
    auto stub = tg::v1::KeyAuthService::NewStub(As(kKeyauthIdentity, caller));
    grpc::ClientContext c2;
    Deadline(&c2);
    tg::v1::DeleteKeyResult deleted;
    EXPECT_EQ(stub->DeleteKey(&c2, del, &deleted).error_code(),
              grpc::StatusCode::PERMISSION_DENIED);
    // VerifyKey would make tg-keyauth an oracle for guessed keys.
    grpc::ClientContext c3;
    Deadline(&c3);
    tg::v1::VerifyKeyRequest verify;
    verify.set_key(created.key().key());
    tg::v1::VerifyKeyResponse verified;
    EXPECT_EQ(stub->VerifyKey(&c3, verify, &verified).error_code(),
              grpc::StatusCode::PERMISSION_DENIED);
  }
  // The operator may read (keys are hashes and masks).
  auto op = tg::v1::KeyAuthService::NewStub(As(kKeyauthIdentity, kOperatorIdentity));
  grpc::ClientContext c4;
  Deadline(&c4);
  tg::v1::ListKeysRequest list;
  list.set_gateway_id(*gateway_);
  tg::v1::ListKeysResponse keys;
  EXPECT_TRUE(op->ListKeys(&c4, list, &keys).ok());
  EXPECT_EQ(keys.keys_size(), 1);

  grpc::ClientContext c5;
  Deadline(&c5);
  tg::v1::DeleteKeyResult deleted;
  EXPECT_TRUE(edge->DeleteKey(&c5, del, &deleted).ok());
}

TEST_F(InternalAuthE2E, ConfigWritesAreForTheEdgeReadsForTheOperatorToo) {
  auto write = [](const std::shared_ptr<grpc::Channel>& channel) {
    grpc::ClientContext ctx;
    Deadline(&ctx);
    tg::v1::CreateGatewayRequest req;
    req.mutable_gateway()->set_name("intruder");
    req.mutable_gateway()->set_subdomain("intruder");
    tg::v1::GatewayResult resp;
    return tg::v1::ConfigService::NewStub(channel)->CreateGateway(&ctx, req, &resp);
  };
  for (auto caller : {kOperatorIdentity, kKeyauthIdentity, kAdapterIdentity, kBalancerIdentity}) {
    SCOPED_TRACE(std::string(caller));
    EXPECT_EQ(write(As(kConfigIdentity, caller)).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  }
  EXPECT_TRUE(ListGateways(As(kConfigIdentity, kOperatorIdentity)).ok());
  EXPECT_EQ(ListGateways(As(kConfigIdentity, kAdapterIdentity)).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  // tg-keyauth asks whether a gateway exists, nothing more.
  grpc::ClientContext ctx;
  Deadline(&ctx);
  tg::v1::GetGatewayRequest get;
  get.set_id(*gateway_);
  tg::v1::GatewayResult got;
  EXPECT_TRUE(tg::v1::ConfigService::NewStub(As(kConfigIdentity, kKeyauthIdentity))
                  ->GetGateway(&ctx, get, &got)
                  .ok());
  EXPECT_EQ(ListGateways(As(kConfigIdentity, kKeyauthIdentity)).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
}

TEST_F(InternalAuthE2E, BalancerPicksAreForTheEdgeHealthForTheOperatorToo) {
  if (stack_->grpc_port("tg-balancer") == 0) GTEST_SKIP() << "TG_TEST_REDIS_ADDR not set";
  auto pick = [](const std::shared_ptr<grpc::Channel>& channel) {
    grpc::ClientContext ctx;
    Deadline(&ctx);
    tg::v1::PickRequest req;
    req.set_upstream_id("nothing");
    tg::v1::PickResponse resp;
    return tg::v1::BalancerService::NewStub(channel)->Pick(&ctx, req, &resp);
  };
  EXPECT_EQ(pick(As(kBalancerIdentity, kOperatorIdentity)).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(pick(As(kBalancerIdentity, kAdapterIdentity)).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  // The edge gets through to the balancer's own answer about the upstream.
  auto st = pick(As(kBalancerIdentity, kEdgeIdentity));
  EXPECT_NE(st.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_NE(st.error_code(), grpc::StatusCode::UNAVAILABLE) << st.error_message();

  grpc::ClientContext ctx;
  Deadline(&ctx);
  tg::v1::GetHealthResponse health;
  EXPECT_NE(tg::v1::BalancerService::NewStub(As(kBalancerIdentity, kOperatorIdentity))
                ->GetHealth(&ctx, {}, &health)
                .error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
}

TEST_F(InternalAuthE2E, WithoutACertificateFromOurCaNothingAnswersNotEvenHealth) {
  for (auto service : {kConfigIdentity, kKeyauthIdentity, kAdapterIdentity}) {
    SCOPED_TRACE(std::string(service));
    const std::string address = Address(service);
    // Plaintext.
    auto plain = grpc::CreateChannel(address, grpc::InsecureChannelCredentials());
    // TLS that trusts our CA but brings no client certificate.
    grpc::SslCredentialsOptions no_cert;
    no_cert.pem_root_certs = TestTls(kOperatorIdentity).ca_pem;
    grpc::ChannelArguments args;
    args.SetSslTargetNameOverride(std::string(service));
    auto anonymous = grpc::CreateCustomChannel(address, grpc::SslCredentials(no_cert), args);
    // A certificate naming tg-edge, from another CA.
    auto foreign = DialInternal(address, service, ForeignTls(kEdgeIdentity));
    for (const auto& channel : {plain, anonymous, foreign}) {
      EXPECT_EQ(ListGateways(channel).error_code(), grpc::StatusCode::UNAVAILABLE);
      EXPECT_NE(CheckHealth(channel, "", milliseconds(2000)), "SERVING");
      EXPECT_FALSE(ListServicesByReflection(channel).first.ok());
    }
    auto watch = FirstWatchEvent(plain, true);
    EXPECT_FALSE(watch.got_event);
  }
  auto plain = tg::v1::KeyAuthService::NewStub(
      grpc::CreateChannel(Address(kKeyauthIdentity), grpc::InsecureChannelCredentials()));
  grpc::ClientContext ctx;
  Deadline(&ctx);
  tg::v1::CreateKeyRequest create;
  create.set_gateway_id(*gateway_);
  create.mutable_key()->set_name("stolen");
  tg::v1::KeyResult created;
  EXPECT_EQ(plain->CreateKey(&ctx, create, &created).error_code(), grpc::StatusCode::UNAVAILABLE);
}

TEST_F(InternalAuthE2E, TheOperatorGetsHealthAndReflection) {
  for (auto service : {kConfigIdentity, kKeyauthIdentity, kAdapterIdentity}) {
    SCOPED_TRACE(std::string(service));
    auto channel = As(service, kOperatorIdentity);
    EXPECT_EQ(CheckHealth(channel, "", milliseconds(2000)), "SERVING");
    auto [status, answer] = ListServicesByReflection(channel);
    EXPECT_TRUE(status.ok()) << status.error_message();
    EXPECT_NE(answer.find("grpc.health.v1.Health"), std::string::npos);
  }
  auto [status, answer] = ListServicesByReflection(As(kConfigIdentity, kOperatorIdentity));
  EXPECT_NE(answer.find("tg.v1.ConfigService"), std::string::npos) << status.error_message();
}

TEST_F(InternalAuthE2E, AServerMustPresentTheIdentityTheClientExpects) {
  // tg-config's port, but the client expects tg-keyauth: the handshake fails
  // (a service holding one certificate cannot stand in for another).
  auto wrong = DialInternal(Address(kConfigIdentity), kKeyauthIdentity, TestTls(kEdgeIdentity));
  EXPECT_EQ(ListGateways(wrong).error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_TRUE(ListGateways(As(kConfigIdentity, kEdgeIdentity)).ok());
}

TEST_F(InternalAuthE2E, MetricsHealthzFollowsTheGrpcServer) {
  for (const char* name : {"tg-config", "tg-keyauth", "tg-adapter"}) {
    auto r =
        Http("GET", "http://127.0.0.1:" + std::to_string(stack_->metrics_port(name)) + "/healthz");
    EXPECT_EQ(r.status, 200) << name << ": " << r.body;
  }
}

// A service without TLS flags refuses to start and says why.
TEST(InternalAuthStartup, AServiceWithoutTlsSettingsRefusesToStart) {
  const std::string dir = ::testing::TempDir();
  Process config("tg-config", BinDir() + "/tg-config",
                 {{"TG_CONFIG_LISTEN", "127.0.0.1:" + std::to_string(FreePort())},
                  {"TG_CONFIG_METRICS_LISTEN", "off"},
                  {"TG_PG_DSN", "host=127.0.0.1 port=1 dbname=none"}},
                 dir + "/tg-config-no-tls.log");
  ASSERT_TRUE(config.Start());
  auto status = config.Wait(seconds(10));
  ASSERT_TRUE(status.has_value()) << "tg-config started without TLS";
  EXPECT_EQ(*status, 2);
  EXPECT_NE(config.LogTail().find("--grpc-tls-dir"), std::string::npos) << config.LogTail();
}

}  // namespace
}  // namespace tg::testing
