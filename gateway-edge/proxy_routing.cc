#include "tg/edge/proxy_routing.h"

#include <algorithm>
#include <cctype>

namespace tg::edge {
namespace {

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// "/v1" covers "/v1", "/v1/" and "/v1/…"; "/" covers everything.
bool CoversPath(std::string_view prefix, std::string_view path) {
  while (prefix.size() > 1 && prefix.back() == '/') prefix.remove_suffix(1);
  if (prefix == "/") return true;
  if (path.size() < prefix.size() || path.substr(0, prefix.size()) != prefix) return false;
  return path.size() == prefix.size() || path[prefix.size()] == '/';
}

}  // namespace

std::string_view ExtractApiKey(const HttpRequest& request) {
  if (auto k = request.Header("X-TG-API-Key"); !k.empty()) return k;
  if (auto k = request.Header("X-Api-Key"); !k.empty()) return k;
  auto auth = request.Header("Authorization");
  constexpr std::string_view kBearer = "Bearer ";
  if (auth.size() > kBearer.size()) {
    bool bearer = std::equal(kBearer.begin(), kBearer.end(), auth.begin(), [](char a, char b) {
      return std::tolower(static_cast<unsigned char>(a)) ==
             std::tolower(static_cast<unsigned char>(b));
    });
    if (bearer) return auth.substr(kBearer.size());
  }
  return {};
}

std::string SubdomainOf(std::string_view host, std::string_view base_domain) {
  if (base_domain.empty()) return "";
  if (auto colon = host.rfind(':');
      colon != std::string_view::npos && host.find(']') == host.npos) {
    host = host.substr(0, colon);
  }
  std::string h(host);
  std::transform(h.begin(), h.end(), h.begin(), [](unsigned char c) { return std::tolower(c); });
  std::string base(base_domain);
  std::transform(base.begin(), base.end(), base.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  if (h.size() <= base.size() + 1 || !EndsWith(h, base) || h[h.size() - base.size() - 1] != '.') {
    return "";
  }
  std::string sub = h.substr(0, h.size() - base.size() - 1);
  return sub.find('.') == std::string::npos ? sub : "";
}

RouteMatch MatchRule(const ConfigSnapshot& snapshot, std::string_view gateway_id,
                     std::string_view method, std::string_view path) {
  RouteMatch m;
  for (const tg::v1::Rule* rule : snapshot.RulesOf(gateway_id)) {
    if (rule->has_active() && !rule->active()) continue;
    if (!CoversPath(rule->path(), path)) continue;
    bool method_ok = method.empty() || std::find(rule->methods().begin(), rule->methods().end(),
                                                 method) != rule->methods().end();
    if (!method_ok) {
      for (const auto& allowed : rule->methods()) {
        if (m.allow.find(allowed) == std::string::npos) {
          if (!m.allow.empty()) m.allow += ", ";
          m.allow += allowed;
        }
      }
      m.result = RouteMatch::Result::kWrongMethod;
      continue;
    }
    const tg::v1::Service* service = snapshot.FindService(rule->service_id());
    if (service == nullptr) continue;  // deleted between writes: not routable
    m.result = RouteMatch::Result::kMatched;
    m.rule = rule;
    m.service = service;
    m.allow.clear();
    return m;
  }
  return m;
}

std::string ForwardPath(const tg::v1::Rule& rule, std::string_view path) {
  if (!rule.strip_path()) return std::string(path);
  std::string_view prefix = rule.path();
  while (prefix.size() > 1 && prefix.back() == '/') prefix.remove_suffix(1);
  if (prefix == "/") return std::string(path);
  std::string rest(path.substr(std::min(prefix.size(), path.size())));
  if (rest.empty() || rest.front() != '/') rest.insert(rest.begin(), '/');
  return rest;
}

tg::v1::ClientFormat ClientFormatOf(std::string_view path) {
  while (path.size() > 1 && path.back() == '/') path.remove_suffix(1);
  if (EndsWith(path, "/chat/completions")) return tg::v1::CLIENT_FORMAT_OPENAI_CHAT;
  if (EndsWith(path, "/messages")) return tg::v1::CLIENT_FORMAT_ANTHROPIC_MESSAGES;
  if (EndsWith(path, "/responses")) return tg::v1::CLIENT_FORMAT_OPENAI_RESPONSES;
  if (EndsWith(path, "/embeddings")) return tg::v1::CLIENT_FORMAT_OPENAI_EMBEDDINGS;
  return tg::v1::CLIENT_FORMAT_UNSPECIFIED;
}

}  // namespace tg::edge
