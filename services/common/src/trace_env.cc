#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdlib>

#include "tg/common/log.h"
#include "tg/common/percent.h"
#include "tg/common/trace.h"

// TracerOptions from OpenTelemetry's standard environment (OTEL_*).

namespace tg::trace {

using std::chrono::milliseconds;

namespace {

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
    std::string name =
        eq == std::string_view::npos ? "" : Trim(percent::Decode(item.substr(0, eq)));
    std::string value =
        eq == std::string_view::npos ? "" : Trim(percent::Decode(item.substr(eq + 1)));
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

}  // namespace tg::trace
