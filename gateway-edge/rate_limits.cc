#include "tg/edge/rate_limits.h"

#include <algorithm>
#include <atomic>
#include <cmath>

#include "tg/common/crypto.h"
#include "tg/edge/token_estimate.h"

namespace tg::edge {
namespace {

using std::chrono::seconds;
using std::chrono::steady_clock;

// A bucket key's variable part (an address, a user id, a model). Short
// plain values (key ids, addresses, most model names) go in as they are,
// marked '='; anything else is hashed, marked '#', so that a hostile value
// can neither grow a Redis key nor put bytes in it, and the two forms never
// collide.
std::string Hash(std::string_view subject) {
  constexpr size_t kMaxPlain = 64;
  bool plain = subject.size() <= kMaxPlain;
  for (size_t i = 0; plain && i < subject.size(); ++i) {
    const char c = subject[i];
    plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '_' || c == '.' || c == ':';
  }
  if (plain) return "=" + std::string(subject);
  return "#" + crypto::HexEncode(crypto::Sha256(subject)).substr(0, 16);
}

// The tighter of two views of the same kind: less left wins.
void KeepTighter(std::optional<quota::Answer>* kept, const quota::Answer& a) {
  if (!*kept || a.remaining < (*kept)->remaining) *kept = a;
}

int64_t CeilSeconds(milliseconds d) { return std::max<int64_t>(1, (d.count() + 999) / 1000); }

// One refill period of a token bucket: `bucket` tokens at `per_minute`.
milliseconds TokenPeriod(int64_t bucket, int64_t per_minute) {
  const double ms = 60000.0 * static_cast<double>(bucket) / static_cast<double>(per_minute);
  return milliseconds(static_cast<int64_t>(std::clamp(ms, 1.0, 1e12)));
}

constexpr milliseconds kMinute{60000};
constexpr size_t kMaxChains = 10000;
constexpr size_t kMaxCooling = 10000;

}  // namespace

std::string FormatResetDuration(milliseconds d) {
  int64_t ms = std::max<int64_t>(0, d.count());
  if (ms < 1000) return std::to_string(ms) + "ms";
  int64_t s = (ms + 999) / 1000;  // a client waiting this long finds the unit there
  const int64_t h = s / 3600;
  const int64_t m = (s % 3600) / 60;
  s %= 60;
  std::string out;
  if (h > 0) out += std::to_string(h) + "h";
  if (h > 0 || m > 0) out += std::to_string(m) + "m";
  out += std::to_string(s) + "s";
  return out;
}

std::string ClientIp(std::string_view remote, std::string_view header_value) {
  auto trim = [](std::string_view v) {
    while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
    while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
    return v;
  };
  if (!header_value.empty()) {
    // The entry the nearest (trusted) proxy appended: earlier ones are the
    // client's own claims.
    std::string_view last = header_value;
    if (auto comma = header_value.rfind(','); comma != std::string_view::npos) {
      last = header_value.substr(comma + 1);
    }
    last = trim(last);
    if (!last.empty()) return std::string(last);
  }
  if (!remote.empty() && remote.front() == '[') {
    auto close = remote.find(']');
    return std::string(remote.substr(1, close == std::string_view::npos ? close : close - 1));
  }
  if (std::count(remote.begin(), remote.end(), ':') == 1) {
    return std::string(remote.substr(0, remote.find(':')));
  }
  return std::string(remote);
}

HeaderList Admission::Headers(bool refused) const {
  HeaderList h;
  auto add = [&h](std::string_view kind, const quota::Answer& a) {
    h.emplace_back("x-ratelimit-limit-" + std::string(kind), std::to_string(a.limit));
    h.emplace_back("x-ratelimit-remaining-" + std::string(kind),
                   std::to_string(std::max<int64_t>(0, a.remaining)));
    h.emplace_back("x-ratelimit-reset-" + std::string(kind), FormatResetDuration(a.reset));
  };
  if (requests) add("requests", *requests);
  if (tokens) add("tokens", *tokens);
  if (refused) {
    if (!can_retry) {
      h.emplace_back("x-should-retry", "false");
    } else if (configured_retry_after) {
      h.emplace_back("Retry-After", std::to_string(configured_retry_after->count()));
      h.emplace_back("retry-after-ms", std::to_string(configured_retry_after->count() * 1000));
    } else {
      h.emplace_back("Retry-After", std::to_string(CeilSeconds(retry_after)));
      h.emplace_back("retry-after-ms", std::to_string(std::max<int64_t>(1, retry_after.count())));
    }
  }
  return h;
}

namespace {
std::atomic<uint64_t> next_instance{1};
}  // namespace

RateLimits::RateLimits(quota::Store* store) : store_(store), instance_(next_instance++) {}

std::shared_ptr<const std::vector<RateLimits::Compiled>> RateLimits::Chain(const LimitSubject& s) {
  // Compiled once per thread and config revision: a request takes no lock
  // here (the io and gRPC threads would contend on one). Keyed by this
  // object's instance number, never its address, which a later one may reuse.
  struct ThreadCache {
    uint64_t instance = 0;
    int64_t revision = -1;
    std::unordered_map<std::string, std::shared_ptr<const std::vector<Compiled>>> chains;
  };
  thread_local ThreadCache cache;
  if (cache.instance != instance_ || cache.revision != s.revision) {
    cache.chains.clear();
    cache.instance = instance_;
    cache.revision = s.revision;
  }
  std::string cache_key =
      (s.gateway ? s.gateway->id() : std::string()) + "/" + (s.rule ? s.rule->id() : std::string());
  if (auto it = cache.chains.find(cache_key); it != cache.chains.end()) return it->second;
  // tg-config validated every entry on write, so one that does not compile
  // here (a newer edge's rules) is skipped.
  auto chain = std::make_shared<std::vector<Compiled>>();
  auto compile = [&chain](const auto& list, std::string_view level, const std::string& owner_id,
                          std::string_view field, std::string_view tag) {
    const auto first = static_cast<std::ptrdiff_t>(chain->size());
    for (int i = 0; i < list.size(); ++i) {
      std::optional<plugins::Plugin> plugin;
      std::string error;
      const std::string where = std::string(field) + "[" + std::to_string(i) + "]";
      if (!plugins::CompilePlugin(list[i], level, where, &plugin, &error) || !plugin) continue;
      chain->push_back(
          {std::string(tag) + ":" + owner_id + ":" + std::to_string(i), std::move(*plugin)});
    }
    // By priority within this list only: the gateway's entries run before
    // the rule's whatever their priorities (docs/API.md, CompileChain).
    std::stable_sort(
        chain->begin() + first, chain->end(),
        [](const Compiled& a, const Compiled& b) { return a.plugin.priority < b.plugin.priority; });
  };
  if (s.gateway)
    compile(s.gateway->required_plugins(), "gateway", s.gateway->id(), "required_plugins", "g");
  if (s.rule) compile(s.rule->plugin_chain(), "rule", s.rule->id(), "plugin_chain", "r");
  if (cache.chains.size() >= kMaxChains) cache.chains.clear();
  cache.chains[cache_key] = chain;
  return chain;
}

Admission RateLimits::Admit(const LimitSubject& s) {
  Admission a;
  if (!Applies(s.gateway, s.rule)) return a;
  auto chain = Chain(s);
  if (chain->empty()) return a;
  a.limited = true;

  std::vector<std::pair<quota::Spec, int64_t>> taken;
  auto refuse = [&](std::string message, std::string_view type, const quota::Answer* answer) {
    for (const auto& [spec, n] : taken) store_->Adjust(spec, -n);
    a.admitted = false;
    a.message = std::move(message);
    a.limit_type = std::string(type);
    if (answer) {
      a.retry_after = answer->retry_after;
      if (type == "tokens") {
        a.tokens = *answer;
      } else {
        a.requests = *answer;
      }
    }
    a.token_buckets.clear();
    return a;
  };
  std::optional<RequestTokens> estimate;

  for (const Compiled& c : *chain) {
    if (const auto* rl = std::get_if<plugins::RateLimiter>(&c.plugin.settings)) {
      for (const plugins::RequestLimit& limit : rl->limits) {
        std::string_view subject;
        switch (limit.key) {
          case plugins::LimitKey::kGlobal:
            break;
          case plugins::LimitKey::kPerIp:
            subject = s.client_ip;
            break;
          case plugins::LimitKey::kPerUser:
            if (s.user_id.empty()) continue;  // anonymous: TrustGate's rule
            subject = s.user_id;
            break;
          case plugins::LimitKey::kPerApiKey:
            subject = s.key_id;
            break;
          case plugins::LimitKey::kPerModel:
            subject = s.model;
            break;
        }
        quota::Spec spec{"rl:" + c.owner + ":" + std::string(plugins::LimitKeyName(limit.key)) +
                             ":" + Hash(subject),
                         limit.limit, limit.window};
        quota::Answer answer = store_->Take(spec, 1);
        if (!answer.admitted) {
          a.configured_retry_after = rl->retry_after;
          return refuse(std::string(plugins::LimitKeyName(limit.key)) +
                            " rate limit exceeded: " + std::to_string(limit.limit) +
                            " requests per " + FormatResetDuration(limit.window),
                        "requests", &answer);
        }
        taken.emplace_back(std::move(spec), 1);
        KeepTighter(&a.requests, answer);
      }
      continue;
    }
    const auto& tl = std::get<plugins::TokenRateLimiter>(c.plugin.settings);
    std::string_view subject;
    switch (tl.scope) {
      case plugins::TokenScope::kApiKey:
        subject = s.key_id;
        break;
      case plugins::TokenScope::kGateway:
        break;
      case plugins::TokenScope::kModel:
        subject = s.model;
        break;
    }
    const std::string base = "tk:" + c.owner + ":" +
                             std::string(plugins::TokenScopeName(tl.scope)) + ":" + Hash(subject);
    if (tl.requests_per_minute > 0) {
      quota::Spec spec{base + ":req", tl.requests_per_minute, kMinute};
      quota::Answer answer = store_->Take(spec, 1);
      if (!answer.admitted) {
        return refuse("rate limit exceeded: " + std::to_string(tl.requests_per_minute) +
                          " requests per minute",
                      "requests", &answer);
      }
      taken.emplace_back(std::move(spec), 1);
      KeepTighter(&a.requests, answer);
    }
    if (!estimate) estimate = EstimateRequestTokens(s.body, s.format);
    const int64_t need = std::max<int64_t>(1, estimate->prompt);
    const int64_t bucket = tl.bucket_size > 0 ? tl.bucket_size : tl.tokens_per_minute;
    // A request that can never fit: no wait helps, so no retry either.
    if (tl.tokens_per_request > 0 && need > tl.tokens_per_request) {
      a.can_retry = false;
      return refuse("request too large: about " + std::to_string(need) +
                        " prompt tokens, over the limit of " +
                        std::to_string(tl.tokens_per_request) + " tokens per request",
                    "tokens", nullptr);
    }
    if (need > bucket) {
      a.can_retry = false;
      return refuse("request too large: about " + std::to_string(need) +
                        " prompt tokens, over the limit of " + std::to_string(bucket) +
                        " tokens at once",
                    "tokens", nullptr);
    }
    quota::Spec spec{base + ":tok", bucket, TokenPeriod(bucket, tl.tokens_per_minute)};
    quota::Answer answer = store_->Take(spec, need);
    if (!answer.admitted) {
      return refuse("token rate limit exceeded: " + std::to_string(tl.tokens_per_minute) +
                        " tokens per minute; this request needs about " + std::to_string(need),
                    "tokens", &answer);
    }
    taken.emplace_back(spec, need);
    a.token_buckets.push_back(std::move(spec));
    KeepTighter(&a.tokens, answer);
  }
  if (estimate) a.estimated_tokens = std::max<int64_t>(1, estimate->prompt);
  return a;
}

void RateLimits::Settle(Admission& a, int64_t actual_tokens) {
  if (a.settled || !a.admitted) return;
  a.settled = true;
  if (actual_tokens < 0 || a.token_buckets.empty()) return;
  const int64_t delta = actual_tokens - a.estimated_tokens;
  if (delta == 0) return;
  for (const quota::Spec& spec : a.token_buckets) store_->Adjust(spec, delta);
}

namespace {

std::string TargetKey(const std::string& upstream_id, const std::string& target_id) {
  return "tq:" + Hash(upstream_id + "/" + target_id);
}

}  // namespace

std::optional<milliseconds> RateLimits::TakeTarget(const std::string& upstream_id,
                                                   const tg::v1::Target& target, int64_t tokens) {
  if (!target.has_requests_per_minute() && !target.has_tokens_per_minute()) return std::nullopt;
  const std::string key = TargetKey(upstream_id, target.id());
  std::optional<quota::Spec> rpm;
  if (target.has_requests_per_minute()) {
    rpm = quota::Spec{key + ":rpm", target.requests_per_minute(), kMinute};
    quota::Answer a = store_->Take(*rpm, 1);
    if (!a.admitted) return std::max(a.retry_after, milliseconds(1));
  }
  if (target.has_tokens_per_minute()) {
    const int64_t n = std::clamp<int64_t>(tokens, 1, target.tokens_per_minute());
    quota::Answer a =
        store_->Take(quota::Spec{key + ":tpm", target.tokens_per_minute(), kMinute}, n);
    if (!a.admitted) {
      if (rpm) store_->Adjust(*rpm, -1);
      return std::max(a.retry_after, milliseconds(1));
    }
  }
  return std::nullopt;
}

void RateLimits::BlockTarget(const std::string& upstream_id, const tg::v1::Target& target,
                             milliseconds d) {
  const std::string key = TargetKey(upstream_id, target.id());
  if (target.has_requests_per_minute()) {
    store_->BlockFor(quota::Spec{key + ":rpm", target.requests_per_minute(), kMinute}, d);
  }
  if (target.has_tokens_per_minute()) {
    store_->BlockFor(quota::Spec{key + ":tpm", target.tokens_per_minute(), kMinute}, d);
  }
  CoolTarget(upstream_id, target.id(), d);
}

void RateLimits::SettleTarget(const std::string& upstream_id, const tg::v1::Target& target,
                              int64_t estimated, int64_t actual) {
  if (!target.has_tokens_per_minute() || actual < 0) return;
  const int64_t taken = std::clamp<int64_t>(estimated, 1, target.tokens_per_minute());
  if (actual == taken) return;
  store_->Adjust(quota::Spec{TargetKey(upstream_id, target.id()) + ":tpm",
                             target.tokens_per_minute(), kMinute},
                 actual - taken);
}

bool RateLimits::TargetCooling(const std::string& upstream_id, const std::string& target_id,
                               milliseconds* left) {
  if (cooling_size_.load(std::memory_order_relaxed) == 0) return false;  // no lock when none
  std::lock_guard lock(mu_);
  auto it = cooling_.find(upstream_id + "/" + target_id);
  if (it == cooling_.end()) return false;
  const auto now = steady_clock::now();
  if (it->second <= now) {
    cooling_.erase(it);
    cooling_size_.store(cooling_.size(), std::memory_order_relaxed);
    return false;
  }
  if (left) *left = std::chrono::ceil<milliseconds>(it->second - now);
  return true;
}

void RateLimits::CoolTarget(const std::string& upstream_id, const std::string& target_id,
                            milliseconds d) {
  if (d <= milliseconds(0)) return;
  const auto now = steady_clock::now();
  std::lock_guard lock(mu_);
  if (cooling_.size() >= kMaxCooling) {
    std::erase_if(cooling_, [now](const auto& e) { return e.second <= now; });
    if (cooling_.size() >= kMaxCooling) return;
  }
  auto& until = cooling_[upstream_id + "/" + target_id];
  until = std::max(until, now + d);
  cooling_size_.store(cooling_.size(), std::memory_order_relaxed);
}

}  // namespace tg::edge
