#include <gtest/gtest.h>

#include "tg/adapter/service/target_directory.h"
#include "tg/adapter/translate/provider_codec.h"

namespace tg::adapter {
namespace {

tg::v1::Target Target(const std::string& id, const std::string& provider) {
  tg::v1::Target t;
  t.set_id(id);
  t.set_provider(provider);
  t.mutable_credentials()->set_api_key("sk-" + id);
  (*t.mutable_headers())["x-team"] = "blue";
  return t;
}

tg::v1::ConfigSnapshot TwoUpstreamsAndAnEndpoint() {
  tg::v1::ConfigSnapshot p;
  auto* g = p.add_gateways();
  g->set_id("g1");
  auto* u1 = p.add_upstreams();
  u1->set_id("u1");
  u1->set_gateway_id("g1");
  *u1->add_targets() = Target("a", "openai");
  auto* responses = u1->add_targets();
  *responses = Target("b", "openai");
  (*responses->mutable_provider_options()->mutable_fields())["api"].set_string_value("responses");
  auto* u2 = p.add_upstreams();
  u2->set_id("u2");
  u2->set_gateway_id("g1");
  auto* azure = u2->add_targets();
  *azure = Target("a", "azure");  // the same target id in another upstream
  (*azure->mutable_provider_options()->mutable_fields())["api_version"].set_string_value(
      "2024-10-21");
  azure->mutable_credentials()->set_azure_endpoint("https://example.openai.azure.com");
  *u2->add_targets() = Target("self", "");
  auto* s = p.add_services();
  s->set_id("s1");
  s->set_gateway_id("g1");
  s->set_type("endpoint");
  s->set_host("internal.example");
  s->set_port(8443);
  s->set_path("/v2");
  s->mutable_credentials()->set_header_name("x-token");
  s->mutable_credentials()->set_header_value("t0k");
  auto* up = p.add_services();
  up->set_id("s2");
  up->set_gateway_id("g1");
  up->set_type("upstream");
  up->set_upstream_id("u1");
  return p;
}

TEST(TargetDirectory, ResolvesEachTargetOnceWithItsCodecOptionsAndCredentials) {
  auto snap = ConfigSnapshot::FromProto(TwoUpstreamsAndAnEndpoint(), 7);
  auto dir = TargetDirectory::Build(*snap, nullptr);
  EXPECT_EQ(dir->revision(), 7);

  auto a = dir->Find("u1", "a");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->upstream_id, "u1");
  EXPECT_FALSE(a->passthrough);
  EXPECT_EQ(a->codec, translate::FindProviderCodec("openai"));
  EXPECT_EQ(a->credentials.api_key(), "sk-a");
  EXPECT_FALSE(a->target.has_credentials()) << "credentials live apart from the target";
  EXPECT_EQ(a->provider_label, "openai");
  ASSERT_EQ(a->info.headers.size(), 1u);
  EXPECT_EQ(a->info.headers[0].second, "blue");

  auto b = dir->Find("u1", "b");
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->codec, translate::FindProviderCodec("openai", "responses"));
  EXPECT_NE(b->codec, a->codec);

  auto azure = dir->Find("u2", "a");
  ASSERT_NE(azure, nullptr);
  EXPECT_EQ(azure->info.provider, "azure");
  EXPECT_EQ(azure->info.api_version, "2024-10-21");
  EXPECT_EQ(azure->info.azure_endpoint, "https://example.openai.azure.com");
  EXPECT_EQ(azure->gen_ai_system, "az.ai.openai");

  auto self = dir->Find("u2", "self");
  ASSERT_NE(self, nullptr);
  EXPECT_TRUE(self->passthrough);
  EXPECT_EQ(self->codec, nullptr);
  EXPECT_EQ(self->provider_label, "passthrough");
}

TEST(TargetDirectory, EndpointServicesAreTargetsWithoutProvider) {
  auto snap = ConfigSnapshot::FromProto(TwoUpstreamsAndAnEndpoint(), 1);
  auto dir = TargetDirectory::Build(*snap, nullptr);
  auto s1 = dir->Find("", "s1");
  ASSERT_NE(s1, nullptr);
  EXPECT_TRUE(s1->passthrough);
  EXPECT_EQ(s1->target.host(), "internal.example");
  EXPECT_EQ(s1->target.port(), 8443);
  EXPECT_EQ(s1->target.path(), "/v2");
  EXPECT_EQ(s1->credentials.header_value(), "t0k");
  EXPECT_EQ(dir->Find("", "s2"), nullptr) << "an upstream service is not itself a target";
}

TEST(TargetDirectory, UnknownIdsFindNothing) {
  auto dir =
      TargetDirectory::Build(*ConfigSnapshot::FromProto(TwoUpstreamsAndAnEndpoint(), 1), nullptr);
  EXPECT_EQ(dir->Find("u1", "self"), nullptr) << "a target of another upstream";
  EXPECT_EQ(dir->Find("u9", "a"), nullptr);
  EXPECT_EQ(dir->Find("u1", ""), nullptr);
  EXPECT_EQ(dir->Find("", "a"), nullptr) << "a target is not a service";
  EXPECT_EQ(dir->Find("", ""), nullptr);
}

TEST(TargetDirectory, AChangeResolvesOnlyWhatChanged) {
  auto first = ConfigSnapshot::FromProto(TwoUpstreamsAndAnEndpoint(), 1);
  auto d1 = TargetDirectory::Build(*first, nullptr);

  // u2 changes (its azure target gets a new key); u1 and s1 do not.
  tg::v1::ConfigChange change;
  *change.mutable_upstream() = *first->FindUpstream("u2");
  change.mutable_upstream()->mutable_targets(0)->mutable_credentials()->set_api_key("rotated");
  auto second = first->WithChange(change, 2);
  auto d2 = TargetDirectory::Build(*second, d1.get());

  EXPECT_EQ(d2->revision(), 2);
  EXPECT_EQ(d2->Find("u1", "a"), d1->Find("u1", "a")) << "unchanged: the same resolved object";
  EXPECT_EQ(d2->Find("", "s1"), d1->Find("", "s1"));
  ASSERT_NE(d2->Find("u2", "a"), d1->Find("u2", "a"));
  EXPECT_EQ(d2->Find("u2", "a")->credentials.api_key(), "rotated");
  EXPECT_EQ(d1->Find("u2", "a")->credentials.api_key(), "sk-a") << "the old directory is intact";

  tg::v1::ConfigChange deleted;
  deleted.mutable_deleted()->set_kind(tg::v1::RESOURCE_KIND_UPSTREAM);
  deleted.mutable_deleted()->set_id("u2");
  deleted.mutable_deleted()->set_gateway_id("g1");
  auto d3 = TargetDirectory::Build(*second->WithChange(deleted, 3), d2.get());
  EXPECT_EQ(d3->Find("u2", "a"), nullptr);
  EXPECT_NE(d3->Find("u1", "a"), nullptr);
}

}  // namespace
}  // namespace tg::adapter
