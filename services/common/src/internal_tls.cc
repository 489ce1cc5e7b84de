#include "tg/common/internal_tls.h"

#include <ctime>
#include <fstream>
#include <sstream>

#include "tg/common/cert_authority.h"

namespace tg {
namespace {

bool ReadPem(const std::string& path, const char* what, std::string* out, std::string* error) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    *error = std::string("cannot read the ") + what + " " + path;
    return false;
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  *out = ss.str();
  if (out->empty()) {
    *error = std::string("the ") + what + " " + path + " is empty";
    return false;
  }
  return true;
}

}  // namespace

std::optional<InternalTls> LoadInternalTls(const InternalTlsFiles& files,
                                           std::string_view expected_identity, std::string* error) {
  InternalTls tls;
  if (!ReadPem(files.ca, "CA certificate", &tls.ca_pem, error) ||
      !ReadPem(files.cert, "certificate", &tls.cert_pem, error) ||
      !ReadPem(files.key, "private key", &tls.key_pem, error)) {
    return std::nullopt;
  }
  std::string why;
  if (!certs::VerifyIssuedBy(tls.ca_pem, tls.cert_pem, &why)) {
    *error = files.cert + ": " + why + " (CA " + files.ca + ")";
    return std::nullopt;
  }
  if (!certs::KeyMatchesCertificate(tls.cert_pem, tls.key_pem, &why)) {
    *error = files.key + ": " + why + " " + files.cert;
    return std::nullopt;
  }
  auto info = certs::InspectCertificate(tls.cert_pem, &why);
  if (!info || info->common_name.empty()) {
    *error = files.cert + ": no common name (the identity)";
    return std::nullopt;
  }
  if (!expected_identity.empty() && info->common_name != expected_identity) {
    *error = files.cert + " is the certificate of " + info->common_name + ", not of " +
             std::string(expected_identity);
    return std::nullopt;
  }
  tls.identity = info->common_name;
  return tls;
}

std::optional<InternalTls> LoadInternalTlsDir(const std::string& dir, std::string_view identity,
                                              std::string* error) {
  const std::string id(identity);
  return LoadInternalTls({.ca = certs::CaCertFile(dir),
                          .cert = certs::CertFile(dir, id),
                          .key = certs::KeyFile(dir, id)},
                         identity, error);
}

std::optional<InternalTls> InternalTlsFromFlags(const Flags& flags, std::string_view identity,
                                                std::string* error) {
  const std::string dir = flags.String("grpc-tls-dir");
  const bool dir_set = !dir.empty();
  const std::string id(identity);
  InternalTlsFiles files{
      .ca = flags.String("grpc-tls-ca", dir_set ? certs::CaCertFile(dir) : ""),
      .cert = flags.String("grpc-tls-cert", dir_set && !id.empty() ? certs::CertFile(dir, id) : ""),
      .key = flags.String("grpc-tls-key", dir_set && !id.empty() ? certs::KeyFile(dir, id) : "")};
  const bool any = !files.ca.empty() || !files.cert.empty() || !files.key.empty();
  if (flags.Bool("grpc-insecure", false)) {
    if (any) {
      *error = "--grpc-insecure=true and TLS files are both set; choose one";
      return std::nullopt;
    }
    return InternalTls::Insecure();
  }
  if (files.ca.empty() || files.cert.empty() || files.key.empty()) {
    *error =
        "internal gRPC needs TLS: set --grpc-tls-dir (TG_GRPC_TLS_DIR, a directory made by "
        "tg-certs) or --grpc-tls-ca, --grpc-tls-cert and --grpc-tls-key; --grpc-insecure=true "
        "runs without TLS and identities (local experiments only)";
    return std::nullopt;
  }
  return LoadInternalTls(files, identity, error);
}

std::shared_ptr<grpc::ServerCredentials> MakeServerCredentials(const InternalTls& tls) {
  if (tls.insecure) return grpc::InsecureServerCredentials();
  grpc::SslServerCredentialsOptions options(
      GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  options.pem_root_certs = tls.ca_pem;
  options.pem_key_cert_pairs.push_back({tls.key_pem, tls.cert_pem});
  return grpc::SslServerCredentials(options);
}

std::shared_ptr<grpc::ChannelCredentials> MakeChannelCredentials(const InternalTls& tls) {
  if (tls.insecure) return grpc::InsecureChannelCredentials();
  grpc::SslCredentialsOptions options;
  options.pem_root_certs = tls.ca_pem;
  options.pem_private_key = tls.key_pem;
  options.pem_cert_chain = tls.cert_pem;
  return grpc::SslCredentials(options);
}

}  // namespace tg
