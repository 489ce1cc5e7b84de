#include "tg/config/validation.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <set>
#include <string_view>
#include <tuple>

#include "tg/common/crypto.h"
#include "tg/common/egress.h"
#include "tg/common/plugin_settings.h"

namespace tg::config {
namespace {

using Problem = std::optional<std::string>;

bool IsDnsLabel(const std::string& s) {
  if (s.empty() || s.size() > 63 || s.front() == '-' || s.back() == '-') return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
  });
}

// RFC 9110 token characters: anything else in a header name would let a
// configured header smuggle another one.
bool IsHeaderName(const std::string& s) {
  static constexpr std::string_view kExtra = "!#$%&'*+-.^_`|~";
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || kExtra.find(c) != std::string_view::npos;
  });
}

bool IsHeaderValue(const std::string& s) {
  return std::none_of(s.begin(), s.end(),
                      [](char c) { return c == '\r' || c == '\n' || c == '\0'; });
}

Problem CheckHeaders(const google::protobuf::Map<std::string, std::string>& headers,
                     const std::string& path) {
  for (const auto& [name, value] : headers) {
    if (!IsHeaderName(name)) return path + " has an invalid header name: \"" + name + "\"";
    if (!IsHeaderValue(value)) return path + "." + name + " must not contain line breaks";
  }
  return std::nullopt;
}

Problem CheckAzureEndpoint(const std::string& url, const std::string& path);

Problem CheckCredentials(const tg::v1::Credentials& c, const std::string& path) {
  if (!c.header_name().empty() && !IsHeaderName(c.header_name())) {
    return path + ".header_name is not a valid header name";
  }
  if (!c.header_value().empty() && c.header_name().empty()) {
    return path + ".header_name is required with header_value";
  }
  for (const std::string* v : {&c.header_value(), &c.api_key(), &c.aws_access_key_id(),
                               &c.aws_secret_access_key(), &c.aws_session_token()}) {
    if (!IsHeaderValue(*v)) return path + " values must not contain line breaks";
  }
  const std::string& region = c.aws_region();
  if (region.size() > 32 || !std::all_of(region.begin(), region.end(), [](char ch) {
        return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-';
      })) {
    return path + ".aws_region must be an AWS region name such as us-east-1";
  }
  if (!c.azure_endpoint().empty()) {
    if (auto e = CheckAzureEndpoint(c.azure_endpoint(), path + ".")) return e;
  }
  return std::nullopt;
}

// Where the gateway will connect: a host name or IP literal with an optional
// port, never a URL (a scheme in `host` used to override `protocol`, which
// let file://, gopher:// and dict:// through), never an address no policy
// allows (link-local, cloud metadata). Loopback and private addresses are
// accepted here; tg-adapter's egress policy decides about them at connect
// time, on the resolved address.
Problem CheckHost(const std::string& host, const std::string& path) {
  std::string error;
  auto hp = egress::ParseHost(host, &error);
  if (!hp) return path + "host " + error;
  if (auto c = egress::ClassifyLiteral(hp->host); c && egress::AlwaysRefused(*c)) {
    std::string name(egress::AddressClassName(*c));
    bool vowel = std::string_view("aeiou").find(name.front()) != std::string_view::npos;
    return path + "host must not be " + (vowel ? "an " : "a ") + name + " address";
  }
  if (egress::IsMetadataHostName(hp->host)) {
    return path + "host must not name a cloud metadata service";
  }
  return std::nullopt;
}

// A path the adapter sends as it is: printable ASCII, no query or fragment
// markers but a '?' starting the query, no backslash.
Problem CheckPath(const std::string& p, const std::string& path) {
  if (p.empty()) return std::nullopt;
  if (p.front() != '/') return path + "path must start with '/'";
  for (char ch : p) {
    auto c = static_cast<unsigned char>(ch);
    if (c <= 0x20 || c >= 0x7f || c == '#' || c == '\\') {
      return path + "path must be printable ASCII without spaces, '#' or '\\'";
    }
  }
  return std::nullopt;
}

// Active probes (health_checks.path, .headers, .probe_interval). The path is
// sent on every target's origin and the headers with every probe, so both
// get the checks of a target's own path and headers, plus bounds: a probe is
// meant to be a cheap request.
constexpr size_t kMaxProbePathBytes = 1024;
constexpr int kMaxProbeHeaders = 32;
constexpr size_t kMaxProbeHeaderBytes = 4096;  // name + value of one header

Problem CheckProbe(const tg::v1::HealthChecks& h) {
  if (h.path().size() > kMaxProbePathBytes) {
    return "health_checks.path must be at most " + std::to_string(kMaxProbePathBytes) +
           " characters";
  }
  if (auto e = CheckPath(h.path(), "health_checks.")) return e;
  if (h.headers_size() > kMaxProbeHeaders) {
    return "health_checks.headers must have at most " + std::to_string(kMaxProbeHeaders) +
           " entries";
  }
  for (const auto& [name, value] : h.headers()) {
    if (name.size() + value.size() > kMaxProbeHeaderBytes) {
      return "health_checks.headers." + name + " must be at most " +
             std::to_string(kMaxProbeHeaderBytes) + " bytes";
    }
  }
  if (auto e = CheckHeaders(h.headers(), "health_checks.headers")) return e;
  if (h.has_probe_interval() && (h.probe_interval() < 1 || h.probe_interval() > 3600)) {
    return "health_checks.probe_interval must be between 1 and 3600";
  }
  return std::nullopt;
}

// credentials.azure_endpoint: "https://<resource>.openai.azure.com" (http for
// local stand-ins), optionally with a path prefix; the host obeys CheckHost.
Problem CheckAzureEndpoint(const std::string& url, const std::string& path) {
  std::string_view rest = url;
  if (rest.starts_with("https://")) {
    rest.remove_prefix(8);
  } else if (rest.starts_with("http://")) {
    rest.remove_prefix(7);
  } else {
    return path + "azure_endpoint must be an http:// or https:// URL";
  }
  size_t slash = std::min(rest.find('/'), rest.size());
  if (auto e = CheckHost(std::string(rest.substr(0, slash)), path + "azure_endpoint: ")) return e;
  std::string prefix(rest.substr(slash));
  if (prefix.find('?') != std::string::npos) return path + "azure_endpoint must not have a query";
  return CheckPath(prefix, path + "azure_endpoint: ");
}

Problem CheckEndpoint(const std::string& protocol, bool has_port, int port,
                      const std::string& path) {
  if (!protocol.empty() && protocol != "http" && protocol != "https") {
    return path + "protocol must be http or https";
  }
  if (has_port && (port < 1 || port > 65535)) return path + "port must be between 1 and 65535";
  return std::nullopt;
}

bool Contains(const google::protobuf::RepeatedPtrField<std::string>& list, const std::string& v) {
  return std::find(list.begin(), list.end(), v) != list.end();
}

// A gateway's required_plugins or a rule's plugin_chain: every entry checked
// by the same code the edge compiles them with (tg/common/plugin_settings.h).
Problem CheckPlugins(const google::protobuf::RepeatedPtrField<tg::v1::PluginConfig>& list,
                     const std::string& name, std::string_view level) {
  if (list.size() > plugins::kMaxPluginsPerList) {
    return name + ": at most " + std::to_string(plugins::kMaxPluginsPerList) + " plugins, not " +
           std::to_string(list.size());
  }
  for (int i = 0; i < list.size(); ++i) {
    std::optional<plugins::Plugin> plugin;
    std::string error;
    if (!plugins::CompilePlugin(list[i], level, name + "[" + std::to_string(i) + "]", &plugin,
                                &error)) {
      return error;
    }
  }
  return std::nullopt;
}

}  // namespace

Problem ValidateGateway(const tg::v1::Gateway& g) {
  if (g.name().empty()) return "name is required";
  if (g.name().size() > 255) return "name must be at most 255 characters";
  if (!g.subdomain().empty() && !IsDnsLabel(g.subdomain())) {
    return "subdomain must be a DNS label: 1-63 lower-case letters, digits or '-', not starting or "
           "ending with '-'";
  }
  if (auto p = CheckPlugins(g.required_plugins(), "required_plugins", "gateway")) return p;
  if (g.model_prices_size() > 1000) return "model_prices: at most 1000 models";
  for (const auto& [model, price] : g.model_prices()) {
    if (model.empty() || model.size() > 200) {
      return "model_prices: a model name must be 1 to 200 characters";
    }
    for (auto [has, v, field] :
         {std::tuple{price.has_input_per_million(), price.input_per_million(), "input_per_million"},
          std::tuple{price.has_output_per_million(), price.output_per_million(),
                     "output_per_million"}}) {
      if (has && !(v >= 0 && v <= 1e6)) {
        return "model_prices." + model + "." + field + " must be between 0 and 1000000";
      }
    }
  }
  if (g.has_budget()) {
    const auto& b = g.budget();
    if (!b.period().empty() && b.period() != "daily" && b.period() != "monthly") {
      return "budget.period must be daily or monthly";
    }
    for (auto [has, v, field] :
         {std::tuple{b.has_limit_usd(), b.limit_usd(), "limit_usd"},
          std::tuple{b.has_per_key_limit_usd(), b.per_key_limit_usd(), "per_key_limit_usd"}}) {
      if (has && !(v > 0 && v <= 1e9)) {
        return std::string("budget.") + field + " must be more than 0 and at most 1000000000";
      }
    }
  }
  return std::nullopt;
}

void NormalizeUpstream(tg::v1::Upstream* u) {
  if (u->algorithm().empty()) u->set_algorithm("round-robin");
  for (auto& t : *u->mutable_targets()) {
    if (t.id().empty()) t.set_id(crypto::NewUuid());
  }
}

Problem ValidateUpstream(const tg::v1::Upstream& u) {
  if (u.name().empty()) return "name is required";
  if (CanonicalAlgorithm(u.algorithm()).empty()) {
    return "algorithm must be one of round-robin, weighted-round-robin (weighted), "
           "least-connections (least-conn), random";
  }
  if (u.targets().empty()) return "targets must contain at least one target";
  std::set<std::string> ids;
  for (int i = 0; i < u.targets_size(); ++i) {
    const auto& t = u.targets(i);
    std::string p = "targets[" + std::to_string(i) + "].";
    if (!t.id().empty() && !ids.insert(t.id()).second) return p + "id is duplicated";
    if (!t.provider().empty() && CanonicalProvider(t.provider()).empty()) {
      return p + "provider must be one of openai, anthropic, gemini (google), bedrock, azure";
    }
    if (t.provider().empty() && t.host().empty()) return p + "provider or host is required";
    if (t.has_weight() && (t.weight() < 1 || t.weight() > 100)) {
      return p + "weight must be between 1 and 100";
    }
    if (t.has_priority() && t.priority() < 1) return p + "priority must be at least 1";
    if (t.has_requests_per_minute() &&
        (t.requests_per_minute() < 1 || t.requests_per_minute() > 1'000'000'000)) {
      return p + "requests_per_minute must be between 1 and 1000000000";
    }
    if (t.has_tokens_per_minute() &&
        (t.tokens_per_minute() < 1 || t.tokens_per_minute() > 2'000'000'000)) {
      return p + "tokens_per_minute must be between 1 and 2000000000";
    }
    if (!t.models().empty() && !t.default_model().empty() &&
        !Contains(t.models(), t.default_model())) {
      return p + "default_model must be one of models";
    }
    if (auto e = CheckEndpoint(t.protocol(), t.has_port(), t.port(), p)) return e;
    if (!t.host().empty()) {
      if (auto e = CheckHost(t.host(), p)) return e;
    }
    if (auto e = CheckPath(t.path(), p)) return e;
    if (auto e = CheckHeaders(t.headers(), p + "headers")) return e;
    if (auto e = CheckCredentials(t.credentials(), p + "credentials")) return e;
    if (t.has_provider_options()) {
      const auto& fields = t.provider_options().fields();
      if (auto it = fields.find("api"); it != fields.end()) {
        const auto& v = it->second;
        if (!v.has_string_value() ||
            (v.string_value() != "completions" && v.string_value() != "responses")) {
          return p + "provider_options.api must be \"completions\" or \"responses\"";
        }
      }
    }
  }
  if (u.has_health_checks()) {
    const auto& h = u.health_checks();
    if (h.has_threshold() && h.threshold() < 1)
      return "health_checks.threshold must be greater than 0";
    if (h.has_interval() && h.interval() < 1)
      return "health_checks.interval must be greater than 0";
    if (auto e = CheckProbe(h)) return e;
  }
  return std::nullopt;
}

void NormalizeService(tg::v1::Service* s) {
  if (s->type().empty()) {
    if (!s->upstream_id().empty())
      s->set_type("upstream");
    else if (!s->host().empty())
      s->set_type("endpoint");
  }
}

Problem ValidateService(const tg::v1::Service& s) {
  if (s.name().empty()) return "name is required";
  if (s.type() == "upstream") {
    if (s.upstream_id().empty()) return "upstream_id is required for type upstream";
  } else if (s.type() == "endpoint") {
    if (s.host().empty()) return "host is required for type endpoint";
    if (auto e = CheckEndpoint(s.protocol(), s.has_port(), s.port(), "")) return e;
    if (auto e = CheckHost(s.host(), "")) return e;
    if (auto e = CheckPath(s.path(), "")) return e;
  } else if (s.type().empty()) {
    return "type is required (upstream or endpoint)";
  } else {
    return "type must be upstream or endpoint";
  }
  if (auto e = CheckHeaders(s.headers(), "headers")) return e;
  if (auto e = CheckCredentials(s.credentials(), "credentials")) return e;
  return std::nullopt;
}

void NormalizeRule(tg::v1::Rule* r) {
  for (auto& m : *r->mutable_methods()) {
    std::transform(m.begin(), m.end(), m.begin(), [](unsigned char c) { return std::toupper(c); });
  }
  if (!r->has_strip_path()) r->set_strip_path(false);
  if (!r->has_active()) r->set_active(true);
}

Problem ValidateRule(const tg::v1::Rule& r) {
  static const std::array<std::string_view, 7> kMethods = {"GET",    "POST", "PUT",    "PATCH",
                                                           "DELETE", "HEAD", "OPTIONS"};
  if (r.path().empty()) return "path is required";
  if (r.path().front() != '/') return "path must start with '/'";
  if (r.service_id().empty()) return "service_id is required";
  if (r.methods().empty()) return "methods must contain at least one method";
  for (int i = 0; i < r.methods_size(); ++i) {
    if (std::find(kMethods.begin(), kMethods.end(), r.methods(i)) == kMethods.end()) {
      return "methods[" + std::to_string(i) +
             "] must be one of GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS";
    }
  }
  auto range = [](bool has, int32_t v, int32_t lo, int32_t hi, const char* name) -> Problem {
    if (has && (v < lo || v > hi)) {
      return std::string(name) + " must be between " + std::to_string(lo) + " and " +
             std::to_string(hi);
    }
    return std::nullopt;
  };
  const tg::v1::RetryPolicy& p = r.retry_policy();
  for (Problem e :
       {range(r.has_retry_attempts(), r.retry_attempts(), 0, 10, "retry_attempts"),
        range(p.has_same_target_retries(), p.same_target_retries(), 0, 5,
              "retry_policy.same_target_retries"),
        range(p.has_backoff_ms(), p.backoff_ms(), 0, 10000, "retry_policy.backoff_ms"),
        range(p.has_max_retry_after_ms(), p.max_retry_after_ms(), 0, 60000,
              "retry_policy.max_retry_after_ms"),
        range(p.has_budget_ms(), p.budget_ms(), 1, 600000, "retry_policy.budget_ms"),
        range(r.timeouts().has_connect_ms(), r.timeouts().connect_ms(), 100, 60000,
              "timeouts.connect_ms"),
        range(r.timeouts().has_first_token_ms(), r.timeouts().first_token_ms(), 100, 600000,
              "timeouts.first_token_ms"),
        range(r.timeouts().has_idle_ms(), r.timeouts().idle_ms(), 100, 600000, "timeouts.idle_ms"),
        range(r.timeouts().has_total_ms(), r.timeouts().total_ms(), 1000, 3600000,
              "timeouts.total_ms")}) {
    if (e) return e;
  }
  return CheckPlugins(r.plugin_chain(), "plugin_chain", "rule");
}

}  // namespace tg::config
