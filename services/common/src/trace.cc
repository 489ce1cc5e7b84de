#include "tg/common/trace.h"

#include <algorithm>
#include <random>

#include "tg/common/crypto.h"
#include "trace_internal.h"

// Spans: ids, sampling, attributes and events, and their end in the
// exporter's queue. The rest of tracing: trace_context.cc (traceparent,
// gRPC propagation), trace_env.cc (OTEL_* settings), otlp_exporter.cc.

namespace tg::trace {

using SteadyClock = std::chrono::steady_clock;

namespace detail {

void SpanDataDeleter::operator()(SpanData* data) const { delete data; }

// Wall-clock time read through the steady clock from one anchor taken once:
// every timestamp of the process is on one monotonic scale, so a child span
// never appears to end after its parent because two clocks were read a few
// nanoseconds apart (NTP slews both clocks alike; only a wall-clock step,
// rare and ignored here, separates them).
uint64_t NowUnixNanos() {
  static const auto anchor_wall = std::chrono::system_clock::now();
  static const auto anchor_steady = SteadyClock::now();
  const auto since = SteadyClock::now() - anchor_steady;
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(anchor_wall.time_since_epoch() + since)
          .count());
}

// Copies `in` into `out`, cut to `limit` bytes on a character boundary, with
// every invalid UTF-8 sequence replaced by U+FFFD: collectors parse OTLP JSON
// strictly and one bad string would cost the whole batch.
namespace {

void AppendUtf8Sanitized(std::string& out, std::string_view in, size_t limit) {
  static constexpr std::string_view kReplacement = "\xEF\xBF\xBD";
  size_t i = 0;
  while (i < in.size()) {
    const auto c = static_cast<unsigned char>(in[i]);
    size_t len = 0;
    uint32_t min = 0;
    uint32_t cp = 0;
    if (c < 0x80) {
      len = 1;
      cp = c;
    } else if ((c & 0xE0) == 0xC0) {
      len = 2;
      cp = c & 0x1F;
      min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3;
      cp = c & 0x0F;
      min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4;
      cp = c & 0x07;
      min = 0x10000;
    }
    bool ok = len > 0 && i + len <= in.size();
    for (size_t j = 1; ok && j < len; ++j) {
      const auto cc = static_cast<unsigned char>(in[i + j]);
      if ((cc & 0xC0) != 0x80) ok = false;
      cp = cp << 6 | (cc & 0x3F);
    }
    if (ok && len > 1 && (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))) {
      ok = false;
    }
    std::string_view piece = ok ? in.substr(i, len) : kReplacement;
    if (out.size() + piece.size() > limit) return;
    out += piece;
    i += ok ? len : 1;
  }
}

}  // namespace

std::string Sanitized(std::string_view in) {
  std::string out;
  out.reserve(std::min(in.size(), kMaxValueBytes));
  AppendUtf8Sanitized(out, in, kMaxValueBytes);
  return out;
}

}  // namespace detail

using namespace detail;

namespace {

// Ids need to be unique and unpredictable enough for sampling, not secret:
// a per-thread generator seeded from the system RNG gives them without a
// syscall or an allocation per span.
uint64_t RandomWord() {
  thread_local std::mt19937_64 rng = [] {
    std::string seed = crypto::RandomBytes(16);
    std::seed_seq seq(seed.begin(), seed.end());
    return std::mt19937_64(seq);
  }();
  return rng();
}

template <size_t N>
void FillRandomNonZero(std::array<uint8_t, N>& id) {
  for (;;) {
    for (size_t i = 0; i < N; i += 8) {
      uint64_t w = RandomWord();
      for (size_t j = 0; j < 8 && i + j < N; ++j) id[i + j] = static_cast<uint8_t>(w >> (8 * j));
    }
    for (uint8_t b : id) {
      if (b != 0) return;
    }
  }
}

// The rightmost 56 bits of a trace id are random (W3C Trace Context level 2),
// so "those bits below ratio * 2^56" keeps `ratio` of the traces, and every
// service with the same ratio takes the same decision for a trace.
// Example: ratio 0.25 keeps ids whose low 56 bits are below 0x40000000000000.
bool SampleByRatio(const std::array<uint8_t, 16>& trace_id, double ratio) {
  if (!(ratio > 0.0)) return false;  // also NaN
  if (ratio >= 1.0) return true;
  uint64_t low = 0;
  for (size_t i = 9; i < 16; ++i) low = low << 8 | trace_id[i];
  const auto bound = static_cast<uint64_t>(ratio * 72057594037927936.0);  // 2^56
  return low < bound;
}

}  // namespace

// ---------------------------------------------------------------------------
// Span

Span Span::Start(std::string_view name, SpanKind kind, const std::optional<TraceContext>& parent) {
  Span span;
  const bool has_parent = parent.has_value() && parent->valid();
  if (has_parent) {
    span.context_.trace_id = parent->trace_id;
  } else {
    FillRandomNonZero(span.context_.trace_id);
  }
  FillRandomNonZero(span.context_.span_id);
  if (has_parent && TracerParentBased()) {
    span.context_.sampled = parent->sampled;
  } else {
    span.context_.sampled = SampleByRatio(span.context_.trace_id, TracerSampleRatio());
  }
  if (!span.context_.sampled || !TracerEnabled()) return span;

  span.data_.reset(new SpanData());
  SpanData& d = *span.data_;
  d.name = Sanitized(name);
  d.kind = kind;
  d.trace_id = span.context_.trace_id;
  d.span_id = span.context_.span_id;
  if (has_parent) d.parent_span_id = parent->span_id;
  d.start_ns = NowUnixNanos();
  return span;
}

Span::Span(Span&& other) noexcept : context_(other.context_), data_(std::move(other.data_)) {}

Span& Span::operator=(Span&& other) noexcept {
  if (this != &other) {
    End();
    context_ = other.context_;
    data_ = std::move(other.data_);
  }
  return *this;
}

Span::~Span() { End(); }

namespace {

void SetAttributeValue(SpanData& d, std::string_view key, detail::AttributeValue value) {
  for (detail::Attribute& a : d.attributes) {
    if (a.key == key) {
      a.value = std::move(value);
      return;
    }
  }
  if (d.attributes.size() >= kMaxAttributes) {
    ++d.dropped_attributes;
    return;
  }
  d.attributes.push_back(detail::Attribute{Sanitized(key), std::move(value)});
}

}  // namespace

void Span::SetName(std::string_view name) {
  if (data_) data_->name = Sanitized(name);
}

void Span::SetAttribute(std::string_view key, std::string_view value) {
  if (data_) SetAttributeValue(*data_, key, Sanitized(value));
}

void Span::SetAttribute(std::string_view key, const char* value) {
  if (data_) SetAttributeValue(*data_, key, Sanitized(value == nullptr ? "" : value));
}

void Span::SetAttribute(std::string_view key, int64_t value) {
  if (data_) SetAttributeValue(*data_, key, value);
}

void Span::SetAttribute(std::string_view key, double value) {
  if (data_) SetAttributeValue(*data_, key, value);
}

void Span::SetAttribute(std::string_view key, bool value) {
  if (data_) SetAttributeValue(*data_, key, value);
}

void Span::AddEvent(std::string_view name,
                    std::initializer_list<std::pair<std::string_view, std::string_view>> attrs) {
  if (!data_) return;
  if (data_->events.size() >= kMaxEvents) {
    ++data_->dropped_events;
    return;
  }
  detail::Event e;
  e.time_ns = NowUnixNanos();
  e.name = Sanitized(name);
  e.attributes.reserve(std::min(attrs.size(), kMaxEventAttributes));
  for (const auto& [k, v] : attrs) {
    if (e.attributes.size() >= kMaxEventAttributes) break;
    e.attributes.emplace_back(Sanitized(k), Sanitized(v));
  }
  data_->events.push_back(std::move(e));
}

void Span::SetError(std::string_view message) {
  if (!data_) return;
  data_->status_code = 2;
  data_->status_message = Sanitized(message);
}

void Span::SetOk() {
  if (!data_) return;
  data_->status_code = 1;
  data_->status_message.clear();
}

void Span::End() {
  if (!data_) return;
  data_->end_ns = std::max(data_->start_ns, NowUnixNanos());  // same scale as start_ns
  TracerEnqueue(std::move(data_));
}

}  // namespace tg::trace
