// The seeds' request bodies (the user's docs, pasted verbatim, comments and
// trailing commas included) parse into the resource messages with the values
// the docs mean: protobuf's JSON mapping IS the REST JSON.
#include <google/protobuf/util/message_differencer.h>
#include <google/protobuf/util/time_util.h>
#include <gtest/gtest.h>

#include "seed_bodies.h"
#include "tg/common/json_util.h"
#include "tg/v1/resources.pb.h"

namespace tg::edge {
namespace {

namespace seeds = tg::testing::seeds;

// ---- /work/shared/seeds/000_*.txt, 001_*.txt and 002_*.txt, verbatim.

// openai_responses
constexpr const char* kOpenaiResponses = seeds::kOpenAiResponses;

// anthropic
constexpr const char* kAnthropic = seeds::kAnthropic;

// gemini
constexpr const char* kGemini = seeds::kGemini;

// bedrock_standalone
constexpr const char* kBedrockStandalone = seeds::kBedrockStandalone;

// bedrock_anthropic
constexpr const char* kBedrockAnthropic = seeds::kBedrockAnthropic;

// azure
constexpr const char* kAzure = seeds::kAzure;

// gateway_trailing_comma
constexpr const char* kGatewayTrailingComma = seeds::kGatewayStep1;

// multi_provider_upstream
constexpr const char* kMultiProviderUpstream = seeds::kUpstreamStep2;

// service
constexpr const char* kService = seeds::kServiceStep3;

// rule
constexpr const char* kRule = seeds::kRuleStep4;

// key
constexpr const char* kKey = seeds::kKeyStep5;

// rr_upstream_002
constexpr char kRrUpstream002[] = R"json({
    "name": "ai-providers-upstream",
    "algorithm": "round-robin",
    "targets": [
      {
        "path": "/v1/chat/completions",
        "provider": "openai",
        "weight": 50,
        "priority": 1,
        "default_model": "gpt-4o-mini",
        "models": ["gpt-3.5-turbo", "gpt-4", "gpt-4o-mini"],
        "credentials": {
          "header_name": "Authorization",
          "header_value": "Bearer your-openai-key"
        }
      },
      {
        "path": "/v1/messages",
        "provider": "anthropic",
        "weight": 50,
        "priority": 1,
        "default_model": "claude-3-5-sonnet-20241022",
        "models": ["claude-3-5-sonnet-20241022"],
        "headers": {
          "anthropic-version": "2023-06-01"
        },
        "credentials": {
          "header_name": "x-api-key",
          "header_value": "your-anthropic-key"
        }
      }
    ],
    "health_checks": {
      "passive": true,
      "threshold": 3,
      "interval": 60
    }
  })json";

// weighted_upstream_002
constexpr const char* kWeightedUpstream002 = seeds::kWeightedHostTargets;

// service_002
constexpr char kService002[] = R"json({
    "name": "load-balanced-service",
    "type": "upstream",
    "description": "Load balanced AI service",
    "upstream_id": "{upstream-id}"
  })json";

// rule_002
constexpr char kRule002[] = R"json({
    "path": "/ai",
    "service_id": "{service-id}",
    "methods": ["POST"],
    "strip_path": true,
    "active": true
  })json";

// health_checks_fragment_002
constexpr char kHealthChecksFragment002[] = R"json("health_checks": {
  "passive": true,      // Enable passive health checks
  "threshold": 3,       // Number of failures before marking target as unhealthy
  "interval": 60        // Check interval in seconds
})json";

// priority_fallback_002
constexpr char kPriorityFallback002[] = R"json({
  "targets": [
    {
      "host": "api.openai.com",
      "priority": 1,     // Primary target
      "weight": 100
    },
    {
      "host": "api.anthropic.com",
      "priority": 2,     // Fallback target
      "weight": 100
    }
  ]
})json";

// gateway_subdomain_001
constexpr const char* kGatewaySubdomain001 = seeds::kGatewayWithSubdomain;

// header_creds_upstream_001
constexpr const char* kHeaderCredsUpstream001 = seeds::kUpstreamHeaderCredentials;

template <typename T>
T Parse(std::string_view json) {
  T msg;
  std::string error;
  EXPECT_TRUE(json::ParseProto(json, &msg, &error)) << error << "\n" << json;
  return msg;
}

std::string Option(const tg::v1::Target& t, const std::string& key) {
  auto it = t.provider_options().fields().find(key);
  return it == t.provider_options().fields().end() ? "" : it->second.string_value();
}

TEST(EdgeSeedBodies, GatewayWithTrailingComma) {
  auto g = Parse<tg::v1::Gateway>(kGatewayTrailingComma);
  EXPECT_EQ(g.name(), "multi-provider-gateway");
  EXPECT_EQ(g.subdomain(), "");
}

TEST(EdgeSeedBodies, GatewayWithSubdomain) {
  auto g = Parse<tg::v1::Gateway>(kGatewaySubdomain001);
  EXPECT_EQ(g.name(), "multi-provider-gateway");
  EXPECT_EQ(g.subdomain(), "your-subdomain");
}

TEST(EdgeSeedBodies, MultiProviderUpstream) {
  auto u = Parse<tg::v1::Upstream>(kMultiProviderUpstream);
  EXPECT_EQ(u.name(), "ai-providers-upstream");
  EXPECT_EQ(u.algorithm(), "round-robin");
  ASSERT_EQ(u.targets_size(), 2);
  const auto& openai = u.targets(0);
  EXPECT_EQ(openai.path(), "/v1/chat/completions");
  EXPECT_EQ(openai.provider(), "openai");
  ASSERT_TRUE(openai.has_weight());
  EXPECT_EQ(openai.weight(), 50);
  EXPECT_FALSE(openai.has_priority());  // not given: the balancer's default applies
  EXPECT_EQ(openai.default_model(), "gpt-4o-mini");
  ASSERT_EQ(openai.models_size(), 3);
  EXPECT_EQ(openai.models(2), "gpt-4o-mini");
  EXPECT_EQ(openai.credentials().api_key(), "your-openai-key");
  const auto& anthropic = u.targets(1);
  EXPECT_EQ(anthropic.provider(), "anthropic");
  EXPECT_EQ(anthropic.headers().at("anthropic-version"), "2023-06-01");
  EXPECT_EQ(anthropic.credentials().api_key(), "your-anthropic-key");
  EXPECT_EQ(anthropic.models(0), "claude-3-sonnet");
  ASSERT_TRUE(u.has_health_checks());
  EXPECT_TRUE(u.health_checks().passive());
  EXPECT_EQ(u.health_checks().threshold(), 3);
  EXPECT_EQ(u.health_checks().interval(), 60);
}

TEST(EdgeSeedBodies, OpenAiResponses) {
  auto u = Parse<tg::v1::Upstream>(kOpenaiResponses);
  EXPECT_EQ(u.name(), "{{upstream_service_name}}");
  ASSERT_EQ(u.targets_size(), 1);
  const auto& t = u.targets(0);
  EXPECT_EQ(t.provider(), "openai");
  EXPECT_EQ(Option(t, "api"), "responses");
  EXPECT_EQ(t.priority(), 1);
  ASSERT_TRUE(t.has_stream());  // `stream: false` is kept apart from "not given"
  EXPECT_FALSE(t.stream());
  EXPECT_EQ(t.credentials().api_key(), "sk-proj-");
  EXPECT_EQ(u.health_checks().threshold(), 3);
}

TEST(EdgeSeedBodies, Anthropic) {
  auto u = Parse<tg::v1::Upstream>(kAnthropic);
  const auto& t = u.targets(0);
  EXPECT_EQ(t.provider(), "anthropic");
  EXPECT_EQ(t.default_model(), "claude-3-5-sonnet-20241022");
  EXPECT_EQ(t.headers().at("anthropic-version"), "2023-06-01");
  EXPECT_EQ(t.credentials().api_key(), "");
  EXPECT_TRUE(t.has_stream());
}

TEST(EdgeSeedBodies, Gemini) {
  auto u = Parse<tg::v1::Upstream>(kGemini);
  const auto& t = u.targets(0);
  EXPECT_EQ(t.provider(), "gemini");
  EXPECT_EQ(t.default_model(), "gemini-2.0-flash-001");
  EXPECT_EQ(t.weight(), 50);
  EXPECT_EQ(u.health_checks().interval(), 60);
}

TEST(EdgeSeedBodies, BedrockStandalone) {
  auto u = Parse<tg::v1::Upstream>(kBedrockStandalone);
  const auto& t = u.targets(0);
  EXPECT_EQ(t.provider(), "bedrock");
  ASSERT_EQ(t.models_size(), 5);
  EXPECT_EQ(t.models(0), "eu.anthropic.claude-3-5-sonnet-20240620-v1:0");
  EXPECT_EQ(t.models(4), "deepseek-llm-r1-distill-llama-8b");
  EXPECT_TRUE(t.stream());
  EXPECT_EQ(t.headers().at("anthropic-version"), "2023-06-01");
  EXPECT_EQ(t.credentials().aws_region(), "eu-west-1");
  EXPECT_EQ(t.credentials().aws_access_key_id(), "");
}

TEST(EdgeSeedBodies, BedrockWithAnthropic) {
  auto u = Parse<tg::v1::Upstream>(kBedrockAnthropic);
  const auto& c = u.targets(0).credentials();
  EXPECT_EQ(c.aws_access_key_id(), "A....");
  EXPECT_EQ(c.aws_secret_access_key(), "u1H49D0GfnbtDhYF...");
  EXPECT_EQ(c.aws_session_token(), "I...");
  EXPECT_EQ(c.aws_region(), "eu-west-1");
}

TEST(EdgeSeedBodies, Azure) {
  auto u = Parse<tg::v1::Upstream>(kAzure);
  const auto& t = u.targets(0);
  EXPECT_EQ(t.provider(), "azure");
  EXPECT_FALSE(t.has_stream());
  const auto& c = t.credentials();
  EXPECT_EQ(c.api_key(), "7LQ...");
  EXPECT_EQ(c.azure_endpoint(), "https://example2.cognitiveservices.azure.com");
  EXPECT_EQ(c.azure_version(), "");
  ASSERT_TRUE(c.has_azure_use_managed_identity());
  EXPECT_FALSE(c.azure_use_managed_identity());
}

TEST(EdgeSeedBodies, RoundRobinUpstreamWithHeaderCredentials) {
  for (const char* body : {kRrUpstream002, kHeaderCredsUpstream001}) {
    auto u = Parse<tg::v1::Upstream>(body);
    ASSERT_EQ(u.targets_size(), 2);
    EXPECT_EQ(u.targets(0).priority(), 1);
    EXPECT_EQ(u.targets(0).credentials().header_name(), "Authorization");
    EXPECT_EQ(u.targets(0).credentials().header_value(), "Bearer your-openai-key");
    EXPECT_EQ(u.targets(1).credentials().header_name(), "x-api-key");
    EXPECT_EQ(u.targets(1).credentials().header_value(), "your-anthropic-key");
    EXPECT_EQ(u.targets(1).headers().at("anthropic-version"), "2023-06-01");
  }
  EXPECT_EQ(Parse<tg::v1::Upstream>(kHeaderCredsUpstream001).targets(0).default_model(), "gpt-4");
}

TEST(EdgeSeedBodies, WeightedUpstreamWithHashComments) {
  auto u = Parse<tg::v1::Upstream>(kWeightedUpstream002);
  EXPECT_EQ(u.algorithm(), "weighted-round-robin");
  ASSERT_EQ(u.targets_size(), 2);
  EXPECT_EQ(u.targets(0).host(), "api.openai.com");
  EXPECT_EQ(u.targets(0).port(), 443);
  EXPECT_EQ(u.targets(0).protocol(), "https");
  EXPECT_EQ(u.targets(0).weight(), 60);
  EXPECT_EQ(u.targets(1).host(), "api.anthropic.com");
  EXPECT_EQ(u.targets(1).weight(), 40);
  EXPECT_EQ(u.targets(1).provider(), "");
  EXPECT_EQ(u.targets(1).credentials().header_value(), "Bearer your-anthropic-key");
}

TEST(EdgeSeedBodies, HealthChecksFragmentWithSlashComments) {
  auto u = Parse<tg::v1::Upstream>(std::string("{") + kHealthChecksFragment002 + "}");
  EXPECT_TRUE(u.health_checks().has_passive());
  EXPECT_TRUE(u.health_checks().passive());
  EXPECT_EQ(u.health_checks().threshold(), 3);
  EXPECT_EQ(u.health_checks().interval(), 60);
}

TEST(EdgeSeedBodies, PriorityFallback) {
  auto u = Parse<tg::v1::Upstream>(kPriorityFallback002);
  ASSERT_EQ(u.targets_size(), 2);
  EXPECT_EQ(u.targets(0).priority(), 1);
  EXPECT_EQ(u.targets(1).priority(), 2);
  EXPECT_EQ(u.targets(1).weight(), 100);
}

TEST(EdgeSeedBodies, Services) {
  auto s = Parse<tg::v1::Service>(kService);
  EXPECT_EQ(s.name(), "ai-chat-service");
  EXPECT_EQ(s.description(), "Load balanced AI chat completion service");
  EXPECT_EQ(s.upstream_id(), "{upstream_id}");
  EXPECT_EQ(s.type(), "upstream");
  ASSERT_EQ(s.tags_size(), 2);
  EXPECT_EQ(s.tags(1), "chat");

  auto s2 = Parse<tg::v1::Service>(kService002);
  EXPECT_EQ(s2.name(), "load-balanced-service");
  EXPECT_EQ(s2.upstream_id(), "{upstream-id}");
  EXPECT_EQ(s2.tags_size(), 0);
}

TEST(EdgeSeedBodies, Rules) {
  auto r = Parse<tg::v1::Rule>(kRule);
  EXPECT_EQ(r.path(), "/v1");
  EXPECT_EQ(r.service_id(), "{service_id}");
  ASSERT_EQ(r.methods_size(), 1);
  EXPECT_EQ(r.methods(0), "POST");
  ASSERT_TRUE(r.has_strip_path());
  EXPECT_FALSE(r.strip_path());
  ASSERT_TRUE(r.has_active());
  EXPECT_TRUE(r.active());

  auto r2 = Parse<tg::v1::Rule>(kRule002);
  EXPECT_EQ(r2.path(), "/ai");
  EXPECT_TRUE(r2.strip_path());
}

TEST(EdgeSeedBodies, Key) {
  auto k = Parse<tg::v1::ApiKey>(kKey);
  EXPECT_EQ(k.name(), "test-key");
  ASSERT_TRUE(k.has_expires_at());
  EXPECT_EQ(google::protobuf::util::TimeUtil::ToString(k.expires_at()), "2026-01-01T00:00:00Z");
}

// What GET returns (PrintProto) parses back to the same message, so PUT
// accepts exactly what GET returned.
TEST(EdgeSeedBodies, PrintedFormRoundTrips) {
  for (const char* body : {kMultiProviderUpstream, kOpenaiResponses, kBedrockAnthropic, kAzure,
                           kWeightedUpstream002}) {
    auto u = Parse<tg::v1::Upstream>(body);
    u.set_id("u-1");
    *u.mutable_created_at() = google::protobuf::util::TimeUtil::SecondsToTimestamp(1700000000);
    auto printed = json::PrintProto(u);
    auto back = Parse<tg::v1::Upstream>(printed);
    EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(back, u)) << printed;
  }
  auto printed = json::PrintProto(Parse<tg::v1::Rule>(kRule));
  EXPECT_NE(printed.find("\"strip_path\":false"), std::string::npos) << printed;
}

}  // namespace
}  // namespace tg::edge
