#pragma once

// TrustGate's plugin configuration (a gateway's required_plugins, a rule's
// plugin_chain) checked and compiled into plain structs: tg-config validates
// every entry on write with CompilePlugin, tg-edge compiles what a request
// runs with CompileChain. Pure: no I/O, no clock.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "tg/v1/resources.pb.h"

namespace tg::plugins {

// At most this many entries in one required_plugins or plugin_chain.
inline constexpr int kMaxPluginsPerList = 16;

enum class LimitKey { kGlobal, kPerIp, kPerUser, kPerApiKey, kPerModel };
std::string_view LimitKeyName(
    LimitKey key);  // "global", "per_ip", "per_user", "per_api_key", "per_model"

struct RequestLimit {
  LimitKey key;
  int64_t limit = 0;                    // requests per window, 1..1e9
  std::chrono::milliseconds window{0};  // 1 s..24 h
};

struct RateLimiter {
  std::vector<RequestLimit> limits;  // order: per_ip, per_user, per_api_key, per_model, global
  std::optional<std::chrono::seconds> retry_after;  // actions.retry_after when set
};

enum class TokenScope { kApiKey, kGateway, kModel };
std::string_view TokenScopeName(TokenScope s);  // "api_key", "gateway", "model"

struct TokenRateLimiter {
  int64_t tokens_per_minute = 0;           // required, > 0
  int64_t bucket_size = 0;                 // default: tokens_per_minute; any > 0
  int64_t requests_per_minute = 0;         // 0 = no request limit
  int64_t tokens_per_request = 0;          // 0 = no per-request cap; when set <= bucket_size
  TokenScope scope = TokenScope::kApiKey;  // our extension field "scope"
};

struct Plugin {
  std::string name;  // "rate_limiter" | "token_rate_limiter"
  int priority = 0;
  std::variant<RateLimiter, TokenRateLimiter> settings;
};

// Validates one entry; `field` names it in errors ("required_plugins[0]", "plugin_chain[2]");
// `level` is where it sits ("gateway" or "rule"). ok: *out = the compiled plugin, or nullopt when
// enabled is false (still fully validated). Error: false and *error = "<field>.<sub>: <what>".
bool CompilePlugin(const tg::v1::PluginConfig& config, std::string_view level,
                   std::string_view field, std::optional<Plugin>* out, std::string* error);

// Both lists in execution order (gateway's required_plugins first, then the rule's plugin_chain;
// within each, by priority ascending, then position). Invalid entries are skipped (config is
// validated on write); used by the edge at request time. Either pointer may be null.
std::vector<Plugin> CompileChain(const tg::v1::Gateway* gateway, const tg::v1::Rule* rule);

// Go duration syntax as TrustGate uses ("1m", "30s", "1h30m", "1.5h", "500ms"; units ns, us, µs,
// ms, s, m, h; a sign; "0"), as Go's time.ParseDuration reads it; sub-millisecond parts are
// truncated. nullopt on bad syntax/overflow (beyond Go's ~292 years).
std::optional<std::chrono::milliseconds> ParseGoDuration(std::string_view text);

}  // namespace tg::plugins
