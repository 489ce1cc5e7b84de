#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace tg::edge {

// Where an admin request goes, decided from its path alone (the method is
// checked against AllowedMethods afterwards, so that a known path with a wrong
// method is a 405, not a 404).
struct AdminRoute {
  // kUpstreamHealth: GET …/upstreams/{id}/health, the balancer's view of
  // each target (id = the upstream's).
  // kSpend: GET …/gateways/{id}/spend, the gateway's and its keys' spend
  // this period (gateway_id = the gateway's).
  enum class Resource {
    kHealth,
    kGateway,
    kUpstream,
    kService,
    kRule,
    kKey,
    kUpstreamHealth,
    kSpend
  };

  Resource resource = Resource::kHealth;
  bool collection = false;  // .../upstreams rather than .../upstreams/{id}
  std::string gateway_id;   // children: from the URL; gateways: empty
  std::string id;           // entity routes: the entity's id (for gateways, the gateway's)

  bool operator==(const AdminRoute&) const = default;
};

// Matches /healthz and the /api/v1 routes. One trailing slash is accepted;
// empty segments are not. Segments are percent-decoded. nullopt: 404.
std::optional<AdminRoute> MatchAdminRoute(std::string_view path);

// The value of the Allow header for a route, e.g. "GET, POST".
std::string_view AllowedMethods(const AdminRoute& route);

bool MethodAllowed(const AdminRoute& route, std::string_view method);

// Whether the path needs an admin token (everything under /api/).
bool RequiresAdminToken(std::string_view path);

}  // namespace tg::edge
