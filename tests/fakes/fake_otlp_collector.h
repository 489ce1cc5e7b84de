#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace tg::fakes {

// One span as an OTLP/HTTP JSON export described it.
struct CollectedSpan {
  std::string service;  // resource attribute service.name
  std::string trace_id;
  std::string span_id;
  std::string parent_span_id;  // "" for a root
  std::string name;
  int kind = 0;
  int status_code = 0;  // 0 unset, 1 ok, 2 error
  // Every value rendered as a string: "v", "42", "1.5", "true".
  std::map<std::string, std::string> attributes;
  std::vector<std::string> event_names;
  uint64_t start_ns = 0;
  uint64_t end_ns = 0;
};

// A fake OpenTelemetry collector for tests: HTTP/1.1 on 127.0.0.1 answering
// POST /v1/traces with JSON bodies (OTLP/HTTP JSON encoding). Bodies are
// checked strictly against what TrustGate's exporter promises (hex ids,
// 64-bit integers as decimal strings); a body that fails is counted in
// bad_requests() and answered 400. Every body received is kept verbatim for
// tests that search the export for text that must never be there.
//
// Threads: the server runs its own Asio thread; every method is thread-safe.
class FakeOtlpCollector {
 public:
  explicit FakeOtlpCollector(uint16_t port = 0);  // 0 picks a free port; see port()
  ~FakeOtlpCollector();                           // Stop()
  FakeOtlpCollector(const FakeOtlpCollector&) = delete;
  FakeOtlpCollector& operator=(const FakeOtlpCollector&) = delete;

  // Binds and starts serving; false (and *error) when the port cannot be bound.
  bool Start(std::string* error = nullptr);
  // Closes the listener and every connection, then joins the thread. Idempotent.
  void Stop();

  uint16_t port() const;
  std::string endpoint() const;  // "http://127.0.0.1:<port>/v1/traces"

  std::vector<CollectedSpan> Spans() const;
  // Waits until `done` holds for the spans collected so far (re-checked on
  // every export) or `timeout` passes; returns the spans either way.
  std::vector<CollectedSpan> WaitForSpans(
      std::function<bool(const std::vector<CollectedSpan>&)> done,
      std::chrono::milliseconds timeout) const;
  // Forgets spans, bodies and counters.
  void Clear();

  size_t requests() const;                     // POST /v1/traces received, whatever the answer
  size_t bad_requests() const;                 // of those, bodies rejected with 400 (or 415)
  std::vector<std::string> RawBodies() const;  // every body received, in order
  // The value of header `name` (lower case) of every request, in order ("" when absent).
  std::vector<std::string> HeaderValues(const std::string& name) const;

  // Faults: wait this long before answering (a slow collector) ...
  void SetResponseDelay(std::chrono::milliseconds delay);
  // ... and answer this status without collecting the spans (200: normal).
  void SetStatus(int status);

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace tg::fakes
