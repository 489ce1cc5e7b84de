#include "tg/edge/retry_policy.h"

#include <time.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <ctime>

namespace tg::edge {
namespace {

const std::string* Find(const google::protobuf::Map<std::string, std::string>& headers,
                        const char* name) {
  auto it = headers.find(name);
  return it == headers.end() ? nullptr : &it->second;
}

// A non-negative decimal number (digits, one optional '.'), as a double.
std::optional<double> Number(std::string_view s) {
  if (s.empty() || s.size() > 20) return std::nullopt;
  bool dot = false;
  for (char c : s) {
    if (c == '.') {
      if (dot) return std::nullopt;
      dot = true;
    } else if (c < '0' || c > '9') {
      return std::nullopt;
    }
  }
  return std::strtod(std::string(s).c_str(), nullptr);
}

milliseconds CeilMs(double ms) {
  return milliseconds(static_cast<int64_t>(std::ceil(std::min(ms, 86'400'000.0))));
}

}  // namespace

RetrySettings ResolveRetry(const tg::v1::Rule& rule, int default_max_attempts) {
  RetrySettings s;
  s.max_attempts = std::max(1, default_max_attempts);
  if (rule.has_retry_attempts()) s.max_attempts = 1 + rule.retry_attempts();
  const tg::v1::RetryPolicy& p = rule.retry_policy();
  if (p.has_same_target_retries()) s.same_target_retries = p.same_target_retries();
  if (p.has_backoff_ms()) s.backoff = milliseconds(p.backoff_ms());
  if (p.has_max_retry_after_ms()) s.max_retry_after = milliseconds(p.max_retry_after_ms());
  if (p.has_budget_ms()) s.budget = milliseconds(p.budget_ms());
  return s;
}

std::optional<milliseconds> ParseResetDuration(std::string_view text) {
  if (text.empty() || text.size() > 32) return std::nullopt;
  double total_ms = 0;
  size_t i = 0;
  while (i < text.size()) {
    size_t j = i;
    while (j < text.size() && ((text[j] >= '0' && text[j] <= '9') || text[j] == '.')) ++j;
    auto value = Number(text.substr(i, j - i));
    if (!value) return std::nullopt;
    size_t k = j;
    while (k < text.size() && text[k] >= 'a' && text[k] <= 'z') ++k;
    const std::string_view unit = text.substr(j, k - j);
    if (unit == "h") {
      total_ms += *value * 3'600'000;
    } else if (unit == "m") {
      total_ms += *value * 60'000;
    } else if (unit == "s") {
      total_ms += *value * 1000;
    } else if (unit == "ms") {
      total_ms += *value;
    } else if (unit == "us" || unit == "ns") {
      total_ms += *value / (unit == "us" ? 1e3 : 1e6);
    } else {
      return std::nullopt;
    }
    i = k;
  }
  return CeilMs(total_ms);
}

std::optional<milliseconds> ProviderRetryAfter(
    const google::protobuf::Map<std::string, std::string>& headers,
    std::chrono::system_clock::time_point now) {
  if (const std::string* ms = Find(headers, "retry-after-ms")) {
    if (auto v = Number(*ms)) return CeilMs(*v);
  }
  if (const std::string* after = Find(headers, "retry-after")) {
    if (auto v = Number(*after)) return CeilMs(*v * 1000);
    // An HTTP date: "Wed, 21 Oct 2015 07:28:00 GMT".
    tm t{};
    const char* end = strptime(after->c_str(), "%a, %d %b %Y %H:%M:%S GMT", &t);
    if (end != nullptr && *end == '\0') {
      // In seconds, as time_t: a date centuries away must not overflow a
      // nanosecond time_point (the fuzzer sent the year 4030).
      const double seconds = std::difftime(timegm(&t), std::chrono::system_clock::to_time_t(now));
      return CeilMs(std::max(0.0, seconds) * 1000);
    }
  }
  std::optional<milliseconds> reset;
  for (const char* name : {"x-ratelimit-reset-requests", "x-ratelimit-reset-tokens"}) {
    if (const std::string* v = Find(headers, name)) {
      if (auto d = ParseResetDuration(*v); d && (!reset || *d > *reset)) reset = d;
    }
  }
  return reset;
}

RetryDecision DecideRetry(const RetrySettings& settings, const tg::v1::ProviderError& error,
                          std::optional<milliseconds> retry_after, const AttemptState& state) {
  RetryDecision d;
  if (!error.retryable()) {
    d.reason = "not_retryable";
    return d;
  }
  if (state.attempts_made >= settings.max_attempts) {
    d.reason = "attempts_spent";
    return d;
  }
  if (state.elapsed >= settings.budget) {
    d.reason = "budget_spent";
    return d;
  }
  const int status = error.http_status();
  const bool provider_asked =
      error.kind() == tg::v1::ProviderError::KIND_HTTP && (status == 429 || status >= 500);
  if (provider_asked && state.same_target_done < settings.same_target_retries) {
    milliseconds wait;
    if (retry_after) {
      if (*retry_after > settings.max_retry_after) {
        d.step = NextStep::kFailOver;
        d.reason = "retry_after_too_long";
        return d;
      }
      wait = *retry_after;
      d.reason = "retry_after";
    } else {
      // backoff * 2^n, jittered to [0.5, 1.5) of that.
      const double base =
          static_cast<double>(settings.backoff.count()) * std::pow(2.0, state.same_target_done);
      wait = milliseconds(static_cast<int64_t>(base * (0.5 + state.jitter)));
      d.reason = "backoff";
    }
    if (state.elapsed + wait < settings.budget) {
      d.step = NextStep::kSameTarget;
      d.wait = wait;
      return d;
    }
    // Waiting would spend the budget: another target now is the better bet.
  }
  d.step = NextStep::kFailOver;
  if (d.reason.empty() || d.reason == "retry_after" || d.reason == "backoff") {
    d.reason = provider_asked ? "same_target_spent" : "fail_over";
  }
  return d;
}

}  // namespace tg::edge
