#include "tg/balancer/adapter_probe_client.h"

#include <utility>

namespace tg::balancer {

struct AdapterProbeClient::Call {
  grpc::ClientContext context;
  tg::v1::ProbeRequest request;
  tg::v1::ProbeResponse response;
};

AdapterProbeClient::AdapterProbeClient(std::shared_ptr<grpc::Channel> channel,
                                       std::chrono::milliseconds timeout)
    : stub_(tg::v1::ProviderAdapterService::NewStub(std::move(channel))), timeout_(timeout) {}

AdapterProbeClient::~AdapterProbeClient() { CancelAll(); }

void AdapterProbeClient::Probe(const ProbeTask& task, std::function<void(ProbeOutcome)> done) {
  auto* call = new Call;
  call->context.set_deadline(std::chrono::system_clock::now() + timeout_);
  call->request.set_upstream_id(task.upstream_id);
  *call->request.mutable_target() = task.target;
  call->request.set_path(task.path);
  call->request.mutable_headers()->insert(task.headers.begin(), task.headers.end());
  call->request.set_min_config_revision(task.min_config_revision);
  {
    std::lock_guard lock(mu_);
    calls_.insert(call);
  }
  stub_->async()->Probe(&call->context, &call->request, &call->response,
                        [this, call, done = std::move(done)](grpc::Status status) {
                          {
                            std::lock_guard lock(mu_);
                            calls_.erase(call);
                          }
                          ProbeOutcome outcome;
                          if (status.ok()) {
                            outcome.answered = true;
                            outcome.healthy = call->response.healthy();
                            outcome.http_status = call->response.http_status();
                            outcome.error_class = call->response.error_class();
                          } else {
                            outcome.error_class = "adapter: " + std::to_string(status.error_code());
                          }
                          delete call;
                          done(std::move(outcome));
                        });
}

void AdapterProbeClient::CancelAll() {
  std::lock_guard lock(mu_);
  for (Call* call : calls_) call->context.TryCancel();
}

}  // namespace tg::balancer
