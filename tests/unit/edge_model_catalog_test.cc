// model_catalog: GET /v1/models from the config snapshot, in OpenAI's and
// Anthropic's list formats.
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include "tg/edge/model_catalog.h"

namespace tg::edge {
namespace {

tg::v1::Upstream SeedUpstream() {
  tg::v1::Upstream u;
  u.set_id("u1");
  auto* openai = u.add_targets();
  openai->set_provider("openai");
  openai->add_models("gpt-3.5-turbo");
  openai->add_models("gpt-4");
  openai->set_default_model("gpt-4o-mini");
  auto* anthropic = u.add_targets();
  anthropic->set_provider("anthropic");
  anthropic->add_models("claude-3-sonnet");
  anthropic->add_models("gpt-4");  // also named by openai: owned by the first
  anthropic->set_default_model("claude-3-sonnet");
  auto* any = u.add_targets();  // takes any model: adds nothing
  any->set_provider("gemini");
  auto* host = u.add_targets();  // a plain host: not a provider
  host->set_host("internal.example");
  host->add_models("internal-model");
  return u;
}

rapidjson::Document Parse(const std::string& body) {
  rapidjson::Document d;
  d.Parse(body.c_str());
  EXPECT_FALSE(d.HasParseError()) << body;
  return d;
}

TEST(ModelCatalogTest, ModelsOfListsEachProviderModelOnceInTargetOrder) {
  auto models = ModelsOf(SeedUpstream());
  ASSERT_EQ(models.size(), 4u);
  EXPECT_EQ(models[0].id, "gpt-3.5-turbo");
  EXPECT_EQ(models[1].id, "gpt-4");
  EXPECT_EQ(models[1].owned_by, "openai");
  EXPECT_EQ(models[2].id, "gpt-4o-mini");
  EXPECT_EQ(models[3].id, "claude-3-sonnet");
  EXPECT_EQ(models[3].owned_by, "anthropic");
  EXPECT_TRUE(HasProviderTargets(SeedUpstream()));
  tg::v1::Upstream hosts;
  hosts.add_targets()->set_host("h");
  EXPECT_FALSE(HasProviderTargets(hosts));
}

TEST(ModelCatalogTest, ParsesListAndRetrievePaths) {
  EXPECT_FALSE(ParseModelsPath("/v1/models").value().id);
  EXPECT_FALSE(ParseModelsPath("/openai/v1/models/").value().id);
  EXPECT_EQ(*ParseModelsPath("/v1/models/gpt-4").value().id, "gpt-4");
  EXPECT_EQ(*ParseModelsPath("/v1/models/anthropic.claude-3:0").value().id, "anthropic.claude-3:0");
  EXPECT_EQ(*ParseModelsPath("/v1/models/models%2Fgemini-pro").value().id, "models/gemini-pro");
  EXPECT_EQ(*ParseModelsPath("/v1/models/a/b").value().id, "a/b");
  EXPECT_EQ(*ParseModelsPath("/v1/models/a%FFb").value().id,
            "a\xEF\xBF\xBD"
            "b")
      << "an escape that is not UTF-8 becomes U+FFFD";
  EXPECT_FALSE(ParseModelsPath("/v1/chat/completions"));
  EXPECT_FALSE(ParseModelsPath("/v1/modelsx"));
}

TEST(ModelCatalogTest, OpenAiListAndRetrieve) {
  auto models = ModelsOf(SeedUpstream());
  auto r = ModelsAnswer(models, ModelsRequest{}, false, 1700000000);
  EXPECT_EQ(r.status, 200);
  auto d = Parse(r.body);
  EXPECT_STREQ(d["object"].GetString(), "list");
  ASSERT_EQ(d["data"].Size(), 4u);
  EXPECT_STREQ(d["data"][0]["id"].GetString(), "gpt-3.5-turbo");
  EXPECT_STREQ(d["data"][0]["object"].GetString(), "model");
  EXPECT_EQ(d["data"][0]["created"].GetInt64(), 1700000000);
  EXPECT_STREQ(d["data"][3]["owned_by"].GetString(), "anthropic");

  r = ModelsAnswer(models, ModelsRequest{"claude-3-sonnet"}, false, 1700000000);
  EXPECT_EQ(r.status, 200);
  d = Parse(r.body);
  EXPECT_STREQ(d["id"].GetString(), "claude-3-sonnet");
  EXPECT_STREQ(d["owned_by"].GetString(), "anthropic");

  r = ModelsAnswer(models, ModelsRequest{"gpt-5"}, false, 1700000000);
  EXPECT_EQ(r.status, 404);
  d = Parse(r.body);
  EXPECT_STREQ(d["error"]["code"].GetString(), "model_not_found");
  EXPECT_STREQ(d["error"]["type"].GetString(), "not_found_error");
  EXPECT_NE(std::string(d["error"]["message"].GetString()).find("gpt-5"), std::string::npos);
}

TEST(ModelCatalogTest, AnthropicListAndRetrieve) {
  auto models = ModelsOf(SeedUpstream());
  auto r = ModelsAnswer(models, ModelsRequest{}, true, 1700000000);
  EXPECT_EQ(r.status, 200);
  auto d = Parse(r.body);
  ASSERT_EQ(d["data"].Size(), 4u);
  EXPECT_STREQ(d["data"][0]["type"].GetString(), "model");
  EXPECT_STREQ(d["data"][0]["created_at"].GetString(), "2023-11-14T22:13:20Z");
  EXPECT_FALSE(d["has_more"].GetBool());
  EXPECT_STREQ(d["first_id"].GetString(), "gpt-3.5-turbo");
  EXPECT_STREQ(d["last_id"].GetString(), "claude-3-sonnet");

  r = ModelsAnswer({}, ModelsRequest{}, true, 0);
  d = Parse(r.body);
  EXPECT_EQ(d["data"].Size(), 0u);
  EXPECT_TRUE(d["first_id"].IsNull());

  r = ModelsAnswer(models, ModelsRequest{"nope"}, true, 0);
  EXPECT_EQ(r.status, 404);
  d = Parse(r.body);
  EXPECT_STREQ(d["type"].GetString(), "error");
  EXPECT_STREQ(d["error"]["type"].GetString(), "not_found_error");
}

}  // namespace
}  // namespace tg::edge
