#include "tg/adapter/translate/providers/azure_codec.h"

#include "tg/adapter/translate/providers/openai_codec.h"
#include "tg/adapter/translate/providers/provider_util.h"
#include "tg/adapter/translate/target_url.h"

namespace tg::adapter::translate {

namespace {

// stream_options arrived in 2024-08-01-preview (and is in every later
// version, dated strings compare in date order); older versions reject it
// as an unknown argument, so they stream without usage.
bool AcceptsStreamOptions(std::string_view api_version, bool v1_path) {
  return v1_path || api_version.empty() || api_version >= "2024-08-01";
}

}  // namespace

Result<HttpRequestSpec> AzureCodec::BuildRequest(const ChatRequest& request,
                                                 const TargetInfo& target) const {
  std::string endpoint = target.azure_endpoint;
  if (endpoint.empty() && target.host.empty()) {
    return InvalidRequest("azure target needs credentials.azure_endpoint (or a host)");
  }
  std::string version = target.azure_version;
  if (version.empty()) version = target.api_version;
  if (version.empty()) version = std::string(kDefaultApiVersion);
  std::string model = target.model.empty() ? request.model : target.model;
  std::string encoded = PathEncode(model);

  std::string path =
      ResolvePath("/openai/deployments/" + encoded + "/chat/completions", target, encoded);
  bool v1_path = path.find("/openai/v1/") != std::string::npos;
  CallShape shape{.base_url = endpoint, .path = std::move(path)};
  if (!v1_path) shape.query.emplace_back("api-version", version);
  shape.auth =
      target.azure_use_managed_identity ? AuthScheme::kAzureEntraToken : AuthScheme::kAzureApiKey;
  return AssembleCall(std::move(shape), target,
                      OpenAiCodec::ChatBody(request, target,
                                            AcceptsStreamOptions(v1_path ? "" : version, v1_path)));
}

Result<ChatResponse> AzureCodec::ParseResponse(int status, std::string_view body,
                                               const ResponseContext& ctx) const {
  return OpenAiCodec().ParseResponse(status, body, ctx);
}

std::unique_ptr<ProviderStreamDecoder> AzureCodec::NewStreamDecoder(const ResponseContext&) const {
  return std::make_unique<OpenAiChatStreamDecoder>();
}

}  // namespace tg::adapter::translate
