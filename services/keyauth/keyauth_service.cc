#include "tg/keyauth/keyauth_service.h"

#include <google/protobuf/util/time_util.h>

#include <cctype>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <pqxx/pqxx>

#include "tg/common/crypto.h"
#include "tg/common/idempotency.h"
#include "tg/common/internal_authz.h"
#include "tg/common/log.h"
#include "tg/keyauth/key_format.h"
#include "tg/keyauth/key_record.h"

namespace tg::keyauth {
namespace {

using grpc::Status;
using grpc::StatusCode;

Status GatewayNotFound() { return Status(StatusCode::NOT_FOUND, "gateway not found"); }
Status KeyNotFound() { return Status(StatusCode::NOT_FOUND, "key not found"); }

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Ids are UUIDs; their lower-case form is the one stored.
std::optional<std::string> CanonicalUuid(std::string_view s) {
  if (!crypto::IsUuid(s)) return std::nullopt;
  return Lower(s);
}

bool IsBlank(std::string_view s) {
  for (unsigned char c : s) {
    if (!std::isspace(c)) return false;
  }
  return true;
}

// A write's bounds are its RPC's deadline and cancellation (the context
// stays valid until the reactor finishes).
pg::WriteBounds BoundsOf(grpc::CallbackServerContext* ctx) {
  pg::WriteBounds b;
  b.deadline = ctx->deadline();
  b.cancelled = [ctx] { return ctx->IsCancelled(); };
  return b;
}

grpc::ServerUnaryReactor* Reject(grpc::CallbackServerContext* ctx, const Status& status) {
  auto* reactor = ctx->DefaultReactor();
  reactor->Finish(status);
  return reactor;
}

// The one place where exceptions of the blocking layer become statuses. SQL
// texts and PostgreSQL messages stay in the log (a unique-violation message
// would even quote the hash, so only the SQLSTATE is logged).
Status Guard(const char* rpc, const std::function<Status()>& fn) {
  try {
    return fn();
  } catch (const pg::Unavailable&) {
    return Status(StatusCode::UNAVAILABLE, "database unavailable");
  } catch (const pg::WriteAborted& e) {
    return e.cancelled ? Status(StatusCode::CANCELLED, "write cancelled: nothing was written")
                       : Status(StatusCode::DEADLINE_EXCEEDED,
                                "write deadline exceeded: nothing was written");
  } catch (const pqxx::broken_connection&) {
    return Status(StatusCode::UNAVAILABLE, "database unavailable");
  } catch (const pqxx::in_doubt_error&) {
    log::Error("commit outcome unknown", {{"rpc", rpc}});
    return Status(StatusCode::UNAVAILABLE, "database unavailable");
  } catch (const pqxx::sql_error& e) {
    if (pg::IsStatementTimeout(e)) {
      return Status(StatusCode::DEADLINE_EXCEEDED, "database did not answer in time");
    }
    log::Error("database error", {{"rpc", rpc}, {"sqlstate", e.sqlstate()}});
    return Status(StatusCode::INTERNAL, "internal error");
  } catch (const std::exception& e) {
    log::Error("internal error", {{"rpc", rpc}, {"error", e.what()}});
    return Status(StatusCode::INTERNAL, "internal error");
  } catch (...) {
    log::Error("internal error", {{"rpc", rpc}});
    return Status(StatusCode::INTERNAL, "internal error");
  }
}

// Validates expires_at against `now`; nullopt with *status on error.
std::optional<TimePoint> CheckExpiry(const google::protobuf::Timestamp& ts, TimePoint now,
                                     Status* status) {
  // time_point counts nanoseconds in 64 bits: years up to 2262 fit.
  constexpr int64_t kMaxSeconds =
      std::chrono::duration_cast<std::chrono::seconds>(TimePoint::max().time_since_epoch())
          .count() -
      1;
  if (ts.nanos() < 0 || ts.nanos() > 999'999'999) {
    *status = Status(StatusCode::INVALID_ARGUMENT, "expires_at is invalid");
    return std::nullopt;
  }
  if (ts.seconds() > kMaxSeconds) {
    *status = Status(StatusCode::INVALID_ARGUMENT, "expires_at is too far in the future");
    return std::nullopt;
  }
  if (ts.seconds() < 0) {
    *status = Status(StatusCode::INVALID_ARGUMENT, "expires_at must be in the future");
    return std::nullopt;
  }
  TimePoint t = ToMicros(FromProtoTime(ts));
  if (t <= now) {
    *status = Status(StatusCode::INVALID_ARGUMENT, "expires_at must be in the future");
    return std::nullopt;
  }
  return t;
}

// A WatchKeys stream. The hub calls Send/Close from the feed thread; gRPC
// calls the On* reactions from its threads; mu_ orders both. At most one
// write is in flight; the stream finishes once, and only when no write is in
// flight. OnDone unsubscribes before deleting, and the hub holds its own lock
// while calling Send, so the hub never calls into a deleted reactor.
class WatchKeysReactor final : public grpc::ServerWriteReactor<tg::v1::KeyEvent>,
                               public KeyEventSink {
 public:
  WatchKeysReactor(RevocationHub* hub, size_t max_queued, int64_t from_revision)
      : hub_(hub), max_queued_(max_queued) {
    if (!hub_->Subscribe(this, from_revision)) {
      std::lock_guard lock(mu_);
      FinishLocked(Status(StatusCode::UNAVAILABLE, "tg-keyauth is shutting down"));
    }
  }

  void Send(const tg::v1::KeyEvent& event) override {
    std::lock_guard lock(mu_);
    if (finished_ || closing_) return;
    if (queue_.size() >= max_queued_) {
      // The caller cannot keep up: one reset (drop the whole cache) replaces
      // the backlog and bounds this stream's memory.
      queue_.clear();
      tg::v1::KeyEvent reset;
      reset.set_revision(event.revision());
      reset.set_reset(true);
      queue_.push_back(std::move(reset));
    } else {
      queue_.push_back(event);
    }
    WriteNextLocked();
  }

  void Close(const Status& status) override {
    std::lock_guard lock(mu_);
    CloseLocked(status);
  }

  void OnWriteDone(bool ok) override {
    std::lock_guard lock(mu_);
    writing_ = false;
    if (finished_) return;
    if (!ok) {
      // The stream is broken (client gone or call cancelled).
      FinishLocked(Status(StatusCode::CANCELLED, "stream closed"));
      return;
    }
    if (closing_) {
      FinishLocked(close_status_);
      return;
    }
    WriteNextLocked();
  }

  void OnCancel() override {
    std::lock_guard lock(mu_);
    CloseLocked(Status::CANCELLED);
  }

  void OnDone() override {
    hub_->Unsubscribe(this);
    delete this;
  }

 private:
  void CloseLocked(const Status& status) {
    if (finished_ || closing_) return;
    queue_.clear();
    if (writing_) {
      closing_ = true;  // finish when the write in flight completes
      close_status_ = status;
    } else {
      FinishLocked(status);
    }
  }

  void WriteNextLocked() {
    if (writing_ || finished_ || queue_.empty()) return;
    current_ = std::move(queue_.front());
    queue_.pop_front();
    writing_ = true;
    StartWrite(&current_);
  }

  void FinishLocked(const Status& status) {
    if (finished_) return;
    finished_ = true;
    Finish(status);
  }

  RevocationHub* const hub_;
  const size_t max_queued_;
  std::mutex mu_;
  std::deque<tg::v1::KeyEvent> queue_;
  tg::v1::KeyEvent current_;  // the message being written; gRPC reads it until OnWriteDone
  bool writing_ = false;
  bool closing_ = false;
  bool finished_ = false;
  Status close_status_;
};

}  // namespace

KeyAuthServiceImpl::KeyAuthServiceImpl(KeyAuthDeps deps, KeyAuthServiceOptions options)
    : deps_(deps), options_(options) {}

void KeyAuthServiceImpl::BeginShutdown() {
  deps_.hub->CloseAll(Status(StatusCode::UNAVAILABLE, "tg-keyauth is shutting down"));
}

template <typename Fn>
grpc::ServerUnaryReactor* KeyAuthServiceImpl::Offload(grpc::CallbackServerContext* ctx,
                                                      const char* rpc, Fn fn) {
  auto* reactor = ctx->DefaultReactor();
  deps_.workers->Post([reactor, rpc, fn = std::move(fn)] { reactor->Finish(Guard(rpc, fn)); });
  return reactor;
}

void KeyAuthServiceImpl::CatchUp(int64_t revision) {
  try {
    deps_.feed->CatchUp(revision);
  } catch (const std::exception&) {
    // The write is committed; the feed thread will apply it within a poll
    // interval, so the RPC still succeeds.
    log::Warn("could not apply own write immediately", {{"revision", std::to_string(revision)}});
  }
}

grpc::ServerUnaryReactor* KeyAuthServiceImpl::CreateKey(grpc::CallbackServerContext* ctx,
                                                        const tg::v1::CreateKeyRequest* req,
                                                        tg::v1::KeyResult* resp) {
  if (Status denied = AuthorizeCaller(*ctx, InternalRpc::kKeyWrite); !denied.ok()) {
    return Reject(ctx, denied);
  }
  auto gateway_id = CanonicalUuid(req->gateway_id());
  if (!gateway_id) return Reject(ctx, GatewayNotFound());
  const std::string& name = req->key().name();
  if (IsBlank(name)) return Reject(ctx, Status(StatusCode::INVALID_ARGUMENT, "name is required"));
  if (name.size() > options_.max_name_length) {
    return Reject(ctx, Status(StatusCode::INVALID_ARGUMENT, "name is too long"));
  }
  std::optional<TimePoint> expires_at;
  if (req->key().has_expires_at()) {
    Status st;
    expires_at = CheckExpiry(req->key().expires_at(), deps_.clock->Now(), &st);
    if (!expires_at) return Reject(ctx, st);
  }
  std::optional<idempotency::Claim> claim;
  if (!req->idempotency_key().empty()) {
    if (auto e = idempotency::Validate(req->idempotency_key()); !e.empty()) {
      return Reject(ctx, Status(StatusCode::INVALID_ARGUMENT, e));
    }
    claim =
        idempotency::MakeClaim("keyauth/keys/" + *gateway_id, req->idempotency_key(), req->key());
  }
  return Offload(
      ctx, "CreateKey",
      [this, ctx, gateway_id = *gateway_id, name, expires_at, claim = std::move(claim), resp] {
        pg::WriteBounds bounds = BoundsOf(ctx);
        pg::CheckWriteBounds(bounds);  // before the tg-config round trip too
        if (Status st = deps_.gateways->Exists(gateway_id); !st.ok()) return st;
        GeneratedKey key = GenerateKey();
        TimePoint now = ToMicros(deps_.clock->Now());
        KeyRecord record{crypto::NewUuid(), gateway_id, name, key.prefix,
                         key.hash,          expires_at, now,  now};
        KeyStore::Created created = deps_.store->Create(record, bounds, claim);
        switch (created.outcome) {
          case KeyStore::Created::Outcome::kCreated:
            break;
          case KeyStore::Created::Outcome::kRepeated:
            // The key was shown once, to the first create; no replica has it.
            return Status(StatusCode::ALREADY_EXISTS,
                          "key " + created.existing_id +
                              " was already created with this Idempotency-Key; a key is shown only "
                              "once: delete it and create another");
          case KeyStore::Created::Outcome::kMismatch:
            return Status(StatusCode::FAILED_PRECONDITION,
                          std::string(idempotency::kMismatchMessage));
        }
        int64_t revision = created.revision;
        CatchUp(revision);
        ToProto(record, resp->mutable_key());
        resp->mutable_key()->set_key(std::move(key.key));
        resp->set_revision(revision);
        log::Info("key created", {{"key_id", record.id},
                                  {"gateway_id", record.gateway_id},
                                  {"revision", std::to_string(revision)}});
        return Status::OK;
      });
}

grpc::ServerUnaryReactor* KeyAuthServiceImpl::GetKey(grpc::CallbackServerContext* ctx,
                                                     const tg::v1::GetKeyRequest* req,
                                                     tg::v1::KeyResult* resp) {
  if (Status denied = AuthorizeCaller(*ctx, InternalRpc::kKeyRead); !denied.ok()) {
    return Reject(ctx, denied);
  }
  auto gateway_id = CanonicalUuid(req->gateway_id());
  if (!gateway_id) return Reject(ctx, GatewayNotFound());
  auto id = CanonicalUuid(req->id());
  if (!id) return Reject(ctx, KeyNotFound());
  return Offload(ctx, "GetKey", [this, gateway_id = *gateway_id, id = *id, resp] {
    int64_t revision = 0;
    auto record = deps_.store->Get(gateway_id, id, &revision);
    if (!record) return KeyNotFound();
    ToProto(*record, resp->mutable_key());
    resp->set_revision(revision);
    return Status::OK;
  });
}

grpc::ServerUnaryReactor* KeyAuthServiceImpl::ListKeys(grpc::CallbackServerContext* ctx,
                                                       const tg::v1::ListKeysRequest* req,
                                                       tg::v1::ListKeysResponse* resp) {
  if (Status denied = AuthorizeCaller(*ctx, InternalRpc::kKeyRead); !denied.ok()) {
    return Reject(ctx, denied);
  }
  auto gateway_id = CanonicalUuid(req->gateway_id());
  if (!gateway_id) return Reject(ctx, GatewayNotFound());
  return Offload(ctx, "ListKeys", [this, gateway_id = *gateway_id, resp] {
    // An unknown gateway is a 404 in the admin API, not an empty list.
    if (Status st = deps_.gateways->Exists(gateway_id); !st.ok()) return st;
    int64_t revision = 0;
    auto records = deps_.store->List(gateway_id, &revision);
    for (const auto& r : records) ToProto(r, resp->add_keys());
    resp->set_revision(revision);
    return Status::OK;
  });
}

grpc::ServerUnaryReactor* KeyAuthServiceImpl::DeleteKey(grpc::CallbackServerContext* ctx,
                                                        const tg::v1::DeleteKeyRequest* req,
                                                        tg::v1::DeleteKeyResult* resp) {
  if (Status denied = AuthorizeCaller(*ctx, InternalRpc::kKeyWrite); !denied.ok()) {
    return Reject(ctx, denied);
  }
  auto gateway_id = CanonicalUuid(req->gateway_id());
  if (!gateway_id) return Reject(ctx, GatewayNotFound());
  auto id = CanonicalUuid(req->id());
  if (!id) return Reject(ctx, KeyNotFound());
  return Offload(ctx, "DeleteKey", [this, ctx, gateway_id = *gateway_id, id = *id, resp] {
    auto revision = deps_.store->Delete(gateway_id, id, BoundsOf(ctx));
    if (!revision) return KeyNotFound();
    CatchUp(*revision);
    resp->set_revision(*revision);
    log::Info(
        "key deleted",
        {{"key_id", id}, {"gateway_id", gateway_id}, {"revision", std::to_string(*revision)}});
    return Status::OK;
  });
}

grpc::ServerUnaryReactor* KeyAuthServiceImpl::DeleteGatewayKeys(
    grpc::CallbackServerContext* ctx, const tg::v1::DeleteGatewayKeysRequest* req,
    tg::v1::DeleteKeyResult* resp) {
  if (Status denied = AuthorizeCaller(*ctx, InternalRpc::kKeyWrite); !denied.ok()) {
    return Reject(ctx, denied);
  }
  auto gateway_id = CanonicalUuid(req->gateway_id());
  if (!gateway_id) return Reject(ctx, GatewayNotFound());
  // No existence check: this runs while (or after) the gateway is deleted.
  return Offload(ctx, "DeleteGatewayKeys", [this, ctx, gateway_id = *gateway_id, resp] {
    int deleted = 0;
    int64_t revision = deps_.store->DeleteGateway(gateway_id, &deleted, BoundsOf(ctx));
    CatchUp(revision);
    resp->set_revision(revision);
    log::Info("gateway keys deleted", {{"gateway_id", gateway_id},
                                       {"keys", std::to_string(deleted)},
                                       {"revision", std::to_string(revision)}});
    return Status::OK;
  });
}

grpc::ServerUnaryReactor* KeyAuthServiceImpl::VerifyKey(grpc::CallbackServerContext* ctx,
                                                        const tg::v1::VerifyKeyRequest* req,
                                                        tg::v1::VerifyKeyResponse* resp) {
  if (Status denied = AuthorizeCaller(*ctx, InternalRpc::kKeyVerify); !denied.ok()) {
    auto* reactor = ctx->DefaultReactor();
    reactor->Finish(denied);
    return reactor;
  }
  if (req->min_revision() > deps_.index->revision()) {
    // The caller knows of a revocation this replica has not applied: catch
    // up first (a read of the change log, so on a worker), and refuse to
    // vouch for any key while still behind.
    return Offload(ctx, "VerifyKey", [this, req, resp] {
      try {
        deps_.feed->CatchUp(req->min_revision());
      } catch (const std::exception&) {
        // Answered below: still behind.
      }
      if (deps_.index->revision() < req->min_revision()) {
        return Status(StatusCode::UNAVAILABLE, "key state behind the requested revision");
      }
      return Verify(*req, resp);
    });
  }
  auto* reactor = ctx->DefaultReactor();
  reactor->Finish(Verify(*req, resp));
  return reactor;
}

Status KeyAuthServiceImpl::Verify(const tg::v1::VerifyKeyRequest& req,
                                  tg::v1::VerifyKeyResponse* resp) const {
  std::string gateway_filter = Lower(req.gateway_id());
  auto verified = deps_.index->Verify(req.key(), gateway_filter, deps_.clock->Now());
  if (!verified) return Status(StatusCode::UNAUTHENTICATED, "invalid API key");
  resp->set_key_id(verified->key_id);
  resp->set_gateway_id(verified->gateway_id);
  if (verified->expires_at) *resp->mutable_expires_at() = ToProtoTime(*verified->expires_at);
  resp->set_revision(verified->revision);
  return Status::OK;
}

grpc::ServerWriteReactor<tg::v1::KeyEvent>* KeyAuthServiceImpl::WatchKeys(
    grpc::CallbackServerContext* ctx, const tg::v1::WatchKeysRequest* req) {
  if (Status denied = AuthorizeCaller(*ctx, InternalRpc::kKeyWatch); !denied.ok()) {
    return RejectStream<tg::v1::KeyEvent>(std::move(denied));
  }
  return new WatchKeysReactor(deps_.hub, options_.max_queued_events, req->from_revision());
}

}  // namespace tg::keyauth
