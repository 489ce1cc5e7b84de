#pragma once

// What every service executable does around its own wiring, written once:
//
//   int main(int argc, char** argv) {
//     int exit_code = 0;
//     auto svc = tg::ServiceMain::Start(argc, argv, {...}, &exit_code);
//     if (!svc) return exit_code;
//     … the service's own parts, from svc->flags() and svc->tls() …
//     svc->Serving(server->serving_state());
//     svc->WaitForTermination();
//     … its shutdown steps, in its order …
//   }
//
// Start: termination signals blocked (so that WaitForTermination gets them),
// Abseil's mutex deadlock detection off, flags parsed with --help (exit 0)
// and refusals (exit 2), the log's service name and level, telemetry (span
// export and the /metrics listener; exit 1 when its port cannot be bound),
// internal gRPC TLS for the service's identity (exit 2 without usable
// certificates; a warning when --grpc-insecure). Telemetry stops last, when
// the ServiceMain goes.

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "tg/common/flags.h"
#include "tg/common/internal_tls.h"
#include "tg/common/memory_trim.h"
#include "tg/common/telemetry.h"

namespace tg {

struct ServiceSpec {
  std::string_view name;     // "tg-adapter": the program, the log's service, the spans' service
  std::string_view summary;  // one line for --help
  std::vector<FlagSpec> options;
  std::string metrics_flag;   // its /metrics listen option, e.g. "adapter-metrics-listen"
  std::string_view identity;  // its internal TLS identity (tg/common/internal_tls.h)
  // Optional: refuses options that make no sense before anything starts
  // (it prints why); returns the exit code, 0 to go on.
  std::function<int(const Flags&)> check = nullptr;
};

class ServiceMain {
 public:
  // nullptr when the process should exit now, with its exit code in
  // *exit_code (0 after --help).
  static std::unique_ptr<ServiceMain> Start(int argc, char** argv, ServiceSpec spec,
                                            int* exit_code);
  ~ServiceMain();

  const Flags& flags() const { return flags_; }
  const InternalTls& tls() const { return tls_; }
  std::string_view name() const { return name_; }

  // The metrics port's /healthz follows *serving (GrpcServer::serving_state()).
  void Serving(std::shared_ptr<const std::atomic<bool>> serving);

  // Blocks until SIGTERM or SIGINT.
  void WaitForTermination();

 private:
  ServiceMain(std::string_view name, Flags flags) : name_(name), flags_(std::move(flags)) {}

  std::string name_;
  Flags flags_;
  InternalTls tls_;
  std::unique_ptr<MemoryTrimmer> trimmer_;  // heap back to the kernel after bursts
  std::unique_ptr<Telemetry> telemetry_;
};

}  // namespace tg
