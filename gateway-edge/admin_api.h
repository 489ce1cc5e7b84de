#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "tg/common/config_watcher.h"
#include "tg/common/jwt.h"
#include "tg/edge/admin_route.h"
#include "tg/edge/edge_readiness.h"
#include "tg/edge/http_server.h"
#include "tg/edge/key_cache.h"
#include "tg/edge/spend.h"
#include "tg/v1/balancer.grpc.pb.h"
#include "tg/v1/config.grpc.pb.h"
#include "tg/v1/keyauth.grpc.pb.h"

namespace tg::edge {

struct AdminApiOptions {
  std::string jwt_secret;  // HS256 secret of admin tokens; required, jwt::CheckSecret
  jwt::VerifyOptions jwt;  // optional iss/aud checks (--admin-jwt-issuer, --admin-jwt-audience)
  // Deadline of each gRPC call. A write that cannot commit within it rolls
  // back (504, nothing written).
  std::chrono::milliseconds rpc_timeout{5000};
  // How long a write answer waits for the config watch to reach the write's
  // revision (so that a proxied request right after the answer sees it).
  std::chrono::milliseconds revision_wait{2000};
};

// Returns "" or what is wrong with the options.
std::string ValidateAdminApiOptions(const AdminApiOptions& options);

// The HTTP status for a gRPC status code (see DESIGN.md §4).
int HttpStatusFromGrpc(grpc::StatusCode code);

// The {"error": ...} answer for a failed call: the status message, except for
// codes that map to 500, whose details stay in our log.
HttpResponse ErrorFromGrpc(const grpc::Status& status);

// The admin REST API as a transcoder: each route is one gRPC call on
// tg-config or tg-keyauth (callback API, so no io thread ever waits on an
// RPC), the resource messages' JSON mapping being the REST JSON.
class AdminApi : public HttpHandler {
 public:
  // `watcher` (may be null in tests that write nothing) and `keys` (the
  // proxy's key cache, which a key DELETE updates before answering; may be
  // null) must outlive this.
  AdminApi(AdminApiOptions options, std::shared_ptr<grpc::Channel> config_channel,
           std::shared_ptr<grpc::Channel> keyauth_channel, ConfigWatcher* watcher,
           KeyCache* keys = nullptr);
  // Waits for the gRPC calls still in flight (each bounded by rpc_timeout).
  ~AdminApi() override;

  void Handle(HttpRequest request, HttpResponder respond) override;

  // GET /healthz answers from `readiness` (must outlive this) when set;
  // otherwise 200 while the watcher is connected, else 503.
  void SetReadiness(const EdgeReadiness* readiness) { readiness_ = readiness; }

  // GET …/upstreams/{id}/health asks tg-balancer (GetHealth) over this
  // channel; without one it answers 503.
  void SetBalancer(std::shared_ptr<grpc::Channel> channel);
  // GET …/gateways/{id}/spend reads this ledger (null: 503).
  void SetSpend(SpendLedger* spend) { spend_ = spend; }

 private:
  void Serve(HttpRequest request, const std::optional<AdminRoute>& route, HttpResponder respond);
  template <typename Kind>
  void HandleConfig(const HttpRequest& request, const AdminRoute& route, HttpResponder respond);
  void HandleKeys(const HttpRequest& request, const AdminRoute& route, HttpResponder respond);
  void HandleUpstreamHealth(const AdminRoute& route, HttpResponder respond);
  void HandleSpend(const HttpRequest& request, const AdminRoute& route, HttpResponder respond);
  // Answers `response` once the watch holds `revision` (or revision_wait passed).
  void AnswerAfterRevision(int64_t revision, HttpResponse response, HttpResponder respond);

  // Starts a unary call; `done(status, response)` runs on a gRPC thread.
  template <typename Req, typename Resp, typename Start, typename Done>
  void Call(Start start, Req request, Done done);
  void BeginCall();
  void EndCall();

  const AdminApiOptions options_;
  std::unique_ptr<tg::v1::ConfigService::Stub> config_;
  std::unique_ptr<tg::v1::KeyAuthService::Stub> keyauth_;
  std::unique_ptr<tg::v1::BalancerService::Stub> balancer_;  // SetBalancer; may stay null
  SpendLedger* spend_ = nullptr;                             // SetSpend; may stay null
  ConfigWatcher* const watcher_;
  KeyCache* const keys_;
  const EdgeReadiness* readiness_ = nullptr;

  std::mutex mu_;
  std::condition_variable cv_;
  int64_t in_flight_ = 0;
};

}  // namespace tg::edge
