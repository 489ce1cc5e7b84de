#include "tg/common/grpc_channel.h"

namespace tg {

grpc::ChannelArguments InternalChannelArguments() {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  return args;
}

std::shared_ptr<grpc::Channel> DialInternal(const std::string& address) {
  return DialInternal(address, InternalChannelArguments());
}

std::shared_ptr<grpc::Channel> DialInternal(const std::string& address,
                                            const grpc::ChannelArguments& args) {
  return grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args);
}

}  // namespace tg
