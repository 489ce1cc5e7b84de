#include "tg/keyauth/gateway_directory.h"

#include "tg/common/log.h"

namespace tg::keyauth {

ConfigGatewayDirectory::ConfigGatewayDirectory(std::shared_ptr<grpc::Channel> channel,
                                               std::chrono::milliseconds deadline)
    : stub_(tg::v1::ConfigService::NewStub(std::move(channel))), deadline_(deadline) {}

grpc::Status ConfigGatewayDirectory::Exists(const std::string& gateway_id) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + deadline_);
  tg::v1::GetGatewayRequest req;
  req.set_id(gateway_id);
  tg::v1::GatewayResult resp;
  grpc::Status st = stub_->GetGateway(&ctx, req, &resp);
  switch (st.error_code()) {
    case grpc::StatusCode::OK:
      return grpc::Status::OK;
    case grpc::StatusCode::NOT_FOUND:
    case grpc::StatusCode::INVALID_ARGUMENT:
      return grpc::Status(grpc::StatusCode::NOT_FOUND, "gateway not found");
    default:
      log::Warn("tg-config unavailable for a gateway lookup",
                {{"code", std::to_string(st.error_code())}, {"error", st.error_message()}});
      return grpc::Status(grpc::StatusCode::UNAVAILABLE, "config service unavailable");
  }
}

}  // namespace tg::keyauth
