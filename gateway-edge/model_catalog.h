#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tg/edge/http_server.h"
#include "tg/v1/resources.pb.h"

namespace tg::edge {

// GET /v1/models and GET /v1/models/{id}, answered by the edge from the
// config snapshot (no provider call): the models an upstream can route,
// which is what a client may put in `model`. Pure functions.

// The models of `upstream`'s provider targets: each target's `models`, then
// its `default_model`, in target order, each id once (the first target that
// names it is its owner). A target that lists none and has no default takes
// any model and adds nothing; plain-host targets (no provider) add nothing.
struct CatalogModel {
  std::string id;
  std::string owned_by;  // the provider: openai, anthropic, gemini, bedrock, azure
};
std::vector<CatalogModel> ModelsOf(const tg::v1::Upstream& upstream);

// Whether `upstream` has a provider target at all (else its models path is
// proxied to the hosts like any other path).
bool HasProviderTargets(const tg::v1::Upstream& upstream);

// A models request: the path ends in "/models" (a list) or "/models/<id>"
// (one model; the id percent-decoded, and may itself hold '/' or ':'; bytes
// that do not decode to UTF-8 become U+FFFD).
struct ModelsRequest {
  std::optional<std::string> id;  // nullopt: the list
};
std::optional<ModelsRequest> ParseModelsPath(std::string_view path);

// The answer in the client's dialect: Anthropic's when `anthropic` (the
// request carried an anthropic-version header, as Anthropic's SDKs send),
// else OpenAI's. `created_unix` stamps each model (the upstream's creation
// time). An unknown id is 404 with code model_not_found.
HttpResponse ModelsAnswer(const std::vector<CatalogModel>& models, const ModelsRequest& request,
                          bool anthropic, int64_t created_unix);

}  // namespace tg::edge
