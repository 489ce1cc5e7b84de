// Embeddings through tg-adapter (translate/embeddings.h): a client's body
// (DecodeEmbeddingsRequest, then BuildEmbeddingsCall for the chosen target)
// or a provider's 2xx answer to a fixed request (ParseEmbeddingsAnswer).
// Whatever the bytes, a call body built for a provider and an answer written
// for the client must be a JSON object: a trap otherwise.
//
// Input: target:u8 (openai, azure, gemini, titan, cohere, anthropic) |
//        mode:u8 (even: client body; odd: provider answer, bit 1 = base64,
//        bit 2 = two inputs) | body.

#include <rapidjson/document.h>

#include <array>
#include <string>

#include "fuzz_input.h"
#include "tg/adapter/translate/embeddings.h"

namespace translate = tg::adapter::translate;

namespace {

void ExpectJsonObject(std::string_view text) {
  rapidjson::Document d;
  d.Parse(text.data(), text.size());
  if (d.HasParseError() || !d.IsObject()) __builtin_trap();
}

translate::TargetInfo TargetAt(uint8_t index) {
  static const std::array<std::pair<const char*, const char*>, 6> kTargets = {{
      {"openai", "text-embedding-3-small"},
      {"azure", "embed-deploy"},
      {"gemini", "text-embedding-004"},
      {"bedrock", "amazon.titan-embed-text-v2:0"},
      {"bedrock", "cohere.embed-english-v3"},
      {"anthropic", "claude-3-5-sonnet-20240620"},
  }};
  const auto& [provider, model] = kTargets[index % kTargets.size()];
  translate::TargetInfo t;
  t.provider = provider;
  t.model = model;
  t.azure_endpoint = "https://acme.openai.azure.com";
  t.aws_region = "us-east-1";
  return t;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  tg::fuzz::FuzzInput in(data, size);
  const translate::TargetInfo target = TargetAt(in.Byte());
  const uint8_t mode = in.Byte();
  const std::string_view body = in.Rest();
  if (mode % 2 == 0) {
    auto request = translate::DecodeEmbeddingsRequest(body);
    if (!request.ok()) return 0;
    auto call = translate::BuildEmbeddingsCall(request.value(), target);
    if (call.ok()) ExpectJsonObject(call.value().body);
    return 0;
  }
  const bool base64 = (mode & 2) != 0;
  const bool two = (mode & 4) != 0;
  std::string client = R"({"model":"m","input":)";
  client += two ? R"(["a","b"])" : R"("a")";
  if (base64) client += R"(,"encoding_format":"base64")";
  client += "}";
  auto request = translate::DecodeEmbeddingsRequest(client);
  if (!request.ok()) __builtin_trap();  // a fixed, valid body
  auto answer = translate::ParseEmbeddingsAnswer(target, request.value(), body);
  if (answer.ok()) ExpectJsonObject(answer.value().body);
  return 0;
}
