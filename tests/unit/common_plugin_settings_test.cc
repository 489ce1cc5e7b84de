// TrustGate's plugin settings (tg/common/plugin_settings.h): what tg-config
// accepts and refuses on write, and what tg-edge compiles per request.
#include <gtest/gtest.h>

#include "tg/common/json_util.h"
#include "tg/common/plugin_settings.h"
#include "tg/config/validation.h"

namespace tg::plugins {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

// TrustGate's documented example, as users paste it.
constexpr const char* kRateLimiterExample = R"({
  "name": "rate_limiter", "enabled": true, "stage": "pre_request", "priority": 1,
  "level": "gateway", "id": "3f1c2e8a-0000-4000-8000-000000000001", "parallel": false,
  "settings": {"limits": {"global": {"limit": 1000, "window": "1m"},
                          "per_ip": {"limit": 60, "window": "1m"},
                          "per_user": {"limit": 100, "window": "1m"}},
               "actions": {"type": "reject", "retry_after": "60"}}})";

constexpr const char* kTokenExample = R"({
  "name": "token_rate_limiter", "enabled": true, "stage": "pre_request", "priority": 2,
  "settings": {"tokens_per_minute": 10000, "requests_per_minute": 60, "bucket_size": 20000,
               "tokens_per_request": 4000}})";

tg::v1::PluginConfig Parse(const std::string& json) {
  tg::v1::PluginConfig c;
  std::string err;
  EXPECT_TRUE(json::ParseProto(json, &c, &err)) << err << "\n" << json;
  return c;
}

// "ok" or the error of one entry at required_plugins[0] (or plugin_chain[0]).
std::string Check(const std::string& json, std::string_view level = "gateway") {
  std::optional<Plugin> out;
  std::string error;
  std::string field = level == "gateway" ? "required_plugins[0]" : "plugin_chain[0]";
  return CompilePlugin(Parse(json), level, field, &out, &error) ? "ok" : error;
}

// A rate_limiter whose settings are `settings`.
std::string RateLimiter(const std::string& settings) {
  return Check(R"({"name": "rate_limiter", "settings": )" + settings + "}");
}

std::string Token(const std::string& settings) {
  return Check(R"({"name": "token_rate_limiter", "settings": )" + settings + "}");
}

TEST(PluginSettings, TrustGatesRateLimiterExampleIsAcceptedAsWritten) {
  std::optional<Plugin> out;
  std::string error;
  ASSERT_TRUE(
      CompilePlugin(Parse(kRateLimiterExample), "gateway", "required_plugins[0]", &out, &error))
      << error;
  ASSERT_TRUE(out.has_value());
  EXPECT_EQ(out->name, "rate_limiter");
  EXPECT_EQ(out->priority, 1);
  const auto& r = std::get<plugins::RateLimiter>(out->settings);
  ASSERT_EQ(r.limits.size(), 3u);
  // Narrowest key first, global last.
  EXPECT_EQ(r.limits[0].key, LimitKey::kPerIp);
  EXPECT_EQ(r.limits[0].limit, 60);
  EXPECT_EQ(r.limits[0].window, seconds(60));
  EXPECT_EQ(r.limits[1].key, LimitKey::kPerUser);
  EXPECT_EQ(r.limits[1].limit, 100);
  EXPECT_EQ(r.limits[2].key, LimitKey::kGlobal);
  EXPECT_EQ(r.limits[2].limit, 1000);
  EXPECT_EQ(r.retry_after, seconds(60));

  // The same entry in a rule, without level, sits there just as well.
  EXPECT_EQ(Check(R"({"name": "rate_limiter", "settings": {"limits": {"per_api_key":
                      {"limit": 5, "window": "1h30m"}, "per_model": {"limit": 7, "window": "30s"}}}})",
                  "rule"),
            "ok");
}

TEST(PluginSettings, TrustGatesTokenRateLimiterExampleIsAcceptedAsWritten) {
  std::optional<Plugin> out;
  std::string error;
  ASSERT_TRUE(CompilePlugin(Parse(kTokenExample), "rule", "plugin_chain[0]", &out, &error))
      << error;
  ASSERT_TRUE(out.has_value());
  EXPECT_EQ(out->name, "token_rate_limiter");
  const auto& t = std::get<TokenRateLimiter>(out->settings);
  EXPECT_EQ(t.tokens_per_minute, 10000);
  EXPECT_EQ(t.requests_per_minute, 60);
  EXPECT_EQ(t.bucket_size, 20000);
  EXPECT_EQ(t.tokens_per_request, 4000);
  EXPECT_EQ(t.scope, TokenScope::kApiKey);

  // Defaults: bucket_size = tokens_per_minute, no request limit, no cap.
  ASSERT_TRUE(CompilePlugin(Parse(R"({"name": "token_rate_limiter", "stage": "post_response",
                                      "settings": {"tokens_per_minute": 500, "scope": "model"}})"),
                            "rule", "plugin_chain[0]", &out, &error))
      << error;
  const auto& d = std::get<TokenRateLimiter>(out->settings);
  EXPECT_EQ(d.bucket_size, 500);
  EXPECT_EQ(d.requests_per_minute, 0);
  EXPECT_EQ(d.tokens_per_request, 0);
  EXPECT_EQ(d.scope, TokenScope::kModel);
}

TEST(PluginSettings, DisabledPluginsAreValidatedButNotCompiled) {
  std::optional<Plugin> out = Plugin{};
  std::string error;
  ASSERT_TRUE(CompilePlugin(Parse(R"({"name": "rate_limiter", "enabled": false, "settings":
                                      {"limits": {"global": {"limit": 1, "window": "1s"}}}})"),
                            "gateway", "required_plugins[0]", &out, &error))
      << error;
  EXPECT_FALSE(out.has_value());
  // enabled: false does not excuse bad settings.
  EXPECT_EQ(Check(R"({"name": "rate_limiter", "enabled": false, "settings": {}})"),
            "required_plugins[0].settings.limits: required: an object with at least one of "
            "global, per_ip, per_user, per_api_key, per_model");
  // enabled absent: enforced (TrustGate's Go zero value would be false).
  ASSERT_TRUE(CompilePlugin(Parse(R"({"name": "token_rate_limiter", "settings":
                                      {"tokens_per_minute": 1}})"),
                            "gateway", "required_plugins[0]", &out, &error));
  EXPECT_TRUE(out.has_value());
}

TEST(PluginSettings, NamesLevelsStagesAndPriorities) {
  const std::string supported = " (supported: rate_limiter, token_rate_limiter)";
  EXPECT_EQ(Check(R"({"settings": {}})"), "required_plugins[0].name: required" + supported);
  EXPECT_EQ(Check(R"({"name": "data_masking"})"),
            "required_plugins[0].name: plugin \"data_masking\" is not supported by this gateway" +
                supported);
  for (const char* name : {"external_api",
                           "injection_protection",
                           "request_size_limiter",
                           "code_sanitation",
                           "cors",
                           "bot_detector",
                           "toxicity_openai",
                           "toxicity_azure",
                           "toxicity_neuraltrust",
                           "toxicity_detection",
                           "neuraltrust_guardrail",
                           "neuraltrust_jailbreak",
                           "neuraltrust_moderation",
                           "neuraltrust_toxicity",
                           "bedrock_guardrail",
                           "contextual_security",
                           "anomaly_detector",
                           "ip_whitelist",
                           "prompt_moderation",
                           "trustgate_guardrail"}) {
    EXPECT_EQ(Check(std::string(R"({"name": ")") + name + "\"}", "rule"),
              std::string("plugin_chain[0].name: plugin \"") + name +
                  "\" is not supported by this gateway" + supported);
  }
  EXPECT_EQ(Check(R"({"name": "foo"})"),
            "required_plugins[0].name: unknown plugin \"foo\"" + supported);
  EXPECT_EQ(Check(R"({"name": "Rate_Limiter"})"),
            "required_plugins[0].name: unknown plugin \"Rate_Limiter\"" + supported);
  // A hostile name is quoted, escaped and cut.
  EXPECT_EQ(Check(R"({"name": "a\"b"})"),
            "required_plugins[0].name: unknown plugin \"a\\\"b\"" + supported);
  EXPECT_EQ(
      Check(R"({"name": ")" + std::string(100, 'x') + "\"}"),
      "required_plugins[0].name: unknown plugin \"" + std::string(64, 'x') + "...\"" + supported);

  const std::string limits = R"("settings": {"limits": {"global": {"limit": 1, "window": "1m"}}}})";
  EXPECT_EQ(Check(R"({"name": "rate_limiter", "level": "rule", )" + limits),
            "required_plugins[0].level: must be \"gateway\" or empty here, not \"rule\"");
  EXPECT_EQ(Check(R"({"name": "rate_limiter", "level": "gateway", )" + limits, "rule"),
            "plugin_chain[0].level: must be \"rule\" or empty here, not \"gateway\"");
  EXPECT_EQ(Check(R"({"name": "rate_limiter", "level": "rule", )" + limits, "rule"), "ok");
  for (const char* stage : {"post_request", "pre_response", "post_response", "bad"}) {
    EXPECT_EQ(
        Check(std::string(R"({"name": "rate_limiter", "stage": ")") + stage + "\", " + limits),
        std::string("required_plugins[0].stage: \"") + stage +
            "\" is not supported for rate_limiter (use pre_request)");
  }
  const std::string tokens = R"("settings": {"tokens_per_minute": 100}})";
  for (const char* stage : {"post_request", "pre_response", "bad"}) {
    EXPECT_EQ(Check(std::string(R"({"name": "token_rate_limiter", "stage": ")") + stage + "\", " +
                    tokens),
              std::string("required_plugins[0].stage: \"") + stage +
                  "\" is not supported for token_rate_limiter (use pre_request or post_response)");
  }
  EXPECT_EQ(Check(R"({"name": "token_rate_limiter", "stage": "post_response", )" + tokens), "ok");
  EXPECT_EQ(Check(R"({"name": "token_rate_limiter", "stage": "", )" + tokens), "ok");

  EXPECT_EQ(Check(R"({"name": "rate_limiter", "priority": -1, )" + limits),
            "required_plugins[0].priority: must be between 0 and 1000");
  EXPECT_EQ(Check(R"({"name": "rate_limiter", "priority": 1001, )" + limits),
            "required_plugins[0].priority: must be between 0 and 1000");
  EXPECT_EQ(
      Check(R"({"name": "rate_limiter", "priority": 1000, "parallel": true, "id": "x", )" + limits),
      "ok");
}

TEST(PluginSettings, RateLimiterSettingsNameTheirField) {
  const std::string p = "required_plugins[0].settings";
  const std::string names = "global, per_ip, per_user, per_api_key, per_model";
  struct Case {
    std::string settings;
    std::string error;
  };
  std::vector<Case> cases = {
      {R"({})", p + ".limits: required: an object with at least one of " + names},
      {R"({"limits": null})", p + ".limits: required: an object with at least one of " + names},
      {R"({"limits": []})", p + ".limits: must be an object"},
      {R"({"limits": {}})", p + ".limits: must have at least one of " + names},
      {R"({"limits": {"per_region": {"limit": 1, "window": "1m"}}})",
       p + ".limits.per_region: unknown limit (expected " + names + ")"},
      {R"({"limits": {"global": {"limit": 1, "window": "1m"}}, "burst": 3})",
       p + ".burst: unknown field (expected limits, actions)"},
      {R"({"limits": {"per_ip": 60}})", p + ".limits.per_ip: must be an object"},
      {R"({"limits": {"per_ip": {"window": "1m"}}})", p + ".limits.per_ip.limit: required"},
      {R"({"limits": {"per_ip": {"limit": 60}}})",
       p + ".limits.per_ip.window: required (e.g. \"1m\")"},
      {R"({"limits": {"per_ip": {"limit": 60, "window": "1m", "burst": 2}}})",
       p + ".limits.per_ip.burst: unknown field (expected limit, window)"},
      {R"({"limits": {"per_ip": {"limit": 0, "window": "1m"}}})",
       p + ".limits.per_ip.limit: must be an integer between 1 and 1000000000"},
      {R"({"limits": {"per_ip": {"limit": 1000000001, "window": "1m"}}})",
       p + ".limits.per_ip.limit: must be an integer between 1 and 1000000000"},
      {R"({"limits": {"per_ip": {"limit": 1.5, "window": "1m"}}})",
       p + ".limits.per_ip.limit: must be an integer between 1 and 1000000000"},
      {R"({"limits": {"per_ip": {"limit": "60", "window": "1m"}}})",
       p + ".limits.per_ip.limit: must be an integer between 1 and 1000000000"},
      {R"({"limits": {"per_ip": {"limit": 60, "window": "1x"}}})",
       p + R"(.limits.per_ip.window: "1x" is not a duration (e.g. "30s", "1m", "1h"))"},
      {R"({"limits": {"per_ip": {"limit": 60, "window": 60}}})",
       p + ".limits.per_ip.window: must be a string"},
      {R"({"limits": {"per_ip": {"limit": 60, "window": "500ms"}}})",
       p + R"(.limits.per_ip.window: must be between 1s and 24h, not "500ms")"},
      {R"({"limits": {"per_ip": {"limit": 60, "window": "24h1s"}}})",
       p + R"(.limits.per_ip.window: must be between 1s and 24h, not "24h1s")"},
      {R"({"limits": {"per_ip": {"limit": 60, "window": "-1m"}}})",
       p + R"(.limits.per_ip.window: must be between 1s and 24h, not "-1m")"},
      {R"({"limits": {"global": {"limit": 1, "window": "1m"}}, "actions": "reject"})",
       p + ".actions: must be an object"},
      {R"({"limits": {"global": {"limit": 1, "window": "1m"}}, "actions": {"type": "drop"}})",
       p + R"(.actions.type: must be "reject" or "block", not "drop")"},
      {R"({"limits": {"global": {"limit": 1, "window": "1m"}}, "actions": {"status": 429}})",
       p + ".actions.status: unknown field (expected type, retry_after)"},
      {R"({"limits": {"global": {"limit": 1, "window": "1m"}}, "actions": {"retry_after": 60}})",
       p + ".actions.retry_after: must be a string"},
      {R"({"limits": {"global": {"limit": 1, "window": "1m"}}, "actions": {"retry_after": "0"}})",
       p + ".actions.retry_after: must be between 1 and 86400 seconds"},
      {R"({"limits": {"global": {"limit": 1, "window": "1m"}},
           "actions": {"retry_after": "86401"}})",
       p + ".actions.retry_after: must be between 1 and 86400 seconds"},
      {R"({"limits": {"global": {"limit": 1, "window": "1m"}},
           "actions": {"retry_after": "soon"}})",
       p + R"(.actions.retry_after: "soon" is neither a number of seconds nor a duration (e.g. "60", "1m"))"},
      {R"({"limits": {"global": {"limit": 1, "window": "1m"}}, "actions": {"retry_after": "25h"}})",
       p + ".actions.retry_after: must be between 1 and 86400 seconds"},
  };
  for (const auto& c : cases) EXPECT_EQ(RateLimiter(c.settings), c.error) << c.settings;

  // Accepted: every key, block, retry_after as a duration (a fraction rounds up).
  std::optional<Plugin> out;
  std::string error;
  ASSERT_TRUE(CompilePlugin(Parse(R"({"name": "rate_limiter", "settings": {"limits": {
                 "global": {"limit": 1000000000, "window": "24h"},
                 "per_model": {"limit": 3, "window": "1s"},
                 "per_api_key": {"limit": 2, "window": "1.5h"}},
               "actions": {"type": "block", "retry_after": "1.5s"}}})"),
                            "gateway", "required_plugins[0]", &out, &error))
      << error;
  const auto& r = std::get<plugins::RateLimiter>(out->settings);
  ASSERT_EQ(r.limits.size(), 3u);
  EXPECT_EQ(r.limits[0].key, LimitKey::kPerApiKey);
  EXPECT_EQ(r.limits[0].window, milliseconds(5'400'000));
  EXPECT_EQ(r.limits[1].key, LimitKey::kPerModel);
  EXPECT_EQ(r.limits[2].key, LimitKey::kGlobal);
  EXPECT_EQ(r.limits[2].window, std::chrono::hours(24));
  EXPECT_EQ(r.retry_after, seconds(2));
  // No actions: no retry_after.
  ASSERT_TRUE(CompilePlugin(Parse(R"({"name": "rate_limiter", "settings": {"limits":
                                      {"global": {"limit": 1, "window": "1m"}}}})"),
                            "gateway", "required_plugins[0]", &out, &error));
  EXPECT_FALSE(std::get<plugins::RateLimiter>(out->settings).retry_after.has_value());
}

TEST(PluginSettings, TokenRateLimiterSettingsNameTheirField) {
  const std::string p = "required_plugins[0].settings";
  struct Case {
    std::string settings;
    std::string error;
  };
  std::vector<Case> cases = {
      {R"({})", p + ".tokens_per_minute: required"},
      {R"({"tokens_per_minute": 0})",
       p + ".tokens_per_minute: must be an integer between 1 and 1000000000000"},
      {R"({"tokens_per_minute": 1000000000001})",
       p + ".tokens_per_minute: must be an integer between 1 and 1000000000000"},
      {R"({"tokens_per_minute": 10.5})",
       p + ".tokens_per_minute: must be an integer between 1 and 1000000000000"},
      {R"({"tokens_per_minute": "10000"})",
       p + ".tokens_per_minute: must be an integer between 1 and 1000000000000"},
      {R"({"tokens_per_minute": 100, "bucket_size": 0})",
       p + ".bucket_size: must be an integer between 1 and 1000000000000"},
      {R"({"tokens_per_minute": 100, "requests_per_minute": 0})",
       p + ".requests_per_minute: must be an integer between 1 and 1000000000"},
      {R"({"tokens_per_minute": 100, "tokens_per_request": -1})",
       p + ".tokens_per_request: must be an integer between 1 and 1000000000000"},
      {R"({"tokens_per_minute": 100, "tokens_per_request": 101})",
       p + ".tokens_per_request: must be at most bucket_size (100)"},
      {R"({"tokens_per_minute": 100, "bucket_size": 50, "tokens_per_request": 51})",
       p + ".tokens_per_request: must be at most bucket_size (50)"},
      {R"({"tokens_per_minute": 100, "scope": "user"})",
       p + R"(.scope: must be "api_key", "gateway" or "model", not "user")"},
      {R"({"tokens_per_minute": 100, "scope": 1})", p + ".scope: must be a string"},
      {R"({"tokens_per_minute": 100, "tokens_per_day": 1})",
       p + ".tokens_per_day: unknown field (expected tokens_per_minute, bucket_size, "
           "requests_per_minute, tokens_per_request, scope)"},
  };
  for (const auto& c : cases) EXPECT_EQ(Token(c.settings), c.error) << c.settings;
  // A bucket smaller than a minute's tokens is allowed; so is the top of every range.
  EXPECT_EQ(Token(R"({"tokens_per_minute": 1000000000000, "bucket_size": 1,
                      "tokens_per_request": 1, "requests_per_minute": 1000000000,
                      "scope": "gateway"})"),
            "ok");
}

TEST(PluginSettings, ParseGoDurationReadsWhatGoReads) {
  struct Case {
    const char* text;
    std::optional<int64_t> ms;
  };
  const std::vector<Case> cases = {
      {"1m", 60'000},
      {"30s", 30'000},
      {"1h", 3'600'000},
      {"1h30m", 5'400'000},
      {"1.5h", 5'400'000},
      {"500ms", 500},
      {"2h45m30.5s", 9'930'500},
      {"1m0s", 60'000},
      {".5s", 500},
      {"5.s", 5'000},
      {"0", 0},
      {"+0", 0},
      {"0s", 0},
      {"-1m", -60'000},
      {"+2s", 2'000},
      {"1500us", 1},
      {"1500\xC2\xB5s", 1},
      {"1500\xCE\xBCs", 1},
      {"999999ns", 0},
      {"3000000ns", 3},
      {"2562047h", int64_t{2562047} * 3'600'000},  // Go's largest whole hour
      {"2562048h", std::nullopt},                  // past 2^63 ns
      {"9223372036854775807ns", 9'223'372'036'854},
      {"9223372036854775808ns", std::nullopt},
      {"99999999999999999999s", std::nullopt},
      {"", std::nullopt},
      {"1", std::nullopt},  // a unit is required except for "0"
      {"1x", std::nullopt},
      {"1d", std::nullopt},
      {"m", std::nullopt},
      {".s", std::nullopt},
      {".", std::nullopt},
      {"-", std::nullopt},
      {"1m ", std::nullopt},
      {" 1m", std::nullopt},
      {"1M", std::nullopt},
      {"1h-1m", std::nullopt},
      {"60", std::nullopt},
  };
  for (const auto& c : cases) {
    auto got = ParseGoDuration(c.text);
    if (c.ms) {
      ASSERT_TRUE(got.has_value()) << c.text;
      EXPECT_EQ(got->count(), *c.ms) << c.text;
    } else {
      EXPECT_FALSE(got.has_value()) << c.text << " = " << got->count();
    }
  }
}

TEST(PluginSettings, NamesOfKeysAndScopes) {
  EXPECT_EQ(LimitKeyName(LimitKey::kGlobal), "global");
  EXPECT_EQ(LimitKeyName(LimitKey::kPerIp), "per_ip");
  EXPECT_EQ(LimitKeyName(LimitKey::kPerUser), "per_user");
  EXPECT_EQ(LimitKeyName(LimitKey::kPerApiKey), "per_api_key");
  EXPECT_EQ(LimitKeyName(LimitKey::kPerModel), "per_model");
  EXPECT_EQ(TokenScopeName(TokenScope::kApiKey), "api_key");
  EXPECT_EQ(TokenScopeName(TokenScope::kGateway), "gateway");
  EXPECT_EQ(TokenScopeName(TokenScope::kModel), "model");
}

tg::v1::PluginConfig Limiter(const std::string& id, std::optional<int> priority,
                             bool enabled = true) {
  tg::v1::PluginConfig c = Parse(R"({"name": "rate_limiter", "settings": {"limits":
                                     {"global": {"limit": 1, "window": "1m"}}}})");
  c.set_id(id);
  if (priority) c.set_priority(*priority);
  if (!enabled) c.set_enabled(false);
  return c;
}

TEST(PluginSettings, CompileChainRunsTheGatewaysPluginsFirstEachByPriorityThenPosition) {
  tg::v1::Gateway g;
  // The id is not compiled; the limit tells the plugins apart here.
  auto tag = [](tg::v1::PluginConfig c, int limit) {
    (*c.mutable_settings()->mutable_fields())["limits"]
        .mutable_struct_value()
        ->mutable_fields()
        ->at("global")
        .mutable_struct_value()
        ->mutable_fields()
        ->at("limit")
        .set_number_value(limit);
    return c;
  };
  *g.add_required_plugins() = tag(Limiter("g0", 5), 10);
  *g.add_required_plugins() = tag(Limiter("g1", std::nullopt), 11);  // priority 0
  *g.add_required_plugins() = tag(Limiter("g2", 5), 12);
  *g.add_required_plugins() = tag(Limiter("g3", 1, /*enabled=*/false), 13);
  tg::v1::PluginConfig invalid;
  invalid.set_name("data_masking");
  *g.add_required_plugins() = invalid;  // skipped: refused on write anyway
  tg::v1::Rule r;
  *r.add_plugin_chain() = Parse(R"({"name": "token_rate_limiter", "priority": 3,
                                    "settings": {"tokens_per_minute": 20}})");
  *r.add_plugin_chain() = tag(Limiter("r1", 0), 21);
  tg::v1::PluginConfig misplaced = tag(Limiter("r2", 0), 22);
  misplaced.set_level("gateway");  // invalid in a rule: skipped
  *r.add_plugin_chain() = misplaced;

  auto limit_of = [](const Plugin& p) {
    if (const auto* t = std::get_if<TokenRateLimiter>(&p.settings)) return t->tokens_per_minute;
    return std::get<plugins::RateLimiter>(p.settings).limits.at(0).limit;
  };
  std::vector<int64_t> order;
  for (const Plugin& p : CompileChain(&g, &r)) order.push_back(limit_of(p));
  EXPECT_EQ(order, (std::vector<int64_t>{11, 10, 12, 21, 20}));

  order.clear();
  for (const Plugin& p : CompileChain(nullptr, &r)) order.push_back(limit_of(p));
  EXPECT_EQ(order, (std::vector<int64_t>{21, 20}));
  EXPECT_EQ(CompileChain(&g, nullptr).size(), 3u);
  EXPECT_TRUE(CompileChain(nullptr, nullptr).empty());
}

// tg-config's validation refuses what CompilePlugin refuses, with its message,
// and bounds the lists and the targets' quotas.
TEST(PluginSettings, ConfigValidationUsesThem) {
  tg::v1::Gateway g;
  g.set_name("gw");
  *g.add_required_plugins() = Parse(kRateLimiterExample);
  *g.add_required_plugins() = Parse(kTokenExample);
  EXPECT_EQ(config::ValidateGateway(g).value_or("ok"), "ok");
  g.mutable_required_plugins(1)->set_name("cors");
  EXPECT_EQ(config::ValidateGateway(g).value_or("ok"),
            "required_plugins[1].name: plugin \"cors\" is not supported by this gateway "
            "(supported: rate_limiter, token_rate_limiter)");
  g.mutable_required_plugins(1)->set_name("token_rate_limiter");
  while (g.required_plugins_size() < kMaxPluginsPerList)
    *g.add_required_plugins() = Parse(kTokenExample);
  EXPECT_EQ(config::ValidateGateway(g).value_or("ok"), "ok");
  *g.add_required_plugins() = Parse(kTokenExample);
  EXPECT_EQ(config::ValidateGateway(g).value_or("ok"),
            "required_plugins: at most 16 plugins, not 17");

  tg::v1::Rule r;
  r.set_path("/v1");
  r.set_service_id("s");
  r.add_methods("POST");
  *r.add_plugin_chain() = Parse(kTokenExample);
  EXPECT_EQ(config::ValidateRule(r).value_or("ok"), "ok");
  // TrustGate's example says level "gateway": in a rule that is a mistake.
  *r.add_plugin_chain() = Parse(kRateLimiterExample);
  EXPECT_EQ(config::ValidateRule(r).value_or("ok"),
            "plugin_chain[1].level: must be \"rule\" or empty here, not \"gateway\"");

  tg::v1::Upstream u;
  u.set_name("u");
  u.set_algorithm("round-robin");
  auto* t = u.add_targets();
  t->set_provider("openai");
  t->set_requests_per_minute(1'000'000'000);
  t->set_tokens_per_minute(2'000'000'000);
  EXPECT_EQ(config::ValidateUpstream(u).value_or("ok"), "ok");
  t->set_requests_per_minute(0);
  EXPECT_EQ(config::ValidateUpstream(u).value_or("ok"),
            "targets[0].requests_per_minute must be between 1 and 1000000000");
  t->set_requests_per_minute(1'000'000'001);
  EXPECT_EQ(config::ValidateUpstream(u).value_or("ok"),
            "targets[0].requests_per_minute must be between 1 and 1000000000");
  t->set_requests_per_minute(60);
  t->set_tokens_per_minute(0);
  EXPECT_EQ(config::ValidateUpstream(u).value_or("ok"),
            "targets[0].tokens_per_minute must be between 1 and 2000000000");
  t->set_tokens_per_minute(2'000'000'001);
  EXPECT_EQ(config::ValidateUpstream(u).value_or("ok"),
            "targets[0].tokens_per_minute must be between 1 and 2000000000");
}

}  // namespace
}  // namespace tg::plugins
