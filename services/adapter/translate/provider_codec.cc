#include "tg/adapter/translate/provider_codec.h"

#include <strings.h>

#include "tg/adapter/translate/providers/provider_util.h"
#include "tg/adapter/translate/providers/providers.h"

namespace tg::adapter::translate {

namespace {

bool Is(std::string_view a, std::string_view b) {
  return a.size() == b.size() && strncasecmp(json::Data(a), json::Data(b), a.size()) == 0;
}

}  // namespace

std::string_view AuthSchemeName(AuthScheme scheme) {
  switch (scheme) {
    case AuthScheme::kNone:
      return "none";
    case AuthScheme::kBearer:
      return "bearer";
    case AuthScheme::kAnthropicApiKey:
      return "x-api-key";
    case AuthScheme::kGoogleApiKey:
      return "x-goog-api-key";
    case AuthScheme::kAzureApiKey:
      return "api-key";
    case AuthScheme::kAzureEntraToken:
      return "azure-entra-token";
    case AuthScheme::kAwsSigV4:
      return "aws-sigv4";
  }
  return "none";
}

const ProviderCodec* FindProviderCodec(std::string_view provider, std::string_view api) {
  if (Is(provider, "openai")) {
    return Is(api, "responses") ? &OpenAiResponsesProvider() : &OpenAiChatProvider();
  }
  if (Is(provider, "anthropic")) return &AnthropicProvider();
  if (Is(provider, "azure")) return &AzureProvider();
  if (Is(provider, "gemini") || Is(provider, "google")) return &GeminiProvider();
  if (Is(provider, "bedrock")) return &BedrockProvider();
  return nullptr;
}

const ProviderCodec* ProviderCodecFor(const TargetInfo& target) {
  return FindProviderCodec(target.provider, target.api);
}

}  // namespace tg::adapter::translate
