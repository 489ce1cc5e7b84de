#pragma once

// Embeddings: OpenAI's POST /v1/embeddings, the one client format, to and
// from each provider's embedding API. Pure, like the chat codecs.
//
//   openai   POST {base}/v1/embeddings                     the body as sent, `model` set
//   azure    POST {endpoint}/openai/deployments/{model}/embeddings?api-version=V
//   gemini   POST {base}/v1beta/models/{model}:embedContent        (one input)
//            POST {base}/v1beta/models/{model}:batchEmbedContents  (several)
//   bedrock  POST https://bedrock-runtime.{region}.amazonaws.com/model/{id}/invoke (SigV4):
//            amazon.titan-embed-text-*  {"inputText", "dimensions"}  one input per call
//            cohere.embed-*             {"texts", "input_type": "search_document",
//                                        "embedding_types": ["float"]}
//   anthropic has no embedding API.
//
// Answers become OpenAI's {"object":"list","data":[{"object":"embedding",
// "index","embedding"}],"model","usage":{"prompt_tokens","total_tokens"}},
// each embedding a float array, or with encoding_format "base64" the base64
// of its float32 little-endian bytes (what OpenAI's SDKs ask for by
// default). OpenAI and Azure answers pass through as the provider wrote them.
// What a target cannot express is refused (400, retryable: another target of
// the upstream may) before any call: no embeddings API (anthropic), token-id
// input off OpenAI/Azure, several inputs on Titan, `dimensions` on Cohere v3.
// A target's `path` is not applied: it is the chat path.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tg/adapter/translate/json.h"
#include "tg/adapter/translate/provider_codec.h"
#include "tg/adapter/translate/result.h"

namespace tg::adapter::translate {

struct EmbeddingsRequest {
  json::Document doc;              // the client's body (OpenAI, Azure: sent with `model` set)
  std::string model;               // as the client named it
  std::vector<std::string> texts;  // the inputs, when strings
  bool token_input = false;        // the inputs were token ids (OpenAI and Azure only)
  std::optional<int64_t> dimensions;
  bool base64 = false;  // encoding_format "base64"
};

// Checks and reads the client's body: `input` a non-empty string, an array
// of 1..2,048 non-empty strings, or token ids (an array of integers, or of
// arrays of integers); `dimensions` a positive integer; `encoding_format`
// float or base64. Errors are 400 (invalid_request_error).
Result<EmbeddingsRequest> DecodeEmbeddingsRequest(std::string_view body);

// The provider call for `target` (target.model: the effective model).
Result<HttpRequestSpec> BuildEmbeddingsCall(const EmbeddingsRequest& request,
                                            const TargetInfo& target);

struct EmbeddingsAnswer {
  std::string body;            // OpenAI's embeddings answer
  int64_t prompt_tokens = -1;  // -1: the provider did not say (Gemini)
};

// The provider's 2xx answer → OpenAI's answer (a non-2xx is the chat codec's
// ParseResponse's to read: the error shapes are the same). A body that is not
// what the provider sends is a protocol error (502). `header_tokens`: a
// prompt token count the provider gave outside the body (Bedrock's
// X-Amzn-Bedrock-Input-Token-Count, which is how Cohere's is reported), used
// when the body has none; -1 when there is none.
Result<EmbeddingsAnswer> ParseEmbeddingsAnswer(const TargetInfo& target,
                                               const EmbeddingsRequest& request,
                                               std::string_view body, int64_t header_tokens = -1);

}  // namespace tg::adapter::translate
