// TrustGate's plugin settings (tg/common/plugin_settings.h) on any JSON: the
// admin API's bounded parser (json::ParseProto) into a PluginConfig, a
// Gateway's required_plugins or a Rule's plugin_chain; then CompilePlugin at
// both levels, CompileChain, and ParseGoDuration on the raw payload.
//
// Input: shape:u8 | payload. shape % 3: 0 PluginConfig, 1 Gateway, 2 Rule.
//
// Checked: no crash, leak or sanitizer report; a refusal has a message that
// starts with the entry's path; a compiled plugin is within the documented
// ranges (docs/API.md, "Plugins (rate limits)"); an entry without `level`
// compiles the same at both levels; `enabled: false` compiles to nothing;
// CompileChain keeps exactly the enabled entries that compile, each list in
// priority order; ParseGoDuration is never negative without a '-', and a
// sign in front only negates.

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "fuzz_input.h"
#include "tg/common/json_util.h"
#include "tg/common/plugin_settings.h"
#include "tg/v1/resources.pb.h"

namespace {

namespace plugins = tg::plugins;
using std::chrono::milliseconds;

// The size the admin API accepts is larger; more only slows the fuzzer down.
constexpr size_t kMaxPayload = 64 * 1024;

[[noreturn]] void Fail(const char* what, std::string_view detail = {}) {
  std::fprintf(stderr, "plugin_settings_fuzz: %s %.*s\n", what, static_cast<int>(detail.size()),
               detail.data());
  std::abort();
}

void CheckPlugin(const tg::v1::PluginConfig& config, const plugins::Plugin& p) {
  if (p.name != config.name()) Fail("name changed", p.name);
  if (p.priority < 0 || p.priority > 1000) Fail("priority out of range");
  if (const auto* rl = std::get_if<plugins::RateLimiter>(&p.settings)) {
    if (p.name != "rate_limiter") Fail("rate_limiter settings for", p.name);
    if (rl->limits.empty() || rl->limits.size() > 5) Fail("rate_limiter without 1..5 limits");
    for (size_t i = 0; i < rl->limits.size(); ++i) {
      const plugins::RequestLimit& l = rl->limits[i];
      if (l.limit < 1 || l.limit > 1'000'000'000) Fail("limit out of range");
      if (l.window < std::chrono::seconds(1) || l.window > std::chrono::hours(24)) {
        Fail("window out of range");
      }
      if (plugins::LimitKeyName(l.key).empty()) Fail("unnamed limit key");
      for (size_t j = 0; j < i; ++j) {
        if (rl->limits[j].key == l.key) Fail("limit key twice", plugins::LimitKeyName(l.key));
      }
    }
    if (rl->retry_after &&
        (*rl->retry_after < std::chrono::seconds(1) || *rl->retry_after > std::chrono::hours(24))) {
      Fail("retry_after out of range");
    }
    return;
  }
  const auto& t = std::get<plugins::TokenRateLimiter>(p.settings);
  if (p.name != "token_rate_limiter") Fail("token settings for", p.name);
  constexpr int64_t kMaxTokens = 1'000'000'000'000;
  if (t.tokens_per_minute < 1 || t.tokens_per_minute > kMaxTokens) Fail("tokens_per_minute");
  if (t.bucket_size < 1 || t.bucket_size > kMaxTokens) Fail("bucket_size");
  if (t.requests_per_minute < 0 || t.requests_per_minute > 1'000'000'000) {
    Fail("requests_per_minute");
  }
  if (t.tokens_per_request < 0 || t.tokens_per_request > t.bucket_size) Fail("tokens_per_request");
  if (plugins::TokenScopeName(t.scope).empty()) Fail("unnamed scope");
}

struct Compiled {
  bool ok = false;
  std::optional<plugins::Plugin> plugin;
  std::string error;
};

Compiled CompileAt(const tg::v1::PluginConfig& config, std::string_view level,
                   std::string_view field) {
  Compiled c;
  c.ok = plugins::CompilePlugin(config, level, field, &c.plugin, &c.error);
  if (!c.ok) {
    // "<field>.<sub>: <what>"
    if (!c.error.starts_with(std::string(field) + ".") || c.error.find(": ") == std::string::npos) {
      Fail("refusal without a proper message:", c.error);
    }
    if (c.plugin) Fail("refusal with a plugin");
    return c;
  }
  const bool disabled = config.has_enabled() && !config.enabled();
  if (disabled == c.plugin.has_value()) Fail("enabled and the compiled plugin disagree");
  if (c.plugin) CheckPlugin(config, *c.plugin);
  return c;
}

// Both levels; the first level's result.
Compiled CompileBoth(const tg::v1::PluginConfig& config, bool gateway_first) {
  Compiled g = CompileAt(config, "gateway", "required_plugins[0]");
  Compiled r = CompileAt(config, "rule", "plugin_chain[0]");
  const std::string& level = config.level();
  if (level.empty() && g.ok != r.ok) Fail("an entry without level depends on the level");
  if (!level.empty() && level != "gateway" && g.ok) Fail("compiled at another level:", level);
  if (!level.empty() && level != "rule" && r.ok) Fail("compiled at another level:", level);
  return gateway_first ? g : r;
}

// CompileChain keeps the entries CompilePlugin keeps, each list by priority.
void CheckChain(const tg::v1::Gateway* gateway, const tg::v1::Rule* rule) {
  std::vector<plugins::Plugin> chain = plugins::CompileChain(gateway, rule);
  size_t expected = 0;
  auto count = [&](const auto& list, bool gateway_level) {
    const size_t first = expected;
    for (const tg::v1::PluginConfig& config : list) {
      Compiled c = CompileBoth(config, gateway_level);
      if (c.plugin) ++expected;
    }
    if (expected > chain.size()) Fail("CompileChain dropped an entry");
    for (size_t i = first; i + 1 < expected; ++i) {
      if (chain[i].priority > chain[i + 1].priority) Fail("chain not in priority order");
    }
    for (size_t i = first; i < expected; ++i) {
      // Every compiled entry of the chain meets the same ranges.
      tg::v1::PluginConfig named;
      named.set_name(chain[i].name);
      CheckPlugin(named, chain[i]);
    }
  };
  if (gateway != nullptr) count(gateway->required_plugins(), true);
  if (rule != nullptr) count(rule->plugin_chain(), false);
  if (expected != chain.size()) Fail("CompileChain kept an entry CompilePlugin refuses");
}

void CheckDuration(std::string_view text) {
  const std::optional<milliseconds> d = plugins::ParseGoDuration(text);
  if (d && d->count() < 0 && text.find('-') == std::string_view::npos) {
    Fail("negative duration without '-':", text);
  }
  if (text.empty() && d) Fail("empty text is a duration");
  // A sign in front changes nothing but the sign (Go's range is one wider
  // below zero, so only this direction must hold).
  if (d && !text.empty() && text.front() != '-' && text.front() != '+') {
    const std::string signed_text = "-" + std::string(text);
    const std::optional<milliseconds> neg = plugins::ParseGoDuration(signed_text);
    if (!neg || *neg != -*d) Fail("'-' does not negate:", text);
    if (plugins::ParseGoDuration("+" + std::string(text)) != d) Fail("'+' changes:", text);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  tg::fuzz::FuzzInput in(data, size);
  const uint8_t shape = in.Byte() % 3;
  const std::string_view payload = in.Rest();
  if (payload.size() > kMaxPayload) return 0;

  CheckDuration(payload);

  std::string error;
  switch (shape) {
    case 0: {
      tg::v1::PluginConfig config;
      if (!tg::json::ParseProto(payload, &config, &error)) {
        if (error.empty()) Fail("a parse error without a message");
        return 0;
      }
      CompileBoth(config, true);
      tg::v1::Gateway gateway;
      *gateway.add_required_plugins() = config;
      tg::v1::Rule rule;
      *rule.add_plugin_chain() = config;
      CheckChain(&gateway, &rule);
      break;
    }
    case 1: {
      tg::v1::Gateway gateway;
      if (!tg::json::ParseProto(payload, &gateway, &error)) {
        if (error.empty()) Fail("a parse error without a message");
        return 0;
      }
      CheckChain(&gateway, nullptr);
      break;
    }
    default: {
      tg::v1::Rule rule;
      if (!tg::json::ParseProto(payload, &rule, &error)) {
        if (error.empty()) Fail("a parse error without a message");
        return 0;
      }
      CheckChain(nullptr, &rule);
      break;
    }
  }
  return 0;
}
