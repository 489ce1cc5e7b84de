#include "tg/adapter/service/adapter_service.h"

#include "tg/common/internal_authz.h"

namespace tg::adapter {
namespace {

// One Invoke stream: the gRPC half of an Invocation.
class InvokeReactor final : public grpc::ServerWriteReactor<tg::v1::InvokeEvent>, public EventSink {
 public:
  InvokeReactor(const tg::v1::InvokeRequest& req, ConfigWatcher& config,
                const LiveTargetDirectory& directory, http::HttpClient& client,
                EntraTokenSource* entra, WorkerPool& workers, const AdapterServiceOptions& options,
                std::optional<trace::TraceContext> trace_parent)
      : config_(config), req_(req) {
    auto begin = [this, &directory, &client, entra, &workers, options, trace_parent] {
      inv_ = std::make_shared<Invocation>(
          req_, directory.current()->Find(req_.upstream_id(), req_.target_id()), client, entra,
          workers, options.invocation, this, trace_parent);
      inv_->Start();
    };
    if (config_.revision() >= req_.min_config_revision()) {
      begin();
      return;
    }
    // This replica has not yet seen the config the caller acted on (a target
    // or credentials just written): wait for it, briefly.
    {
      std::lock_guard lock(mu_);
      waiting_ = true;
    }
    // Not under mu_: WaitForRevision may call back before it returns (the
    // revision arrived meanwhile, or the watch is stopped), and the callback
    // takes mu_.
    config_.WaitForRevision(req_.min_config_revision(),
                            std::chrono::steady_clock::now() + options.config_wait,
                            [this, begin](bool) {
                              std::lock_guard lock(mu_);
                              waiting_ = false;
                              if (cancelled_) {
                                EndCancelled();
                                return;
                              }
                              begin();
                            });
  }

  void WriteEvent(const tg::v1::InvokeEvent* event) override { StartWrite(event); }
  void WriteLastEvent(const tg::v1::InvokeEvent* event, const grpc::Status& status) override {
    StartWriteAndFinish(event, grpc::WriteOptions(), status);
  }
  void FinishStream(const grpc::Status& status) override { Finish(status); }

  void OnWriteDone(bool ok) override { inv_->OnWriteDone(ok); }
  void OnCancel() override {
    std::shared_ptr<Invocation> inv;
    {
      std::lock_guard lock(mu_);
      cancelled_ = true;
      if (waiting_) return;  // the wait's callback ends the stream
      inv = inv_;
    }
    if (inv) inv->OnCancel();
  }
  void OnDone() override {
    if (inv_) inv_->Detach();
    delete this;
  }

 private:
  void EndCancelled() { Finish(grpc::Status::CANCELLED); }

  ConfigWatcher& config_;
  const tg::v1::InvokeRequest req_;
  std::mutex mu_;
  bool waiting_ = false;
  bool cancelled_ = false;
  std::shared_ptr<Invocation> inv_;
};

}  // namespace

AdapterServiceImpl::AdapterServiceImpl(ConfigWatcher& config, http::HttpClient& client,
                                       EntraTokenSource* entra, WorkerPool& workers,
                                       AdapterServiceOptions options)
    : config_(config),
      directory_(config),
      client_(client),
      entra_(entra),
      workers_(workers),
      options_(options) {}

grpc::ServerWriteReactor<tg::v1::InvokeEvent>* AdapterServiceImpl::Invoke(
    grpc::CallbackServerContext* ctx, const tg::v1::InvokeRequest* req) {
  if (grpc::Status denied = AuthorizeCaller(*ctx, InternalRpc::kAdapterInvoke); !denied.ok()) {
    return RejectStream<tg::v1::InvokeEvent>(std::move(denied));
  }
  return new InvokeReactor(*req, config_, directory_, client_, entra_, workers_, options_,
                           trace::Extract(ctx));
}

grpc::ServerUnaryReactor* AdapterServiceImpl::Probe(grpc::CallbackServerContext* ctx,
                                                    const tg::v1::ProbeRequest* req,
                                                    tg::v1::ProbeResponse* resp) {
  auto* reactor = ctx->DefaultReactor();
  if (grpc::Status denied = AuthorizeCaller(*ctx, InternalRpc::kAdapterProbe); !denied.ok()) {
    reactor->Finish(std::move(denied));
    return reactor;
  }
  if (req->upstream_id().empty() || req->target().id().empty()) {
    reactor->Finish(
        grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "upstream_id and target.id are required"));
    return reactor;
  }
  auto begin = [this, req, resp, reactor] {
    // The target as this replica's config has it, credentials included:
    // the request names it, the adapter's own copy says where it is.
    auto target = directory_.current()->Find(req->upstream_id(), req->target().id());
    if (target == nullptr) {
      resp->set_error_class("unknown_target");
      reactor->Finish(grpc::Status::OK);
      return;
    }
    RunProbe(client_, entra_, workers_, target->target, target->credentials, *req, options_.probe,
             [resp, reactor, target](tg::v1::ProbeResponse r) {
               *resp = std::move(r);
               reactor->Finish(grpc::Status::OK);
             });
  };
  if (config_.revision() >= req->min_config_revision()) {
    begin();
  } else {
    config_.WaitForRevision(req->min_config_revision(),
                            std::chrono::steady_clock::now() + options_.config_wait,
                            [begin](bool) { begin(); });
  }
  return reactor;
}

}  // namespace tg::adapter
