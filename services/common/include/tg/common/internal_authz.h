#pragma once

// Who may call what between TrustGate services: the one table of the internal
// gRPC identities' permissions (docs/OPERATIONS.md, "Internal identities").
// Every handler of tg-config, tg-keyauth, tg-balancer and tg-adapter starts
// with AuthorizeCaller; gRPC's own health and reflection services need only
// the transport's client certificate (GrpcServer requires one from the CA).

#include <grpcpp/grpcpp.h>

#include <string_view>

namespace tg {

// A group of RPCs that share their callers.
enum class InternalRpc {
  kConfigWrite,             // ConfigService Create*/Update*/Delete*
  kConfigRead,              // ConfigService Get*/List*
  kConfigGetGateway,        // ConfigService GetGateway
  kConfigWatch,             // ConfigService Watch, credentials masked
  kConfigWatchCredentials,  // ConfigService Watch {include_credentials: true}
  kKeyWrite,                // KeyAuthService CreateKey, DeleteKey, DeleteGatewayKeys
  kKeyRead,                 // KeyAuthService GetKey, ListKeys
  kKeyVerify,               // KeyAuthService VerifyKey
  kKeyWatch,                // KeyAuthService WatchKeys
  kBalancerPick,            // BalancerService Pick, Report, ReportBatch
  kBalancerHealth,          // BalancerService GetHealth
  kAdapterInvoke,           // ProviderAdapterService Invoke
  kAdapterProbe,            // ProviderAdapterService Probe (active health checks)
};

// Whether `identity` (a certificate's common name) may call `rpc`.
bool InternalRpcAllows(InternalRpc rpc, std::string_view identity);

// The identities allowed to call `rpc`, comma-separated (for docs and messages).
std::string_view InternalRpcCallers(InternalRpc rpc);

// The caller's identity: the common name of the client certificate the TLS
// handshake verified; empty without one (plaintext, or no certificate).
std::string CallerIdentity(const grpc::ServerContextBase& context);

// OK when the caller may call `rpc`; UNAUTHENTICATED without a verified
// identity, PERMISSION_DENIED for an identity the table does not allow. A
// server started with --grpc-insecure=true has no identities to check: every
// call on a plaintext connection is let through (only such a server accepts
// plaintext, so a TLS server never takes this path).
grpc::Status AuthorizeCaller(const grpc::ServerContextBase& context, InternalRpc rpc);

// A server stream finished at once with `status` (a refused caller), for
// handlers that return a ServerWriteReactor.
template <typename Response>
grpc::ServerWriteReactor<Response>* RejectStream(grpc::Status status) {
  class Rejected final : public grpc::ServerWriteReactor<Response> {
   public:
    explicit Rejected(grpc::Status s) { this->Finish(std::move(s)); }
    void OnDone() override { delete this; }
  };
  return new Rejected(std::move(status));
}

}  // namespace tg
