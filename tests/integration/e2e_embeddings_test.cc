// POST /v1/embeddings end to end: every service a process, real PostgreSQL
// and Redis, the fake providers' embedding endpoints (OpenAI, Azure, Gemini,
// Bedrock Titan and Cohere through SigV4-checked InvokeModel) in this process.
// The client speaks OpenAI's embeddings API whichever provider serves it.
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <cstring>
#include <string>
#include <vector>

#include "e2e_suite.h"
#include "fake_provider.h"
#include "fake_wire.h"
#include "process.h"
#include "stack.h"
#include "tg/common/base64.h"

namespace tg::testing {
namespace {

class EmbeddingsE2E : public E2eSuite<EmbeddingsE2E> {
 protected:
  static void SetUpTestSuite() {
    if (!StartSuite("e2e_embeddings", StackOptions{}, /*proxy=*/true)) return;
    gateway_ = stack_->MustCreate("/api/v1/gateways", R"({"name": "embed"})");
    key_ = stack_->MustCreateKey(gateway_, "2099-01-01T00:00:00Z");
  }
  HttpResponse Embed(const std::string& path, const std::string& body) {
    return Http("POST", stack_->ProxyUrl(path), body,
                {"Authorization: Bearer " + key_, "Content-Type: application/json"});
  }
  // The vectors of an OpenAI embeddings answer, decoding base64 ones.
  static std::vector<std::vector<float>> Vectors(const rapidjson::Document& d) {
    std::vector<std::vector<float>> out;
    for (const auto& item : d["data"].GetArray()) {
      std::vector<float> v;
      const auto& e = item["embedding"];
      if (e.IsString()) {
        auto bytes = base64::Decode(e.GetString());
        if (!bytes) return {};
        v.resize(bytes->size() / 4);
        std::memcpy(v.data(), bytes->data(), v.size() * 4);
      } else {
        for (const auto& x : e.GetArray()) v.push_back(static_cast<float>(x.GetDouble()));
      }
      out.push_back(std::move(v));
    }
    return out;
  }

  static inline std::string gateway_, key_;
};

TEST_F(EmbeddingsE2E, OpenAiFloatAndBase64) {
  stack_->MustRoute(gateway_, "/openai",
                    R"({"name": "u", "targets": [)" + fake_->TargetJson("openai") + "]}");
  auto r = Embed("/openai/v1/embeddings",
                 R"({"model": "text-embedding-3-small", "input": ["hello world", "second"]})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.headers["x-selected-provider"], "openai");
  auto d = Json(r.body);
  ASSERT_TRUE(d.IsObject() && d["data"].IsArray()) << r.body;
  EXPECT_STREQ(d["object"].GetString(), "list");
  auto v = Vectors(d);
  ASSERT_EQ(v.size(), 2u);
  EXPECT_EQ(v[0], fakes::FakeEmbedding("hello world", fakes::kFakeEmbeddingDimensions));
  EXPECT_EQ(v[1], fakes::FakeEmbedding("second", fakes::kFakeEmbeddingDimensions));
  EXPECT_EQ(d["usage"]["prompt_tokens"].GetInt(), 3);

  r = Embed("/openai/v1/embeddings",
            R"({"model": "text-embedding-3-small", "input": "hello world", "dimensions": 4,
                "encoding_format": "base64"})");
  ASSERT_EQ(r.status, 200) << r.body;
  d = Json(r.body);
  ASSERT_TRUE(d["data"][0]["embedding"].IsString()) << r.body;
  EXPECT_EQ(Vectors(d)[0], fakes::FakeEmbedding("hello world", 4));
  auto sent = fake_->Requests();
  ASSERT_EQ(sent.size(), 2u);
  EXPECT_EQ(sent[1].api, fakes::Api::kOpenAiEmbeddings);
}

TEST_F(EmbeddingsE2E, GeminiAzureTitanAndCohereAnswerInOpenAisFormat) {
  stack_->MustRoute(gateway_, "/gemini",
                    R"({"name": "g", "targets": [)" +
                        fake_->TargetJson("gemini", R"("default_model": "text-embedding-004", )") +
                        "]}");
  stack_->MustRoute(gateway_, "/azure",
                    R"({"name": "a", "targets": [)" +
                        fake_->TargetJson("azure", R"("default_model": "embed-deploy", )") + "]}");
  stack_->MustRoute(
      gateway_, "/titan",
      R"({"name": "t", "targets": [)" +
          fake_->TargetJson("bedrock", R"("default_model": "amazon.titan-embed-text-v2:0", )") +
          "]}");
  stack_->MustRoute(
      gateway_, "/cohere",
      R"({"name": "c", "targets": [)" +
          fake_->TargetJson("bedrock", R"("default_model": "cohere.embed-english-v3", )") + "]}");

  struct Case {
    const char* path;
    const char* body;
    std::vector<std::string> texts;
    int dimensions;
    const char* provider;
    fakes::Api api;
  };
  const std::vector<Case> cases = {
      {"/gemini/v1/embeddings",
       R"({"model": "any", "input": "one text"})",
       {"one text"},
       8,
       "gemini",
       fakes::Api::kGeminiEmbeddings},
      {"/gemini/v1/embeddings",
       R"({"model": "any", "input": ["a b", "c"], "dimensions": 16, "encoding_format": "base64"})",
       {"a b", "c"},
       16,
       "gemini",
       fakes::Api::kGeminiEmbeddings},
      {"/azure/v1/embeddings",
       R"({"model": "any", "input": ["x", "y z"]})",
       {"x", "y z"},
       8,
       "azure",
       fakes::Api::kAzureEmbeddings},
      {"/titan/v1/embeddings",
       R"({"model": "any", "input": "titan text", "dimensions": 256})",
       {"titan text"},
       256,
       "bedrock",
       fakes::Api::kBedrockInvoke},
      {"/cohere/v1/embeddings",
       R"({"model": "any", "input": ["c1", "c2", "c3"]})",
       {"c1", "c2", "c3"},
       8,
       "bedrock",
       fakes::Api::kBedrockInvoke},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(std::string(c.path) + " " + c.body);
    fake_->ClearRequests();
    auto r = Embed(c.path, c.body);
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.headers["x-selected-provider"], c.provider);
    auto d = Json(r.body);
    ASSERT_TRUE(d.IsObject() && d["data"].IsArray() && d["usage"].IsObject()) << r.body;
    auto v = Vectors(d);
    ASSERT_EQ(v.size(), c.texts.size()) << r.body;
    for (size_t i = 0; i < v.size(); ++i) {
      EXPECT_EQ(v[i], fakes::FakeEmbedding(c.texts[i], c.dimensions)) << i;
      EXPECT_EQ(d["data"][static_cast<rapidjson::SizeType>(i)]["index"].GetInt(),
                static_cast<int>(i));
    }
    auto sent = fake_->Requests();
    ASSERT_EQ(sent.size(), 1u) << "one provider call, several inputs included";
    EXPECT_EQ(sent[0].api, c.api);
    if (c.path == std::string("/gemini/v1/embeddings")) continue;  // Gemini counts no tokens
    int tokens = 0;
    for (const auto& t : c.texts) tokens += fakes::FakeTokenCount(t);
    EXPECT_EQ(d["usage"]["prompt_tokens"].GetInt(), tokens) << r.body;
  }
  // Titan's usage is its own count; one input per call, so several are refused.
  auto r = Embed("/titan/v1/embeddings", R"({"model": "any", "input": "three word text"})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Json(r.body)["usage"]["prompt_tokens"].GetInt(), 3);
  fake_->ClearRequests();
  r = Embed("/titan/v1/embeddings", R"({"model": "any", "input": ["a", "b"]})");
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_NE(r.body.find("one input per call"), std::string::npos) << r.body;
  EXPECT_TRUE(fake_->Requests().empty()) << "refused before any call";
  // A body that is wrong for every target.
  r = Embed("/titan/v1/embeddings", R"({"model": "any", "input": []})");
  EXPECT_EQ(r.status, 400) << r.body;
}

// Failover as for chat: a failing embedding target gives way to the next; a
// target without an embeddings API is passed over without being called.
TEST_F(EmbeddingsE2E, AFailingTargetFailsOverAndAChatOnlyOneIsPassedOver) {
  stack_->MustRoute(
      gateway_, "/failover",
      R"({"name": "f", "targets": [)" + fake_->TargetJson("openai", R"("priority": 1, )") + "," +
          fake_->TargetJson("gemini", R"("priority": 2, "default_model": "text-embedding-004", )") +
          "]}",
      true, R"(, "retry_policy": {"same_target_retries": 0})");
  fakes::FakeFault fault;
  fault.path_prefix = "/v1/embeddings";
  fault.status = 503;
  fake_->AddFault(fault);
  auto r = Embed("/failover/v1/embeddings", R"({"model": "text-embedding-3-small", "input": "x"})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.headers["x-selected-provider"], "gemini");
  auto sent = fake_->Requests();
  ASSERT_EQ(sent.size(), 2u);
  EXPECT_EQ(sent[0].api, fakes::Api::kOpenAiEmbeddings);
  EXPECT_EQ(sent[1].api, fakes::Api::kGeminiEmbeddings);
  fake_->ClearFaults();

  stack_->MustRoute(gateway_, "/mixed",
                    R"({"name": "m", "targets": [)" +
                        fake_->TargetJson("anthropic", R"("priority": 1, )") + "," +
                        fake_->TargetJson("openai", R"("priority": 2, )") + "]}");
  fake_->ClearRequests();
  r = Embed("/mixed/v1/embeddings", R"({"model": "text-embedding-3-small", "input": "x"})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.headers["x-selected-provider"], "openai");
  sent = fake_->Requests();
  ASSERT_EQ(sent.size(), 1u) << "anthropic has no embeddings API: never called";
  EXPECT_EQ(sent[0].api, fakes::Api::kOpenAiEmbeddings);
}

}  // namespace
}  // namespace tg::testing
