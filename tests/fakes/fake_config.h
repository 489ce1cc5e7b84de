#pragma once

#include <grpcpp/grpcpp.h>

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "tg/v1/config.grpc.pb.h"

namespace tg::fakes {

// tg-config's Watch (and GetGateway), as the services that follow it see it,
// for integration tests: one snapshot at a revision, credentials cleared
// unless the watcher asks for them, then whatever the test pushes. The one
// fake tg-config of the tests (a test that needs tg-config's own logic runs
// the real service).
class FakeConfigService final : public tg::v1::ConfigService::Service {
 public:
  FakeConfigService() = default;
  explicit FakeConfigService(tg::v1::ConfigSnapshot snapshot, int64_t revision = 3);
  // The snapshot's JSON (the protobuf JSON mapping); a parse error fails the test.
  static tg::v1::ConfigSnapshot SnapshotFromJson(const std::string& json);

  grpc::Status Watch(grpc::ServerContext* ctx, const tg::v1::WatchRequest* req,
                     grpc::ServerWriter<tg::v1::WatchEvent>* writer) override;
  // The snapshot's gateway of that id, else NOT_FOUND.
  grpc::Status GetGateway(grpc::ServerContext*, const tg::v1::GetGatewayRequest* req,
                          tg::v1::GatewayResult* resp) override;

  // What a Watch that starts from now on gets first (earlier pushes included).
  void SetSnapshot(tg::v1::ConfigSnapshot snapshot, int64_t revision);
  // An event for every open Watch (and any later one, after its snapshot).
  void Push(tg::v1::WatchEvent event);
  // Ends every Watch (a server shutting down waits for its streams).
  void Stop();
  int watches() const;  // Watch calls so far

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  tg::v1::ConfigSnapshot snapshot_;
  int64_t revision_ = 0;
  std::vector<tg::v1::WatchEvent> pushed_;
  int watches_ = 0;
  bool stopping_ = false;
};

}  // namespace tg::fakes
