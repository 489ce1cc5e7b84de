#pragma once

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>
#include <string_view>

#include "tg/common/internal_tls.h"

namespace tg {

// Channel arguments for calls between TrustGate services. gRPC's default
// reconnect backoff starts at 1 s and grows to 2 minutes: a peer restarted
// after an outage would stay unused, every call failing fast, for as long as
// the backoff had grown. Here attempts start at 100 ms and never wait more
// than 1 s, so a returning service is found within about a second (a connect
// attempt on a LAN or loopback costs next to nothing). Messages up to
// limits::kMaxGrpcMessageBytes are received and sent (tg/common/limits.h).
grpc::ChannelArguments InternalChannelArguments();

// A channel to another TrustGate service with those arguments, over mutual
// TLS with `tls` (our certificate is the client's): the server must present a
// certificate from the CA naming `server_identity` ("tg-config", …), so a
// process holding another identity's certificate cannot stand in for it,
// whatever address it answers on. `tls` must not be empty (aborts: a wiring
// bug); InternalTls::Insecure() dials plaintext.
std::shared_ptr<grpc::Channel> DialInternal(const std::string& address,
                                            std::string_view server_identity,
                                            const InternalTls& tls);
std::shared_ptr<grpc::Channel> DialInternal(const std::string& address,
                                            std::string_view server_identity,
                                            const InternalTls& tls,
                                            const grpc::ChannelArguments& args);

}  // namespace tg
