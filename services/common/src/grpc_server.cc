#include "tg/common/grpc_server.h"

#include <absl/synchronization/mutex.h>
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/support/server_interceptor.h>

#include <csignal>

#include "tg/common/log.h"
#include "tg/common/trace.h"

namespace tg {
namespace {

using grpc::experimental::InterceptionHookPoints;

// One server span per unary RPC: started when the caller's metadata arrives,
// ended with the status.
class TracingInterceptor final : public grpc::experimental::Interceptor {
 public:
  explicit TracingInterceptor(const char* method) : method_(method) {}

  void Intercept(grpc::experimental::InterceptorBatchMethods* batch) override {
    if (batch->QueryInterceptionHookPoint(InterceptionHookPoints::POST_RECV_INITIAL_METADATA)) {
      std::optional<trace::TraceContext> parent;
      if (const auto* metadata = batch->GetRecvInitialMetadata())
        parent = trace::Extract(*metadata);
      span_ = trace::Span::Start(method_, trace::SpanKind::kServer, parent);
      span_.SetAttribute("rpc.system", "grpc");
    }
    if (batch->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_STATUS)) {
      const grpc::Status status = batch->GetSendStatus();
      span_.SetAttribute("rpc.grpc.status_code", static_cast<int64_t>(status.error_code()));
      if (status.ok()) {
        span_.SetOk();
      } else {
        span_.SetError(status.error_message());
      }
      span_.End();
    }
    batch->Proceed();
  }

 private:
  const std::string_view method_;  // gRPC's, alive for the server's lifetime
  trace::Span span_;
};

class TracingInterceptorFactory final
    : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    std::string_view method = info->method() ? info->method() : "";
    if (info->type() != grpc::experimental::ServerRpcInfo::Type::UNARY) return nullptr;
    if (method.rfind("/grpc.", 0) == 0) return nullptr;  // health checks, reflection
    if (!method.empty() && method.front() == '/') method.remove_prefix(1);
    return new TracingInterceptor(method.data());
  }
};

}  // namespace

std::unique_ptr<GrpcServer> GrpcServer::Start(const GrpcServerOptions& options,
                                              const std::vector<grpc::Service*>& services,
                                              std::string* error) {
  if (options.tls.empty()) {
    *error = "no internal TLS credentials (GrpcServerOptions::tls)";
    return nullptr;
  }
  if (options.tls.insecure) {
    log::Warn(
        "gRPC server without TLS (--grpc-insecure=true): any client reaches every RPC; "
        "for local experiments only",
        {{"listen", options.listen}});
  }
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  std::unique_ptr<GrpcServer> s(new GrpcServer());
  s->options_ = options;
  grpc::ServerBuilder builder;
  builder.AddListeningPort(options.listen, MakeServerCredentials(options.tls), &s->port_);
  builder.SetMaxReceiveMessageSize(static_cast<int>(options.max_receive_message_bytes));
  builder.SetMaxSendMessageSize(static_cast<int>(options.max_send_message_bytes));
  // Connections are recycled now and then (calls in flight, long watches
  // included, finish on the old one), so that clients re-resolve and find
  // replicas added since they connected.
  builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_MS, 5 * 60 * 1000);
  ApplyServerKeepalive(builder, options.keepalive);
  for (auto* svc : services) builder.RegisterService(svc);
  if (options.trace_unary_rpcs) {
    std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> factories;
    factories.push_back(std::make_unique<TracingInterceptorFactory>());
    builder.experimental().SetInterceptorCreators(std::move(factories));
  }
  s->server_ = builder.BuildAndStart();
  if (!s->server_ || s->port_ == 0) {
    *error = "cannot listen on " + options.listen;
    return nullptr;
  }
  s->SetServing(true);
  return s;
}

GrpcServer::~GrpcServer() { Shutdown(); }

void GrpcServer::SetServing(bool serving) {
  serving_->store(serving);
  auto* health = server_->GetHealthCheckService();
  if (health == nullptr) return;
  health->SetServingStatus("", serving);
  for (const auto& name : options_.health_names) health->SetServingStatus(name, serving);
}

void GrpcServer::Shutdown() {
  if (shut_down_ || !server_) return;
  shut_down_ = true;
  SetServing(false);
  server_->Shutdown(std::chrono::system_clock::now() + options_.shutdown_grace);
  server_->Wait();
}

void DisableMutexDeadlockDetection() {
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
}

void BlockTerminationSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  std::signal(SIGPIPE, SIG_IGN);
}

int WaitForTerminationSignal() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  int sig = 0;
  sigwait(&set, &sig);
  log::Info("termination signal received, draining", {{"signal", std::to_string(sig)}});
  return sig;
}

}  // namespace tg
