#pragma once

#include <chrono>

#include "tg/common/internal_authz.h"
#include "tg/common/limits.h"
#include "tg/common/worker_pool.h"
#include "tg/config/config_feed.h"
#include "tg/config/config_store.h"
#include "tg/v1/config.grpc.pb.h"

namespace tg::config {

struct ConfigServiceOptions {
  std::chrono::seconds heartbeat{5};  // Watch sends one when nothing changed for this long
  // A snapshot whose encoding is larger goes out as snapshot_part events of
  // about this size (config.proto), so that any configuration fits.
  size_t watch_part_bytes = limits::kWatchPartBytes;
};

// tg.v1.ConfigService on the callback API. Unary RPCs run their (blocking)
// store calls on the worker pool and finish from there; Watch streams are fed
// by the ConfigFeed.
class ConfigServiceImpl final : public tg::v1::ConfigService::CallbackService {
 public:
  ConfigServiceImpl(ConfigStore& store, ConfigFeed& feed, WorkerPool& workers,
                    ConfigServiceOptions options = {});

  using Ctx = grpc::CallbackServerContext;
  using Reactor = grpc::ServerUnaryReactor;

  Reactor* CreateGateway(Ctx*, const tg::v1::CreateGatewayRequest*,
                         tg::v1::GatewayResult*) override;
  Reactor* GetGateway(Ctx*, const tg::v1::GetGatewayRequest*, tg::v1::GatewayResult*) override;
  Reactor* ListGateways(Ctx*, const tg::v1::ListGatewaysRequest*,
                        tg::v1::ListGatewaysResponse*) override;
  Reactor* UpdateGateway(Ctx*, const tg::v1::UpdateGatewayRequest*,
                         tg::v1::GatewayResult*) override;
  Reactor* DeleteGateway(Ctx*, const tg::v1::DeleteGatewayRequest*, tg::v1::DeleteResult*) override;

  Reactor* CreateUpstream(Ctx*, const tg::v1::CreateUpstreamRequest*,
                          tg::v1::UpstreamResult*) override;
  Reactor* GetUpstream(Ctx*, const tg::v1::GetUpstreamRequest*, tg::v1::UpstreamResult*) override;
  Reactor* ListUpstreams(Ctx*, const tg::v1::ListUpstreamsRequest*,
                         tg::v1::ListUpstreamsResponse*) override;
  Reactor* UpdateUpstream(Ctx*, const tg::v1::UpdateUpstreamRequest*,
                          tg::v1::UpstreamResult*) override;
  Reactor* DeleteUpstream(Ctx*, const tg::v1::DeleteUpstreamRequest*,
                          tg::v1::DeleteResult*) override;

  Reactor* CreateService(Ctx*, const tg::v1::CreateServiceRequest*,
                         tg::v1::ServiceResult*) override;
  Reactor* GetService(Ctx*, const tg::v1::GetServiceRequest*, tg::v1::ServiceResult*) override;
  Reactor* ListServices(Ctx*, const tg::v1::ListServicesRequest*,
                        tg::v1::ListServicesResponse*) override;
  Reactor* UpdateService(Ctx*, const tg::v1::UpdateServiceRequest*,
                         tg::v1::ServiceResult*) override;
  Reactor* DeleteService(Ctx*, const tg::v1::DeleteServiceRequest*, tg::v1::DeleteResult*) override;

  Reactor* CreateRule(Ctx*, const tg::v1::CreateRuleRequest*, tg::v1::RuleResult*) override;
  Reactor* GetRule(Ctx*, const tg::v1::GetRuleRequest*, tg::v1::RuleResult*) override;
  Reactor* ListRules(Ctx*, const tg::v1::ListRulesRequest*, tg::v1::ListRulesResponse*) override;
  Reactor* UpdateRule(Ctx*, const tg::v1::UpdateRuleRequest*, tg::v1::RuleResult*) override;
  Reactor* DeleteRule(Ctx*, const tg::v1::DeleteRuleRequest*, tg::v1::DeleteResult*) override;

  grpc::ServerWriteReactor<tg::v1::WatchEvent>* Watch(Ctx*, const tg::v1::WatchRequest*) override;

 private:
  template <typename Fn>
  Reactor* Defer(Ctx* ctx, InternalRpc rpc, Fn fn);

  ConfigStore& store_;
  ConfigFeed& feed_;
  WorkerPool& workers_;
  ConfigServiceOptions options_;
};

}  // namespace tg::config
