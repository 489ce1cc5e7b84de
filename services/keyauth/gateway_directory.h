#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <memory>
#include <string>

#include "tg/v1/config.grpc.pb.h"

namespace tg::keyauth {

// Whether a gateway exists: keys may only be created for one. A seam so that
// tests need no tg-config.
class GatewayDirectory {
 public:
  virtual ~GatewayDirectory() = default;
  // OK, NOT_FOUND "gateway not found", or UNAVAILABLE. Blocks: worker threads only.
  virtual grpc::Status Exists(const std::string& gateway_id) = 0;
};

// Asks tg-config (ConfigService/GetGateway).
class ConfigGatewayDirectory final : public GatewayDirectory {
 public:
  explicit ConfigGatewayDirectory(std::shared_ptr<grpc::Channel> channel,
                                  std::chrono::milliseconds deadline = std::chrono::seconds(2));
  grpc::Status Exists(const std::string& gateway_id) override;

 private:
  std::unique_ptr<tg::v1::ConfigService::Stub> stub_;
  std::chrono::milliseconds deadline_;
};

}  // namespace tg::keyauth
