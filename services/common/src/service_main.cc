#include "tg/common/service_main.h"

#include <cstdio>

#include "tg/common/grpc_server.h"
#include "tg/common/log.h"

namespace tg {

std::unique_ptr<ServiceMain> ServiceMain::Start(int argc, char** argv, ServiceSpec spec,
                                                int* exit_code) {
  BlockTerminationSignals();
  DisableMutexDeadlockDetection();
  log::SetService(std::string(spec.name));
  auto parsed =
      Flags::ForService(argc, argv, spec.name, spec.summary, std::move(spec.options), exit_code);
  if (!parsed) return nullptr;
  std::unique_ptr<ServiceMain> svc(new ServiceMain(spec.name, std::move(*parsed)));
  const Flags& flags = svc->flags_;
  log::SetLevel(flags.String("log-level"));
  if (spec.check) {
    if (int refused = spec.check(flags); refused != 0) {
      *exit_code = refused;
      return nullptr;
    }
  }

  svc->trimmer_ = std::make_unique<MemoryTrimmer>(kMemoryTrimInterval, kMemoryTrimMinFree);
  std::string error;
  svc->telemetry_ = Telemetry::Start(spec.name, flags, spec.metrics_flag,
                                     flags.String(spec.metrics_flag), &error);
  if (!svc->telemetry_) {
    log::Error("cannot start telemetry", {{"error", error}});
    *exit_code = 1;
    return nullptr;
  }
  auto tls = InternalTlsFromFlags(flags, spec.identity, &error);
  if (!tls) {
    log::Error("cannot set up internal gRPC TLS", {{"error", error}});
    std::fprintf(stderr, "%s: %s\n", svc->name_.c_str(), error.c_str());
    *exit_code = 2;
    return nullptr;
  }
  svc->tls_ = std::move(*tls);
  if (svc->tls_.insecure) {
    log::Warn("internal gRPC without TLS (--grpc-insecure=true): for local experiments only");
  }
  return svc;
}

ServiceMain::~ServiceMain() { log::Info(name_ + " stopped"); }

void ServiceMain::Serving(std::shared_ptr<const std::atomic<bool>> serving) {
  telemetry_->ReportServing(std::move(serving));
}

void ServiceMain::WaitForTermination() { WaitForTerminationSignal(); }

}  // namespace tg
