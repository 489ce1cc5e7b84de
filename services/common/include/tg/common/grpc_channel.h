#pragma once

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

namespace tg {

// Channel arguments for calls between TrustGate services. gRPC's default
// reconnect backoff starts at 1 s and grows to 2 minutes: a peer restarted
// after an outage would stay unused, every call failing fast, for as long as
// the backoff had grown. Here attempts start at 100 ms and never wait more
// than 1 s, so a returning service is found within about a second (a connect
// attempt on a LAN or loopback costs next to nothing). Messages up to
// limits::kMaxGrpcMessageBytes are received and sent (tg/common/limits.h).
grpc::ChannelArguments InternalChannelArguments();

// An insecure channel to another TrustGate service with those arguments.
std::shared_ptr<grpc::Channel> DialInternal(const std::string& address);
std::shared_ptr<grpc::Channel> DialInternal(const std::string& address,
                                            const grpc::ChannelArguments& args);

}  // namespace tg
