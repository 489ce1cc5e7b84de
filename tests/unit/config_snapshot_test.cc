#include "tg/common/config_snapshot.h"

#include <gtest/gtest.h>

namespace tg {
namespace {

tg::v1::Gateway Gw(const std::string& id, const std::string& subdomain = "") {
  tg::v1::Gateway g;
  g.set_id(id);
  g.set_name("gw " + id);
  g.set_subdomain(subdomain);
  return g;
}

tg::v1::Upstream Up(const std::string& id, const std::string& gid) {
  tg::v1::Upstream u;
  u.set_id(id);
  u.set_gateway_id(gid);
  u.set_name("up " + id);
  return u;
}

tg::v1::Service Svc(const std::string& id, const std::string& gid) {
  tg::v1::Service s;
  s.set_id(id);
  s.set_gateway_id(gid);
  return s;
}

tg::v1::Rule Rl(const std::string& id, const std::string& gid, const std::string& path) {
  tg::v1::Rule r;
  r.set_id(id);
  r.set_gateway_id(gid);
  r.set_path(path);
  return r;
}

tg::v1::ConfigChange Deleted(tg::v1::ResourceKind kind, const std::string& id,
                             const std::string& gid = "") {
  tg::v1::ConfigChange c;
  c.mutable_deleted()->set_kind(kind);
  c.mutable_deleted()->set_id(id);
  c.mutable_deleted()->set_gateway_id(gid);
  return c;
}

tg::v1::ConfigSnapshot TwoGateways() {
  tg::v1::ConfigSnapshot p;
  *p.add_gateways() = Gw("g1", "Acme");
  *p.add_gateways() = Gw("g2");
  *p.add_upstreams() = Up("u1", "g1");
  *p.add_upstreams() = Up("u2", "g2");
  *p.add_services() = Svc("s1", "g1");
  *p.add_services() = Svc("s2", "g2");
  *p.add_rules() = Rl("r1", "g1", "/v1");
  *p.add_rules() = Rl("r2", "g1", "/v1/chat");
  *p.add_rules() = Rl("r3", "g2", "/");
  return p;
}

TEST(ConfigSnapshot, EmptyHasNothing) {
  auto s = ConfigSnapshot::Empty();
  EXPECT_EQ(s->revision(), 0);
  EXPECT_EQ(s->FindGateway("g1"), nullptr);
  EXPECT_TRUE(s->RulesOf("g1").empty());
}

TEST(ConfigSnapshot, FromProtoIndexesEverything) {
  auto s = ConfigSnapshot::FromProto(TwoGateways(), 7);
  EXPECT_EQ(s->revision(), 7);
  ASSERT_NE(s->FindGateway("g1"), nullptr);
  EXPECT_EQ(s->FindGateway("g1")->name(), "gw g1");
  EXPECT_EQ(s->FindUpstream("u2")->gateway_id(), "g2");
  EXPECT_NE(s->FindService("s1"), nullptr);
  EXPECT_NE(s->FindRule("r3"), nullptr);
  EXPECT_EQ(s->FindUpstream("nope"), nullptr);
  EXPECT_EQ(s->gateways().size(), 2u);
}

TEST(ConfigSnapshot, SubdomainLookupIgnoresCase) {
  auto s = ConfigSnapshot::FromProto(TwoGateways(), 1);
  EXPECT_EQ(s->FindGatewayBySubdomain("acme"), s->FindGateway("g1"));
  EXPECT_EQ(s->FindGatewayBySubdomain("ACME"), s->FindGateway("g1"));
  EXPECT_EQ(s->FindGatewayBySubdomain(""), nullptr);  // g2 has none
  EXPECT_EQ(s->FindGatewayBySubdomain("other"), nullptr);
}

TEST(ConfigSnapshot, RulesOfLongestPathFirst) {
  auto s = ConfigSnapshot::FromProto(TwoGateways(), 1);
  const auto& rules = s->RulesOf("g1");
  ASSERT_EQ(rules.size(), 2u);
  EXPECT_EQ(rules[0]->id(), "r2");  // /v1/chat before /v1
  EXPECT_EQ(rules[1]->id(), "r1");
  EXPECT_EQ(s->RulesOf("g2").size(), 1u);
}

TEST(ConfigSnapshot, ChangesBuildNewSnapshotsAndLeaveOldOnesAlone) {
  auto s1 = ConfigSnapshot::FromProto(TwoGateways(), 1);
  tg::v1::ConfigChange c;
  *c.mutable_upstream() = Up("u3", "g1");
  auto s2 = s1->WithChange(c, 2);
  EXPECT_EQ(s2->revision(), 2);
  EXPECT_NE(s2->FindUpstream("u3"), nullptr);
  EXPECT_EQ(s1->FindUpstream("u3"), nullptr);  // immutable
  EXPECT_EQ(s1->revision(), 1);
  // Unchanged entities are shared, not copied.
  EXPECT_EQ(s2->FindUpstream("u1"), s1->FindUpstream("u1"));
}

TEST(ConfigSnapshot, UpdateReplacesAndReindexes) {
  auto s1 = ConfigSnapshot::FromProto(TwoGateways(), 1);
  tg::v1::ConfigChange c;
  *c.mutable_gateway() = Gw("g1", "new-sub");
  auto s2 = s1->WithChange(c, 2);
  EXPECT_EQ(s2->FindGatewayBySubdomain("acme"), nullptr);
  EXPECT_EQ(s2->FindGatewayBySubdomain("new-sub")->id(), "g1");

  tg::v1::ConfigChange r;
  *r.mutable_rule() = Rl("r1", "g1", "/v1/chat/completions");
  auto s3 = s2->WithChange(r, 3);
  EXPECT_EQ(s3->RulesOf("g1")[0]->id(), "r1");
  EXPECT_EQ(s3->FindRule("r1")->path(), "/v1/chat/completions");
}

TEST(ConfigSnapshot, DeletingAGatewayDropsItsChildren) {
  auto s1 = ConfigSnapshot::FromProto(TwoGateways(), 1);
  auto s2 = s1->WithChange(Deleted(tg::v1::RESOURCE_KIND_GATEWAY, "g1"), 2);
  EXPECT_EQ(s2->FindGateway("g1"), nullptr);
  EXPECT_EQ(s2->FindUpstream("u1"), nullptr);
  EXPECT_EQ(s2->FindService("s1"), nullptr);
  EXPECT_EQ(s2->FindRule("r1"), nullptr);
  EXPECT_EQ(s2->FindRule("r2"), nullptr);
  EXPECT_TRUE(s2->RulesOf("g1").empty());
  EXPECT_EQ(s2->FindGatewayBySubdomain("acme"), nullptr);
  // The other gateway keeps everything.
  EXPECT_NE(s2->FindGateway("g2"), nullptr);
  EXPECT_NE(s2->FindUpstream("u2"), nullptr);
  EXPECT_NE(s2->FindService("s2"), nullptr);
  EXPECT_EQ(s2->RulesOf("g2").size(), 1u);
}

TEST(ConfigSnapshot, DeletingChildren) {
  auto s = ConfigSnapshot::FromProto(TwoGateways(), 1);
  s = s->WithChange(Deleted(tg::v1::RESOURCE_KIND_UPSTREAM, "u1", "g1"), 2);
  s = s->WithChange(Deleted(tg::v1::RESOURCE_KIND_SERVICE, "s1", "g1"), 3);
  s = s->WithChange(Deleted(tg::v1::RESOURCE_KIND_RULE, "r2", "g1"), 4);
  EXPECT_EQ(s->FindUpstream("u1"), nullptr);
  EXPECT_EQ(s->FindService("s1"), nullptr);
  EXPECT_EQ(s->FindRule("r2"), nullptr);
  ASSERT_EQ(s->RulesOf("g1").size(), 1u);
  EXPECT_EQ(s->RulesOf("g1")[0]->id(), "r1");
  EXPECT_NE(s->FindGateway("g1"), nullptr);
  EXPECT_EQ(s->revision(), 4);
  // Deleting what is not there changes nothing but the revision.
  auto t = s->WithChange(Deleted(tg::v1::RESOURCE_KIND_RULE, "zzz", "g1"), 5);
  EXPECT_EQ(t->rules().size(), s->rules().size());
}

TEST(ConfigSnapshot, WithRevisionKeepsContent) {
  auto s1 = ConfigSnapshot::FromProto(TwoGateways(), 1);
  auto s2 = s1->WithRevision(9);
  EXPECT_EQ(s2->revision(), 9);
  EXPECT_EQ(s2->FindGatewayBySubdomain("acme"), s1->FindGateway("g1"));
  EXPECT_EQ(s2->RulesOf("g1").size(), 2u);
}

}  // namespace
}  // namespace tg
