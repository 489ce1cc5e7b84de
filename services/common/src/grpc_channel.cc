#include "tg/common/grpc_channel.h"

#include <cstdio>
#include <cstdlib>

#include "tg/common/limits.h"

namespace tg {

void ApplyClientKeepalive(grpc::ChannelArguments& args, const InternalKeepalive& keepalive) {
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, static_cast<int>(keepalive.ping_interval.count()));
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, static_cast<int>(keepalive.ping_timeout.count()));
  args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  // gRPC stops pinging after two pings without data by default: an idle
  // watch would then go unchecked.
  args.SetInt(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
}

void ApplyServerKeepalive(grpc::ServerBuilder& builder, const InternalKeepalive& keepalive) {
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS,
                             static_cast<int>(keepalive.ping_interval.count() / 2));
}

grpc::ChannelArguments InternalChannelArguments(const InternalKeepalive& keepalive) {
  grpc::ChannelArguments args;
  ApplyClientKeepalive(args, keepalive);
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  // The peer's largest message (a whole answer, a client body) must fit:
  // gRPC's default receive limit is 4 MiB.
  args.SetMaxReceiveMessageSize(static_cast<int>(limits::kMaxGrpcMessageBytes));
  args.SetMaxSendMessageSize(static_cast<int>(limits::kMaxGrpcMessageBytes));
  return args;
}

std::shared_ptr<grpc::Channel> DialInternal(const std::string& address,
                                            std::string_view server_identity,
                                            const InternalTls& tls) {
  return DialInternal(address, server_identity, tls, InternalChannelArguments());
}

std::shared_ptr<grpc::Channel> DialInternal(const std::string& address,
                                            std::string_view server_identity,
                                            const InternalTls& tls,
                                            const grpc::ChannelArguments& args) {
  if (tls.empty() || (!tls.insecure && server_identity.empty())) {
    std::fprintf(stderr, "fatal: DialInternal(%s) without TLS credentials or server identity\n",
                 address.c_str());
    std::abort();
  }
  grpc::ChannelArguments dial = args;
  // The name the server's certificate must carry (checked against its DNS
  // subject alternative name), whatever host the address names. It also
  // becomes the :authority of every call.
  if (!tls.insecure) dial.SetSslTargetNameOverride(std::string(server_identity));
  if (address.rfind("dns:", 0) == 0 || address.rfind("ipv4:", 0) == 0 ||
      address.rfind("ipv6:", 0) == 0) {
    // Several replicas behind one DNS name (a Kubernetes headless Service),
    // or listed (ipv4:10.0.0.1:50052,10.0.0.2:50052):
    // calls spread over every address it resolves to. A plain host:port
    // keeps pick_first, which after a lost connection queues the next call
    // while it reconnects instead of failing it during the reconnect backoff.
    dial.SetLoadBalancingPolicyName("round_robin");
  }
  return grpc::CreateCustomChannel(address, MakeChannelCredentials(tls), dial);
}

}  // namespace tg
