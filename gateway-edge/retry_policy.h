#pragma once

// How the proxy spends a request's attempts (issue 12): the rule's
// retry_attempts and retry_policy resolved against the edge's defaults, the
// provider's own "try again in …" headers, and the decision after a failed
// attempt. Pure: no clock, no randomness of its own (the caller passes both).

#include <google/protobuf/map.h>

#include <chrono>
#include <optional>
#include <string>

#include "tg/v1/adapter.pb.h"
#include "tg/v1/resources.pb.h"

namespace tg::edge {

using std::chrono::milliseconds;

struct RetrySettings {
  int max_attempts = 3;         // provider calls per request, the first included
  int same_target_retries = 1;  // retries of a target that answered 429 or 5xx
  milliseconds backoff{200};    // first same-target wait without a Retry-After
  milliseconds max_retry_after{5000};
  milliseconds budget{60000};  // no attempt starts later than this
};

// The rule's fields over the defaults; `default_max_attempts` is tg-edge's
// --proxy-max-attempts (the rule's retry_attempts, when set, is max - 1).
RetrySettings ResolveRetry(const tg::v1::Rule& rule, int default_max_attempts);

// The wait a provider asked for, from the headers of its 429/5xx answer:
// retry-after-ms, retry-after (seconds, or an HTTP date against `now`), then
// the longest of x-ratelimit-reset-requests / -tokens ("1s", "6m0s",
// "250ms"). nullopt when none is present or none parses.
std::optional<milliseconds> ProviderRetryAfter(
    const google::protobuf::Map<std::string, std::string>& headers,
    std::chrono::system_clock::time_point now);

// Parses Go-style durations as OpenAI's x-ratelimit-reset-* carry them:
// "1s", "6m0s", "1h2m3.5s", "250ms", "20us" (rounded up to 1 ms).
std::optional<milliseconds> ParseResetDuration(std::string_view text);

enum class NextStep {
  kAnswer,      // answer what we have: no attempt left, budget spent, or not retryable
  kSameTarget,  // wait, then call the same target again
  kFailOver,    // call another target now
};

struct RetryDecision {
  NextStep step = NextStep::kAnswer;
  milliseconds wait{0};  // kSameTarget only
  std::string reason;    // bounded label: "retry_after", "backoff", "retry_after_too_long", …
};

struct AttemptState {
  int attempts_made = 0;     // provider calls so far, this failed one included
  int same_target_done = 0;  // same-target retries already spent on this target
  milliseconds elapsed{0};   // since the request arrived
  double jitter = 0.5;       // uniform in [0, 1): spreads backoffs of concurrent requests
};

// After an attempt whose End carried a retryable provider error and sent
// nothing to the client. 429 and 5xx answers retry the same target (after
// the provider's Retry-After when it gave one, else the jittered backoff)
// up to same_target_retries times, then fail over; a Retry-After longer
// than max_retry_after fails over at once; connect errors, timeouts and
// broken answers fail over. Never a wait past the budget.
RetryDecision DecideRetry(const RetrySettings& settings, const tg::v1::ProviderError& error,
                          std::optional<milliseconds> retry_after, const AttemptState& state);

}  // namespace tg::edge
