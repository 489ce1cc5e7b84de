#pragma once

#include <memory>

#include "tg/adapter/http/http_client.h"
#include "tg/adapter/service/auth.h"
#include "tg/adapter/service/invocation.h"
#include "tg/adapter/service/probe.h"
#include "tg/adapter/service/target_directory.h"
#include "tg/common/config_watcher.h"
#include "tg/common/worker_pool.h"
#include "tg/v1/adapter.grpc.pb.h"

namespace tg::adapter {

struct AdapterServiceOptions {
  InvocationOptions invocation;
  // How long an Invoke waits for this replica's config to reach the caller's
  // min_config_revision before going on with what it has.
  std::chrono::milliseconds config_wait{2000};
  ProbeOptions probe;
};

// tg.v1.ProviderAdapterService. Targets and their credentials come from
// tg-config's Watch (include_credentials), resolved into a TargetDirectory on
// each change and found by upstream and target id, or by service id for
// endpoint services; an Invoke carries only the ids.
class AdapterServiceImpl final : public tg::v1::ProviderAdapterService::CallbackService {
 public:
  AdapterServiceImpl(ConfigWatcher& config, http::HttpClient& client, EntraTokenSource* entra,
                     WorkerPool& workers, AdapterServiceOptions options = {});

  grpc::ServerWriteReactor<tg::v1::InvokeEvent>* Invoke(grpc::CallbackServerContext* ctx,
                                                        const tg::v1::InvokeRequest* req) override;
  // One active health probe (tg-balancer only). An unknown target is a
  // healthy=false answer ("unknown_target"), not an error: the balancer's
  // config may be a moment ahead of or behind this replica's.
  grpc::ServerUnaryReactor* Probe(grpc::CallbackServerContext* ctx, const tg::v1::ProbeRequest* req,
                                  tg::v1::ProbeResponse* resp) override;

 private:
  ConfigWatcher& config_;
  LiveTargetDirectory directory_;
  http::HttpClient& client_;
  EntraTokenSource* const entra_;
  WorkerPool& workers_;
  const AdapterServiceOptions options_;
};

}  // namespace tg::adapter
