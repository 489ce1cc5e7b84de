#include "tg/common/trace.h"

#include <curl/curl.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <charconv>
#include <cmath>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <mutex>
#include <random>
#include <thread>
#include <variant>
#include <vector>

#include "tg/common/crypto.h"
#include "tg/common/json_util.h"
#include "tg/common/log.h"

namespace tg::trace {

using std::chrono::milliseconds;
using SteadyClock = std::chrono::steady_clock;

// ---------------------------------------------------------------------------
// Span data

namespace detail {

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

void SpanDataDeleter::operator()(SpanData* data) const { delete data; }

}  // namespace detail

namespace {

using detail::SpanData;
using SpanPtr = std::unique_ptr<SpanData, detail::SpanDataDeleter>;

constexpr size_t kMaxAttributes = 128;
constexpr size_t kMaxEvents = 64;
constexpr size_t kMaxEventAttributes = 32;
constexpr size_t kMaxValueBytes = 4096;
constexpr auto kWarnEvery = std::chrono::minutes(1);

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

int LowerHexValue(char c) {
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

// Copies `in` into `out`, cut to `limit` bytes on a character boundary, with
// every invalid UTF-8 sequence replaced by U+FFFD: collectors parse OTLP JSON
// strictly and one bad string would cost the whole batch.
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

std::string Sanitized(std::string_view in) {
  std::string out;
  out.reserve(std::min(in.size(), kMaxValueBytes));
  AppendUtf8Sanitized(out, in, kMaxValueBytes);
  return out;
}

// "http://user:secret@host:4318/v1/traces" -> "http://host:4318/v1/traces" for logs.
std::string RedactUserinfo(std::string_view url) {
  size_t scheme = url.find("://");
  size_t start = scheme == std::string_view::npos ? 0 : scheme + 3;
  size_t end = url.find_first_of("/?#", start);
  if (end == std::string_view::npos) end = url.size();
  size_t at = url.substr(start, end - start).rfind('@');
  if (at == std::string_view::npos) return std::string(url);
  return std::string(url.substr(0, start)) + std::string(url.substr(start + at + 1));
}

// ---------------------------------------------------------------------------
// OTLP/HTTP JSON encoding (protobuf JSON mapping: ids as hex, 64-bit integers
// as decimal strings, enums as numbers).

void AppendKeyValue(std::string& out, std::string_view key, const detail::AttributeValue& value) {
  out += "{\"key\":";
  json::AppendQuoted(out, key);
  out += ",\"value\":{";
  if (const auto* s = std::get_if<std::string>(&value)) {
    out += "\"stringValue\":";
    json::AppendQuoted(out, *s);
  } else if (const auto* i = std::get_if<int64_t>(&value)) {
    out += "\"intValue\":\"";
    out += std::to_string(*i);
    out += '"';
  } else if (const auto* d = std::get_if<double>(&value)) {
    out += "\"doubleValue\":";
    if (std::isnan(*d)) {
      out += "\"NaN\"";
    } else if (std::isinf(*d)) {
      out += *d > 0 ? "\"Infinity\"" : "\"-Infinity\"";
    } else {
      char buf[32];
      auto [end, ec] = std::to_chars(buf, buf + sizeof buf, *d);
      out.append(buf, ec == std::errc() ? end : buf);
      if (ec != std::errc()) out += '0';
    }
  } else if (const auto* b = std::get_if<bool>(&value)) {
    out += "\"boolValue\":";
    out += *b ? "true" : "false";
  }
  out += "}}";
}

void AppendStringKeyValue(std::string& out, std::string_view key, std::string_view value) {
  out += "{\"key\":";
  json::AppendQuoted(out, key);
  out += ",\"value\":{\"stringValue\":";
  json::AppendQuoted(out, value);
  out += "}}";
}

void AppendSpan(std::string& out, const SpanData& s) {
  out += "{\"traceId\":\"";
  AppendHex(out, s.trace_id);
  out += "\",\"spanId\":\"";
  AppendHex(out, s.span_id);
  out += '"';
  if (!AllZero(s.parent_span_id)) {
    out += ",\"parentSpanId\":\"";
    AppendHex(out, s.parent_span_id);
    out += '"';
  }
  out += ",\"name\":";
  json::AppendQuoted(out, s.name);
  out += ",\"kind\":";
  out += std::to_string(static_cast<int>(s.kind));
  out += ",\"startTimeUnixNano\":\"";
  out += std::to_string(s.start_ns);
  out += "\",\"endTimeUnixNano\":\"";
  out += std::to_string(s.end_ns);
  out += "\",\"attributes\":[";
  for (size_t i = 0; i < s.attributes.size(); ++i) {
    if (i > 0) out += ',';
    AppendKeyValue(out, s.attributes[i].key, s.attributes[i].value);
  }
  out += ']';
  if (s.dropped_attributes > 0) {
    out += ",\"droppedAttributesCount\":";
    out += std::to_string(s.dropped_attributes);
  }
  if (!s.events.empty()) {
    out += ",\"events\":[";
    for (size_t i = 0; i < s.events.size(); ++i) {
      const detail::Event& e = s.events[i];
      if (i > 0) out += ',';
      out += "{\"timeUnixNano\":\"";
      out += std::to_string(e.time_ns);
      out += "\",\"name\":";
      json::AppendQuoted(out, e.name);
      out += ",\"attributes\":[";
      for (size_t j = 0; j < e.attributes.size(); ++j) {
        if (j > 0) out += ',';
        AppendStringKeyValue(out, e.attributes[j].first, e.attributes[j].second);
      }
      out += "]}";
    }
    out += ']';
  }
  if (s.dropped_events > 0) {
    out += ",\"droppedEventsCount\":";
    out += std::to_string(s.dropped_events);
  }
  out += ",\"status\":{";
  if (s.status_code != 0) {
    out += "\"code\":";
    out += std::to_string(s.status_code);
    if (!s.status_message.empty()) {
      out += ",\"message\":";
      json::AppendQuoted(out, s.status_message);
    }
  }
  out += "}}";
}

std::string EncodeBatch(std::string_view service, const std::vector<SpanPtr>& spans) {
  std::string out;
  out.reserve(512 + spans.size() * 512);
  out += "{\"resourceSpans\":[{\"resource\":{\"attributes\":[";
  AppendStringKeyValue(out, "service.name", service);
  out += ',';
  AppendStringKeyValue(out, "service.namespace", "trustgate");
  out += ',';
  AppendStringKeyValue(out, "telemetry.sdk.language", "cpp");
  out += ',';
  AppendStringKeyValue(out, "telemetry.sdk.name", "trustgate");
  out += "]},\"scopeSpans\":[{\"scope\":{\"name\":\"trustgate\",\"version\":\"1\"},\"spans\":[";
  for (size_t i = 0; i < spans.size(); ++i) {
    if (i > 0) out += ',';
    AppendSpan(out, *spans[i]);
  }
  out += "]}]}]}";
  return out;
}

// ---------------------------------------------------------------------------
// Sampling

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

// ---------------------------------------------------------------------------
// The process-wide tracer: settings read lock-free on the request path, a
// bounded queue, and one exporter thread.

class Tracer {
 public:
  // Read by Span::Start on every request thread.
  std::atomic<bool> enabled{false};
  std::atomic<bool> parent_based{true};
  std::atomic<double> sample_ratio{1.0};

  void Start(TracerOptions options) {
    Stop();
    {
      std::lock_guard lock(mu_);
      options_ = std::move(options);
      options_.max_queue = std::max<size_t>(options_.max_queue, 1);
      options_.max_batch = std::max<size_t>(options_.max_batch, 1);
      if (options_.flush_interval.count() <= 0) options_.flush_interval = milliseconds(1);
      if (options_.export_timeout.count() <= 0) options_.export_timeout = milliseconds(1);
      queue_.clear();
      stopping_ = false;
      accepting_ = !options_.endpoint.empty();
      exported_ = 0;
      dropped_ = 0;
      failed_exports_ = 0;
    }
    sample_ratio.store(options_.sample_ratio);
    parent_based.store(options_.parent_based);
    if (options_.endpoint.empty()) return;
    // Thread-safe since curl 7.84, but other code may not be: once, here.
    static std::once_flag curl_once;
    std::call_once(curl_once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
    thread_ = std::thread([this] { Run(); });
    enabled.store(true);
    log::Info("tracing on", {{"endpoint", RedactUserinfo(options_.endpoint)},
                             {"otel_service", options_.service_name}});
  }

  void Stop() {
    enabled.store(false);
    {
      std::lock_guard lock(mu_);
      accepting_ = false;
      if (!thread_.joinable()) return;
      stopping_ = true;
      drain_deadline_ = SteadyClock::now() + options_.export_timeout;
    }
    cv_.notify_all();
    thread_.join();
  }

  // Called by Span::End for recording spans.
  void Enqueue(SpanPtr span) {
    bool wake = false;
    {
      std::lock_guard lock(mu_);
      if (!accepting_ || queue_.size() >= options_.max_queue) {
        dropped_.fetch_add(1, std::memory_order_relaxed);
        return;  // `span` is freed after the lock is released
      }
      queue_.push_back(std::move(span));
      wake = queue_.size() == options_.max_batch;
    }
    if (wake) cv_.notify_one();
  }

  ExporterStats Stats() const {
    return ExporterStats{exported_.load(), dropped_.load(), failed_exports_.load()};
  }

 private:
  void Run() {
    CURL* curl = curl_easy_init();
    curl_slist* headers = nullptr;
    headers = curl_slist_append(headers, "Content-Type: application/json");
    headers = curl_slist_append(headers, "Expect:");
    for (const auto& [name, value] : options_.headers) {
      headers = curl_slist_append(headers, (name + ": " + value).c_str());
    }
    std::string service;
    std::string endpoint;
    size_t max_batch = 0;
    milliseconds interval{0};
    milliseconds timeout{0};
    {
      std::lock_guard lock(mu_);
      service = options_.service_name;
      endpoint = options_.endpoint;
      max_batch = options_.max_batch;
      interval = options_.flush_interval;
      timeout = options_.export_timeout;
    }
    std::vector<SpanPtr> batch;
    batch.reserve(max_batch);
    auto next_flush = SteadyClock::now() + interval;
    for (;;) {
      std::optional<SteadyClock::time_point> deadline;
      {
        std::unique_lock lock(mu_);
        cv_.wait_until(lock, next_flush, [&] { return stopping_ || queue_.size() >= max_batch; });
        if (SteadyClock::now() >= next_flush || queue_.size() < max_batch) {
          next_flush = SteadyClock::now() + interval;
        }
        if (stopping_) {
          if (queue_.empty()) break;
          deadline = drain_deadline_;
          if (SteadyClock::now() >= *deadline) {
            dropped_.fetch_add(queue_.size(), std::memory_order_relaxed);
            queue_.clear();
            break;
          }
        }
        const size_t n = std::min(max_batch, queue_.size());
        for (size_t i = 0; i < n; ++i) {
          batch.push_back(std::move(queue_.front()));
          queue_.pop_front();
        }
      }
      if (batch.empty()) continue;
      milliseconds budget = timeout;
      if (deadline) {
        budget = std::min(budget,
                          std::chrono::duration_cast<milliseconds>(*deadline - SteadyClock::now()) +
                              milliseconds(1));
      }
      Export(curl, headers, endpoint, EncodeBatch(service, batch), batch.size(), budget);
      batch.clear();
    }
    curl_slist_free_all(headers);
    if (curl != nullptr) curl_easy_cleanup(curl);
  }

  static size_t Discard(char*, size_t size, size_t nmemb, void*) { return size * nmemb; }

  void Export(CURL* curl, curl_slist* headers, const std::string& endpoint, const std::string& body,
              size_t spans, milliseconds timeout) {
    std::string problem;
    if (curl == nullptr) {
      problem = "curl_easy_init failed";
    } else {
      curl_easy_setopt(curl, CURLOPT_URL, endpoint.c_str());
      curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
      curl_easy_setopt(curl, CURLOPT_POST, 1L);
      curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.data());
      curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
      curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
      curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout.count()));
      curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, &Tracer::Discard);
      CURLcode rc = curl_easy_perform(curl);
      long status = 0;
      if (rc == CURLE_OK) curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
      if (rc != CURLE_OK) {
        problem = curl_easy_strerror(rc);
      } else if (status < 200 || status > 299) {
        problem = "HTTP " + std::to_string(status);
      }
    }
    if (problem.empty()) {
      exported_.fetch_add(spans, std::memory_order_relaxed);
      return;
    }
    const uint64_t failed = failed_exports_.fetch_add(1, std::memory_order_relaxed) + 1;
    dropped_.fetch_add(spans, std::memory_order_relaxed);  // never retried
    const auto now = SteadyClock::now();
    if (!warned_ || now - last_warn_ >= kWarnEvery) {
      warned_ = true;
      last_warn_ = now;
      log::Warn("trace export failed; spans dropped",
                {{"endpoint", RedactUserinfo(endpoint)},
                 {"error", problem},
                 {"failed_exports", std::to_string(failed)},
                 {"dropped_spans", std::to_string(dropped_.load(std::memory_order_relaxed))}});
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  TracerOptions options_;                   // guarded by mu_ (written only while stopped)
  std::deque<SpanPtr> queue_;               // guarded by mu_
  bool accepting_ = false;                  // guarded by mu_
  bool stopping_ = false;                   // guarded by mu_
  SteadyClock::time_point drain_deadline_;  // guarded by mu_
  std::thread thread_;
  std::atomic<uint64_t> exported_{0};
  std::atomic<uint64_t> dropped_{0};
  std::atomic<uint64_t> failed_exports_{0};
  // Exporter thread only.
  bool warned_ = false;
  SteadyClock::time_point last_warn_;
};

// Never destroyed: spans may end on threads that outlive main().
Tracer& GlobalTracer() {
  static Tracer* tracer = new Tracer();
  return *tracer;
}

// ---------------------------------------------------------------------------
// Environment

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v == nullptr ? std::string() : std::string(v);
}

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return std::string(s);
}

// A positive integer from `name`; `fallback` when unset, invalid logged.
int64_t EnvPositive(const char* name, int64_t fallback) {
  std::string v = Trim(Env(name));
  if (v.empty()) return fallback;
  int64_t n = 0;
  auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  if (ec != std::errc() || end != v.data() + v.size() || n <= 0) {
    log::Warn("ignoring invalid tracing setting", {{"variable", name}, {"value", v}});
    return fallback;
  }
  return n;
}

}  // namespace

// ---------------------------------------------------------------------------
// TraceContext and traceparent

bool TraceContext::valid() const { return !AllZero(trace_id) && !AllZero(span_id); }

std::string TraceContext::TraceIdHex() const {
  std::string out;
  out.reserve(32);
  AppendHex(out, trace_id);
  return out;
}

std::string TraceContext::SpanIdHex() const {
  std::string out;
  out.reserve(16);
  AppendHex(out, span_id);
  return out;
}

std::optional<TraceContext> ParseTraceparent(std::string_view header) {
  while (!header.empty() && (header.front() == ' ' || header.front() == '\t')) {
    header.remove_prefix(1);
  }
  while (!header.empty() && (header.back() == ' ' || header.back() == '\t')) {
    header.remove_suffix(1);
  }
  // version "-" trace-id "-" parent-id "-" flags: 2 + 1 + 32 + 1 + 16 + 1 + 2.
  constexpr size_t kLength = 55;
  if (header.size() < kLength) return std::nullopt;
  int v_hi = LowerHexValue(header[0]);
  int v_lo = LowerHexValue(header[1]);
  if (v_hi < 0 || v_lo < 0) return std::nullopt;
  const int version = v_hi << 4 | v_lo;
  if (version == 0xff) return std::nullopt;
  if (version == 0 && header.size() != kLength) return std::nullopt;
  // A future version keeps the version-00 prefix and may add "-" fields.
  if (header.size() > kLength && header[kLength] != '-') return std::nullopt;
  if (header[2] != '-' || header[35] != '-' || header[52] != '-') return std::nullopt;
  TraceContext ctx;
  if (!ParseHexId(header.substr(3, 32), &ctx.trace_id)) return std::nullopt;
  if (!ParseHexId(header.substr(36, 16), &ctx.span_id)) return std::nullopt;
  std::array<uint8_t, 1> flags{};
  if (!ParseHexId(header.substr(53, 2), &flags)) return std::nullopt;
  if (!ctx.valid()) return std::nullopt;
  ctx.sampled = (flags[0] & 0x01) != 0;
  return ctx;
}

std::string FormatTraceparent(const TraceContext& ctx) {
  std::string out;
  out.reserve(55);
  out += "00-";
  AppendHex(out, ctx.trace_id);
  out += '-';
  AppendHex(out, ctx.span_id);
  out += ctx.sampled ? "-01" : "-00";
  return out;
}

// ---------------------------------------------------------------------------
// Options and lifecycle

namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string PercentDecode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && HexValue(s[i + 1]) >= 0 && HexValue(s[i + 2]) >= 0) {
      out += static_cast<char>(HexValue(s[i + 1]) * 16 + HexValue(s[i + 2]));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

bool ValidHeaderName(std::string_view name) {
  if (name.empty()) return false;
  for (char c : name) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.')) {
      return false;
    }
  }
  return true;
}

}  // namespace

std::vector<std::pair<std::string, std::string>> ParseOtlpHeaders(std::string_view text) {
  std::vector<std::pair<std::string, std::string>> out;
  size_t start = 0;
  while (start <= text.size()) {
    size_t comma = text.find(',', start);
    if (comma == std::string_view::npos) comma = text.size();
    std::string_view item = text.substr(start, comma - start);
    start = comma + 1;
    if (Trim(std::string(item)).empty()) continue;
    const size_t eq = item.find('=');
    std::string name = eq == std::string_view::npos ? "" : Trim(PercentDecode(item.substr(0, eq)));
    std::string value =
        eq == std::string_view::npos ? "" : Trim(PercentDecode(item.substr(eq + 1)));
    // A value with a line break would smuggle another header; a bad entry is
    // named by position only: the value may be a secret.
    if (!ValidHeaderName(name) || value.find_first_of("\r\n") != std::string::npos) {
      log::Warn("ignoring an invalid OTLP exporter header",
                {{"position", std::to_string(out.size() + 1)}});
      continue;
    }
    out.emplace_back(std::move(name), std::move(value));
  }
  return out;
}

TracerOptions OptionsFromEnv(std::string_view default_service) {
  TracerOptions o;
  o.service_name = Trim(Env("OTEL_SERVICE_NAME"));
  if (o.service_name.empty()) o.service_name = std::string(default_service);

  std::string endpoint = Trim(Env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"));
  if (endpoint.empty()) {
    endpoint = Trim(Env("OTEL_EXPORTER_OTLP_ENDPOINT"));
    if (!endpoint.empty()) {
      while (!endpoint.empty() && endpoint.back() == '/') endpoint.pop_back();
      endpoint += "/v1/traces";
    }
  }
  if (Lower(Trim(Env("OTEL_SDK_DISABLED"))) == "true") endpoint.clear();
  o.endpoint = std::move(endpoint);

  std::string headers = Trim(Env("OTEL_EXPORTER_OTLP_TRACES_HEADERS"));
  if (headers.empty()) headers = Trim(Env("OTEL_EXPORTER_OTLP_HEADERS"));
  o.headers = ParseOtlpHeaders(headers);

  const std::string arg = Trim(Env("OTEL_TRACES_SAMPLER_ARG"));
  double ratio = 1.0;
  bool ratio_valid = false;
  if (!arg.empty()) {
    char* end = nullptr;
    double r = std::strtod(arg.c_str(), &end);
    ratio_valid = end == arg.c_str() + arg.size() && r >= 0.0 && r <= 1.0;
    if (ratio_valid) ratio = r;
  }
  std::string sampler = Lower(Trim(Env("OTEL_TRACES_SAMPLER")));
  if (sampler.empty()) sampler = arg.empty() ? "parentbased_always_on" : "parentbased_traceidratio";
  const bool uses_ratio = sampler == "traceidratio" || sampler == "parentbased_traceidratio";
  if (uses_ratio && !arg.empty() && !ratio_valid) {
    log::Warn("ignoring invalid tracing setting",
              {{"variable", "OTEL_TRACES_SAMPLER_ARG"}, {"value", arg}});
  }
  if (sampler == "always_on") {
    o.sample_ratio = 1.0;
    o.parent_based = false;
  } else if (sampler == "always_off") {
    o.sample_ratio = 0.0;
    o.parent_based = false;
  } else if (sampler == "traceidratio") {
    o.sample_ratio = ratio;
    o.parent_based = false;
  } else if (sampler == "parentbased_always_off") {
    o.sample_ratio = 0.0;
    o.parent_based = true;
  } else if (sampler == "parentbased_traceidratio") {
    o.sample_ratio = ratio;
    o.parent_based = true;
  } else {
    if (sampler != "parentbased_always_on") {
      log::Warn("unsupported OTEL_TRACES_SAMPLER, using parentbased_always_on",
                {{"value", sampler}});
    }
    o.sample_ratio = 1.0;
    o.parent_based = true;
  }

  o.max_queue = static_cast<size_t>(
      EnvPositive("OTEL_BSP_MAX_QUEUE_SIZE", static_cast<int64_t>(o.max_queue)));
  o.max_batch = static_cast<size_t>(
      EnvPositive("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", static_cast<int64_t>(o.max_batch)));
  o.max_batch = std::min(o.max_batch, o.max_queue);
  o.flush_interval = milliseconds(EnvPositive("OTEL_BSP_SCHEDULE_DELAY", o.flush_interval.count()));
  o.export_timeout = milliseconds(EnvPositive("OTEL_BSP_EXPORT_TIMEOUT", o.export_timeout.count()));
  return o;
}

void Init(TracerOptions options) { GlobalTracer().Start(std::move(options)); }

void Shutdown() { GlobalTracer().Stop(); }

ExporterStats Stats() { return GlobalTracer().Stats(); }

// ---------------------------------------------------------------------------
// Span

Span Span::Start(std::string_view name, SpanKind kind, const std::optional<TraceContext>& parent) {
  Tracer& tracer = GlobalTracer();
  Span span;
  const bool has_parent = parent.has_value() && parent->valid();
  if (has_parent) {
    span.context_.trace_id = parent->trace_id;
  } else {
    FillRandomNonZero(span.context_.trace_id);
  }
  FillRandomNonZero(span.context_.span_id);
  if (has_parent && tracer.parent_based.load(std::memory_order_relaxed)) {
    span.context_.sampled = parent->sampled;
  } else {
    span.context_.sampled =
        SampleByRatio(span.context_.trace_id, tracer.sample_ratio.load(std::memory_order_relaxed));
  }
  if (!span.context_.sampled || !tracer.enabled.load(std::memory_order_relaxed)) return span;

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
  GlobalTracer().Enqueue(std::move(data_));
}

// ---------------------------------------------------------------------------
// gRPC propagation

namespace {
constexpr char kTraceparentKey[] = "traceparent";
}  // namespace

namespace {
thread_local std::optional<TraceContext> t_current;
}  // namespace

std::optional<TraceContext> CurrentContext() { return t_current; }

ScopedContext::ScopedContext(const std::optional<TraceContext>& ctx) : previous_(t_current) {
  t_current = ctx;
}

ScopedContext::~ScopedContext() { t_current = previous_; }

void Inject(const TraceContext& ctx, grpc::ClientContext* client) {
  if (client == nullptr || !ctx.valid()) return;
  client->AddMetadata(kTraceparentKey, FormatTraceparent(ctx));
}

std::optional<TraceContext> Extract(
    const std::multimap<grpc::string_ref, grpc::string_ref>& metadata) {
  auto it = metadata.find(grpc::string_ref(kTraceparentKey));
  if (it == metadata.end()) return std::nullopt;
  return ParseTraceparent(std::string_view(it->second.data(), it->second.size()));
}

std::optional<TraceContext> Extract(const grpc::ServerContextBase* server) {
  if (server == nullptr) return std::nullopt;
  return Extract(server->client_metadata());
}

}  // namespace tg::trace
