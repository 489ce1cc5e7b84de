#include "tg/common/plugin_settings.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <utility>

#include "tg/common/json_util.h"

namespace tg::plugins {
namespace {

using google::protobuf::Struct;
using google::protobuf::Value;

constexpr std::string_view kRateLimiter = "rate_limiter";
constexpr std::string_view kTokenRateLimiter = "token_rate_limiter";
constexpr std::string_view kSupported = "rate_limiter, token_rate_limiter";

// TrustGate's other plugins: known names, refused with a clearer message than
// an unknown one.
constexpr std::array<std::string_view, 21> kNotImplemented = {
    "data_masking",          "external_api",           "injection_protection",
    "request_size_limiter",  "code_sanitation",        "cors",
    "bot_detector",          "toxicity_openai",        "toxicity_azure",
    "toxicity_neuraltrust",  "toxicity_detection",     "neuraltrust_guardrail",
    "neuraltrust_jailbreak", "neuraltrust_moderation", "neuraltrust_toxicity",
    "bedrock_guardrail",     "contextual_security",    "anomaly_detector",
    "ip_whitelist",          "prompt_moderation",      "trustgate_guardrail"};

// The order RateLimiter::limits keeps: the narrowest key first.
constexpr std::array<LimitKey, 5> kLimitOrder = {LimitKey::kPerIp, LimitKey::kPerUser,
                                                 LimitKey::kPerApiKey, LimitKey::kPerModel,
                                                 LimitKey::kGlobal};
constexpr std::string_view kLimitNames = "global, per_ip, per_user, per_api_key, per_model";

constexpr int64_t kMaxRequests = 1'000'000'000;
constexpr int64_t kMaxTokens = 1'000'000'000'000;
constexpr int64_t kMaxRetryAfterSeconds = 86'400;

// A user's string inside a message: quoted and escaped, cut at 64 bytes.
std::string Quote(std::string_view s) {
  std::string out;
  json::AppendQuoted(out, s.substr(0, 64));
  if (s.size() > 64) out.insert(out.size() - 1, "...");
  return out;
}

bool Fail(std::string* error, std::string_view path, std::string_view what) {
  *error = std::string(path) + ": " + std::string(what);
  return false;
}

// A key's value, or null when absent or JSON null (the mapping's "unset").
const Value* Find(const Struct& s, std::string_view key) {
  auto it = s.fields().find(std::string(key));
  if (it == s.fields().end()) return nullptr;
  auto kind = it->second.kind_case();
  return kind == Value::kNullValue || kind == Value::KIND_NOT_SET ? nullptr : &it->second;
}

// Refuses the first key (in sorted order, so that the message is stable) not
// in `allowed`.
template <size_t N>
bool CheckKeys(const Struct& s, const std::array<std::string_view, N>& allowed,
               const std::string& path, std::string_view what, std::string* error) {
  std::vector<std::string_view> unknown;
  for (const auto& [key, value] : s.fields()) {
    if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) unknown.push_back(key);
  }
  if (unknown.empty()) return true;
  std::sort(unknown.begin(), unknown.end());
  std::string expected;
  for (std::string_view a : allowed) expected += (expected.empty() ? "" : ", ") + std::string(a);
  return Fail(error, path + "." + std::string(unknown.front()),
              std::string(what) + " (expected " + expected + ")");
}

// google.protobuf.Struct holds every number as a double: an integer is one
// without a fraction.
bool Integer(const Value& v, const std::string& path, int64_t lo, int64_t hi, int64_t* out,
             std::string* error) {
  double d = v.number_value();
  if (v.kind_case() != Value::kNumberValue || !std::isfinite(d) || std::floor(d) != d ||
      d < static_cast<double>(lo) || d > static_cast<double>(hi)) {
    return Fail(error, path,
                "must be an integer between " + std::to_string(lo) + " and " + std::to_string(hi));
  }
  *out = static_cast<int64_t>(d);
  return true;
}

bool Object(const Value& v, const std::string& path, std::string* error) {
  return v.kind_case() == Value::kStructValue || Fail(error, path, "must be an object");
}

bool String(const Value& v, const std::string& path, std::string* error) {
  return v.kind_case() == Value::kStringValue || Fail(error, path, "must be a string");
}

bool CompileLimit(const Struct& s, const std::string& path, LimitKey key, RequestLimit* out,
                  std::string* error) {
  static constexpr std::array<std::string_view, 2> kKeys = {"limit", "window"};
  if (!CheckKeys(s, kKeys, path, "unknown field", error)) return false;
  out->key = key;
  const Value* limit = Find(s, "limit");
  if (limit == nullptr) return Fail(error, path + ".limit", "required");
  if (!Integer(*limit, path + ".limit", 1, kMaxRequests, &out->limit, error)) return false;
  const Value* window = Find(s, "window");
  if (window == nullptr) return Fail(error, path + ".window", "required (e.g. \"1m\")");
  if (!String(*window, path + ".window", error)) return false;
  const std::string& text = window->string_value();
  auto d = ParseGoDuration(text);
  if (!d) {
    return Fail(error, path + ".window",
                Quote(text) + " is not a duration (e.g. \"30s\", \"1m\", \"1h\")");
  }
  if (*d < std::chrono::seconds(1) || *d > std::chrono::hours(24)) {
    return Fail(error, path + ".window", "must be between 1s and 24h, not " + Quote(text));
  }
  out->window = *d;
  return true;
}

// "60" (seconds, TrustGate's form) or a duration ("1m"); a fraction of a
// second rounds up, so that a client is never told to come back too early.
bool CompileRetryAfter(const Value& v, const std::string& path,
                       std::optional<std::chrono::seconds>* out, std::string* error) {
  if (!String(v, path, error)) return false;
  const std::string& text = v.string_value();
  const std::string range =
      "must be between 1 and " + std::to_string(kMaxRetryAfterSeconds) + " seconds";
  bool digits = !text.empty() &&
                std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
  int64_t seconds = 0;
  if (digits) {
    if (text.size() > 6) return Fail(error, path, range);
    seconds = std::stoll(text);
  } else {
    auto d = ParseGoDuration(text);
    if (!d) {
      return Fail(error, path,
                  Quote(text) +
                      " is neither a number of seconds nor a duration (e.g. \"60\", "
                      "\"1m\")");
    }
    seconds = (d->count() + 999) / 1000;
  }
  if (seconds < 1 || seconds > kMaxRetryAfterSeconds) return Fail(error, path, range);
  *out = std::chrono::seconds(seconds);
  return true;
}

bool CompileRateLimiter(const Struct& settings, const std::string& path, RateLimiter* out,
                        std::string* error) {
  static constexpr std::array<std::string_view, 2> kKeys = {"limits", "actions"};
  static constexpr std::array<std::string_view, 5> kLimits = {"global", "per_ip", "per_user",
                                                              "per_api_key", "per_model"};
  if (!CheckKeys(settings, kKeys, path, "unknown field", error)) return false;
  const std::string limits_path = path + ".limits";
  const Value* limits = Find(settings, "limits");
  if (limits == nullptr) {
    return Fail(error, limits_path,
                "required: an object with at least one of " + std::string(kLimitNames));
  }
  if (!Object(*limits, limits_path, error)) return false;
  if (!CheckKeys(limits->struct_value(), kLimits, limits_path, "unknown limit", error)) {
    return false;
  }
  for (LimitKey key : kLimitOrder) {
    std::string name(LimitKeyName(key));
    const Value* v = Find(limits->struct_value(), name);
    if (v == nullptr) continue;
    std::string p = limits_path + "." + name;
    if (!Object(*v, p, error)) return false;
    RequestLimit limit{.key = key};
    if (!CompileLimit(v->struct_value(), p, key, &limit, error)) return false;
    out->limits.push_back(limit);
  }
  if (out->limits.empty()) {
    return Fail(error, limits_path, "must have at least one of " + std::string(kLimitNames));
  }

  const Value* actions = Find(settings, "actions");
  if (actions == nullptr) return true;
  const std::string actions_path = path + ".actions";
  if (!Object(*actions, actions_path, error)) return false;
  static constexpr std::array<std::string_view, 2> kActions = {"type", "retry_after"};
  const Struct& a = actions->struct_value();
  if (!CheckKeys(a, kActions, actions_path, "unknown field", error)) return false;
  if (const Value* type = Find(a, "type")) {
    if (!String(*type, actions_path + ".type", error)) return false;
    if (type->string_value() != "reject" && type->string_value() != "block") {
      return Fail(error, actions_path + ".type",
                  "must be \"reject\" or \"block\", not " + Quote(type->string_value()));
    }
  }
  if (const Value* retry_after = Find(a, "retry_after")) {
    if (!CompileRetryAfter(*retry_after, actions_path + ".retry_after", &out->retry_after, error)) {
      return false;
    }
  }
  return true;
}

bool CompileTokenRateLimiter(const Struct& settings, const std::string& path, TokenRateLimiter* out,
                             std::string* error) {
  static constexpr std::array<std::string_view, 5> kKeys = {
      "tokens_per_minute", "bucket_size", "requests_per_minute", "tokens_per_request", "scope"};
  if (!CheckKeys(settings, kKeys, path, "unknown field", error)) return false;
  const Value* tpm = Find(settings, "tokens_per_minute");
  if (tpm == nullptr) return Fail(error, path + ".tokens_per_minute", "required");
  if (!Integer(*tpm, path + ".tokens_per_minute", 1, kMaxTokens, &out->tokens_per_minute, error)) {
    return false;
  }
  out->bucket_size = out->tokens_per_minute;
  if (const Value* v = Find(settings, "bucket_size")) {
    if (!Integer(*v, path + ".bucket_size", 1, kMaxTokens, &out->bucket_size, error)) return false;
  }
  if (const Value* v = Find(settings, "requests_per_minute")) {
    if (!Integer(*v, path + ".requests_per_minute", 1, kMaxRequests, &out->requests_per_minute,
                 error)) {
      return false;
    }
  }
  if (const Value* v = Find(settings, "tokens_per_request")) {
    if (!Integer(*v, path + ".tokens_per_request", 1, kMaxTokens, &out->tokens_per_request,
                 error)) {
      return false;
    }
    if (out->tokens_per_request > out->bucket_size) {
      return Fail(error, path + ".tokens_per_request",
                  "must be at most bucket_size (" + std::to_string(out->bucket_size) + ")");
    }
  }
  if (const Value* v = Find(settings, "scope")) {
    if (!String(*v, path + ".scope", error)) return false;
    const std::string& s = v->string_value();
    if (s == "api_key") {
      out->scope = TokenScope::kApiKey;
    } else if (s == "gateway") {
      out->scope = TokenScope::kGateway;
    } else if (s == "model") {
      out->scope = TokenScope::kModel;
    } else {
      return Fail(error, path + ".scope",
                  "must be \"api_key\", \"gateway\" or \"model\", not " + Quote(s));
    }
  }
  return true;
}

// Go's leadingInt: the digits at the front of `s`, false on overflow.
bool LeadingInt(std::string_view* s, uint64_t* x) {
  constexpr uint64_t kLimit = uint64_t{1} << 63;
  size_t i = 0;
  *x = 0;
  for (; i < s->size() && (*s)[i] >= '0' && (*s)[i] <= '9'; ++i) {
    if (*x > kLimit / 10) return false;
    *x = *x * 10 + static_cast<uint64_t>((*s)[i] - '0');
    if (*x > kLimit) return false;
  }
  s->remove_prefix(i);
  return true;
}

// Go's leadingFraction: digits after the point, ignoring those beyond what
// fits; `scale` is 10^(digits kept).
void LeadingFraction(std::string_view* s, uint64_t* x, double* scale) {
  constexpr uint64_t kMax = (uint64_t{1} << 63) - 1;
  size_t i = 0;
  *x = 0;
  *scale = 1;
  bool overflow = false;
  for (; i < s->size() && (*s)[i] >= '0' && (*s)[i] <= '9'; ++i) {
    if (overflow) continue;
    if (*x > kMax / 10) {
      overflow = true;
      continue;
    }
    uint64_t y = *x * 10 + static_cast<uint64_t>((*s)[i] - '0');
    if (y > kMax) {
      overflow = true;
      continue;
    }
    *x = y;
    *scale *= 10;
  }
  s->remove_prefix(i);
}

uint64_t UnitNanos(std::string_view u) {
  static constexpr std::array<std::pair<std::string_view, uint64_t>, 8> kUnits = {{
      {"ns", 1},
      {"us", 1'000},
      {"\xC2\xB5s", 1'000},  // U+00B5 micro sign
      {"\xCE\xBCs", 1'000},  // U+03BC Greek small letter mu
      {"ms", 1'000'000},
      {"s", 1'000'000'000},
      {"m", 60'000'000'000},
      {"h", 3'600'000'000'000},
  }};
  for (const auto& [name, nanos] : kUnits) {
    if (name == u) return nanos;
  }
  return 0;
}

}  // namespace

std::string_view LimitKeyName(LimitKey key) {
  switch (key) {
    case LimitKey::kGlobal:
      return "global";
    case LimitKey::kPerIp:
      return "per_ip";
    case LimitKey::kPerUser:
      return "per_user";
    case LimitKey::kPerApiKey:
      return "per_api_key";
    case LimitKey::kPerModel:
      return "per_model";
  }
  return "";
}

std::string_view TokenScopeName(TokenScope s) {
  switch (s) {
    case TokenScope::kApiKey:
      return "api_key";
    case TokenScope::kGateway:
      return "gateway";
    case TokenScope::kModel:
      return "model";
  }
  return "";
}

bool CompilePlugin(const tg::v1::PluginConfig& config, std::string_view level,
                   std::string_view field, std::optional<Plugin>* out, std::string* error) {
  const std::string f(field);
  const std::string& name = config.name();
  const std::string supported = " (supported: " + std::string(kSupported) + ")";
  if (name.empty()) return Fail(error, f + ".name", "required" + supported);
  const bool token = name == kTokenRateLimiter;
  if (name != kRateLimiter && !token) {
    if (std::find(kNotImplemented.begin(), kNotImplemented.end(), name) != kNotImplemented.end()) {
      return Fail(error, f + ".name",
                  "plugin " + Quote(name) + " is not supported by this gateway" + supported);
    }
    return Fail(error, f + ".name", "unknown plugin " + Quote(name) + supported);
  }
  if (!config.level().empty() && config.level() != level) {
    return Fail(
        error, f + ".level",
        "must be \"" + std::string(level) + "\" or empty here, not " + Quote(config.level()));
  }
  const std::string& stage = config.stage();
  if (!stage.empty() && stage != "pre_request" && !(token && stage == "post_response")) {
    return Fail(error, f + ".stage",
                Quote(stage) + " is not supported for " + name +
                    (token ? " (use pre_request or post_response)" : " (use pre_request)"));
  }
  if (config.has_priority() && (config.priority() < 0 || config.priority() > 1000)) {
    return Fail(error, f + ".priority", "must be between 0 and 1000");
  }
  Plugin plugin;
  plugin.name = name;
  plugin.priority = config.priority();
  const std::string settings_path = f + ".settings";
  if (token) {
    TokenRateLimiter t;
    if (!CompileTokenRateLimiter(config.settings(), settings_path, &t, error)) return false;
    plugin.settings = t;
  } else {
    RateLimiter r;
    if (!CompileRateLimiter(config.settings(), settings_path, &r, error)) return false;
    plugin.settings = std::move(r);
  }
  if (config.has_enabled() && !config.enabled()) {
    out->reset();
  } else {
    *out = std::move(plugin);
  }
  return true;
}

std::vector<Plugin> CompileChain(const tg::v1::Gateway* gateway, const tg::v1::Rule* rule) {
  std::vector<Plugin> chain;
  auto append = [&chain](const google::protobuf::RepeatedPtrField<tg::v1::PluginConfig>& list,
                         std::string_view level) {
    size_t first = chain.size();
    std::string error;
    for (const auto& config : list) {
      std::optional<Plugin> plugin;
      if (CompilePlugin(config, level, level, &plugin, &error) && plugin) {
        chain.push_back(std::move(*plugin));
      }
    }
    std::stable_sort(chain.begin() + static_cast<std::ptrdiff_t>(first), chain.end(),
                     [](const Plugin& a, const Plugin& b) { return a.priority < b.priority; });
  };
  if (gateway != nullptr) append(gateway->required_plugins(), "gateway");
  if (rule != nullptr) append(rule->plugin_chain(), "rule");
  return chain;
}

std::optional<std::chrono::milliseconds> ParseGoDuration(std::string_view s) {
  // time.ParseDuration (Go's src/time/format.go), step by step.
  constexpr uint64_t kLimit = uint64_t{1} << 63;
  uint64_t d = 0;
  bool neg = false;
  if (!s.empty() && (s.front() == '-' || s.front() == '+')) {
    neg = s.front() == '-';
    s.remove_prefix(1);
  }
  if (s == "0") return std::chrono::milliseconds(0);
  if (s.empty()) return std::nullopt;
  while (!s.empty()) {
    if (!(s.front() == '.' || (s.front() >= '0' && s.front() <= '9'))) return std::nullopt;
    size_t before = s.size();
    uint64_t v = 0;
    if (!LeadingInt(&s, &v)) return std::nullopt;
    bool pre = before != s.size();
    bool post = false;
    uint64_t f = 0;
    double scale = 1;
    if (!s.empty() && s.front() == '.') {
      s.remove_prefix(1);
      size_t at = s.size();
      LeadingFraction(&s, &f, &scale);
      post = at != s.size();
    }
    if (!pre && !post) return std::nullopt;  // "." or ".s"
    size_t i = 0;
    while (i < s.size() && s[i] != '.' && !(s[i] >= '0' && s[i] <= '9')) ++i;
    if (i == 0) return std::nullopt;  // missing unit
    uint64_t unit = UnitNanos(s.substr(0, i));
    s.remove_prefix(i);
    if (unit == 0) return std::nullopt;  // unknown unit
    if (v > kLimit / unit) return std::nullopt;
    v *= unit;
    if (f > 0) {
      v += static_cast<uint64_t>(static_cast<double>(f) * (static_cast<double>(unit) / scale));
      if (v > kLimit) return std::nullopt;
    }
    if (v > kLimit - d) return std::nullopt;
    d += v;
  }
  if (!neg && d > kLimit - 1) return std::nullopt;
  auto ms = static_cast<int64_t>(d / 1'000'000);
  return std::chrono::milliseconds(neg ? -ms : ms);
}

}  // namespace tg::plugins
