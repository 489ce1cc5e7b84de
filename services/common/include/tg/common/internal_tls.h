#pragma once

// Mutual TLS between TrustGate services (docs/OPERATIONS.md, "Internal
// identities"). Every process holds the private CA's certificate and its own
// certificate and key; servers require a client certificate from that CA, and
// clients check that the server's certificate names the identity they expect.

#include <grpcpp/security/credentials.h>
#include <grpcpp/security/server_credentials.h>

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "tg/common/flags.h"

namespace tg {

// The identities of the internal gRPC mesh: each service's name, and one for
// people and tools (grpcurl, tg-healthcheck run by hand).
inline constexpr std::string_view kEdgeIdentity = "tg-edge";
inline constexpr std::string_view kConfigIdentity = "tg-config";
inline constexpr std::string_view kKeyauthIdentity = "tg-keyauth";
inline constexpr std::string_view kBalancerIdentity = "tg-balancer";
inline constexpr std::string_view kAdapterIdentity = "tg-adapter";
inline constexpr std::string_view kOperatorIdentity = "tg-operator";

// One process's credentials: PEM contents, loaded once at start.
struct InternalTls {
  // Plaintext gRPC without identities (--grpc-insecure=true): for local
  // experiments only; every caller is then let through (nothing to check).
  bool insecure = false;
  std::string ca_pem;    // the private CA: peers must chain to it
  std::string cert_pem;  // this process's certificate
  std::string key_pem;   // and its private key
  std::string identity;  // the certificate's common name

  static InternalTls Insecure() {
    InternalTls tls;
    tls.insecure = true;
    return tls;
  }
  // Neither insecure nor complete: what a default-constructed one is.
  bool empty() const {
    return !insecure && (ca_pem.empty() || cert_pem.empty() || key_pem.empty());
  }
};

// Where the PEM files are.
struct InternalTlsFiles {
  std::string ca;
  std::string cert;
  std::string key;
};

// Reads and checks the files: the certificate must chain to the CA, be valid
// now, match the key, and (unless expected_identity is empty) name
// expected_identity. nullopt with *error (a sentence naming the file) otherwise.
std::optional<InternalTls> LoadInternalTls(const InternalTlsFiles& files,
                                           std::string_view expected_identity, std::string* error);

// The files of `identity` in a tg-certs directory (ca.pem, <identity>.pem,
// <identity>-key.pem), checked as above.
std::optional<InternalTls> LoadInternalTlsDir(const std::string& dir, std::string_view identity,
                                              std::string* error);

// The flags every executable that speaks internal gRPC shares:
//   --grpc-tls-dir    a tg-certs directory: ca.pem, <identity>.pem, <identity>-key.pem
//   --grpc-tls-ca, --grpc-tls-cert, --grpc-tls-key   explicit files (each wins over the dir)
//   --grpc-insecure   true: plaintext, no identities (local experiments only)
// `identity` names the files looked up in --grpc-tls-dir and is what the
// certificate must say. nullopt with *error when nothing is configured (the
// message says which flags to set) or the files do not load.
std::optional<InternalTls> InternalTlsFromFlags(const Flags& flags, std::string_view identity,
                                                std::string* error);

// For GrpcServer: TLS requiring and verifying a client certificate from the CA
// (no certificate, or one from another CA: the handshake fails), or insecure.
std::shared_ptr<grpc::ServerCredentials> MakeServerCredentials(const InternalTls& tls);
// For DialInternal: our certificate as the client's, the CA as the only root.
std::shared_ptr<grpc::ChannelCredentials> MakeChannelCredentials(const InternalTls& tls);

}  // namespace tg
