#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <memory>
#include <string>
#include <string_view>

#include "tg/common/internal_tls.h"

namespace tg {

// Keepalive on the connections between TrustGate services, configured on
// both ends from one policy: a client pings an idle connection every
// ping_interval (calls or none, so a dead peer is noticed before the next
// call needs it) and drops it when an ack takes longer than ping_timeout; a
// server accepts pings as often as every ping_interval / 2. A server left at
// gRPC's defaults allows one ping per 5 minutes without calls and answers the
// third early one with GOAWAY "too_many_pings", failing whatever call races it.
struct InternalKeepalive {
  std::chrono::milliseconds ping_interval{20000};
  std::chrono::milliseconds ping_timeout{10000};
};
void ApplyClientKeepalive(grpc::ChannelArguments& args, const InternalKeepalive& keepalive);
void ApplyServerKeepalive(grpc::ServerBuilder& builder, const InternalKeepalive& keepalive);

// Channel arguments for calls between TrustGate services. gRPC's default
// reconnect backoff starts at 1 s and grows to 2 minutes: a peer restarted
// after an outage would stay unused, every call failing fast, for as long as
// the backoff had grown. Here attempts start at 100 ms and never wait more
// than 1 s, so a returning service is found within about a second (a connect
// attempt on a LAN or loopback costs next to nothing). Messages up to
// limits::kMaxGrpcMessageBytes are received and sent (tg/common/limits.h).
// Keepalive as `keepalive` says (the servers' GrpcServerOptions carry the
// same policy).
grpc::ChannelArguments InternalChannelArguments(const InternalKeepalive& keepalive = {});

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
