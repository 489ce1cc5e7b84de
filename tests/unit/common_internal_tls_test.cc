// Internal identities without PostgreSQL: tg-certs' directory, loading and
// checking credentials, the flags, and AuthorizeCaller behind a real gRPC
// server over mutual TLS (and over plaintext with --grpc-insecure).
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "test_tls.h"
#include "tg/common/cert_authority.h"
#include "tg/common/flags.h"
#include "tg/common/grpc_channel.h"
#include "tg/common/grpc_server.h"
#include "tg/common/health_client.h"
#include "tg/common/internal_authz.h"
#include "tg/common/internal_tls.h"
#include "tg/v1/config.grpc.pb.h"

namespace tg {
namespace {

namespace fs = std::filesystem;

std::string Read(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class CertDirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = (fs::path(::testing::TempDir()) /
            ("tg-certs-" + std::to_string(::getpid()) + "-" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name()))
               .string();
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  bool Ensure(std::vector<std::string> identities = {"tg-edge", "tg-config"}, bool renew = false,
              bool new_ca = false) {
    certs::CertDirOptions options;
    options.dir = dir_;
    options.identities = std::move(identities);
    options.renew = renew;
    options.new_ca = new_ca;
    std::string error;
    bool ok = certs::EnsureCertDir(options, nullptr, &error);
    EXPECT_TRUE(ok) << error;
    return ok;
  }
  std::string dir_;
};

TEST_F(CertDirTest, WritesACaAndOneCertificatePerIdentityWithPrivateKeys) {
  ASSERT_TRUE(Ensure());
  for (const char* f : {"ca.pem", "ca-key.pem", "tg-edge.pem", "tg-edge-key.pem", "tg-config.pem",
                        "tg-config-key.pem"}) {
    EXPECT_TRUE(fs::exists(dir_ + "/" + f)) << f;
  }
  for (const char* key : {"ca-key.pem", "tg-edge-key.pem"}) {
    struct stat st {};
    ASSERT_EQ(::stat((dir_ + "/" + key).c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600) << key;
  }
  std::string error;
  auto edge = LoadInternalTlsDir(dir_, kEdgeIdentity, &error);
  ASSERT_TRUE(edge) << error;
  EXPECT_EQ(edge->identity, "tg-edge");
  auto info = certs::InspectCertificate(edge->cert_pem, &error);
  ASSERT_TRUE(info);
  EXPECT_GT(info->not_after, std::time(nullptr) + 300 * 86400);
}

TEST_F(CertDirTest, RunningAgainKeepsEverythingRenewAndNewCaReplace) {
  ASSERT_TRUE(Ensure());
  const std::string ca = Read(dir_ + "/ca.pem");
  const std::string edge = Read(dir_ + "/tg-edge.pem");
  ASSERT_TRUE(Ensure());
  EXPECT_EQ(Read(dir_ + "/ca.pem"), ca);
  EXPECT_EQ(Read(dir_ + "/tg-edge.pem"), edge);

  // A new identity is added under the same CA.
  ASSERT_TRUE(Ensure({"tg-operator"}));
  EXPECT_EQ(Read(dir_ + "/ca.pem"), ca);
  std::string error;
  EXPECT_TRUE(certs::VerifyIssuedBy(ca, Read(dir_ + "/tg-operator.pem"), &error)) << error;

  ASSERT_TRUE(Ensure({"tg-edge", "tg-config"}, /*renew=*/true));
  EXPECT_EQ(Read(dir_ + "/ca.pem"), ca);
  EXPECT_NE(Read(dir_ + "/tg-edge.pem"), edge);

  ASSERT_TRUE(Ensure({"tg-edge", "tg-config"}, false, /*new_ca=*/true));
  const std::string new_ca = Read(dir_ + "/ca.pem");
  EXPECT_NE(new_ca, ca);
  EXPECT_TRUE(certs::VerifyIssuedBy(new_ca, Read(dir_ + "/tg-edge.pem"), &error)) << error;
  // Certificates of the old CA are not reissued by the run that adds others;
  // the next plain run finds them and reissues them under the new CA.
  EXPECT_FALSE(certs::VerifyIssuedBy(new_ca, Read(dir_ + "/tg-operator.pem"), &error));
  ASSERT_TRUE(Ensure({"tg-operator"}));
  EXPECT_TRUE(certs::VerifyIssuedBy(new_ca, Read(dir_ + "/tg-operator.pem"), &error)) << error;
}

TEST_F(CertDirTest, RefusesBadIdentityNames) {
  std::string error;
  for (const char* bad : {"", "Tg-Edge", "tg_edge", "-tg", "ca", "tg edge", "../x"}) {
    certs::CertDirOptions options;
    options.dir = dir_;
    options.identities = {bad};
    EXPECT_FALSE(certs::EnsureCertDir(options, nullptr, &error)) << bad;
  }
}

TEST_F(CertDirTest, LoadingChecksIdentityKeyAndCa) {
  ASSERT_TRUE(Ensure());
  std::string error;
  // Another identity's certificate.
  EXPECT_FALSE(LoadInternalTls(
      {.ca = dir_ + "/ca.pem", .cert = dir_ + "/tg-edge.pem", .key = dir_ + "/tg-edge-key.pem"},
      kConfigIdentity, &error));
  EXPECT_NE(error.find("certificate of tg-edge, not of tg-config"), std::string::npos) << error;
  // A key that is not the certificate's.
  EXPECT_FALSE(LoadInternalTls(
      {.ca = dir_ + "/ca.pem", .cert = dir_ + "/tg-edge.pem", .key = dir_ + "/tg-config-key.pem"},
      kEdgeIdentity, &error));
  EXPECT_NE(error.find("does not belong"), std::string::npos) << error;
  // A certificate of another CA.
  auto other = certs::CertAuthority::Create("other", 1, &error);
  ASSERT_TRUE(other);
  std::ofstream(dir_ + "/other-ca.pem") << other->pem().cert;
  EXPECT_FALSE(LoadInternalTls({.ca = dir_ + "/other-ca.pem",
                                .cert = dir_ + "/tg-edge.pem",
                                .key = dir_ + "/tg-edge-key.pem"},
                               kEdgeIdentity, &error));
  EXPECT_NE(error.find("does not verify"), std::string::npos) << error;
  // A missing file.
  EXPECT_FALSE(LoadInternalTls({.ca = dir_ + "/nope.pem", .cert = "", .key = ""}, "", &error));
  EXPECT_NE(error.find("nope.pem"), std::string::npos) << error;
}

Flags MakeFlags(std::vector<std::string> args) {
  args.insert(args.begin(), "prog");
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  return Flags(static_cast<int>(argv.size()), argv.data());
}

TEST(InternalTlsFlags, NothingConfiguredIsAClearErrorInsecureMustBeExplicit) {
  // The environment of scripts/test must not leak into this test.
  for (const char* v : {"TG_GRPC_TLS_DIR", "TG_GRPC_TLS_CA", "TG_GRPC_TLS_CERT", "TG_GRPC_TLS_KEY",
                        "TG_GRPC_INSECURE"}) {
    ::unsetenv(v);
  }
  std::string error;
  EXPECT_FALSE(InternalTlsFromFlags(MakeFlags({}), kConfigIdentity, &error));
  EXPECT_NE(error.find("--grpc-tls-dir"), std::string::npos) << error;
  EXPECT_NE(error.find("--grpc-insecure=true"), std::string::npos) << error;

  auto insecure =
      InternalTlsFromFlags(MakeFlags({"--grpc-insecure=true"}), kConfigIdentity, &error);
  ASSERT_TRUE(insecure);
  EXPECT_TRUE(insecure->insecure);
  EXPECT_FALSE(insecure->empty());

  EXPECT_FALSE(InternalTlsFromFlags(
      MakeFlags({"--grpc-insecure=true", "--grpc-tls-dir=" + testing::TestTlsDir()}),
      kConfigIdentity, &error));

  auto from_dir = InternalTlsFromFlags(MakeFlags({"--grpc-tls-dir=" + testing::TestTlsDir()}),
                                       kConfigIdentity, &error);
  ASSERT_TRUE(from_dir) << error;
  EXPECT_EQ(from_dir->identity, "tg-config");
  // An explicit file wins over the directory's.
  auto explicit_cert = InternalTlsFromFlags(
      MakeFlags({"--grpc-tls-dir=" + testing::TestTlsDir(),
                 "--grpc-tls-cert=" + certs::CertFile(testing::TestTlsDir(), "tg-edge"),
                 "--grpc-tls-key=" + certs::KeyFile(testing::TestTlsDir(), "tg-edge")}),
      kConfigIdentity, &error);
  EXPECT_FALSE(explicit_cert);
  EXPECT_NE(error.find("not of tg-config"), std::string::npos) << error;
}

TEST(InternalAuthzMatrix, WhoMayCallWhat) {
  EXPECT_TRUE(InternalRpcAllows(InternalRpc::kConfigWatchCredentials, "tg-adapter"));
  for (const char* id : {"tg-edge", "tg-balancer", "tg-keyauth", "tg-config", "tg-operator", ""}) {
    EXPECT_FALSE(InternalRpcAllows(InternalRpc::kConfigWatchCredentials, id)) << id;
  }
  for (auto rpc : {InternalRpc::kConfigWrite, InternalRpc::kKeyWrite}) {
    EXPECT_TRUE(InternalRpcAllows(rpc, "tg-edge"));
    for (const char* id : {"tg-balancer", "tg-adapter", "tg-keyauth", "tg-config", "tg-operator"}) {
      EXPECT_FALSE(InternalRpcAllows(rpc, id)) << id;
    }
  }
  EXPECT_TRUE(InternalRpcAllows(InternalRpc::kConfigGetGateway, "tg-keyauth"));
  EXPECT_FALSE(InternalRpcAllows(InternalRpc::kConfigRead, "tg-keyauth"));
  EXPECT_TRUE(InternalRpcAllows(InternalRpc::kConfigRead, "tg-operator"));
  EXPECT_TRUE(InternalRpcAllows(InternalRpc::kBalancerHealth, "tg-operator"));
  EXPECT_FALSE(InternalRpcAllows(InternalRpc::kBalancerPick, "tg-operator"));
  EXPECT_FALSE(InternalRpcAllows(InternalRpc::kKeyVerify, "tg-operator"));
  EXPECT_FALSE(InternalRpcAllows(InternalRpc::kAdapterInvoke, "tg-operator"));
  EXPECT_TRUE(InternalRpcAllows(InternalRpc::kAdapterProbe, "tg-balancer"));
  for (const char* id : {"tg-edge", "tg-adapter", "tg-keyauth", "tg-config", "tg-operator"}) {
    EXPECT_FALSE(InternalRpcAllows(InternalRpc::kAdapterProbe, id)) << id;
  }
  // Whole names only: no prefix or list trick.
  EXPECT_FALSE(InternalRpcAllows(InternalRpc::kConfigWrite, "tg-edg"));
  EXPECT_FALSE(InternalRpcAllows(InternalRpc::kConfigWrite, "tg-edge,tg-operator"));
}

// Every method lands here: answers AuthorizeCaller's refusal, or, when
// allowed, ALREADY_EXISTS carrying the caller's identity (a status the test
// can tell apart).
class AuthzProbe final : public grpc::CallbackGenericService {
 public:
  grpc::ServerGenericBidiReactor* CreateReactor(grpc::GenericCallbackServerContext* ctx) override {
    class Done final : public grpc::ServerGenericBidiReactor {
     public:
      explicit Done(grpc::Status s) { Finish(std::move(s)); }
      void OnDone() override { delete this; }
    };
    grpc::Status st = AuthorizeCaller(*ctx, InternalRpc::kConfigWrite);
    if (st.ok()) st = grpc::Status(grpc::StatusCode::ALREADY_EXISTS, "as:" + CallerIdentity(*ctx));
    return new Done(std::move(st));
  }
};

struct ProbeServer {
  explicit ProbeServer(const InternalTls& tls) {
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", MakeServerCredentials(tls), &port);
    builder.RegisterCallbackGenericService(&probe);
    server = builder.BuildAndStart();
  }
  ~ProbeServer() { server->Shutdown(std::chrono::system_clock::now()); }
  AuthzProbe probe;
  std::unique_ptr<grpc::Server> server;
  int port = 0;
};

grpc::Status Call(const std::shared_ptr<grpc::Channel>& channel) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(3));
  tg::v1::GatewayResult resp;
  return tg::v1::ConfigService::NewStub(channel)->CreateGateway(&ctx, {}, &resp);
}

TEST(AuthorizeCaller, IdentityFromTheVerifiedClientCertificate) {
  ProbeServer server(testing::TestTls(kConfigIdentity));
  ASSERT_GT(server.port, 0);
  auto edge = Call(testing::TestChannel(server.port, kConfigIdentity, kEdgeIdentity));
  EXPECT_EQ(edge.error_code(), grpc::StatusCode::ALREADY_EXISTS) << edge.error_message();
  EXPECT_EQ(edge.error_message(), "as:tg-edge");
  auto op = Call(testing::TestChannel(server.port, kConfigIdentity, kOperatorIdentity));
  EXPECT_EQ(op.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_NE(op.error_message().find("tg-operator may not call"), std::string::npos);
  // No client certificate: no connection at all.
  auto plain = grpc::CreateChannel("127.0.0.1:" + std::to_string(server.port),
                                   grpc::InsecureChannelCredentials());
  EXPECT_EQ(Call(plain).error_code(), grpc::StatusCode::UNAVAILABLE);
}

TEST(AuthorizeCaller, AnInsecureServerHasNoIdentitiesAndLetsEveryoneThrough) {
  ProbeServer server(InternalTls::Insecure());
  ASSERT_GT(server.port, 0);
  auto st = Call(DialInternal("127.0.0.1:" + std::to_string(server.port), kConfigIdentity,
                              InternalTls::Insecure()));
  EXPECT_EQ(st.error_code(), grpc::StatusCode::ALREADY_EXISTS) << st.error_message();
  EXPECT_EQ(st.error_message(), "as:");
}

// Keepalive, scaled down (a 200 ms interval; gRPC 1.51 still spaces a
// client's pings at least 1 s apart): a channel left idle for several pings
// stays connected and then serves a call. The same client against a server
// left at gRPC's defaults is sent away with GOAWAY "too_many_pings" after its
// third early ping (about 4 s in): what the first test would see if the
// servers did not take the policy.
constexpr InternalKeepalive kFastPings{std::chrono::milliseconds(200),
                                       std::chrono::milliseconds(1000)};

std::shared_ptr<grpc::Channel> DialWithFastPings(int port) {
  return DialInternal("127.0.0.1:" + std::to_string(port), kConfigIdentity,
                      testing::TestTls(kEdgeIdentity), InternalChannelArguments(kFastPings));
}

// Waits until the channel is READY, then whether it leaves READY within `idle`.
bool LeavesReadyWhileIdle(const std::shared_ptr<grpc::Channel>& channel,
                          std::chrono::milliseconds idle) {
  EXPECT_TRUE(
      channel->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(5)));
  return channel->WaitForStateChange(GRPC_CHANNEL_READY, std::chrono::system_clock::now() + idle);
}

TEST(InternalKeepaliveTest, AnIdleChannelPingsPastTheIntervalAndStaysUsable) {
  GrpcServerOptions options;
  options.tls = testing::TestTls(kConfigIdentity);
  options.keepalive = kFastPings;
  std::string error;
  auto server = GrpcServer::Start(options, {}, &error);
  ASSERT_NE(server, nullptr) << error;
  auto channel = DialWithFastPings(server->port());
  EXPECT_FALSE(LeavesReadyWhileIdle(channel, std::chrono::milliseconds(5500)))
      << "the server dropped a connection whose client pinged as the policy says";
  EXPECT_EQ(CheckHealth(channel, "", std::chrono::milliseconds(2000)), "SERVING");
}

TEST(InternalKeepaliveTest, AServerAtGrpcDefaultsSendsTheSamePingsAway) {
  ProbeServer server(testing::TestTls(kConfigIdentity));  // no keepalive arguments
  ASSERT_GT(server.port, 0);
  EXPECT_TRUE(
      LeavesReadyWhileIdle(DialWithFastPings(server.port), std::chrono::milliseconds(5500)));
}

}  // namespace
}  // namespace tg
