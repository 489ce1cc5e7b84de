// Embeddings translation: OpenAI's request to each provider's embedding API
// and each answer back to OpenAI's (translate/embeddings.h).
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <cstring>

#include "tg/adapter/translate/embeddings.h"
#include "tg/common/base64.h"

namespace tg::adapter::translate {
namespace {

TargetInfo Target(std::string provider, std::string model) {
  TargetInfo t;
  t.provider = std::move(provider);
  t.model = std::move(model);
  return t;
}

EmbeddingsRequest Decode(std::string_view body) {
  auto r = DecodeEmbeddingsRequest(body);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
  return r.ok() ? std::move(r.value()) : EmbeddingsRequest{};
}

rapidjson::Document Parse(std::string_view s) {
  rapidjson::Document d;
  d.Parse(s.data(), s.size());
  EXPECT_FALSE(d.HasParseError()) << s;
  return d;
}

TEST(EmbeddingsTest, DecodeChecksTheBody) {
  auto one = Decode(R"({"model":"m","input":"hello world"})");
  EXPECT_EQ(one.texts, std::vector<std::string>{"hello world"});
  EXPECT_FALSE(one.base64);
  auto many =
      Decode(R"({"model":"m","input":["a","b"],"dimensions":256,"encoding_format":"base64"})");
  EXPECT_EQ(many.texts.size(), 2u);
  EXPECT_EQ(many.dimensions, 256);
  EXPECT_TRUE(many.base64);
  EXPECT_TRUE(Decode(R"({"model":"m","input":[1,2,3]})").token_input);
  EXPECT_TRUE(Decode(R"({"model":"m","input":[[1,2],[3]]})").token_input);
  for (const char* bad :
       {R"([])", R"({"input":"x"})", R"({"model":"m"})", R"({"model":"m","input":""})",
        R"({"model":"m","input":[]})", R"({"model":"m","input":["a",""]})",
        R"({"model":"m","input":[1,"a"]})", R"({"model":"m","input":"x","dimensions":0})",
        R"({"model":"m","input":"x","encoding_format":"int8"})", "{"}) {
    auto r = DecodeEmbeddingsRequest(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.error().http_status, 400) << bad;
    EXPECT_FALSE(r.error().retryable) << "the body is wrong for every target: " << bad;
  }
}

TEST(EmbeddingsTest, OpenAiAndAzureForwardTheBodyWithTheEffectiveModel) {
  auto req = Decode(R"({"model":"alias","input":"hi","encoding_format":"base64","user":"u"})");
  auto call = BuildEmbeddingsCall(req, Target("openai", "text-embedding-3-small"));
  ASSERT_TRUE(call.ok());
  EXPECT_EQ(call.value().url, "https://api.openai.com/v1/embeddings");
  EXPECT_EQ(call.value().auth, AuthScheme::kBearer);
  auto body = Parse(call.value().body);
  EXPECT_STREQ(body["model"].GetString(), "text-embedding-3-small");
  EXPECT_STREQ(body["encoding_format"].GetString(), "base64");
  EXPECT_STREQ(body["user"].GetString(), "u");

  auto azure = Target("azure", "embed deploy");
  azure.azure_endpoint = "https://acme.openai.azure.com";
  call = BuildEmbeddingsCall(req, azure);
  ASSERT_TRUE(call.ok()) << call.error().message;
  EXPECT_EQ(call.value().url,
            "https://acme.openai.azure.com/openai/deployments/embed%20deploy/embeddings"
            "?api-version=2024-10-21");
  EXPECT_EQ(call.value().auth, AuthScheme::kAzureApiKey);

  // Their answers are OpenAI's already: passed on.
  const std::string answer =
      R"({"object":"list","data":[{"object":"embedding","index":0,"embedding":"AACAPw=="}],)"
      R"("model":"text-embedding-3-small","usage":{"prompt_tokens":3,"total_tokens":3}})";
  auto parsed = ParseEmbeddingsAnswer(Target("openai", "text-embedding-3-small"), req, answer);
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed.value().body, answer);
  EXPECT_EQ(parsed.value().prompt_tokens, 3);
}

TEST(EmbeddingsTest, GeminiOneInputEmbedsSeveralBatch) {
  auto one = Decode(R"({"model":"x","input":"hi","dimensions":8})");
  auto call = BuildEmbeddingsCall(one, Target("gemini", "text-embedding-004"));
  ASSERT_TRUE(call.ok());
  EXPECT_EQ(call.value().url,
            "https://generativelanguage.googleapis.com/v1beta/models/text-embedding-004:"
            "embedContent");
  EXPECT_EQ(call.value().auth, AuthScheme::kGoogleApiKey);
  auto body = Parse(call.value().body);
  EXPECT_STREQ(body["content"]["parts"][0]["text"].GetString(), "hi");
  EXPECT_EQ(body["outputDimensionality"].GetInt(), 8);

  auto many = Decode(R"({"model":"x","input":["a","b"]})");
  call = BuildEmbeddingsCall(many, Target("gemini", "models/text-embedding-004"));
  ASSERT_TRUE(call.ok());
  EXPECT_NE(call.value().url.find("/v1beta/models/text-embedding-004:batchEmbedContents"),
            std::string::npos);
  body = Parse(call.value().body);
  ASSERT_EQ(body["requests"].Size(), 2u);
  EXPECT_STREQ(body["requests"][1]["model"].GetString(), "models/text-embedding-004");
  EXPECT_STREQ(body["requests"][1]["content"]["parts"][0]["text"].GetString(), "b");

  auto parsed = ParseEmbeddingsAnswer(Target("gemini", "text-embedding-004"), many,
                                      R"({"embeddings":[{"values":[0.5,-1]},{"values":[2]}]})");
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  auto d = Parse(parsed.value().body);
  EXPECT_STREQ(d["object"].GetString(), "list");
  ASSERT_EQ(d["data"].Size(), 2u);
  EXPECT_EQ(d["data"][1]["index"].GetInt(), 1);
  EXPECT_EQ(d["data"][0]["embedding"][1].GetDouble(), -1.0);
  EXPECT_STREQ(d["model"].GetString(), "text-embedding-004");
  EXPECT_EQ(d["usage"]["prompt_tokens"].GetInt(), 0);  // Gemini does not say
  EXPECT_EQ(parsed.value().prompt_tokens, -1);
  // One vector for two inputs is the provider's fault.
  EXPECT_FALSE(
      ParseEmbeddingsAnswer(Target("gemini", "m"), many, R"({"embeddings":[{"values":[1]}]})")
          .ok());
}

TEST(EmbeddingsTest, BedrockTitanAndCohereThroughInvokeModel) {
  auto one = Decode(R"({"model":"x","input":"hi","dimensions":256,"encoding_format":"base64"})");
  auto titan = Target("bedrock", "amazon.titan-embed-text-v2:0");
  titan.aws_region = "eu-west-1";
  auto call = BuildEmbeddingsCall(one, titan);
  ASSERT_TRUE(call.ok());
  EXPECT_EQ(call.value().url,
            "https://bedrock-runtime.eu-west-1.amazonaws.com/model/"
            "amazon.titan-embed-text-v2%3A0/invoke");
  EXPECT_EQ(call.value().auth, AuthScheme::kAwsSigV4);
  EXPECT_EQ(call.value().aws_service, "bedrock");
  auto body = Parse(call.value().body);
  EXPECT_STREQ(body["inputText"].GetString(), "hi");
  EXPECT_EQ(body["dimensions"].GetInt(), 256);
  // Base64: float32 little-endian, as OpenAI encodes it.
  auto parsed =
      ParseEmbeddingsAnswer(titan, one, R"({"embedding":[1.0,-0.5],"inputTextTokenCount":2})");
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  auto d = Parse(parsed.value().body);
  auto bytes = base64::Decode(d["data"][0]["embedding"].GetString());
  ASSERT_TRUE(bytes && bytes->size() == 8);
  float f[2];
  std::memcpy(f, bytes->data(), 8);
  EXPECT_EQ(f[0], 1.0f);
  EXPECT_EQ(f[1], -0.5f);
  EXPECT_EQ(d["usage"]["prompt_tokens"].GetInt(), 2);
  // Titan takes one input per call: several are refused, not split.
  auto two = Decode(R"({"model":"x","input":["a","b"]})");
  auto refused = BuildEmbeddingsCall(two, titan);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().http_status, 400);

  auto cohere = Target("bedrock", "cohere.embed-english-v3");
  call = BuildEmbeddingsCall(two, cohere);
  ASSERT_TRUE(call.ok());
  body = Parse(call.value().body);
  ASSERT_EQ(body["texts"].Size(), 2u);
  EXPECT_STREQ(body["input_type"].GetString(), "search_document");
  EXPECT_STREQ(body["embedding_types"][0].GetString(), "float");
  parsed = ParseEmbeddingsAnswer(
      cohere, two,
      R"({"id":"x","embeddings":{"float":[[0.25],[0.75]]},"texts":["a","b"],"response_type":"embeddings_by_type"})");
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  d = Parse(parsed.value().body);
  EXPECT_EQ(d["data"][1]["embedding"][0].GetDouble(), 0.75);
  EXPECT_EQ(parsed.value().prompt_tokens, -1) << "Cohere's body says nothing";
  // Bedrock's X-Amzn-Bedrock-Input-Token-Count is the count, when the body has none.
  parsed = ParseEmbeddingsAnswer(cohere, two, R"({"embeddings":[[0.25],[0.75]]})", 7);
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed.value().prompt_tokens, 7);
  EXPECT_EQ(Parse(parsed.value().body)["usage"]["prompt_tokens"].GetInt(), 7);
  EXPECT_FALSE(
      BuildEmbeddingsCall(Decode(R"({"model":"x","input":"a","dimensions":8})"), cohere).ok());
}

TEST(EmbeddingsTest, WhatAProviderCannotExpressIsRefusedBeforeAnyCall) {
  auto text = Decode(R"({"model":"x","input":"hi"})");
  auto tokens = Decode(R"({"model":"x","input":[1,2]})");
  auto anthropic = BuildEmbeddingsCall(text, Target("anthropic", "claude"));
  ASSERT_FALSE(anthropic.ok());
  EXPECT_EQ(anthropic.error().http_status, 400);
  EXPECT_TRUE(anthropic.error().retryable) << "another target of the upstream may embed";
  EXPECT_FALSE(BuildEmbeddingsCall(text, Target("bedrock", "anthropic.claude-v2")).ok());
  EXPECT_FALSE(BuildEmbeddingsCall(tokens, Target("gemini", "text-embedding-004")).ok());
  EXPECT_TRUE(BuildEmbeddingsCall(tokens, Target("openai", "text-embedding-3-small")).ok());
  // A 2xx that is not an embeddings answer is the provider's protocol error.
  auto bad = ParseEmbeddingsAnswer(Target("gemini", "m"), text, R"({"nothing":1})");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().http_status, 502);
}

}  // namespace
}  // namespace tg::adapter::translate
