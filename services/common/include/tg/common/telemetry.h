#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <string_view>

#include "tg/common/flags.h"
#include "tg/common/metrics_server.h"

namespace tg {

// A service's observability, started once by main() and stopped on
// destruction: span export (OpenTelemetry's OTEL_* environment, see
// trace.h) and the Prometheus listener (the flag `metrics_flag`, e.g.
// --balancer-metrics-listen / TG_BALANCER_METRICS_LISTEN; "off" disables it). Also registers what
// every service exposes: span export and log-line counters.
class Telemetry {
 public:
  // Null with *error set when the metrics port cannot be bound.
  static std::unique_ptr<Telemetry> Start(std::string_view service, const Flags& flags,
                                          const std::string& metrics_flag,
                                          const std::string& default_metrics_listen,
                                          std::string* error);
  ~Telemetry();  // flushes queued spans (bounded) and stops the listener

  int metrics_port() const { return server_ ? server_->port() : 0; }

  // The metrics port's /healthz follows *serving (GrpcServer::serving_state()).
  void ReportServing(std::shared_ptr<const std::atomic<bool>> serving) {
    if (server_) server_->SetServingState(std::move(serving));
  }

 private:
  Telemetry() = default;
  std::unique_ptr<metrics::MetricsServer> server_;
};

// OpenTelemetry's gen_ai.system value for a TrustGate provider name
// ("gemini" → "gcp.gemini", "bedrock" → "aws.bedrock", "azure" →
// "az.ai.openai"; others as they are).
std::string_view GenAiSystemName(std::string_view provider);

}  // namespace tg
