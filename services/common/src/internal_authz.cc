#include "tg/common/internal_authz.h"

#include <grpc/grpc_security_constants.h>

#include <array>
#include <string>

namespace tg {
namespace {

// The matrix. docs/OPERATIONS.md ("Internal identities") shows the same table;
// change both together. tg-operator (people, grpcurl) reads, never writes,
// never sees credentials, and cannot verify keys (that would make keyauth an
// oracle for guessed keys) or spend provider calls.
struct Permission {
  InternalRpc rpc;
  std::string_view callers;  // comma-separated identities
};
constexpr std::array kMatrix = {
    Permission{InternalRpc::kConfigWrite, "tg-edge"},
    Permission{InternalRpc::kConfigRead, "tg-edge,tg-operator"},
    Permission{InternalRpc::kConfigGetGateway, "tg-edge,tg-keyauth,tg-operator"},
    Permission{InternalRpc::kConfigWatch, "tg-edge,tg-balancer,tg-adapter,tg-operator"},
    Permission{InternalRpc::kConfigWatchCredentials, "tg-adapter"},
    Permission{InternalRpc::kKeyWrite, "tg-edge"},
    Permission{InternalRpc::kKeyRead, "tg-edge,tg-operator"},
    Permission{InternalRpc::kKeyVerify, "tg-edge"},
    Permission{InternalRpc::kKeyWatch, "tg-edge"},
    Permission{InternalRpc::kBalancerPick, "tg-edge"},
    Permission{InternalRpc::kBalancerHealth, "tg-edge,tg-operator"},
    Permission{InternalRpc::kAdapterInvoke, "tg-edge"},
    // A probe calls a provider with the target's credentials: only the
    // balancer, which decides when a target needs one.
    Permission{InternalRpc::kAdapterProbe, "tg-balancer"},
};

constexpr std::string_view kRpcNames[] = {
    "ConfigService writes",         "ConfigService reads",       "ConfigService/GetGateway",
    "ConfigService/Watch",          "Watch with credentials",    "KeyAuthService writes",
    "KeyAuthService reads",         "KeyAuthService/VerifyKey",  "KeyAuthService/WatchKeys",
    "BalancerService picks",        "BalancerService/GetHealth", "ProviderAdapterService/Invoke",
    "ProviderAdapterService/Probe",
};

// An exact entry of a comma-separated list, without allocating.
bool Listed(std::string_view list, std::string_view name) {
  while (!list.empty()) {
    size_t comma = list.find(',');
    if (list.substr(0, comma) == name) return true;
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return false;
}

}  // namespace

std::string_view InternalRpcCallers(InternalRpc rpc) {
  for (const auto& p : kMatrix) {
    if (p.rpc == rpc) return p.callers;
  }
  return {};
}

bool InternalRpcAllows(InternalRpc rpc, std::string_view identity) {
  return !identity.empty() && Listed(InternalRpcCallers(rpc), identity);
}

namespace {

// The peer's certificate CN, or "" (one auth_context per call: it allocates).
std::string IdentityOf(const std::shared_ptr<const grpc::AuthContext>& auth) {
  if (!auth || !auth->IsPeerAuthenticated()) return "";
  auto names = auth->FindPropertyValues(GRPC_X509_CN_PROPERTY_NAME);
  if (names.size() != 1) return "";
  return std::string(names[0].data(), names[0].size());
}

}  // namespace

std::string CallerIdentity(const grpc::ServerContextBase& context) {
  return IdentityOf(context.auth_context());
}

grpc::Status AuthorizeCaller(const grpc::ServerContextBase& context, InternalRpc rpc) {
  const auto auth = context.auth_context();
  if (auth) {
    auto type = auth->FindPropertyValues(GRPC_TRANSPORT_SECURITY_TYPE_PROPERTY_NAME);
    if (type.size() == 1 && type[0] == "insecure") return grpc::Status::OK;
  }
  const std::string identity = IdentityOf(auth);
  if (identity.empty()) {
    return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                        "no client certificate identity (internal gRPC needs mutual TLS)");
  }
  if (InternalRpcAllows(rpc, identity)) return grpc::Status::OK;
  const auto index = static_cast<size_t>(rpc);
  const std::string_view what = index < std::size(kRpcNames) ? kRpcNames[index] : "this RPC";
  return grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                      identity + " may not call " + std::string(what) +
                          " (allowed: " + std::string(InternalRpcCallers(rpc)) + ")");
}

}  // namespace tg
