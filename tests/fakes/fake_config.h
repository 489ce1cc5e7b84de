#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "tg/v1/config.grpc.pb.h"

namespace tg::fakes {

// tg-config as the services that call it see it: the one fake tg-config of
// the tests (a test that needs tg-config's own logic runs the real service
// against the test PostgreSQL, as config_it_test does).
//
// State: a snapshot (gateways, upstreams, services, rules) at a revision,
// set whole (constructor, SetSnapshot) or through the admin RPCs tg-edge
// transcodes (gateways and upstreams in full, ListServices, CreateRule); a
// write takes the next revision, changes the state and is published as a
// change. Watch sends the state as a snapshot (credentials cleared unless
// the watcher asks for them), then every change published or pushed after
// it, in order, and heartbeats when idle if SetHeartbeat asked for them.
//
// Faults: FailNext fails a method's next call; SetPublishDelay holds
// published changes back, SetPublish(false) never sends them; EndStreams
// ends every open Watch (as a restarting tg-config would); Stop ends them
// and refuses new ones.
class FakeConfigService final : public tg::v1::ConfigService::Service {
 public:
  FakeConfigService() = default;
  explicit FakeConfigService(tg::v1::ConfigSnapshot snapshot, int64_t revision = 3);
  // The snapshot's JSON (the protobuf JSON mapping); a parse error fails the test.
  static tg::v1::ConfigSnapshot SnapshotFromJson(const std::string& json);

  // The state a Watch that starts from now on gets first; what was pushed
  // from here on follows it.
  void SetSnapshot(tg::v1::ConfigSnapshot snapshot, int64_t revision);
  // An event for every open Watch (and any later one, after its snapshot).
  // The state is left as it is.
  void Push(tg::v1::WatchEvent event);
  void SetHeartbeat(std::chrono::milliseconds every);  // 0 (the default): none
  void FailNext(const std::string& method, grpc::Status status);
  void SetPublishDelay(std::chrono::milliseconds delay);
  void SetPublish(bool publish);
  void EndStreams();
  void Stop();

  int64_t revision() const;  // of the last write, snapshot or push
  int watches() const;       // Watch calls so far
  std::vector<tg::v1::WatchRequest> watch_requests() const;
  std::optional<tg::v1::CreateUpstreamRequest> last_upstream_create() const;
  std::optional<tg::v1::UpdateUpstreamRequest> last_upstream_update() const;

  grpc::Status Watch(grpc::ServerContext* ctx, const tg::v1::WatchRequest* req,
                     grpc::ServerWriter<tg::v1::WatchEvent>* writer) override;

  grpc::Status CreateGateway(grpc::ServerContext*, const tg::v1::CreateGatewayRequest* req,
                             tg::v1::GatewayResult* resp) override;
  grpc::Status GetGateway(grpc::ServerContext*, const tg::v1::GetGatewayRequest* req,
                          tg::v1::GatewayResult* resp) override;
  grpc::Status ListGateways(grpc::ServerContext*, const tg::v1::ListGatewaysRequest* req,
                            tg::v1::ListGatewaysResponse* resp) override;
  grpc::Status UpdateGateway(grpc::ServerContext*, const tg::v1::UpdateGatewayRequest* req,
                             tg::v1::GatewayResult* resp) override;
  grpc::Status DeleteGateway(grpc::ServerContext*, const tg::v1::DeleteGatewayRequest* req,
                             tg::v1::DeleteResult* resp) override;
  grpc::Status CreateUpstream(grpc::ServerContext*, const tg::v1::CreateUpstreamRequest* req,
                              tg::v1::UpstreamResult* resp) override;
  grpc::Status GetUpstream(grpc::ServerContext*, const tg::v1::GetUpstreamRequest* req,
                           tg::v1::UpstreamResult* resp) override;
  grpc::Status ListUpstreams(grpc::ServerContext*, const tg::v1::ListUpstreamsRequest* req,
                             tg::v1::ListUpstreamsResponse* resp) override;
  grpc::Status UpdateUpstream(grpc::ServerContext*, const tg::v1::UpdateUpstreamRequest* req,
                              tg::v1::UpstreamResult* resp) override;
  grpc::Status DeleteUpstream(grpc::ServerContext*, const tg::v1::DeleteUpstreamRequest* req,
                              tg::v1::DeleteResult* resp) override;
  grpc::Status ListServices(grpc::ServerContext*, const tg::v1::ListServicesRequest* req,
                            tg::v1::ListServicesResponse* resp) override;
  grpc::Status CreateRule(grpc::ServerContext*, const tg::v1::CreateRuleRequest* req,
                          tg::v1::RuleResult* resp) override;

 private:
  using Clock = std::chrono::steady_clock;
  struct Logged {
    tg::v1::WatchEvent event;
    Clock::time_point release_at;
  };

  // The rest are called with mu_ held.
  std::optional<grpc::Status> Injected(const std::string& method);
  // A write's change: the next revision, published unless SetPublish(false).
  int64_t Publish(const tg::v1::ConfigChange& change);
  std::string NextId(const std::string& prefix) { return prefix + std::to_string(++ids_); }

  mutable std::mutex mu_;
  std::condition_variable cv_;
  tg::v1::ConfigSnapshot state_;
  int64_t revision_ = 0;        // of the last write, snapshot or push
  int64_t state_revision_ = 0;  // of the state
  size_t state_end_ = 0;        // log_ entries the state already holds
  std::vector<Logged> log_;
  int ids_ = 0;
  bool publish_ = true;
  bool stopping_ = false;
  uint64_t stream_generation_ = 0;
  std::chrono::milliseconds publish_delay_{0};
  std::chrono::milliseconds heartbeat_{0};
  std::map<std::string, grpc::Status> failures_;
  int watches_ = 0;
  std::vector<tg::v1::WatchRequest> watch_requests_;
  std::optional<tg::v1::CreateUpstreamRequest> last_upstream_create_;
  std::optional<tg::v1::UpdateUpstreamRequest> last_upstream_update_;
};

}  // namespace tg::fakes
