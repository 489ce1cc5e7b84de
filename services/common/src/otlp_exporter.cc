#include <curl/curl.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include "tg/common/json_util.h"
#include "tg/common/log.h"
#include "tg/common/trace.h"
#include "trace_internal.h"

// The OTLP/HTTP JSON exporter: the encoding, and the process-wide tracer's
// bounded queue and exporter thread (libcurl, one request at a time).

namespace tg::trace {

using std::chrono::milliseconds;
using SteadyClock = std::chrono::steady_clock;

namespace detail {

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

namespace {

void AppendKeyValue(std::string& out, std::string_view key, const AttributeValue& value) {
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
      const Event& e = s.events[i];
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

}  // namespace

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

namespace {

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

}  // namespace

bool TracerEnabled() { return GlobalTracer().enabled.load(std::memory_order_relaxed); }
bool TracerParentBased() { return GlobalTracer().parent_based.load(std::memory_order_relaxed); }
double TracerSampleRatio() { return GlobalTracer().sample_ratio.load(std::memory_order_relaxed); }
void TracerEnqueue(SpanPtr span) { GlobalTracer().Enqueue(std::move(span)); }

}  // namespace detail

void Init(TracerOptions options) { detail::GlobalTracer().Start(std::move(options)); }

void Shutdown() { detail::GlobalTracer().Stop(); }

ExporterStats Stats() { return detail::GlobalTracer().Stats(); }

}  // namespace tg::trace
