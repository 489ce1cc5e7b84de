// The admin API end to end: tg-config, tg-keyauth and tg-edge as separate
// processes on a real PostgreSQL, driven over HTTP with the seeds' bodies.
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <filesystem>
#include <memory>

#include "e2e_suite.h"
#include "process.h"
#include "seed_bodies.h"
#include "stack.h"
#include "test_db.h"
#include "tg/common/crypto.h"
#include "tg/common/jwt.h"

namespace tg::testing {
namespace {

using std::chrono::seconds;

// Before: any non-empty secret was accepted, the k8s placeholder CHANGE-ME
// included. Now tg-edge refuses to start, and says why and what to do.
TEST(EdgeStart, PlaceholderAndShortAdminSecretsStopTheEdge) {
  const auto dir = std::filesystem::temp_directory_path() / ("tg_edge_secret_" + crypto::NewUuid());
  std::filesystem::create_directories(dir);
  int n = 0;
  for (const auto& [secret, why] : std::vector<std::pair<std::string, std::string>>{
           {"CHANGE-ME", "placeholder"},
           {"local-dev-admin-secret-change-me", "placeholder"},
           {"short-secret", "at least 32 bytes"},
           {"", "not set"}}) {
    Process edge("tg-edge", BinDir() + "/tg-edge",
                 {{"TG_ADMIN_JWT_SECRET", secret},
                  {"TG_ADMIN_LISTEN", "127.0.0.1:" + std::to_string(FreePort())},
                  {"TG_PROXY_LISTEN", "127.0.0.1:" + std::to_string(FreePort())},
                  {"TG_METRICS_LISTEN", "off"}},
                 (dir / ("edge" + std::to_string(n++) + ".log")).string());
    ASSERT_TRUE(edge.Start());
    auto status = edge.Wait(std::chrono::seconds(10));
    ASSERT_TRUE(status.has_value()) << secret << ": tg-edge kept running";
    EXPECT_NE(*status, 0) << secret;
    std::string log = edge.LogTail();
    EXPECT_NE(log.find(why), std::string::npos) << secret << ": " << log;
    EXPECT_NE(log.find("openssl rand -hex 32"), std::string::npos) << log;
    EXPECT_EQ(secret.size() > 3 ? log.find(secret) : std::string::npos, std::string::npos)
        << "the secret itself must not be printed";
  }
  std::filesystem::remove_all(dir);
}

std::string Replace(std::string s, const std::string& from, const std::string& to) {
  for (auto pos = s.find(from); pos != std::string::npos; pos = s.find(from, pos + to.size())) {
    s.replace(pos, from.size(), to);
  }
  return s;
}

class AdminE2E : public E2eSuite<AdminE2E> {
 protected:
  static void SetUpTestSuite() { StartSuite("e2e_admin", {}, /*proxy=*/false); }
};

TEST_F(AdminE2E, SeedWalkthroughStepsOneToFive) {
  // Step 1, both seed variants.
  std::string gw = stack_->MustCreate("/api/v1/gateways", seeds::kGatewayStep1);
  ASSERT_FALSE(gw.empty());
  auto r = stack_->Admin("POST", "/api/v1/gateways", seeds::kGatewayWithSubdomain);
  ASSERT_EQ(r.status, 201) << r.body;
  auto g = Json(r.body);
  EXPECT_STREQ(g["subdomain"].GetString(), "your-subdomain");
  EXPECT_TRUE(g.HasMember("created_at") && g.HasMember("updated_at"));

  // Step 2, and every provider example of the first seed, and the others' bodies.
  std::string up =
      stack_->MustCreate("/api/v1/gateways/" + gw + "/upstreams", seeds::kUpstreamStep2);
  ASSERT_FALSE(up.empty());
  for (const char* body : {seeds::kOpenAiResponses, seeds::kAnthropic, seeds::kGemini,
                           seeds::kBedrockStandalone, seeds::kBedrockAnthropic, seeds::kAzure,
                           seeds::kUpstreamHeaderCredentials, seeds::kWeightedHostTargets}) {
    EXPECT_FALSE(stack_->MustCreate("/api/v1/gateways/" + gw + "/upstreams", body).empty()) << body;
  }

  // GET returns the upstream as created, credentials masked.
  r = stack_->Admin("GET", "/api/v1/gateways/" + gw + "/upstreams/" + up);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body.find("your-openai-key"), std::string::npos) << r.body;
  EXPECT_EQ(r.body.find("your-anthropic-key"), std::string::npos) << r.body;
  auto u = Json(r.body);
  EXPECT_STREQ(u["name"].GetString(), "ai-providers-upstream");
  EXPECT_STREQ(u["gateway_id"].GetString(), gw.c_str());
  EXPECT_STREQ(u["algorithm"].GetString(), "round-robin");
  ASSERT_EQ(u["targets"].Size(), 2u);
  const auto& t0 = u["targets"][0];
  EXPECT_STREQ(t0["path"].GetString(), "/v1/chat/completions");
  EXPECT_STREQ(t0["provider"].GetString(), "openai");
  EXPECT_EQ(t0["weight"].GetInt(), 50);
  EXPECT_STREQ(t0["default_model"].GetString(), "gpt-4o-mini");
  EXPECT_EQ(t0["models"].Size(), 3u);
  EXPECT_STREQ(t0["credentials"]["api_key"].GetString(), "****");
  const auto& t1 = u["targets"][1];
  EXPECT_STREQ(t1["headers"]["anthropic-version"].GetString(), "2023-06-01");
  EXPECT_STREQ(t1["credentials"]["api_key"].GetString(), "****-key");
  EXPECT_TRUE(u["health_checks"]["passive"].GetBool());
  EXPECT_EQ(u["health_checks"]["threshold"].GetInt(), 3);
  EXPECT_EQ(u["health_checks"]["interval"].GetInt(), 60);

  // Step 3.
  std::string svc = stack_->MustCreate("/api/v1/gateways/" + gw + "/services",
                                       Replace(seeds::kServiceStep3, "{upstream_id}", up));
  ASSERT_FALSE(svc.empty());
  r = stack_->Admin("GET", "/api/v1/gateways/" + gw + "/services/" + svc);
  auto s = Json(r.body);
  EXPECT_STREQ(s["type"].GetString(), "upstream");
  EXPECT_STREQ(s["upstream_id"].GetString(), up.c_str());
  EXPECT_EQ(s["tags"].Size(), 2u);

  // Step 4.
  std::string rule = stack_->MustCreate("/api/v1/gateways/" + gw + "/rules",
                                        Replace(seeds::kRuleStep4, "{service_id}", svc));
  ASSERT_FALSE(rule.empty());
  r = stack_->Admin("GET", "/api/v1/gateways/" + gw + "/rules/" + rule);
  auto ru = Json(r.body);
  EXPECT_STREQ(ru["path"].GetString(), "/v1");
  EXPECT_STREQ(ru["methods"][0].GetString(), "POST");
  EXPECT_FALSE(ru["strip_path"].GetBool());
  EXPECT_TRUE(ru["active"].GetBool());

  // Step 5: the seed's date is already past, which must be a clear 400 ...
  r = stack_->Admin("POST", "/api/v1/gateways/" + gw + "/keys", seeds::kKeyStep5);
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_NE(r.body.find("expires_at"), std::string::npos) << r.body;
  // ... and a future date works, showing the key once.
  r = stack_->Admin("POST", "/api/v1/gateways/" + gw + "/keys",
                    Replace(seeds::kKeyStep5, "2026-01-01", "2099-01-01"));
  ASSERT_EQ(r.status, 201) << r.body;
  auto k = Json(r.body);
  std::string key = k["key"].GetString();
  EXPECT_GE(key.size(), 43u);
  std::string key_id = k["id"].GetString();
  r = stack_->Admin("GET", "/api/v1/gateways/" + gw + "/keys/" + key_id);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body.find(key), std::string::npos) << "the key must never be shown again";
  EXPECT_NE(r.body.find("\"prefix\""), std::string::npos) << r.body;

  // Lists are JSON arrays.
  for (const char* kind : {"upstreams", "services", "rules", "keys"}) {
    r = stack_->Admin("GET", "/api/v1/gateways/" + gw + "/" + kind);
    ASSERT_EQ(r.status, 200) << kind << r.body;
    EXPECT_TRUE(Json(r.body).IsArray()) << kind << r.body;
  }
  r = stack_->Admin("GET", "/api/v1/gateways/" + gw + "/upstreams");
  EXPECT_EQ(Json(r.body).Size(), 9u);
}

TEST_F(AdminE2E, EveryErrorHasItsStatusAndAMessage) {
  std::string gw =
      stack_->MustCreate("/api/v1/gateways", R"({"name": "errors", "subdomain": "errors"})");
  ASSERT_FALSE(gw.empty());

  // 401: no token, a forged one, an expired one.
  auto r = Http("GET", stack_->AdminUrl("/api/v1/gateways"));
  EXPECT_EQ(r.status, 401);
  EXPECT_NE(r.body.find("\"error\""), std::string::npos);
  r = Http(
      "GET", stack_->AdminUrl("/api/v1/gateways"), "",
      {"Authorization: Bearer " +
       jwt::SignHs256("wrong-secret-wrong", "x", std::chrono::system_clock::now(), seconds(60))});
  EXPECT_EQ(r.status, 401);
  r = Http(
      "GET", stack_->AdminUrl("/api/v1/gateways"), "",
      {"Authorization: Bearer " +
       jwt::SignHs256("x", "x", std::chrono::system_clock::now() - seconds(7200), seconds(60))});
  EXPECT_EQ(r.status, 401);

  // 400: malformed JSON, wrong type (naming the field), validation (naming the field).
  r = stack_->Admin("POST", "/api/v1/gateways", R"({"name": )");
  EXPECT_EQ(r.status, 400) << r.body;
  r = stack_->Admin("POST", "/api/v1/gateways/" + gw + "/upstreams",
                    R"({"name": "u", "targets": [{"provider": "openai", "weight": "heavy"}]})");
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_NE(r.body.find("weight"), std::string::npos) << r.body;
  r = stack_->Admin("POST", "/api/v1/gateways/" + gw + "/upstreams",
                    R"({"name": "u", "targets": [{"provider": "openai", "weight": 500}]})");
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_NE(r.body.find("targets[0].weight"), std::string::npos) << r.body;
  r = stack_->Admin("POST", "/api/v1/gateways/" + gw + "/upstreams",
                    R"({"name": "u", "targets": [{"provider": "mistral-cloud"}]})");
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_NE(r.body.find("provider"), std::string::npos) << r.body;
  r = stack_->Admin("POST", "/api/v1/gateways/" + gw + "/rules",
                    R"({"path": "/v1", "service_id": "x", "methods": ["FETCH"]})");
  EXPECT_EQ(r.status, 400) << r.body;

  // 404: unknown ids and unknown paths.
  r = stack_->Admin("GET", "/api/v1/gateways/00000000-0000-4000-8000-000000000000");
  EXPECT_EQ(r.status, 404) << r.body;
  r = stack_->Admin("GET", "/api/v1/gateways/" + gw + "/upstreams/not-an-id");
  EXPECT_EQ(r.status, 404) << r.body;
  r = stack_->Admin("GET", "/api/v1/nothing-here");
  EXPECT_EQ(r.status, 404) << r.body;

  // 409: duplicate subdomain; deleting what is still used.
  r = stack_->Admin("POST", "/api/v1/gateways", R"({"name": "dup", "subdomain": "errors"})");
  EXPECT_EQ(r.status, 409) << r.body;
  std::string up =
      stack_->MustCreate("/api/v1/gateways/" + gw + "/upstreams", seeds::kUpstreamStep2);
  std::string svc = stack_->MustCreate("/api/v1/gateways/" + gw + "/services",
                                       Replace(seeds::kServiceStep3, "{upstream_id}", up));
  std::string rule = stack_->MustCreate("/api/v1/gateways/" + gw + "/rules",
                                        Replace(seeds::kRuleStripPath, "{service_id}", svc));
  r = stack_->Admin("DELETE", "/api/v1/gateways/" + gw + "/upstreams/" + up);
  EXPECT_EQ(r.status, 409) << r.body;
  r = stack_->Admin("DELETE", "/api/v1/gateways/" + gw + "/services/" + svc);
  EXPECT_EQ(r.status, 409) << r.body;

  // 413: a body over 1 MiB.
  std::string huge = R"({"name": ")" + std::string(1100000, 'x') + R"("})";
  r = stack_->Admin("POST", "/api/v1/gateways", huge);
  EXPECT_EQ(r.status, 413) << r.body.substr(0, 200);

  // 405: keys cannot be updated.
  r = stack_->Admin("PUT", "/api/v1/gateways/" + gw + "/keys/00000000-0000-4000-8000-000000000000",
                    "{}");
  EXPECT_EQ(r.status, 405) << r.body;

  // 204 in dependency order, then 404.
  EXPECT_EQ(stack_->Admin("DELETE", "/api/v1/gateways/" + gw + "/rules/" + rule).status, 204);
  EXPECT_EQ(stack_->Admin("DELETE", "/api/v1/gateways/" + gw + "/services/" + svc).status, 204);
  EXPECT_EQ(stack_->Admin("DELETE", "/api/v1/gateways/" + gw + "/upstreams/" + up).status, 204);
  EXPECT_EQ(stack_->Admin("DELETE", "/api/v1/gateways/" + gw + "/upstreams/" + up).status, 404);
}

TEST_F(AdminE2E, PutAcceptsWhatGetReturnedAndKeepsSecrets) {
  std::string gw = stack_->MustCreate("/api/v1/gateways", R"({"name": "put"})");
  std::string up = stack_->MustCreate("/api/v1/gateways/" + gw + "/upstreams",
                                      seeds::kUpstreamHeaderCredentials);
  auto r = stack_->Admin("GET", "/api/v1/gateways/" + gw + "/upstreams/" + up);
  ASSERT_EQ(r.status, 200);
  std::string body = Replace(r.body, "\"weight\":50", "\"weight\":70");
  r = stack_->Admin("PUT", "/api/v1/gateways/" + gw + "/upstreams/" + up, body);
  ASSERT_EQ(r.status, 200) << r.body;
  auto u = Json(r.body);
  EXPECT_EQ(u["targets"][0]["weight"].GetInt(), 70);
  EXPECT_STREQ(u["targets"][0]["credentials"]["header_value"].GetString(), "****-key");
  EXPECT_STREQ(u["id"].GetString(), up.c_str());

  // Read-only fields in the body are ignored: the URL names the entity.
  r = stack_->Admin("PUT", "/api/v1/gateways/" + gw,
                    R"({"id": "00000000-0000-4000-8000-000000000000", "name": "renamed",
                        "created_at": "2001-01-01T00:00:00Z"})");
  ASSERT_EQ(r.status, 200) << r.body;
  auto g = Json(r.body);
  EXPECT_STREQ(g["id"].GetString(), gw.c_str());
  EXPECT_STREQ(g["name"].GetString(), "renamed");
  EXPECT_STRNE(g["created_at"].GetString(), "2001-01-01T00:00:00Z");
}

// TrustGate's plugins, pasted as its documentation writes them: answered,
// read back and PUT back as written (settings included), an unsupported one
// refused naming the field.
TEST_F(AdminE2E, PluginsAreAcceptedAsWrittenAndReadBackAsWritten) {
  const std::string gateway = R"({"name": "limited", "required_plugins": [
      {"name": "rate_limiter", "enabled": true, "stage": "pre_request", "priority": 1,
       "level": "gateway", "id": "3f1c2e8a-0000-4000-8000-000000000001", "parallel": false,
       "settings": {"limits": {"global": {"limit": 1000, "window": "1m"},
                               "per_ip": {"limit": 60, "window": "1m"},
                               "per_user": {"limit": 100, "window": "1m"}},
                    "actions": {"type": "reject", "retry_after": "60"}}},
      {"name": "token_rate_limiter", "enabled": true, "stage": "pre_request", "priority": 2,
       "settings": {"tokens_per_minute": 10000, "requests_per_minute": 60,
                    "bucket_size": 20000, "tokens_per_request": 4000}}]})";
  const auto written = Json(gateway);
  auto r = stack_->Admin("POST", "/api/v1/gateways", gateway);
  ASSERT_EQ(r.status, 201) << r.body;
  // rapidjson compares objects member by member, in any order.
  EXPECT_TRUE(Json(r.body)["required_plugins"] == written["required_plugins"]) << r.body;
  const std::string gw = Json(r.body)["id"].GetString();
  r = stack_->Admin("GET", "/api/v1/gateways/" + gw);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_TRUE(Json(r.body)["required_plugins"] == written["required_plugins"]) << r.body;

  // PUT back what GET returned, the global limit changed.
  std::string put = Replace(r.body, "\"limit\":1000", "\"limit\":2000");
  ASSERT_NE(put, r.body);
  r = stack_->Admin("PUT", "/api/v1/gateways/" + gw, put);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_TRUE(Json(r.body)["required_plugins"] == Json(put)["required_plugins"]) << r.body;
  r = stack_->Admin("GET", "/api/v1/gateways/" + gw);
  EXPECT_TRUE(Json(r.body)["required_plugins"] == Json(put)["required_plugins"]) << r.body;

  // Refused: a plugin of TrustGate's catalogue this gateway does not run, a bad window.
  r = stack_->Admin("PUT", "/api/v1/gateways/" + gw,
                    R"({"name": "limited", "required_plugins": [{"name": "data_masking"}]})");
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_STREQ(Json(r.body)["error"].GetString(),
               "required_plugins[0].name: plugin \"data_masking\" is not supported by this "
               "gateway (supported: rate_limiter, token_rate_limiter)");
  r = stack_->Admin("POST", "/api/v1/gateways", R"({"name": "x", "required_plugins": [
      {"name": "rate_limiter", "settings": {"limits": {"per_ip": {"limit": 60, "window": "1x"}}}}]})");
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_STREQ(Json(r.body)["error"].GetString(),
               "required_plugins[0].settings.limits.per_ip.window: \"1x\" is not a duration "
               "(e.g. \"30s\", \"1m\", \"1h\")");
  r = stack_->Admin("GET", "/api/v1/gateways/" + gw);
  EXPECT_TRUE(Json(r.body)["required_plugins"] == Json(put)["required_plugins"]) << r.body;

  // A rule's plugin_chain, and the targets' quotas.
  std::string up = stack_->MustCreate("/api/v1/gateways/" + gw + "/upstreams", R"({"name": "u",
      "targets": [{"provider": "openai", "requests_per_minute": 500,
                   "tokens_per_minute": 2000000}]})");
  ASSERT_FALSE(up.empty());
  r = stack_->Admin("GET", "/api/v1/gateways/" + gw + "/upstreams/" + up);
  auto upstream = Json(r.body);
  const auto& target = upstream["targets"][0];
  EXPECT_EQ(target["requests_per_minute"].GetInt(), 500);
  EXPECT_EQ(target["tokens_per_minute"].GetInt(), 2000000);
  std::string svc = stack_->MustCreate("/api/v1/gateways/" + gw + "/services",
                                       Replace(seeds::kServiceStep3, "{upstream_id}", up));
  const std::string rule = Replace(R"({"path": "/v1", "service_id": "{service_id}",
      "methods": ["POST"], "plugin_chain": [
        {"name": "token_rate_limiter", "level": "rule", "stage": "post_response",
         "settings": {"tokens_per_minute": 5000, "scope": "model"}},
        {"name": "rate_limiter", "priority": 5,
         "settings": {"limits": {"per_api_key": {"limit": 10, "window": "30s"}}}}]})",
                                   "{service_id}", svc);
  r = stack_->Admin("POST", "/api/v1/gateways/" + gw + "/rules", rule);
  ASSERT_EQ(r.status, 201) << r.body;
  EXPECT_TRUE(Json(r.body)["plugin_chain"] == Json(rule)["plugin_chain"]) << r.body;
  const std::string rule_id = Json(r.body)["id"].GetString();
  r = stack_->Admin("GET", "/api/v1/gateways/" + gw + "/rules/" + rule_id);
  EXPECT_TRUE(Json(r.body)["plugin_chain"] == Json(rule)["plugin_chain"]) << r.body;
  r = stack_->Admin("PUT", "/api/v1/gateways/" + gw + "/rules/" + rule_id, r.body);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_TRUE(Json(r.body)["plugin_chain"] == Json(rule)["plugin_chain"]) << r.body;
  r = stack_->Admin("PUT", "/api/v1/gateways/" + gw + "/rules/" + rule_id,
                    Replace(rule, "\"level\": \"rule\"", "\"level\": \"gateway\""));
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_STREQ(Json(r.body)["error"].GetString(),
               "plugin_chain[0].level: must be \"rule\" or empty here, not \"gateway\"");
}

TEST_F(AdminE2E, EverythingSurvivesARestartOfEveryService) {
  std::string gw =
      stack_->MustCreate("/api/v1/gateways", R"({"name": "durable", "subdomain": "durable"})");
  std::string up =
      stack_->MustCreate("/api/v1/gateways/" + gw + "/upstreams", seeds::kUpstreamStep2);
  std::string svc = stack_->MustCreate("/api/v1/gateways/" + gw + "/services",
                                       Replace(seeds::kServiceStep3, "{upstream_id}", up));
  std::string rule = stack_->MustCreate("/api/v1/gateways/" + gw + "/rules",
                                        Replace(seeds::kRuleStep4, "{service_id}", svc));
  auto kr = stack_->Admin("POST", "/api/v1/gateways/" + gw + "/keys",
                          R"({"name": "k", "expires_at": "2099-01-01T00:00:00Z"})");
  ASSERT_EQ(kr.status, 201) << kr.body;
  std::string key_id = Json(kr.body)["id"].GetString();
  auto before = stack_->Admin("GET", "/api/v1/gateways/" + gw + "/upstreams/" + up).body;

  stack_->StopAll();
  ASSERT_TRUE(stack_->StartAll());

  EXPECT_EQ(stack_->Admin("GET", "/api/v1/gateways/" + gw).status, 200);
  EXPECT_EQ(stack_->Admin("GET", "/api/v1/gateways/" + gw + "/upstreams/" + up).body, before);
  EXPECT_EQ(stack_->Admin("GET", "/api/v1/gateways/" + gw + "/services/" + svc).status, 200);
  EXPECT_EQ(stack_->Admin("GET", "/api/v1/gateways/" + gw + "/rules/" + rule).status, 200);
  EXPECT_EQ(stack_->Admin("GET", "/api/v1/gateways/" + gw + "/keys/" + key_id).status, 200);
}

}  // namespace
}  // namespace tg::testing
