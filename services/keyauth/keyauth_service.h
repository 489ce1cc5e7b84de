#pragma once

#include <grpcpp/grpcpp.h>

#include <cstddef>
#include <string>

#include "tg/common/worker_pool.h"
#include "tg/keyauth/clock.h"
#include "tg/keyauth/gateway_directory.h"
#include "tg/keyauth/key_feed.h"
#include "tg/keyauth/key_index.h"
#include "tg/keyauth/key_store.h"
#include "tg/keyauth/revocation_hub.h"
#include "tg/v1/keyauth.grpc.pb.h"

namespace tg::keyauth {

struct KeyAuthServiceOptions {
  size_t max_name_length = 256;     // longest accepted key name, in bytes
  size_t max_queued_events = 1024;  // per WatchKeys stream; a slower caller gets a reset instead
};

// What the service works with; owned by main (or a test), all outliving the
// service.
struct KeyAuthDeps {
  KeyStore* store = nullptr;
  KeyFeed* feed = nullptr;
  KeyIndex* index = nullptr;
  RevocationHub* hub = nullptr;
  GatewayDirectory* gateways = nullptr;
  WorkerPool* workers = nullptr;  // runs every blocking step (PostgreSQL, tg-config)
  const Clock* clock = nullptr;
};

// tg.v1.KeyAuthService. Admin RPCs run on the worker pool; VerifyKey answers
// on the reactor thread from the in-memory index; WatchKeys streams the hub's
// revocations.
//
// Errors: INVALID_ARGUMENT (bad name, expires_at or idempotency key),
// NOT_FOUND (malformed or unknown gateway, unknown key), UNAUTHENTICATED
// (VerifyKey, one message for every reason), UNAVAILABLE (PostgreSQL or
// tg-config unreachable, or VerifyKey's min_revision out of reach: retry),
// DEADLINE_EXCEEDED / CANCELLED (a write rolled back: nothing was written),
// ALREADY_EXISTS / FAILED_PRECONDITION (a repeated idempotent create),
// INTERNAL (anything else; details are logged, never returned).
class KeyAuthServiceImpl final : public tg::v1::KeyAuthService::CallbackService {
 public:
  explicit KeyAuthServiceImpl(KeyAuthDeps deps, KeyAuthServiceOptions options = {});

  // Ends every WatchKeys stream with UNAVAILABLE (callers move to another
  // replica) and refuses new ones. Call before GrpcServer::Shutdown, whose
  // grace period would otherwise be spent waiting for streams that never end.
  void BeginShutdown();

  grpc::ServerUnaryReactor* CreateKey(grpc::CallbackServerContext* ctx,
                                      const tg::v1::CreateKeyRequest* req,
                                      tg::v1::KeyResult* resp) override;
  grpc::ServerUnaryReactor* GetKey(grpc::CallbackServerContext* ctx,
                                   const tg::v1::GetKeyRequest* req,
                                   tg::v1::KeyResult* resp) override;
  grpc::ServerUnaryReactor* ListKeys(grpc::CallbackServerContext* ctx,
                                     const tg::v1::ListKeysRequest* req,
                                     tg::v1::ListKeysResponse* resp) override;
  grpc::ServerUnaryReactor* DeleteKey(grpc::CallbackServerContext* ctx,
                                      const tg::v1::DeleteKeyRequest* req,
                                      tg::v1::DeleteKeyResult* resp) override;
  grpc::ServerUnaryReactor* DeleteGatewayKeys(grpc::CallbackServerContext* ctx,
                                              const tg::v1::DeleteGatewayKeysRequest* req,
                                              tg::v1::DeleteKeyResult* resp) override;
  grpc::ServerUnaryReactor* VerifyKey(grpc::CallbackServerContext* ctx,
                                      const tg::v1::VerifyKeyRequest* req,
                                      tg::v1::VerifyKeyResponse* resp) override;
  grpc::ServerWriteReactor<tg::v1::KeyEvent>* WatchKeys(
      grpc::CallbackServerContext* ctx, const tg::v1::WatchKeysRequest* req) override;

 private:
  // Finishes `ctx`'s reactor with `fn()` run on the worker pool; exceptions
  // become statuses there.
  template <typename Fn>
  grpc::ServerUnaryReactor* Offload(grpc::CallbackServerContext* ctx, const char* rpc, Fn fn);

  // Makes the replica's own write visible to its VerifyKey before answering.
  void CatchUp(int64_t revision);
  // VerifyKey from the in-memory index.
  grpc::Status Verify(const tg::v1::VerifyKeyRequest& req, tg::v1::VerifyKeyResponse* resp) const;

  KeyAuthDeps deps_;
  KeyAuthServiceOptions options_;
};

}  // namespace tg::keyauth
