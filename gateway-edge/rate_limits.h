#pragma once

// Rate limits at the edge (docs/API.md, "Rate limits"): the gateway's
// required_plugins and the rule's plugin_chain (rate_limiter,
// token_rate_limiter) and the targets' own quotas (requests_per_minute,
// tokens_per_minute), enforced through one quota::Store (GCRA buckets in
// Redis, leased in small batches; quota/redis_quota_store.h).
//
// Per request: Admit before any provider call (every request bucket takes
// one unit, every token bucket the prompt estimate; all or nothing), then
// Settle once when the call is over (token buckets take the difference
// between the real usage and the estimate, or give it back).

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "tg/common/plugin_settings.h"
#include "tg/edge/quota/quota_store.h"
#include "tg/v1/adapter.pb.h"
#include "tg/v1/resources.pb.h"

namespace tg::edge {

using std::chrono::milliseconds;

// Who and what a request is, for the limits' keys.
struct LimitSubject {
  const tg::v1::Gateway* gateway = nullptr;
  const tg::v1::Rule* rule = nullptr;
  int64_t revision = 0;
  std::string_view key_id;
  std::string_view client_ip;
  std::string_view user_id;  // X-User-ID (TrustGate's per_user); empty: per_user does not apply
  std::string_view model;
  std::string_view body;
  tg::v1::ClientFormat format = tg::v1::CLIENT_FORMAT_UNSPECIFIED;
};

using HeaderList = std::vector<std::pair<std::string, std::string>>;

// What one request took, and what its answer says about it.
struct Admission {
  bool admitted = true;
  bool limited = false;  // some limit applies: the answer carries x-ratelimit-* headers
  // Refused: the 429's message, whether a retry can help, when.
  std::string message;
  std::string limit_type;  // "requests" | "tokens": OpenAI's error.type for a 429
  bool can_retry = true;
  milliseconds retry_after{0};
  std::optional<std::chrono::seconds> configured_retry_after;  // actions.retry_after
  // x-ratelimit-{limit,remaining,reset}-{requests,tokens}, the tightest of each kind.
  std::optional<quota::Answer> requests;
  std::optional<quota::Answer> tokens;
  // Settlement: the token buckets and what each took up front.
  std::vector<quota::Spec> token_buckets;
  int64_t estimated_tokens = 0;
  bool settled = false;

  // The answer's x-ratelimit-* headers (success and 429 alike); a 429 also
  // gets Retry-After, retry-after-ms and, when no retry can help,
  // x-should-retry: false (OpenAI's SDKs read all three).
  HeaderList Headers(bool refused) const;
};

// x-ratelimit-reset-* as OpenAI writes it: "20ms", "1s", "6m0s", "1h2m3s".
std::string FormatResetDuration(milliseconds d);

// The client's address for per_ip: the last entry of `header_value` when a
// trusted proxy header is configured and present, else the peer's address
// without its port ("[::1]:5000" → "::1").
std::string ClientIp(std::string_view remote, std::string_view header_value);

class RateLimits {
 public:
  explicit RateLimits(quota::Store* store);

  // Whether a request on this gateway and rule is limited at all (no lock,
  // no allocation when not).
  static bool Applies(const tg::v1::Gateway* gateway, const tg::v1::Rule* rule) {
    return (gateway != nullptr && gateway->required_plugins_size() > 0) ||
           (rule != nullptr && rule->plugin_chain_size() > 0);
  }

  // All or nothing: a refusal gives back what the earlier buckets took.
  Admission Admit(const LimitSubject& subject);

  // Once per admitted request, when it is over: `actual_tokens` is the
  // answer's total (input + output); < 0 when unknown (the estimate stands).
  void Settle(Admission& admission, int64_t actual_tokens);

  // A target's own quota (requests_per_minute, tokens_per_minute): nullopt
  // when it may be called now (its buckets took one request and
  // `tokens`), else how long until it may.
  std::optional<milliseconds> TakeTarget(const std::string& upstream_id,
                                         const tg::v1::Target& target, int64_t tokens);
  // The provider said "not before d" (429 with Retry-After or
  // x-ratelimit-reset-*): the target's buckets refuse until then.
  void BlockTarget(const std::string& upstream_id, const tg::v1::Target& target, milliseconds d);
  // A target's token bucket takes the difference once the usage is known.
  void SettleTarget(const std::string& upstream_id, const tg::v1::Target& target, int64_t estimated,
                    int64_t actual);
  // Whether the provider's answer keeps a target out for a while (no
  // declared quota needed): local to this edge.
  bool TargetCooling(const std::string& upstream_id, const std::string& target_id,
                     milliseconds* left);
  void CoolTarget(const std::string& upstream_id, const std::string& target_id, milliseconds d);

 private:
  struct Compiled {
    std::string owner;  // "g:<gateway id>:<index>" or "r:<rule id>:<index>"
    plugins::Plugin plugin;
  };
  std::shared_ptr<const std::vector<Compiled>> Chain(const LimitSubject& s);

  quota::Store* const store_;
  const uint64_t instance_;  // keys the per-thread chain caches (Chain)

  std::mutex mu_;  // cooling_
  std::unordered_map<std::string, std::chrono::steady_clock::time_point> cooling_;
  std::atomic<size_t> cooling_size_{0};  // read without mu_: most picks find none
};

}  // namespace tg::edge
