#include <memory>
#include <string_view>

#include "tg/adapter/translate/provider_codec.h"
#include "tg/adapter/translate/providers/openai_codec.h"
#include "tg/adapter/translate/providers/provider_util.h"
#include "tg/adapter/translate/providers/providers.h"
#include "tg/adapter/translate/target_url.h"

namespace tg::adapter::translate {

namespace {

// Azure OpenAI: the Chat Completions body on a deployment endpoint,
//   {azure_endpoint}/openai/deployments/{model}/chat/completions?api-version=V
// where V is credentials.azure_version, else provider_options.api_version,
// else kDefaultApiVersion. A target `path` replaces the path (the v1 API,
// `/openai/v1/chat/completions`, takes no api-version). Auth: `api-key`, or
// an Entra bearer token when the target uses managed identity.
// The GA data-plane version current when this was written.
constexpr std::string_view kDefaultApiVersion = "2024-10-21";

// stream_options arrived in 2024-08-01-preview (and is in every later
// version, dated strings compare in date order); older versions reject it
// as an unknown argument, so they stream without usage.
bool AcceptsStreamOptions(std::string_view api_version, bool v1_path) {
  return v1_path || api_version.empty() || api_version >= "2024-08-01";
}

}  // namespace

Result<CallShape> AzureCallShape(const TargetInfo& target, std::string path) {
  if (target.azure_endpoint.empty() && target.host.empty()) {
    return InvalidRequest("azure target needs credentials.azure_endpoint (or a host)");
  }
  const bool v1_path = path.find("/openai/v1/") != std::string::npos;
  CallShape shape{.base_url = target.azure_endpoint, .path = std::move(path)};
  if (!v1_path) shape.query.emplace_back("api-version", AzureApiVersion(target));
  shape.auth =
      target.azure_use_managed_identity ? AuthScheme::kAzureEntraToken : AuthScheme::kAzureApiKey;
  return shape;
}

std::string AzureApiVersion(const TargetInfo& target) {
  if (!target.azure_version.empty()) return target.azure_version;
  if (!target.api_version.empty()) return target.api_version;
  return std::string(kDefaultApiVersion);
}

static Result<HttpRequestSpec> BuildAzureRequest(const ChatRequest& request,
                                                 const TargetInfo& target) {
  std::string model = target.model.empty() ? request.model : target.model;
  std::string encoded = PathEncode(model);
  auto shape = AzureCallShape(
      target, ResolvePath("/openai/deployments/" + encoded + "/chat/completions", target, encoded));
  if (!shape.ok()) return shape.error();
  const bool v1_path = shape.value().query.empty();
  const bool stream_options = AcceptsStreamOptions(v1_path ? "" : AzureApiVersion(target), v1_path);
  return AssembleCall(std::move(shape.value()), target,
                      OpenAiChatBody(request, target, stream_options));
}

static Result<ChatResponse> ParseAzureAnswer(int status, std::string_view body,
                                             const ResponseContext& ctx) {
  return ParseOpenAiChatAnswer(status, body, ctx);
}

static std::unique_ptr<ProviderStreamDecoder> NewAzureStreamDecoder(const ResponseContext&) {
  return std::make_unique<OpenAiChatStreamDecoder>();
}

const ProviderCodec& AzureProvider() {
  static const ProviderCodec kCodec{"azure", &BuildAzureRequest, &ParseAzureAnswer,
                                    &NewAzureStreamDecoder};
  return kCodec;
}

}  // namespace tg::adapter::translate
