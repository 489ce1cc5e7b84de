#pragma once

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "tg/common/grpc_channel.h"
#include "tg/common/internal_tls.h"
#include "tg/common/limits.h"

namespace tg {

struct GrpcServerOptions {
  std::string listen = "127.0.0.1:0";     // host:port; port 0 picks a free one
  std::vector<std::string> health_names;  // full service names reported by grpc.health.v1
  // Largest message received (a request) and sent (an answer or stream
  // event); tg/common/limits.h explains the figures.
  size_t max_receive_message_bytes = limits::kMaxGrpcMessageBytes;
  size_t max_send_message_bytes = limits::kMaxGrpcMessageBytes;
  std::chrono::seconds shutdown_grace{10};  // in-flight RPCs get this long on Shutdown
  // A server span for every unary RPC of the registered services, named
  // "<package>.<Service>/<Method>" and parented by the caller's traceparent
  // metadata (streams such as Watch and gRPC's own health and reflection
  // calls get none). For services whose handlers do not make their own.
  bool trace_unary_rpcs = false;
  // Mutual TLS with this process's identity (InternalTlsFromFlags), or
  // InternalTls::Insecure(). Required: Start refuses an empty one.
  InternalTls tls;
  // The pings clients may send (the same policy as InternalChannelArguments').
  InternalKeepalive keepalive;
};

// A gRPC server with grpc.health.v1 and server reflection, as every TrustGate
// service serves them.
class GrpcServer {
 public:
  // nullptr (and *error) when the address cannot be bound.
  static std::unique_ptr<GrpcServer> Start(const GrpcServerOptions& options,
                                           const std::vector<grpc::Service*>& services,
                                           std::string* error);
  ~GrpcServer();

  int port() const { return port_; }
  grpc::Server* server() { return server_.get(); }

  // Health of the whole server ("") and of every name in health_names.
  void SetServing(bool serving);

  // The overall serving state, shared with whoever reports it elsewhere (the
  // metrics port's /healthz, for HTTP probes that cannot do mutual TLS).
  std::shared_ptr<const std::atomic<bool>> serving_state() const { return serving_; }

  // Health NOT_SERVING, then drain: in-flight RPCs get shutdown_grace, then
  // are cancelled. Idempotent.
  void Shutdown();

 private:
  GrpcServer() = default;
  GrpcServerOptions options_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  bool shut_down_ = false;
  std::shared_ptr<std::atomic<bool>> serving_ = std::make_shared<std::atomic<bool>>(false);
};

// Call first in main(), before any thread starts: SIGTERM/SIGINT are then
// delivered only to WaitForTerminationSignal.
void BlockTerminationSignals();
int WaitForTerminationSignal();

// Debian's Abseil keeps absl::Mutex deadlock detection on, which makes every
// lock gRPC takes maintain a global lock graph: a check meant for debug
// builds that costs a serving process measurable throughput
// (docs/BENCHMARKS.md). Every service's main() calls this first.
void DisableMutexDeadlockDetection();

}  // namespace tg
