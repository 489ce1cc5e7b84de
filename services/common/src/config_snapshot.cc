#include "tg/common/config_snapshot.h"

#include <algorithm>
#include <cctype>

namespace tg {
namespace {

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

template <typename T>
const T* Find(const ConfigSnapshot::Index<T>& index, std::string_view id) {
  auto it = index.find(id);
  return it == index.end() ? nullptr : it->second.get();
}

template <typename T>
void DropChildrenOf(ConfigSnapshot::Index<T>& index, const std::string& gateway_id) {
  std::erase_if(index, [&](const auto& kv) { return kv.second->gateway_id() == gateway_id; });
}

}  // namespace

ConfigSnapshot::Ptr<ConfigSnapshot> ConfigSnapshot::Empty() {
  static const Ptr<ConfigSnapshot> empty = std::make_shared<ConfigSnapshot>();
  return empty;
}

ConfigSnapshot::Ptr<ConfigSnapshot> ConfigSnapshot::FromProto(const tg::v1::ConfigSnapshot& proto,
                                                              int64_t revision) {
  auto s = std::make_shared<ConfigSnapshot>();
  s->revision_ = revision;
  for (const auto& g : proto.gateways()) {
    s->gateways_[g.id()] = std::make_shared<const tg::v1::Gateway>(g);
  }
  for (const auto& u : proto.upstreams()) {
    s->upstreams_[u.id()] = std::make_shared<const tg::v1::Upstream>(u);
  }
  for (const auto& v : proto.services()) {
    s->services_[v.id()] = std::make_shared<const tg::v1::Service>(v);
  }
  for (const auto& r : proto.rules()) s->rules_[r.id()] = std::make_shared<const tg::v1::Rule>(r);
  s->Reindex();
  return s;
}

ConfigSnapshot::Ptr<ConfigSnapshot> ConfigSnapshot::WithChange(const tg::v1::ConfigChange& change,
                                                               int64_t revision) const {
  // Copying the maps copies pointers, not entities: O(entities) per admin
  // change, nothing per proxied request.
  auto s = std::make_shared<ConfigSnapshot>(*this);
  s->revision_ = revision;
  using C = tg::v1::ConfigChange;
  switch (change.change_case()) {
    case C::kGateway:
      s->gateways_[change.gateway().id()] =
          std::make_shared<const tg::v1::Gateway>(change.gateway());
      break;
    case C::kUpstream:
      s->upstreams_[change.upstream().id()] =
          std::make_shared<const tg::v1::Upstream>(change.upstream());
      break;
    case C::kService:
      s->services_[change.service().id()] =
          std::make_shared<const tg::v1::Service>(change.service());
      break;
    case C::kRule:
      s->rules_[change.rule().id()] = std::make_shared<const tg::v1::Rule>(change.rule());
      break;
    case C::kDeleted: {
      const auto& d = change.deleted();
      switch (d.kind()) {
        case tg::v1::RESOURCE_KIND_GATEWAY:
          s->gateways_.erase(d.id());
          DropChildrenOf(s->upstreams_, d.id());
          DropChildrenOf(s->services_, d.id());
          DropChildrenOf(s->rules_, d.id());
          break;
        case tg::v1::RESOURCE_KIND_UPSTREAM:
          s->upstreams_.erase(d.id());
          break;
        case tg::v1::RESOURCE_KIND_SERVICE:
          s->services_.erase(d.id());
          break;
        case tg::v1::RESOURCE_KIND_RULE:
          s->rules_.erase(d.id());
          break;
        default:
          break;
      }
      break;
    }
    case C::CHANGE_NOT_SET:
      break;
  }
  s->Reindex();
  return s;
}

ConfigSnapshot::Ptr<ConfigSnapshot> ConfigSnapshot::WithRevision(int64_t revision) const {
  auto s = std::make_shared<ConfigSnapshot>(*this);
  // The copied derived indexes point into entities the copy shares: still valid.
  s->revision_ = revision;
  return s;
}

void ConfigSnapshot::Reindex() {
  by_subdomain_.clear();
  for (const auto& [id, g] : gateways_) {
    if (!g->subdomain().empty()) by_subdomain_[Lower(g->subdomain())] = g.get();
  }
  rules_by_gateway_.clear();
  for (const auto& [id, r] : rules_) rules_by_gateway_[r->gateway_id()].push_back(r.get());
  for (auto& [gid, list] : rules_by_gateway_) {
    std::sort(list.begin(), list.end(), [](const tg::v1::Rule* a, const tg::v1::Rule* b) {
      if (a->path().size() != b->path().size()) return a->path().size() > b->path().size();
      return a->id() < b->id();
    });
  }
}

const tg::v1::Gateway* ConfigSnapshot::FindGateway(std::string_view id) const {
  return Find(gateways_, id);
}

const tg::v1::Gateway* ConfigSnapshot::FindGatewayBySubdomain(std::string_view subdomain) const {
  bool lower = std::none_of(subdomain.begin(), subdomain.end(),
                            [](char c) { return std::isupper(static_cast<unsigned char>(c)); });
  auto it = lower ? by_subdomain_.find(subdomain) : by_subdomain_.find(Lower(subdomain));
  return it == by_subdomain_.end() ? nullptr : it->second;
}

const tg::v1::Upstream* ConfigSnapshot::FindUpstream(std::string_view id) const {
  return Find(upstreams_, id);
}

const tg::v1::Service* ConfigSnapshot::FindService(std::string_view id) const {
  return Find(services_, id);
}

const tg::v1::Rule* ConfigSnapshot::FindRule(std::string_view id) const { return Find(rules_, id); }

const std::vector<const tg::v1::Rule*>& ConfigSnapshot::RulesOf(std::string_view gateway_id) const {
  static const std::vector<const tg::v1::Rule*> kNone;
  auto it = rules_by_gateway_.find(gateway_id);
  return it == rules_by_gateway_.end() ? kNone : it->second;
}

}  // namespace tg
