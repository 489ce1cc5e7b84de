#pragma once

#include <memory>
#include <string_view>

#include "tg/adapter/translate/provider_codec.h"

namespace tg::adapter::translate {

// Azure OpenAI: the Chat Completions body on a deployment endpoint,
//   {azure_endpoint}/openai/deployments/{model}/chat/completions?api-version=V
// where V is credentials.azure_version, else provider_options.api_version,
// else kDefaultApiVersion. A target `path` replaces the path (the v1 API,
// `/openai/v1/chat/completions`, takes no api-version). Auth: `api-key`, or
// an Entra bearer token when the target uses managed identity.
class AzureCodec : public ProviderCodec {
 public:
  // The GA data-plane version current when this was written.
  static constexpr std::string_view kDefaultApiVersion = "2024-10-21";

  std::string_view name() const override { return "azure"; }
  Result<HttpRequestSpec> BuildRequest(const ChatRequest& request,
                                       const TargetInfo& target) const override;
  Result<ChatResponse> ParseResponse(int status, std::string_view body,
                                     const ResponseContext& ctx) const override;
  std::unique_ptr<ProviderStreamDecoder> NewStreamDecoder(
      const ResponseContext& ctx) const override;
};

}  // namespace tg::adapter::translate
