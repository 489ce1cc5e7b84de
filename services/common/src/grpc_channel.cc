#include "tg/common/grpc_channel.h"

#include "tg/common/limits.h"

namespace tg {

grpc::ChannelArguments InternalChannelArguments() {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  // The peer's largest message (a whole answer, a client body) must fit:
  // gRPC's default receive limit is 4 MiB.
  args.SetMaxReceiveMessageSize(static_cast<int>(limits::kMaxGrpcMessageBytes));
  args.SetMaxSendMessageSize(static_cast<int>(limits::kMaxGrpcMessageBytes));
  return args;
}

std::shared_ptr<grpc::Channel> DialInternal(const std::string& address) {
  return DialInternal(address, InternalChannelArguments());
}

std::shared_ptr<grpc::Channel> DialInternal(const std::string& address,
                                            const grpc::ChannelArguments& args) {
  if (address.rfind("dns:", 0) == 0 || address.rfind("ipv4:", 0) == 0 ||
      address.rfind("ipv6:", 0) == 0) {
    // Several replicas behind one DNS name (a Kubernetes headless Service),
    // or listed (ipv4:10.0.0.1:50052,10.0.0.2:50052):
    // calls spread over every address it resolves to. A plain host:port
    // keeps pick_first, which after a lost connection queues the next call
    // while it reconnects instead of failing it during the reconnect backoff.
    grpc::ChannelArguments balanced = args;
    balanced.SetLoadBalancingPolicyName("round_robin");
    return grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), balanced);
  }
  return grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args);
}

}  // namespace tg
