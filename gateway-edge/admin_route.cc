#include "tg/edge/admin_route.h"

#include <vector>

#include "tg/common/percent.h"

namespace tg::edge {
namespace {

// Stricter than percent::Decode: nullopt on a malformed escape or an escaped '/' or NUL (which
// would let an id smuggle a path separator or terminator into the services behind us).
std::optional<std::string> PercentDecode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out += s[i];
      continue;
    }
    if (i + 2 >= s.size()) return std::nullopt;
    int hi = percent::HexValue(s[i + 1]);
    int lo = percent::HexValue(s[i + 2]);
    if (hi < 0 || lo < 0) return std::nullopt;
    char c = static_cast<char>(hi * 16 + lo);
    if (c == '/' || c == '\0') return std::nullopt;
    out += c;
    i += 2;
  }
  return out;
}

std::optional<AdminRoute::Resource> ChildResource(std::string_view name) {
  if (name == "upstreams") return AdminRoute::Resource::kUpstream;
  if (name == "services") return AdminRoute::Resource::kService;
  if (name == "rules") return AdminRoute::Resource::kRule;
  if (name == "keys") return AdminRoute::Resource::kKey;
  return std::nullopt;
}

}  // namespace

std::optional<AdminRoute> MatchAdminRoute(std::string_view path) {
  if (path.size() > 1 && path.back() == '/') path.remove_suffix(1);
  if (path == "/healthz") return AdminRoute{};

  constexpr std::string_view kPrefix = "/api/v1/";
  if (path.substr(0, kPrefix.size()) != kPrefix) return std::nullopt;
  path.remove_prefix(kPrefix.size());

  std::vector<std::string> segs;
  while (true) {
    auto slash = path.find('/');
    auto raw = path.substr(0, slash);
    if (raw.empty()) return std::nullopt;
    auto seg = PercentDecode(raw);
    if (!seg || seg->empty()) return std::nullopt;
    segs.push_back(std::move(*seg));
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
  }
  if (segs.size() == 5 && segs[0] == "gateways" && segs[2] == "upstreams" && segs[4] == "health") {
    AdminRoute r;
    r.resource = AdminRoute::Resource::kUpstreamHealth;
    r.gateway_id = segs[1];
    r.id = segs[3];
    return r;
  }
  if (segs.size() == 3 && segs[0] == "gateways" && segs[2] == "spend") {
    AdminRoute r;
    r.resource = AdminRoute::Resource::kSpend;
    r.gateway_id = segs[1];
    return r;
  }
  if (segs[0] != "gateways" || segs.size() > 4) return std::nullopt;

  AdminRoute r;
  switch (segs.size()) {
    case 1:
      r.resource = AdminRoute::Resource::kGateway;
      r.collection = true;
      return r;
    case 2:
      r.resource = AdminRoute::Resource::kGateway;
      r.id = segs[1];
      return r;
    default: {
      auto child = ChildResource(segs[2]);
      if (!child) return std::nullopt;
      r.resource = *child;
      r.gateway_id = segs[1];
      r.collection = segs.size() == 3;
      if (!r.collection) r.id = segs[3];
      return r;
    }
  }
}

std::string_view AllowedMethods(const AdminRoute& route) {
  if (route.resource == AdminRoute::Resource::kHealth ||
      route.resource == AdminRoute::Resource::kUpstreamHealth ||
      route.resource == AdminRoute::Resource::kSpend) {
    return "GET";
  }
  if (route.collection) return "GET, POST";
  if (route.resource == AdminRoute::Resource::kKey) return "GET, DELETE";  // keys are immutable
  return "GET, PUT, DELETE";
}

bool MethodAllowed(const AdminRoute& route, std::string_view method) {
  std::string_view allowed = AllowedMethods(route);
  while (!allowed.empty()) {
    auto comma = allowed.find(", ");
    if (allowed.substr(0, comma) == method) return true;
    if (comma == std::string_view::npos) break;
    allowed.remove_prefix(comma + 2);
  }
  return false;
}

bool RequiresAdminToken(std::string_view path) { return path.substr(0, 5) == "/api/"; }

}  // namespace tg::edge
