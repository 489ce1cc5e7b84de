#pragma once

#include <grpcpp/client_context.h>
#include <grpcpp/server_context.h>
#include <grpcpp/support/string_ref.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

// Distributed tracing: W3C trace context (`traceparent`) in and out, spans
// exported as OTLP/HTTP with JSON encoding to a collector (Jaeger's :4318).
//
//   main():   trace::Init(trace::OptionsFromEnv("tg-edge"));  …  trace::Shutdown();
//   request:  auto span = trace::Span::Start("Invoke", trace::SpanKind::kServer,
//                                            trace::Extract(ctx));
//             span.SetAttribute("tg.route", route);
//             trace::Inject(span.context(), &client_ctx);   // outgoing gRPC call
//             span.End();                                   // or let it go out of scope
//
// Spans are handed to one exporter thread through a bounded queue: End() never
// touches the network, a slow or absent collector costs the request path a
// mutex and a push, and what does not fit is dropped and counted (Stats()).
// A span that is not recorded (tracing off, or not sampled) allocates nothing
// but still has a valid context to propagate.
//
// Attributes and events are exported as given: callers never put prompts,
// completions, keys or other credentials in them.
namespace tg::trace {

struct TraceContext {
  std::array<uint8_t, 16> trace_id{};
  std::array<uint8_t, 8> span_id{};
  bool sampled = false;

  bool valid() const;              // both ids non-zero
  std::string TraceIdHex() const;  // 32 lowercase hex digits
  std::string SpanIdHex() const;   // 16 lowercase hex digits
};

// W3C Trace Context `traceparent`: "00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>".
// Version 00 must be exactly that; a later version (not ff) may append
// "-<more>" after the flags, which is ignored. Ids must be lowercase hex and
// non-zero. Surrounding spaces and tabs are ignored. nullopt on anything else.
std::optional<TraceContext> ParseTraceparent(std::string_view header);
// "00-<trace id>-<span id>-01" (sampled) or "-00".
std::string FormatTraceparent(const TraceContext& ctx);

// OTLP numbering.
enum class SpanKind { kInternal = 1, kServer = 2, kClient = 3, kProducer = 4, kConsumer = 5 };

struct TracerOptions {
  std::string service_name;  // resource attribute service.name
  // Full URL of the OTLP/HTTP traces endpoint, e.g. http://127.0.0.1:4318/v1/traces.
  // Empty: nothing is recorded or exported, but contexts are still created and propagated.
  std::string endpoint;
  // Fraction of new traces (root spans) sampled, chosen from the trace id so
  // every service deciding on the same trace agrees.
  double sample_ratio = 1.0;
  // true: a span with a parent follows the parent's sampled flag and only
  // roots use sample_ratio. false: every span is decided by sample_ratio.
  bool parent_based = true;
  size_t max_queue = 4096;  // spans waiting for export; beyond, dropped and counted
  size_t max_batch = 512;   // spans per export request
  std::chrono::milliseconds flush_interval{500};  // longest a span waits for a full batch
  // Per export request; also bounds how long Shutdown() spends flushing.
  std::chrono::milliseconds export_timeout{2000};
  // Extra request headers for the collector (an API key, a tenant). Secret:
  // never logged.
  std::vector<std::pair<std::string, std::string>> headers;
};

// Options from the standard OpenTelemetry environment variables:
//   OTEL_SDK_DISABLED=true                 tracing off (endpoint empty)
//   OTEL_SERVICE_NAME                      overrides `default_service`
//   OTEL_EXPORTER_OTLP_TRACES_ENDPOINT     used as is
//   OTEL_EXPORTER_OTLP_ENDPOINT            + "/v1/traces"
//                                          (neither set: tracing off)
//   OTEL_TRACES_SAMPLER                    always_on | always_off | traceidratio |
//                                          parentbased_always_on (default) |
//                                          parentbased_always_off | parentbased_traceidratio
//   OTEL_TRACES_SAMPLER_ARG                ratio in [0, 1] for the *traceidratio samplers;
//                                          when OTEL_TRACES_SAMPLER is unset it selects
//                                          parentbased_traceidratio
//   OTEL_EXPORTER_OTLP_TRACES_HEADERS,    "k1=v1,k2=v2" (values percent-encoded) sent with
//   OTEL_EXPORTER_OTLP_HEADERS             every export; the first set wins
//   OTEL_BSP_MAX_QUEUE_SIZE, OTEL_BSP_MAX_EXPORT_BATCH_SIZE, OTEL_BSP_SCHEDULE_DELAY (ms),
//   OTEL_BSP_EXPORT_TIMEOUT (ms)           the queue and batch settings
// Values it cannot use are logged (warn) and replaced by the defaults.
TracerOptions OptionsFromEnv(std::string_view default_service);

// OTEL_EXPORTER_OTLP_HEADERS' format: "k1=v1,k2=v2", names and values
// percent-decoded and trimmed; an entry without "=", with an invalid name or
// with a line break in its value is skipped (and logged by position only).
std::vector<std::pair<std::string, std::string>> ParseOtlpHeaders(std::string_view text);

// Applies `options` process-wide and starts the exporter thread when an
// endpoint is set. Call from main() before serving. Calling it again (tests)
// shuts the previous tracer down first; Stats() restart from zero.
void Init(TracerOptions options);
// Stops accepting spans, exports what is queued (all of it within
// export_timeout; the rest is counted as dropped) and joins the exporter
// thread. Safe when Init() was never called, and idempotent.
void Shutdown();

// After Shutdown(), exported + dropped = every recorded span that ended.
struct ExporterStats {
  uint64_t exported = 0;  // spans the collector accepted (2xx)
  // Spans lost: queue full, ended after Shutdown(), left over when Shutdown()
  // ran out of time, or in a failed export (they are not retried).
  uint64_t dropped = 0;
  uint64_t failed_exports = 0;  // export requests that failed (network, timeout, non-2xx)
};
ExporterStats Stats();  // since the last Init()

namespace detail {
struct SpanData;
struct SpanDataDeleter {
  void operator()(SpanData* data) const;
};
}  // namespace detail

// One operation. Move-only; a default-constructed Span is a no-op. Ended by
// End() or by its destructor. Not thread-safe: one thread at a time per span.
class Span {
 public:
  // `parent`: the caller's span context (local) or one extracted from a
  // request (remote); nullopt or invalid starts a new trace.
  static Span Start(std::string_view name, SpanKind kind,
                    const std::optional<TraceContext>& parent);

  Span() = default;
  Span(Span&& other) noexcept;
  Span& operator=(Span&& other) noexcept;  // ends the span it replaces
  Span(const Span&) = delete;
  Span& operator=(const Span&) = delete;
  ~Span();  // End()

  // Valid after Start() even when not recorded, so it can always be propagated.
  const TraceContext& context() const { return context_; }
  // Sampled, tracing on and not yet ended. Attributes, events and status of a
  // span that is not recording are ignored at no cost.
  bool recording() const { return data_ != nullptr; }

  // Renames the span (e.g. once the route is known: keep names low-cardinality).
  void SetName(std::string_view name);

  // A key set twice keeps the last value. Strings are cut at 4 KiB and
  // invalid UTF-8 is replaced; at most 128 attributes per span.
  void SetAttribute(std::string_view key, std::string_view value);
  void SetAttribute(std::string_view key, const char* value);
  void SetAttribute(std::string_view key, const std::string& value) {
    SetAttribute(key, std::string_view(value));
  }
  void SetAttribute(std::string_view key, int64_t value);
  void SetAttribute(std::string_view key, double value);
  void SetAttribute(std::string_view key, bool value);
  // Every other integer type (int, size_t, uint32_t, …) as int64.
  template <typename T>
    requires(std::is_integral_v<T> && !std::is_same_v<T, bool> && !std::is_same_v<T, int64_t>)
  void SetAttribute(std::string_view key, T value) {
    SetAttribute(key, static_cast<int64_t>(value));
  }

  // At most 64 events per span.
  void AddEvent(std::string_view name,
                std::initializer_list<std::pair<std::string_view, std::string_view>> attrs = {});

  // Status: the last call wins. The error message is exported as the status
  // message; keep it free of secrets like any attribute.
  void SetError(std::string_view message);
  void SetOk();

  // Stamps the end time and queues the span for export if recording. Never
  // blocks on the network. Idempotent.
  void End();

 private:
  TraceContext context_;
  std::unique_ptr<detail::SpanData, detail::SpanDataDeleter> data_;
};

// gRPC propagation through the "traceparent" metadata entry. Inject once per
// ClientContext (metadata entries add up); a no-op if !ctx.valid().
// The trace context of the work this thread is doing, for code that starts
// calls far from where the request arrived (the admin API's handlers): set
// it with a ScopedContext for a synchronous stretch, capture it when a call
// starts and set it again around that call's completion.
std::optional<TraceContext> CurrentContext();
class ScopedContext {
 public:
  explicit ScopedContext(const std::optional<TraceContext>& ctx);
  ~ScopedContext();  // restores the previous one
  ScopedContext(const ScopedContext&) = delete;
  ScopedContext& operator=(const ScopedContext&) = delete;

 private:
  std::optional<TraceContext> previous_;
};

void Inject(const TraceContext& ctx, grpc::ClientContext* client);
std::optional<TraceContext> Extract(
    const std::multimap<grpc::string_ref, grpc::string_ref>& metadata);
std::optional<TraceContext> Extract(const grpc::ServerContextBase* server);  // null: nullopt

}  // namespace tg::trace
