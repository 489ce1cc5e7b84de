#include <gtest/gtest.h>

#include "tg/edge/admin_route.h"

namespace tg::edge {
namespace {

using R = AdminRoute::Resource;

AdminRoute Route(R resource, bool collection, std::string gateway_id, std::string id) {
  AdminRoute r;
  r.resource = resource;
  r.collection = collection;
  r.gateway_id = std::move(gateway_id);
  r.id = std::move(id);
  return r;
}

TEST(EdgeAdminRoute, Gateways) {
  EXPECT_EQ(MatchAdminRoute("/api/v1/gateways"), Route(R::kGateway, true, "", ""));
  EXPECT_EQ(MatchAdminRoute("/api/v1/gateways/"), Route(R::kGateway, true, "", ""));
  EXPECT_EQ(MatchAdminRoute("/api/v1/gateways/g-1"), Route(R::kGateway, false, "", "g-1"));
  EXPECT_EQ(MatchAdminRoute("/api/v1/gateways/g-1/"), Route(R::kGateway, false, "", "g-1"));
}

TEST(EdgeAdminRoute, Children) {
  EXPECT_EQ(MatchAdminRoute("/api/v1/gateways/g/upstreams"), Route(R::kUpstream, true, "g", ""));
  EXPECT_EQ(MatchAdminRoute("/api/v1/gateways/g/upstreams/u/"),
            Route(R::kUpstream, false, "g", "u"));
  EXPECT_EQ(MatchAdminRoute("/api/v1/gateways/g/services/"), Route(R::kService, true, "g", ""));
  EXPECT_EQ(MatchAdminRoute("/api/v1/gateways/g/services/s"), Route(R::kService, false, "g", "s"));
  EXPECT_EQ(MatchAdminRoute("/api/v1/gateways/g/rules"), Route(R::kRule, true, "g", ""));
  EXPECT_EQ(MatchAdminRoute("/api/v1/gateways/g/rules/r"), Route(R::kRule, false, "g", "r"));
  EXPECT_EQ(MatchAdminRoute("/api/v1/gateways/g/keys"), Route(R::kKey, true, "g", ""));
  EXPECT_EQ(MatchAdminRoute("/api/v1/gateways/g/keys/k"), Route(R::kKey, false, "g", "k"));
}

TEST(EdgeAdminRoute, Health) {
  EXPECT_EQ(MatchAdminRoute("/healthz"), Route(R::kHealth, false, "", ""));
  EXPECT_EQ(MatchAdminRoute("/healthz/"), Route(R::kHealth, false, "", ""));
}

TEST(EdgeAdminRoute, UpstreamHealth) {
  auto r = MatchAdminRoute("/api/v1/gateways/g/upstreams/u/health");
  EXPECT_EQ(r, Route(R::kUpstreamHealth, false, "g", "u"));
  ASSERT_TRUE(r);
  EXPECT_EQ(AllowedMethods(*r), "GET");
  EXPECT_FALSE(MethodAllowed(*r, "POST"));
  for (const char* path :
       {"/api/v1/gateways/g/services/s/health", "/api/v1/gateways/g/upstreams/u/healthz",
        "/api/v1/gateways/g/upstreams/u/health/x"}) {
    EXPECT_FALSE(MatchAdminRoute(path).has_value()) << path;
  }
}

TEST(EdgeAdminRoute, PercentDecodedIds) {
  EXPECT_EQ(MatchAdminRoute("/api/v1/gateways/a%20b"), Route(R::kGateway, false, "", "a b"));
  EXPECT_EQ(MatchAdminRoute("/api/v1/gateways/%67/upstreams/%75"),
            Route(R::kUpstream, false, "g", "u"));
}

TEST(EdgeAdminRoute, UnknownPaths) {
  for (const char* path :
       {"/", "", "/api", "/api/v1", "/api/v1/", "/api/v1/gateway", "/api/v2/gateways",
        "/api/v1/gateways//upstreams", "/api/v1/gateways/g//", "/api/v1/gateways/g/foo",
        "/api/v1/gateways/g/foo/x", "/api/v1/gateways/g/upstreams/u/extra",
        "/api/v1/gateways/g/upstreams/u//", "/api/v1/gateways/a%2Fb", "/api/v1/gateways/a%2",
        "/api/v1/gateways/a%zz", "/api/v1/gateways/a%00", "/healthzz", "/API/V1/gateways"}) {
    EXPECT_FALSE(MatchAdminRoute(path).has_value()) << path;
  }
}

TEST(EdgeAdminRoute, AllowedMethods) {
  auto collection = *MatchAdminRoute("/api/v1/gateways");
  auto gateway = *MatchAdminRoute("/api/v1/gateways/g");
  auto upstream = *MatchAdminRoute("/api/v1/gateways/g/upstreams/u");
  auto keys = *MatchAdminRoute("/api/v1/gateways/g/keys");
  auto key = *MatchAdminRoute("/api/v1/gateways/g/keys/k");
  auto health = *MatchAdminRoute("/healthz");

  EXPECT_EQ(AllowedMethods(collection), "GET, POST");
  EXPECT_EQ(AllowedMethods(gateway), "GET, PUT, DELETE");
  EXPECT_EQ(AllowedMethods(upstream), "GET, PUT, DELETE");
  EXPECT_EQ(AllowedMethods(keys), "GET, POST");
  EXPECT_EQ(AllowedMethods(key), "GET, DELETE");
  EXPECT_EQ(AllowedMethods(health), "GET");

  EXPECT_TRUE(MethodAllowed(collection, "POST"));
  EXPECT_FALSE(MethodAllowed(collection, "PUT"));
  EXPECT_TRUE(MethodAllowed(upstream, "DELETE"));
  EXPECT_FALSE(MethodAllowed(upstream, "POST"));
  EXPECT_FALSE(MethodAllowed(upstream, "PATCH"));
  EXPECT_FALSE(MethodAllowed(key, "PUT"));
  EXPECT_FALSE(MethodAllowed(upstream, "get"));  // methods are case-sensitive
  EXPECT_FALSE(MethodAllowed(upstream, "GE"));
  EXPECT_FALSE(MethodAllowed(health, "POST"));
}

TEST(EdgeAdminRoute, TokenRequiredUnderApi) {
  EXPECT_TRUE(RequiresAdminToken("/api/v1/gateways"));
  EXPECT_TRUE(RequiresAdminToken("/api/v9/anything"));
  EXPECT_FALSE(RequiresAdminToken("/healthz"));
  EXPECT_FALSE(RequiresAdminToken("/"));
}

}  // namespace
}  // namespace tg::edge
