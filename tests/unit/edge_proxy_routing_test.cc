#include <gtest/gtest.h>

#include "tg/common/json_util.h"
#include "tg/edge/proxy_routing.h"

namespace tg::edge {
namespace {

HttpRequest WithHeaders(std::vector<std::pair<std::string, std::string>> h) {
  HttpRequest r;
  r.headers = std::move(h);
  return r;
}

TEST(ProxyRouting, KeyFromEitherHeaderOrBearer) {
  EXPECT_EQ(ExtractApiKey(WithHeaders({{"X-TG-API-Key", "a"}, {"X-Api-Key", "b"}})), "a");
  EXPECT_EQ(ExtractApiKey(WithHeaders({{"x-api-key", "b"}, {"Authorization", "Bearer c"}})), "b");
  EXPECT_EQ(ExtractApiKey(WithHeaders({{"Authorization", "bearer c"}})), "c");
  EXPECT_EQ(ExtractApiKey(WithHeaders({{"Authorization", "Basic Zm9v"}})), "");
  EXPECT_EQ(ExtractApiKey(WithHeaders({})), "");
}

TEST(ProxyRouting, SubdomainOfTheBaseDomain) {
  EXPECT_EQ(SubdomainOf("your-subdomain.example.com", "example.com"), "your-subdomain");
  EXPECT_EQ(SubdomainOf("Your-Subdomain.Example.com:8081", "example.com"), "your-subdomain");
  EXPECT_EQ(SubdomainOf("example.com", "example.com"), "");
  EXPECT_EQ(SubdomainOf("a.b.example.com", "example.com"), "");
  EXPECT_EQ(SubdomainOf("evilexample.com", "example.com"), "");
  EXPECT_EQ(SubdomainOf("x.example.com", ""), "");
}

std::shared_ptr<const ConfigSnapshot> Snapshot() {
  tg::v1::ConfigSnapshot p;
  std::string err;
  EXPECT_TRUE(json::ParseProto(R"({
    "gateways": [{"id": "g", "name": "g"}],
    "services": [{"id": "s1", "gateway_id": "g", "name": "a", "type": "upstream", "upstream_id": "u"},
                 {"id": "s2", "gateway_id": "g", "name": "b", "type": "upstream", "upstream_id": "u"}],
    "rules": [{"id": "r1", "gateway_id": "g", "path": "/v1", "service_id": "s1", "methods": ["POST"],
               "active": true},
              {"id": "r2", "gateway_id": "g", "path": "/v1/chat", "service_id": "s2",
               "methods": ["POST"], "active": true},
              {"id": "r3", "gateway_id": "g", "path": "/off", "service_id": "s2",
               "methods": ["POST"], "active": false},
              {"id": "r4", "gateway_id": "g", "path": "/ai", "service_id": "s1",
               "methods": ["POST", "GET"], "strip_path": true, "active": true}]})",
                               &p, &err))
      << err;
  return ConfigSnapshot::FromProto(p, 1);
}

TEST(ProxyRouting, LongestWholeSegmentMatchWins) {
  auto s = Snapshot();
  auto m = MatchRule(*s, "g", "POST", "/v1/chat/completions");
  ASSERT_EQ(m.result, RouteMatch::Result::kMatched);
  EXPECT_EQ(m.rule->id(), "r2");
  m = MatchRule(*s, "g", "POST", "/v1/messages");
  ASSERT_EQ(m.result, RouteMatch::Result::kMatched);
  EXPECT_EQ(m.rule->id(), "r1");
  EXPECT_EQ(MatchRule(*s, "g", "POST", "/v12/chat").result, RouteMatch::Result::kNoRule);
  EXPECT_EQ(MatchRule(*s, "g", "POST", "/off/x").result, RouteMatch::Result::kNoRule)
      << "inactive rules do not route";
  EXPECT_EQ(MatchRule(*s, "other", "POST", "/v1").result, RouteMatch::Result::kNoRule);
}

TEST(ProxyRouting, WrongMethodIs405WithAllow) {
  auto s = Snapshot();
  auto m = MatchRule(*s, "g", "DELETE", "/ai/x");
  EXPECT_EQ(m.result, RouteMatch::Result::kWrongMethod);
  EXPECT_EQ(m.allow, "POST, GET");
}

TEST(ProxyRouting, StripPath) {
  auto s = Snapshot();
  const auto* strip = s->FindRule("r4");
  EXPECT_EQ(ForwardPath(*strip, "/ai/v1/chat/completions"), "/v1/chat/completions");
  EXPECT_EQ(ForwardPath(*strip, "/ai"), "/");
  EXPECT_EQ(ForwardPath(*s->FindRule("r1"), "/v1/chat/completions"), "/v1/chat/completions");
}

TEST(ProxyRouting, ClientFormatFromPath) {
  EXPECT_EQ(ClientFormatOf("/v1/chat/completions"), tg::v1::CLIENT_FORMAT_OPENAI_CHAT);
  EXPECT_EQ(ClientFormatOf("/ai/v1/messages"), tg::v1::CLIENT_FORMAT_ANTHROPIC_MESSAGES);
  EXPECT_EQ(ClientFormatOf("/v1/responses/"), tg::v1::CLIENT_FORMAT_OPENAI_RESPONSES);
  EXPECT_EQ(ClientFormatOf("/v1/embeddings"), tg::v1::CLIENT_FORMAT_OPENAI_EMBEDDINGS);
  EXPECT_EQ(ClientFormatOf("/v1/images/generations"), tg::v1::CLIENT_FORMAT_UNSPECIFIED);
}

}  // namespace
}  // namespace tg::edge
