#include "test_tls.h"

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <mutex>
#include <vector>

#include "tg/common/cert_authority.h"
#include "tg/common/grpc_channel.h"

namespace tg::testing {
namespace {

[[noreturn]] void Die(const std::string& message) {
  std::fprintf(stderr, "test TLS: %s\n", message.c_str());
  std::abort();
}

std::string* generated_dir = nullptr;

void RemoveGeneratedDir() {
  std::error_code ec;
  if (generated_dir != nullptr) std::filesystem::remove_all(*generated_dir, ec);
}

std::string MakeDir() {
  if (const char* dir = std::getenv("TG_TEST_TLS_DIR"); dir != nullptr && *dir != '\0') {
    return dir;
  }
  std::string tmpl = (std::filesystem::temp_directory_path() / "tg-test-tls.XXXXXX").string();
  if (mkdtemp(tmpl.data()) == nullptr) Die("cannot create a temporary directory");
  certs::CertDirOptions options;
  options.dir = tmpl;
  options.identities = {std::string(kEdgeIdentity),    std::string(kConfigIdentity),
                        std::string(kKeyauthIdentity), std::string(kBalancerIdentity),
                        std::string(kAdapterIdentity), std::string(kOperatorIdentity)};
  options.days = 2;
  std::string error;
  if (!certs::EnsureCertDir(options, nullptr, &error)) Die(error);
  generated_dir = new std::string(tmpl);
  std::atexit(RemoveGeneratedDir);
  return tmpl;
}

}  // namespace

const std::string& TestTlsDir() {
  static const std::string dir = MakeDir();
  return dir;
}

bool TestGrpcInsecure() {
  const char* v = std::getenv("TG_TEST_GRPC_INSECURE");
  return v != nullptr && std::string_view(v) == "1";
}

const InternalTls& TestTls(std::string_view identity) {
  if (TestGrpcInsecure()) {
    static const InternalTls* insecure = new InternalTls(InternalTls::Insecure());
    return *insecure;
  }
  static std::mutex mu;
  static auto* loaded = new std::map<std::string, InternalTls, std::less<>>();
  std::lock_guard lock(mu);
  if (auto it = loaded->find(identity); it != loaded->end()) return it->second;
  const std::string& dir = TestTlsDir();
  const std::string id(identity);
  std::string error;
  auto tls = LoadInternalTlsDir(dir, identity, &error);
  if (!tls) Die(error);
  return loaded->emplace(id, std::move(*tls)).first->second;
}

std::shared_ptr<grpc::Channel> TestChannel(const std::string& address,
                                           std::string_view server_identity,
                                           std::string_view client_identity) {
  return DialInternal(address, server_identity, TestTls(client_identity));
}

std::shared_ptr<grpc::Channel> TestChannel(int port, std::string_view server_identity,
                                           std::string_view client_identity) {
  return TestChannel("127.0.0.1:" + std::to_string(port), server_identity, client_identity);
}

}  // namespace tg::testing
