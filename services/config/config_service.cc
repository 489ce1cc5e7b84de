#include "tg/config/config_service.h"

#include <deque>

#include "tg/common/internal_authz.h"
#include "tg/common/log.h"
#include "tg/config/credentials.h"
#include "tg/config/snapshot_parts.h"

namespace tg::config {
namespace {

// Turns stored (sealed) credentials into what a Watch caller may see.
void Present(const crypto::SecretBox& box, bool clear, tg::v1::Upstream* u) {
  OpenUpstream(box, u);
  if (!clear) MaskUpstream(u);
}
void Present(const crypto::SecretBox& box, bool clear, tg::v1::Service* s) {
  OpenService(box, s);
  if (!clear) MaskService(s);
}

// One Watch stream. Writes one event at a time: the snapshot (or nothing when
// resuming), then each change after the cursor, then heartbeats when idle.
class WatchReactor final : public grpc::ServerWriteReactor<tg::v1::WatchEvent>,
                           public ConfigFeed::Listener {
 public:
  WatchReactor(ConfigFeed& feed, WorkerPool& workers, const crypto::SecretBox& box,
               const tg::v1::WatchRequest& req, const ConfigServiceOptions& options)
      : feed_(feed),
        box_(box),
        clear_(req.include_credentials()),
        cursor_(req.from_revision()),
        need_snapshot_(req.from_revision() <= 0),
        heartbeat_(options.heartbeat),
        part_bytes_(options.watch_part_bytes),
        // As if the last write were a heartbeat ago: a resumed stream with
        // nothing to replay gets a heartbeat at once, so its caller knows at
        // once that it is current again (not after the first quiet period).
        last_write_(std::chrono::steady_clock::now() - options.heartbeat) {
    std::lock_guard lock(mu_);  // OnFeedAdvanced may come before sub_ is assigned
    sub_ = feed_.Subscribe(this, workers);
  }

  void OnFeedAdvanced() override { TryWrite(); }

  void OnWriteDone(bool ok) override {
    {
      std::lock_guard lock(mu_);
      writing_ = false;
      if (!ok) gone_ = true;  // the client went away
    }
    TryWrite();
  }

  void OnCancel() override {
    {
      std::lock_guard lock(mu_);
      gone_ = true;
    }
    TryWrite();
  }

  void OnDone() override {
    feed_.Unsubscribe(sub_);
    delete this;
  }

 private:
  // The one place that starts a write or finishes the stream, so that there
  // is never more than one write in flight and Finish happens exactly once,
  // never while a write is pending.
  void TryWrite() {
    grpc::Status finish_status;
    bool finish = false;
    {
      std::lock_guard lock(mu_);
      if (writing_ || finished_) return;
      if (gone_ || feed_.closed()) {
        finished_ = finish = true;
        finish_status = gone_
                            ? grpc::Status::CANCELLED
                            : grpc::Status(grpc::StatusCode::UNAVAILABLE, "replica shutting down");
      } else {
        if (!Prepare()) return;
        writing_ = true;
        last_write_ = std::chrono::steady_clock::now();
      }
    }
    if (finish) {
      Finish(finish_status);
    } else {
      StartWrite(&event_);
    }
  }

  // Fills event_ with what to send next; false when there is nothing.
  bool Prepare() {
    if (!sub_ || !sub_->caught_up) return false;
    event_.Clear();
    if (!parts_.empty()) {
      // The rest of a snapshot sent in parts: nothing comes between them.
      event_ = std::move(parts_.front());
      parts_.pop_front();
      return true;
    }
    if (!need_snapshot_) {
      int64_t rev = 0;
      switch (feed_.NextAfter(cursor_, &rev, event_.mutable_change())) {
        case ConfigFeed::Next::kEvent: {
          auto* ch = event_.mutable_change();
          if (ch->has_upstream()) Present(box_, clear_, ch->mutable_upstream());
          if (ch->has_service()) Present(box_, clear_, ch->mutable_service());
          event_.set_revision(rev);
          cursor_ = rev;
          return true;
        }
        case ConfigFeed::Next::kGap:
          need_snapshot_ = true;
          break;
        case ConfigFeed::Next::kNone:
          if (std::chrono::steady_clock::now() - last_write_ < heartbeat_) return false;
          event_.set_heartbeat(true);
          event_.set_revision(cursor_);
          return true;
      }
    }
    event_.Clear();
    int64_t rev = 0;
    auto* snap = event_.mutable_snapshot();
    feed_.Snapshot(snap, &rev);
    for (auto& u : *snap->mutable_upstreams()) Present(box_, clear_, &u);
    for (auto& s : *snap->mutable_services()) Present(box_, clear_, &s);
    event_.set_revision(rev);
    cursor_ = rev;
    need_snapshot_ = false;
    if (snap->ByteSizeLong() <= part_bytes_) return true;  // one message, as peers of any age read
    // Too large for one message: parts, each small enough for any peer.
    for (auto& part : SplitSnapshot(std::move(*snap), part_bytes_)) {
      tg::v1::WatchEvent e;
      e.set_revision(rev);
      *e.mutable_snapshot_part() = std::move(part);
      parts_.push_back(std::move(e));
    }
    event_ = std::move(parts_.front());
    parts_.pop_front();
    return true;
  }

  ConfigFeed& feed_;
  const crypto::SecretBox& box_;
  const bool clear_;
  std::shared_ptr<ConfigFeed::Subscription> sub_;

  std::mutex mu_;
  int64_t cursor_;
  bool need_snapshot_;
  bool writing_ = false;
  bool finished_ = false;
  bool gone_ = false;
  std::chrono::seconds heartbeat_;
  const size_t part_bytes_;
  std::chrono::steady_clock::time_point last_write_;
  tg::v1::WatchEvent event_;
  std::deque<tg::v1::WatchEvent> parts_;  // a snapshot's parts still to send
};

}  // namespace

ConfigServiceImpl::ConfigServiceImpl(ConfigStore& store, ConfigFeed& feed, WorkerPool& workers,
                                     ConfigServiceOptions options)
    : store_(store), feed_(feed), workers_(workers), options_(options) {}

template <typename Fn>
ConfigServiceImpl::Reactor* ConfigServiceImpl::Defer(Ctx* ctx, InternalRpc rpc, Fn fn) {
  auto* reactor = ctx->DefaultReactor();
  if (grpc::Status denied = AuthorizeCaller(*ctx, rpc); !denied.ok()) {
    reactor->Finish(denied);
    return reactor;
  }
  workers_.Post([reactor, fn = std::move(fn)]() mutable { reactor->Finish(fn()); });
  return reactor;
}

using R = ConfigServiceImpl::Reactor;
using C = ConfigServiceImpl::Ctx;

namespace {

// A write's bounds are its RPC's: the deadline the caller set and its
// cancellation (the context stays valid until the reactor finishes).
WriteContext Bounds(C* c, std::string idempotency_key = "") {
  WriteContext w;
  w.bounds.deadline = c->deadline();
  w.bounds.cancelled = [c] { return c->IsCancelled(); };
  w.idempotency_key = std::move(idempotency_key);
  return w;
}

}  // namespace

R* ConfigServiceImpl::CreateGateway(C* c, const tg::v1::CreateGatewayRequest* q,
                                    tg::v1::GatewayResult* a) {
  return Defer(c, InternalRpc::kConfigWrite, [=, this] {
    return store_.CreateGateway(q->gateway(), a, Bounds(c, q->idempotency_key()));
  });
}
R* ConfigServiceImpl::GetGateway(C* c, const tg::v1::GetGatewayRequest* q,
                                 tg::v1::GatewayResult* a) {
  return Defer(c, InternalRpc::kConfigGetGateway,
               [=, this] { return store_.GetGateway(q->id(), a); });
}
R* ConfigServiceImpl::ListGateways(C* c, const tg::v1::ListGatewaysRequest*,
                                   tg::v1::ListGatewaysResponse* a) {
  return Defer(c, InternalRpc::kConfigRead, [=, this] { return store_.ListGateways(a); });
}
R* ConfigServiceImpl::UpdateGateway(C* c, const tg::v1::UpdateGatewayRequest* q,
                                    tg::v1::GatewayResult* a) {
  return Defer(c, InternalRpc::kConfigWrite,
               [=, this] { return store_.UpdateGateway(q->gateway(), a, Bounds(c)); });
}
R* ConfigServiceImpl::DeleteGateway(C* c, const tg::v1::DeleteGatewayRequest* q,
                                    tg::v1::DeleteResult* a) {
  return Defer(c, InternalRpc::kConfigWrite,
               [=, this] { return store_.DeleteGateway(q->id(), a, Bounds(c)); });
}

R* ConfigServiceImpl::CreateUpstream(C* c, const tg::v1::CreateUpstreamRequest* q,
                                     tg::v1::UpstreamResult* a) {
  return Defer(c, InternalRpc::kConfigWrite, [=, this] {
    return store_.CreateUpstream(q->upstream(), a, Bounds(c, q->idempotency_key()));
  });
}
R* ConfigServiceImpl::GetUpstream(C* c, const tg::v1::GetUpstreamRequest* q,
                                  tg::v1::UpstreamResult* a) {
  return Defer(c, InternalRpc::kConfigRead,
               [=, this] { return store_.GetUpstream(q->gateway_id(), q->id(), a); });
}
R* ConfigServiceImpl::ListUpstreams(C* c, const tg::v1::ListUpstreamsRequest* q,
                                    tg::v1::ListUpstreamsResponse* a) {
  return Defer(c, InternalRpc::kConfigRead,
               [=, this] { return store_.ListUpstreams(q->gateway_id(), a); });
}
R* ConfigServiceImpl::UpdateUpstream(C* c, const tg::v1::UpdateUpstreamRequest* q,
                                     tg::v1::UpstreamResult* a) {
  return Defer(c, InternalRpc::kConfigWrite,
               [=, this] { return store_.UpdateUpstream(q->upstream(), a, Bounds(c)); });
}
R* ConfigServiceImpl::DeleteUpstream(C* c, const tg::v1::DeleteUpstreamRequest* q,
                                     tg::v1::DeleteResult* a) {
  return Defer(c, InternalRpc::kConfigWrite,
               [=, this] { return store_.DeleteUpstream(q->gateway_id(), q->id(), a, Bounds(c)); });
}

R* ConfigServiceImpl::CreateService(C* c, const tg::v1::CreateServiceRequest* q,
                                    tg::v1::ServiceResult* a) {
  return Defer(c, InternalRpc::kConfigWrite, [=, this] {
    return store_.CreateService(q->service(), a, Bounds(c, q->idempotency_key()));
  });
}
R* ConfigServiceImpl::GetService(C* c, const tg::v1::GetServiceRequest* q,
                                 tg::v1::ServiceResult* a) {
  return Defer(c, InternalRpc::kConfigRead,
               [=, this] { return store_.GetService(q->gateway_id(), q->id(), a); });
}
R* ConfigServiceImpl::ListServices(C* c, const tg::v1::ListServicesRequest* q,
                                   tg::v1::ListServicesResponse* a) {
  return Defer(c, InternalRpc::kConfigRead,
               [=, this] { return store_.ListServices(q->gateway_id(), a); });
}
R* ConfigServiceImpl::UpdateService(C* c, const tg::v1::UpdateServiceRequest* q,
                                    tg::v1::ServiceResult* a) {
  return Defer(c, InternalRpc::kConfigWrite,
               [=, this] { return store_.UpdateService(q->service(), a, Bounds(c)); });
}
R* ConfigServiceImpl::DeleteService(C* c, const tg::v1::DeleteServiceRequest* q,
                                    tg::v1::DeleteResult* a) {
  return Defer(c, InternalRpc::kConfigWrite,
               [=, this] { return store_.DeleteService(q->gateway_id(), q->id(), a, Bounds(c)); });
}

R* ConfigServiceImpl::CreateRule(C* c, const tg::v1::CreateRuleRequest* q, tg::v1::RuleResult* a) {
  return Defer(c, InternalRpc::kConfigWrite, [=, this] {
    return store_.CreateRule(q->rule(), a, Bounds(c, q->idempotency_key()));
  });
}
R* ConfigServiceImpl::GetRule(C* c, const tg::v1::GetRuleRequest* q, tg::v1::RuleResult* a) {
  return Defer(c, InternalRpc::kConfigRead,
               [=, this] { return store_.GetRule(q->gateway_id(), q->id(), a); });
}
R* ConfigServiceImpl::ListRules(C* c, const tg::v1::ListRulesRequest* q,
                                tg::v1::ListRulesResponse* a) {
  return Defer(c, InternalRpc::kConfigRead,
               [=, this] { return store_.ListRules(q->gateway_id(), a); });
}
R* ConfigServiceImpl::UpdateRule(C* c, const tg::v1::UpdateRuleRequest* q, tg::v1::RuleResult* a) {
  return Defer(c, InternalRpc::kConfigWrite,
               [=, this] { return store_.UpdateRule(q->rule(), a, Bounds(c)); });
}
R* ConfigServiceImpl::DeleteRule(C* c, const tg::v1::DeleteRuleRequest* q,
                                 tg::v1::DeleteResult* a) {
  return Defer(c, InternalRpc::kConfigWrite,
               [=, this] { return store_.DeleteRule(q->gateway_id(), q->id(), a, Bounds(c)); });
}

grpc::ServerWriteReactor<tg::v1::WatchEvent>* ConfigServiceImpl::Watch(
    C* c, const tg::v1::WatchRequest* q) {
  // Clear credentials only for tg-adapter, which calls the providers with them.
  const InternalRpc rpc =
      q->include_credentials() ? InternalRpc::kConfigWatchCredentials : InternalRpc::kConfigWatch;
  if (grpc::Status denied = AuthorizeCaller(*c, rpc); !denied.ok()) {
    return RejectStream<tg::v1::WatchEvent>(std::move(denied));
  }
  return new WatchReactor(feed_, workers_, store_.box(), *q, options_);
}

}  // namespace tg::config
