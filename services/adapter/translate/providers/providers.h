#pragma once

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

}  // namespace tg::adapter::translate
