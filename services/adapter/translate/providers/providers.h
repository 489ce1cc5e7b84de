#pragma once

#include <string>
#include <string_view>

#include "tg/adapter/translate/providers/provider_util.h"

// The provider codecs, one per provider API. Each lives in its own file
// (providers/<provider>_codec.cc), which says how it maps the canonical form
// to the provider's API and back; FindProviderCodec (provider_codec.h) picks
// among them. Stateless: one instance each, shared by every call.

#include "tg/adapter/translate/provider_codec.h"

namespace tg::adapter::translate {

const ProviderCodec& OpenAiChatProvider();       // openai_codec.cc (and compatible servers)
const ProviderCodec& OpenAiResponsesProvider();  // responses_codec.cc
const ProviderCodec& AnthropicProvider();        // anthropic_codec.cc
const ProviderCodec& GeminiProvider();           // gemini_codec.cc
const ProviderCodec& BedrockProvider();          // bedrock_codec.cc
const ProviderCodec& AzureProvider();            // azure_codec.cc

// Call shapes the embeddings (embeddings.cc) share with the chat codecs.
// Gemini: the default base URL, and the path of a model ("models/x" and
// "tunedModels/x" taken as Google names them).
extern const std::string_view kGeminiBaseUrl;
std::string GeminiModelPath(std::string_view model);
// Bedrock: the regional runtime endpoint with SigV4 (path left empty); a
// region that is not an AWS region name is a configuration error.
Result<CallShape> BedrockCallShape(const TargetInfo& target);
// Azure: the endpoint, `path` and its api-version (credentials.azure_version,
// else provider_options.api_version, else the default; none on the v1 API's
// /openai/v1/ paths), api-key or Entra auth.
Result<CallShape> AzureCallShape(const TargetInfo& target, std::string path);
std::string AzureApiVersion(const TargetInfo& target);

}  // namespace tg::adapter::translate
