#include <gtest/gtest.h>

#include "tg/common/json_util.h"
#include "tg/common/utf8.h"
#include "tg/config/credentials.h"
#include "tg/config/validation.h"

namespace tg::config {
namespace {

tg::v1::Upstream ParseUpstream(const std::string& json) {
  tg::v1::Upstream u;
  std::string err;
  EXPECT_TRUE(json::ParseProto(json, &u, &err)) << err;
  return u;
}

tg::v1::Upstream ValidUpstream() {
  return ParseUpstream(R"({
    "name": "ai-providers-upstream", "algorithm": "round-robin",
    "targets": [
      {"path": "/v1/chat/completions", "provider": "openai", "weight": 50, "priority": 1,
       "default_model": "gpt-4o-mini", "models": ["gpt-4", "gpt-4o-mini"],
       "credentials": {"api_key": "sk-proj-0123456789abcdef"}},
      {"path": "/v1/messages", "provider": "anthropic", "weight": 50,
       "default_model": "claude-3-sonnet", "models": ["claude-3-sonnet"],
       "headers": {"anthropic-version": "2023-06-01"},
       "credentials": {"header_name": "x-api-key", "header_value": "your-anthropic-key"}}],
    "health_checks": {"passive": true, "threshold": 3, "interval": 60}})");
}

std::string Problem(const tg::v1::Upstream& u) { return ValidateUpstream(u).value_or("ok"); }

TEST(UpstreamValidation, SeedUpstreamIsValid) { EXPECT_EQ(Problem(ValidUpstream()), "ok"); }

TEST(UpstreamValidation, EachRuleNamesItsField) {
  struct Case {
    std::function<void(tg::v1::Upstream&)> mutate;
    std::string expect;
  };
  std::vector<Case> cases = {
      {[](auto& u) { u.clear_name(); }, "name is required"},
      {[](auto& u) { u.set_algorithm("fastest"); }, "algorithm must be one of"},
      {[](auto& u) { u.clear_targets(); }, "targets must contain at least one target"},
      {[](auto& u) { u.mutable_targets(1)->set_provider("cohere"); },
       "targets[1].provider must be one of"},
      {[](auto& u) { u.mutable_targets(0)->set_weight(0); },
       "targets[0].weight must be between 1 and 100"},
      {[](auto& u) { u.mutable_targets(0)->set_weight(101); },
       "targets[0].weight must be between 1 and 100"},
      {[](auto& u) { u.mutable_targets(0)->set_priority(0); },
       "targets[0].priority must be at least 1"},
      {[](auto& u) { u.mutable_targets(0)->set_default_model("gpt-5"); },
       "targets[0].default_model must be one of models"},
      {[](auto& u) { u.mutable_targets(0)->clear_provider(); },
       "targets[0].provider or host is required"},
      {[](auto& u) { u.mutable_targets(0)->set_protocol("ftp"); },
       "targets[0].protocol must be http or https"},
      {[](auto& u) { u.mutable_targets(0)->set_port(70000); },
       "targets[0].port must be between 1 and 65535"},
      {[](auto& u) { (*u.mutable_targets(1)->mutable_headers())["x-evil"] = "a\r\nHost: b"; },
       "targets[1].headers.x-evil must not contain line breaks"},
      {[](auto& u) { (*u.mutable_targets(1)->mutable_headers())["bad header"] = "v"; },
       "targets[1].headers has an invalid header name"},
      {[](auto& u) { u.mutable_health_checks()->set_threshold(0); },
       "health_checks.threshold must be greater than 0"},
      {[](auto& u) { u.mutable_health_checks()->set_interval(-5); },
       "health_checks.interval must be greater than 0"},
      {[](auto& u) { u.mutable_health_checks()->set_path("v1/models"); },
       "health_checks.path must start with '/'"},
      {[](auto& u) { u.mutable_health_checks()->set_path("/v1/models\r\nHost: x"); },
       "health_checks.path must be printable ASCII"},
      {[](auto& u) { u.mutable_health_checks()->set_path("/v1/models#x"); },
       "health_checks.path must be printable ASCII"},
      {[](auto& u) { u.mutable_health_checks()->set_path("/" + std::string(1024, 'a')); },
       "health_checks.path must be at most 1024 characters"},
      {[](auto& u) { (*u.mutable_health_checks()->mutable_headers())["x-a"] = "1\n2"; },
       "health_checks.headers.x-a must not contain line breaks"},
      {[](auto& u) { (*u.mutable_health_checks()->mutable_headers())["x a"] = "1"; },
       "health_checks.headers has an invalid header name"},
      {[](auto& u) {
         (*u.mutable_health_checks()->mutable_headers())["x-big"] = std::string(5000, 'v');
       },
       "health_checks.headers.x-big must be at most 4096 bytes"},
      {[](auto& u) {
         for (int i = 0; i < 33; ++i) {
           (*u.mutable_health_checks()->mutable_headers())["x-" + std::to_string(i)] = "v";
         }
       },
       "health_checks.headers must have at most 32 entries"},
      {[](auto& u) { u.mutable_health_checks()->set_probe_interval(0); },
       "health_checks.probe_interval must be between 1 and 3600"},
      {[](auto& u) { u.mutable_health_checks()->set_probe_interval(3601); },
       "health_checks.probe_interval must be between 1 and 3600"},
  };
  for (const auto& c : cases) {
    auto u = ValidUpstream();
    c.mutate(u);
    EXPECT_EQ(Problem(u).rfind(c.expect, 0), 0u) << "got: " << Problem(u) << "\nwant: " << c.expect;
  }
}

// TrustGate's own HealthCheck fields (passive, path, headers, threshold,
// interval) are accepted under their names, with ours (probe_interval).
TEST(UpstreamValidation, ActiveProbeFieldsUnderTrustGatesNames) {
  auto u = ParseUpstream(
      R"({"name": "p", "algorithm": "round-robin", "targets": [{"provider": "openai"}],
      "health_checks": {"passive": true, "path": "/v1/models?limit=1",
                        "headers": {"Authorization": "Bearer probe-token", "x-probe": "1"},
                        "threshold": 2, "interval": 30, "probe_interval": 1}})");
  EXPECT_EQ(Problem(u), "ok");
  EXPECT_EQ(u.health_checks().path(), "/v1/models?limit=1");
  EXPECT_EQ(u.health_checks().headers().at("x-probe"), "1");
  EXPECT_EQ(u.health_checks().probe_interval(), 1);
}

TEST(UpstreamValidation, AliasesAndHostTargets) {
  for (const char* alg :
       {"weighted", "weighted-round-robin", "least-conn", "least-connections", "random"}) {
    auto u = ValidUpstream();
    u.set_algorithm(alg);
    EXPECT_EQ(Problem(u), "ok") << alg;
  }
  EXPECT_EQ(CanonicalAlgorithm("weighted"), "weighted-round-robin");
  EXPECT_EQ(CanonicalAlgorithm("least-conn"), "least-connections");
  EXPECT_EQ(CanonicalProvider("google"), "gemini");
  auto u = ParseUpstream(R"({"name": "w", "algorithm": "weighted-round-robin", "targets": [
      {"host": "api.openai.com", "port": 443, "protocol": "https", "weight": 60}]})");
  EXPECT_EQ(Problem(u), "ok");
}

// Before: any string was accepted as a host, and a scheme in it overrode
// `protocol` (file://, gopher://, dict:// reached files and raw ports).
TEST(UpstreamValidation, HostIsAHostNotAUrlNorAMetadataAddress) {
  struct Case {
    std::string host;
    std::string expect;  // "" = accepted
  };
  const std::string not_a_host = "targets[0].host must be a host name or IP address";
  std::vector<Case> cases = {
      {"file://localhost", not_a_host},
      {"gopher://x", not_a_host},
      {"dict://x", not_a_host},
      {"http://a@b", not_a_host},
      {"a@b", not_a_host},
      {"https://api.openai.com", not_a_host},
      {"api.openai.com/v1", not_a_host},
      {"api.openai.com?x", not_a_host},
      {"api.openai.com#x", not_a_host},
      {"api.openai.com:0", not_a_host},
      {"api.openai.com:99999", not_a_host},
      {"a b", not_a_host},
      {"[::1", not_a_host},
      {"127.1", "targets[0].host must be a host name or an IPv4 address in dotted-decimal form"},
      {"2130706433", "targets[0].host must be a host name or an IPv4 address in dotted-decimal"},
      {"169.254.169.254", "targets[0].host must not be a cloud metadata address"},
      {"169.254.169.254:80", "targets[0].host must not be a cloud metadata address"},
      {"[fd00:ec2::254]", "targets[0].host must not be a cloud metadata address"},
      {"100.100.100.200", "targets[0].host must not be a cloud metadata address"},
      {"169.254.1.1", "targets[0].host must not be a link-local address"},
      {"[::ffff:169.254.169.254]", "targets[0].host must not be a cloud metadata address"},
      {"fe80::1", "targets[0].host must not be a link-local address"},
      {"0.0.0.0", "targets[0].host must not be an unspecified address"},
      {"metadata.google.internal", "targets[0].host must not name a cloud metadata service"},
      {"api.openai.com", ""},
      {"API.OpenAI.com.", ""},
      {"llm.internal:8443", ""},
      {"127.0.0.1", ""},
      {"10.1.2.3:8000", ""},
      {"localhost", ""},
      {"[::1]:8443", ""},
      {"::1", ""},
      {"my_service.default.svc", ""},
  };
  for (const auto& c : cases) {
    auto u = ValidUpstream();
    u.mutable_targets(0)->set_host(c.host);
    std::string got = Problem(u);
    if (c.expect.empty()) {
      EXPECT_EQ(got, "ok") << c.host;
    } else {
      EXPECT_EQ(got.rfind(c.expect, 0), 0u) << c.host << " got: " << got;
    }
  }
  auto u = ValidUpstream();
  u.mutable_targets(0)->set_path("/v1/chat completions");
  EXPECT_EQ(Problem(u).rfind("targets[0].path must be printable ASCII", 0), 0u) << Problem(u);
  u.mutable_targets(0)->set_path("/v1/chat#frag");
  EXPECT_EQ(Problem(u).rfind("targets[0].path must be printable ASCII", 0), 0u) << Problem(u);
  u.mutable_targets(0)->set_path("/v1/chat?x=1");
  EXPECT_EQ(Problem(u), "ok");
  u = ValidUpstream();
  u.mutable_targets(0)->mutable_credentials()->set_aws_region("us-east-1.evil.com/x#");
  EXPECT_EQ(Problem(u).rfind("targets[0].credentials.aws_region must be an AWS region", 0), 0u)
      << Problem(u);
  u = ValidUpstream();
  u.mutable_targets(0)->mutable_credentials()->set_azure_endpoint("https://user@evil.example");
  EXPECT_EQ(Problem(u).rfind("targets[0].credentials.azure_endpoint: host must be a host", 0), 0u)
      << Problem(u);
  u.mutable_targets(0)->mutable_credentials()->set_azure_endpoint("file:///etc/passwd");
  EXPECT_EQ(Problem(u).rfind("targets[0].credentials.azure_endpoint must be an http", 0), 0u)
      << Problem(u);
  u.mutable_targets(0)->mutable_credentials()->set_azure_endpoint(
      "https://x.openai.azure.com/prefix");
  EXPECT_EQ(Problem(u), "ok");
}

TEST(UpstreamValidation, NormalizeAssignsTargetIdsAndDefaultAlgorithm) {
  auto u = ValidUpstream();
  u.clear_algorithm();
  NormalizeUpstream(&u);
  EXPECT_EQ(u.algorithm(), "round-robin");
  EXPECT_FALSE(u.targets(0).id().empty());
  EXPECT_NE(u.targets(0).id(), u.targets(1).id());
  u.mutable_targets(1)->set_id(u.targets(0).id());
  EXPECT_EQ(Problem(u), "targets[1].id is duplicated");
}

TEST(GatewayValidation, NameAndSubdomain) {
  tg::v1::Gateway g;
  EXPECT_EQ(ValidateGateway(g).value_or("ok"), "name is required");
  g.set_name("multi-provider-gateway");
  EXPECT_EQ(ValidateGateway(g).value_or("ok"), "ok");
  g.set_subdomain("your-subdomain");
  EXPECT_EQ(ValidateGateway(g).value_or("ok"), "ok");
  for (const char* bad : {"-x", "x-", "Upper", "a.b", "a_b"}) {
    g.set_subdomain(bad);
    EXPECT_NE(ValidateGateway(g).value_or("ok"), "ok") << bad;
  }
}

TEST(ServiceValidation, TypesAndInference) {
  tg::v1::Service s;
  s.set_name("ai-chat-service");
  EXPECT_EQ(ValidateService(s).value_or("ok"), "type is required (upstream or endpoint)");
  s.set_upstream_id("u");
  NormalizeService(&s);
  EXPECT_EQ(s.type(), "upstream");
  EXPECT_EQ(ValidateService(s).value_or("ok"), "ok");
  s.set_type("endpoint");
  EXPECT_EQ(ValidateService(s).value_or("ok"), "host is required for type endpoint");
  s.set_host("example.com");
  EXPECT_EQ(ValidateService(s).value_or("ok"), "ok");
  s.set_host("gopher://127.0.0.1:6379");
  EXPECT_EQ(ValidateService(s).value_or("ok").rfind("host must be a host name or IP address", 0),
            0u);
  s.set_host("169.254.169.254");
  EXPECT_EQ(ValidateService(s).value_or("ok"), "host must not be a cloud metadata address");
  s.set_host("example.com");
  s.set_type("lambda");
  EXPECT_EQ(ValidateService(s).value_or("ok"), "type must be upstream or endpoint");
}

TEST(RuleValidation, MethodsPathAndDefaults) {
  tg::v1::Rule r;
  EXPECT_EQ(ValidateRule(r).value_or("ok"), "path is required");
  r.set_path("v1");
  EXPECT_EQ(ValidateRule(r).value_or("ok"), "path must start with '/'");
  r.set_path("/v1");
  EXPECT_EQ(ValidateRule(r).value_or("ok"), "service_id is required");
  r.set_service_id("s");
  EXPECT_EQ(ValidateRule(r).value_or("ok"), "methods must contain at least one method");
  r.add_methods("post");
  r.add_methods("TRACE");
  NormalizeRule(&r);
  EXPECT_EQ(r.methods(0), "POST");
  EXPECT_TRUE(r.active());
  EXPECT_FALSE(r.strip_path());
  EXPECT_EQ(ValidateRule(r).value_or("ok").rfind("methods[1] must be one of", 0), 0u);
}

TEST(RuleValidation, RetryAttemptsAndPolicyRangesNameTheirField) {
  tg::v1::Rule r;
  r.set_path("/v1");
  r.set_service_id("s");
  r.add_methods("POST");
  r.set_retry_attempts(10);
  r.mutable_retry_policy()->set_same_target_retries(0);
  EXPECT_EQ(ValidateRule(r).value_or("ok"), "ok");
  r.set_retry_attempts(11);
  EXPECT_EQ(ValidateRule(r).value_or("ok"), "retry_attempts must be between 0 and 10");
  r.set_retry_attempts(-1);
  EXPECT_EQ(ValidateRule(r).value_or("ok"), "retry_attempts must be between 0 and 10");
  r.set_retry_attempts(2);
  r.mutable_retry_policy()->set_max_retry_after_ms(60001);
  EXPECT_EQ(ValidateRule(r).value_or("ok"),
            "retry_policy.max_retry_after_ms must be between 0 and 60000");
  r.mutable_retry_policy()->set_max_retry_after_ms(100);
  r.mutable_retry_policy()->set_budget_ms(0);
  EXPECT_EQ(ValidateRule(r).value_or("ok"), "retry_policy.budget_ms must be between 1 and 600000");
  r.mutable_retry_policy()->set_budget_ms(1000);
  r.mutable_retry_policy()->set_same_target_retries(6);
  EXPECT_EQ(ValidateRule(r).value_or("ok"),
            "retry_policy.same_target_retries must be between 0 and 5");
  r.mutable_retry_policy()->set_same_target_retries(1);
  r.mutable_timeouts()->set_first_token_ms(99);
  EXPECT_EQ(ValidateRule(r).value_or("ok"),
            "timeouts.first_token_ms must be between 100 and 600000");
  r.mutable_timeouts()->set_first_token_ms(1000);
  r.mutable_timeouts()->set_total_ms(3600001);
  EXPECT_EQ(ValidateRule(r).value_or("ok"), "timeouts.total_ms must be between 1000 and 3600000");
  r.mutable_timeouts()->set_total_ms(60000);
  EXPECT_EQ(ValidateRule(r).value_or("ok"), "ok");
}

TEST(Credentials, MaskKeepsOnlyTheTailOfLongSecrets) {
  EXPECT_EQ(Mask(""), "");
  EXPECT_EQ(Mask("short"), "****");
  EXPECT_EQ(Mask("your-openai-key"), "****");  // 15 characters: nothing shown
  EXPECT_EQ(Mask("sk-proj-0123456789abcdef"), "****cdef");
  auto box = crypto::SecretBox::FromKey(std::string(32, 'x')).value();
  EXPECT_EQ(Mask(box.Seal("sk-proj-0123456789abcdef")), "****") << "never a ciphertext's tail";
}

TEST(Credentials, MaskNeverCutsACharacterInHalf) {
  // "é" is two bytes (C3 A9): the last four bytes of this secret begin with
  // A9, which alone is not UTF-8. Found by fuzz/admin_json.
  const std::string secret = "0123456789abcdefgh\xC3\xA9xyz";
  EXPECT_EQ(Mask(secret), "****xyz");
  EXPECT_TRUE(utf8::IsValid(Mask(secret)));
  EXPECT_EQ(Mask("0123456789abcdef\xC3\xA9yz"), "****\xC3\xA9yz");
}

TEST(Credentials, MaskingCoversEverySecretFieldAndNothingElse) {
  tg::v1::Credentials c;
  c.set_api_key("sk-proj-0123456789abcdef");
  c.set_header_name("Authorization");
  c.set_header_value("Bearer your-openai-key");
  c.set_aws_access_key_id("AKIAIOSFODNN7EXAMPLE");
  c.set_aws_secret_access_key("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY");
  c.set_aws_session_token("IQoJb3JpZ2luX2VjEXAMPLETOKEN");
  c.set_aws_region("eu-west-1");
  c.set_azure_endpoint("https://example2.cognitiveservices.azure.com");
  MaskCredentials(&c);
  auto printed = json::PrintProto(c);
  for (const char* secret :
       {"0123456789ab", "your-openai", "AKIAIOSFODNN7", "wJalrXUtnFEMI", "IQoJb3JpZ2lu"}) {
    EXPECT_EQ(printed.find(secret), std::string::npos) << secret << " leaked in " << printed;
  }
  EXPECT_EQ(c.header_name(), "Authorization");
  EXPECT_EQ(c.aws_region(), "eu-west-1");
  EXPECT_EQ(c.azure_endpoint(), "https://example2.cognitiveservices.azure.com");
}

TEST(Credentials, SealOpenAndKeepMaskedOnUpdate) {
  auto box = crypto::SecretBox::FromKey(std::string(32, 'x')).value();
  auto stored = ValidUpstream();
  NormalizeUpstream(&stored);
  auto sealed = stored;
  SealUpstream(box, &sealed);
  EXPECT_EQ(json::PrintProto(sealed).find("sk-proj-0123456789abcdef"), std::string::npos);
  EXPECT_EQ(json::PrintProto(sealed).find("your-anthropic-key"), std::string::npos);
  ASSERT_TRUE(OpenUpstream(box, &sealed));
  EXPECT_EQ(sealed.targets(0).credentials().api_key(), "sk-proj-0123456789abcdef");

  // A client PUTs back what GET showed (masked), changing only the weight and
  // one secret: the masked secrets keep their stored values.
  auto incoming = stored;
  MaskUpstream(&incoming);
  incoming.mutable_targets(0)->set_weight(70);
  incoming.mutable_targets(1)->mutable_credentials()->set_header_value("a-brand-new-anthropic-key");
  KeepMaskedSecrets(stored, &incoming);
  EXPECT_EQ(incoming.targets(0).credentials().api_key(), "sk-proj-0123456789abcdef");
  EXPECT_EQ(incoming.targets(1).credentials().header_value(), "a-brand-new-anthropic-key");

  // Without target ids, slots are matched by position.
  auto no_ids = stored;
  MaskUpstream(&no_ids);
  for (auto& t : *no_ids.mutable_targets()) t.clear_id();
  KeepMaskedSecrets(stored, &no_ids);
  EXPECT_EQ(no_ids.targets(0).id(), stored.targets(0).id());
  EXPECT_EQ(no_ids.targets(0).credentials().api_key(), "sk-proj-0123456789abcdef");
}

}  // namespace
}  // namespace tg::config
