#include "tg/edge/model_catalog.h"

#include <google/protobuf/util/time_util.h>

#include <algorithm>

#include "tg/common/client_error.h"
#include "tg/common/json_util.h"
#include "tg/common/percent.h"
#include "tg/common/utf8.h"

namespace tg::edge {
namespace {

void AddModel(std::vector<CatalogModel>* out, const std::string& id, const std::string& owner) {
  if (id.empty()) return;
  for (const auto& m : *out) {
    if (m.id == id) return;
  }
  out->push_back(CatalogModel{id, owner});
}

void AppendOpenAiModel(std::string& out, const CatalogModel& m, int64_t created) {
  out += R"({"id":)";
  json::AppendQuoted(out, m.id);
  out += R"(,"object":"model","created":)";
  out += std::to_string(created);
  out += R"(,"owned_by":)";
  json::AppendQuoted(out, m.owned_by);
  out += "}";
}

void AppendAnthropicModel(std::string& out, const CatalogModel& m, const std::string& created_at) {
  out += R"({"type":"model","id":)";
  json::AppendQuoted(out, m.id);
  out += R"(,"display_name":)";
  json::AppendQuoted(out, m.id);
  out += R"(,"created_at":)";
  json::AppendQuoted(out, created_at);
  out += "}";
}

}  // namespace

bool HasProviderTargets(const tg::v1::Upstream& upstream) {
  return std::any_of(upstream.targets().begin(), upstream.targets().end(),
                     [](const tg::v1::Target& t) { return !t.provider().empty(); });
}

std::vector<CatalogModel> ModelsOf(const tg::v1::Upstream& upstream) {
  std::vector<CatalogModel> out;
  for (const auto& t : upstream.targets()) {
    if (t.provider().empty()) continue;
    for (const auto& m : t.models()) AddModel(&out, m, t.provider());
    AddModel(&out, t.default_model(), t.provider());
  }
  return out;
}

std::optional<ModelsRequest> ParseModelsPath(std::string_view path) {
  while (path.size() > 1 && path.back() == '/') path.remove_suffix(1);
  constexpr std::string_view kList = "/models";
  if (path.size() >= kList.size() && path.substr(path.size() - kList.size()) == kList) {
    return ModelsRequest{};
  }
  // The first "/models/" segment: ids such as "models/gemini-pro" or
  // "anthropic.claude-3:0" keep what follows whole.
  for (size_t at = path.find("/models/"); at != std::string_view::npos;
       at = path.find("/models/", at + 1)) {
    std::string id = percent::Decode(path.substr(at + 8));
    if (id.empty()) continue;
    // The path was valid UTF-8; what its escapes decode to may not be
    // (%FF). The id is echoed in the 404's message: keep that valid JSON text.
    if (!utf8::IsValid(id)) id = utf8::Sanitize(id);
    return ModelsRequest{std::move(id)};
  }
  return std::nullopt;
}

HttpResponse ModelsAnswer(const std::vector<CatalogModel>& models, const ModelsRequest& request,
                          bool anthropic, int64_t created_unix) {
  const std::string created_at = google::protobuf::util::TimeUtil::ToString(
      google::protobuf::util::TimeUtil::SecondsToTimestamp(created_unix));
  if (request.id) {
    auto it = std::find_if(models.begin(), models.end(),
                           [&](const CatalogModel& m) { return m.id == *request.id; });
    if (it == models.end()) {
      const std::string message = "The model '" + *request.id + "' does not exist";
      return JsonResponse(404, anthropic
                                   ? client_error::AnthropicBody(404, message)
                                   : client_error::OpenAiBody(404, message, "model_not_found"));
    }
    std::string body;
    if (anthropic) {
      AppendAnthropicModel(body, *it, created_at);
    } else {
      AppendOpenAiModel(body, *it, created_unix);
    }
    return JsonResponse(200, std::move(body));
  }
  std::string body = anthropic ? R"({"data":[)" : R"({"object":"list","data":[)";
  for (size_t i = 0; i < models.size(); ++i) {
    if (i > 0) body += ",";
    if (anthropic) {
      AppendAnthropicModel(body, models[i], created_at);
    } else {
      AppendOpenAiModel(body, models[i], created_unix);
    }
  }
  body += "]";
  if (anthropic) {
    body += R"(,"has_more":false,"first_id":)";
    if (models.empty()) {
      body += "null";
    } else {
      json::AppendQuoted(body, models.front().id);
    }
    body += R"(,"last_id":)";
    if (models.empty()) {
      body += "null";
    } else {
      json::AppendQuoted(body, models.back().id);
    }
  }
  body += "}";
  return JsonResponse(200, std::move(body));
}

}  // namespace tg::edge
