#pragma once

// What the trace implementation files share (trace.cc: spans; trace_context.cc:
// traceparent and gRPC propagation; trace_env.cc: the OTEL_* environment;
// otlp_exporter.cc: OTLP/HTTP JSON and the exporter thread). Private to
// tg_observability: not under include/.

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "tg/common/trace.h"

namespace tg::trace::detail {

using AttributeValue = std::variant<std::string, int64_t, double, bool>;

struct Attribute {
  std::string key;
  AttributeValue value;
};

struct Event {
  uint64_t time_ns = 0;
  std::string name;
  std::vector<std::pair<std::string, std::string>> attributes;
};

// What a recording span accumulates; allocated only for recording spans.
struct SpanData {
  std::string name;
  SpanKind kind = SpanKind::kInternal;
  std::array<uint8_t, 16> trace_id{};
  std::array<uint8_t, 8> span_id{};
  std::array<uint8_t, 8> parent_span_id{};  // all zero for a root
  uint64_t start_ns = 0;
  uint64_t end_ns = 0;  // both from NowUnixNanos(): one monotonic scale
  std::vector<Attribute> attributes;
  uint32_t dropped_attributes = 0;
  std::vector<Event> events;
  uint32_t dropped_events = 0;
  int status_code = 0;  // 0 unset, 1 ok, 2 error
  std::string status_message;
};

using SpanPtr = std::unique_ptr<SpanData, SpanDataDeleter>;

inline constexpr size_t kMaxAttributes = 128;
inline constexpr size_t kMaxEvents = 64;
inline constexpr size_t kMaxEventAttributes = 32;
inline constexpr size_t kMaxValueBytes = 4096;
inline constexpr auto kWarnEvery = std::chrono::minutes(1);

template <size_t N>
bool AllZero(const std::array<uint8_t, N>& id) {
  for (uint8_t b : id) {
    if (b != 0) return false;
  }
  return true;
}

template <size_t N>
void AppendHex(std::string& out, const std::array<uint8_t, N>& id) {
  static constexpr char kHex[] = "0123456789abcdef";
  for (uint8_t b : id) {
    out += kHex[b >> 4];
    out += kHex[b & 0xf];
  }
}

inline int LowerHexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;  // uppercase is invalid in traceparent
}

template <size_t N>
bool ParseHexId(std::string_view hex, std::array<uint8_t, N>* out) {
  if (hex.size() != 2 * N) return false;
  for (size_t i = 0; i < N; ++i) {
    int hi = LowerHexValue(hex[2 * i]);
    int lo = LowerHexValue(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    (*out)[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return true;
}

// Wall-clock nanoseconds on one monotonic scale (trace.cc).
uint64_t NowUnixNanos();
// `in` cut to kMaxValueBytes on a character boundary, invalid UTF-8 replaced (trace.cc).
std::string Sanitized(std::string_view in);
// `url` without user info, for logs (otlp_exporter.cc).
std::string RedactUserinfo(std::string_view url);
// One OTLP/HTTP JSON export request for `spans` (otlp_exporter.cc).
std::string EncodeBatch(std::string_view service, const std::vector<SpanPtr>& spans);

// The process-wide tracer (otlp_exporter.cc), as spans see it: its settings,
// read lock-free on every request thread, and the queue a span ends in.
bool TracerEnabled();
bool TracerParentBased();
double TracerSampleRatio();
void TracerEnqueue(SpanPtr span);

}  // namespace tg::trace::detail
