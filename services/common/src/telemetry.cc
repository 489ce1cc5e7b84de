#include "tg/common/telemetry.h"

#include "tg/common/log.h"
#include "tg/common/memory_trim.h"
#include "tg/common/trace.h"

namespace tg {
namespace {

void RegisterCommonMetrics() {
  auto& r = metrics::Registry::Default();
  r.AddCallbackCounter("tg_trace_spans_exported_total", "Spans the collector accepted.",
                       [] { return static_cast<double>(trace::Stats().exported); });
  r.AddCallbackCounter("tg_trace_spans_dropped_total",
                       "Spans dropped: export queue full or export failed.",
                       [] { return static_cast<double>(trace::Stats().dropped); });
  r.AddCallbackCounter("tg_trace_export_failures_total",
                       "Span export requests that failed (network, timeout, non-2xx).",
                       [] { return static_cast<double>(trace::Stats().failed_exports); });
  r.AddCallbackCounter("tg_malloc_trims_total",
                       "Times the heap freed after a burst was given back to the kernel.",
                       [] { return static_cast<double>(MemoryTrimmer::TotalTrims()); });
  r.AddCallbackCounter("tg_log_lines_total", "Log lines written.",
                       [] { return static_cast<double>(log::Stats().written); });
  r.AddCallbackCounter("tg_log_lines_dropped_total",
                       "Log lines that could not be written (stderr closed or full).",
                       [] { return static_cast<double>(log::Stats().dropped); });
}

}  // namespace

std::unique_ptr<Telemetry> Telemetry::Start(std::string_view service, const Flags& flags,
                                            const std::string& metrics_flag,
                                            const std::string& default_metrics_listen,
                                            std::string* error) {
  std::unique_ptr<Telemetry> t(new Telemetry());
  trace::TracerOptions tracing = trace::OptionsFromEnv(service);
  trace::Init(tracing);
  RegisterCommonMetrics();

  metrics::MetricsServerOptions m;
  m.listen = flags.String(metrics_flag, default_metrics_listen);
  if (!m.listen.empty() && m.listen != "off") {
    t->server_ = metrics::MetricsServer::Start(m, error);
    if (!t->server_) {
      *error = "--" + metrics_flag + " " + m.listen + ": " + *error;
      trace::Shutdown();
      return nullptr;
    }
  }
  log::Info("telemetry started", {{"metrics_port", std::to_string(t->metrics_port())},
                                  {"traces", tracing.endpoint.empty() ? "off" : "otlp/http json"},
                                  {"sample_ratio", std::to_string(tracing.sample_ratio)}});
  return t;
}

std::string_view GenAiSystemName(std::string_view provider) {
  if (provider == "gemini") return "gcp.gemini";
  if (provider == "bedrock") return "aws.bedrock";
  if (provider == "azure") return "az.ai.openai";
  return provider;
}

Telemetry::~Telemetry() {
  if (server_) server_->Stop();
  trace::Shutdown();
}

}  // namespace tg
