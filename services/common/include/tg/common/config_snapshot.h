#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "tg/v1/config.pb.h"
#include "tg/v1/resources.pb.h"

namespace tg {

// The edge's whole view of tg-config at one revision: immutable once built,
// shared by every reader through a shared_ptr<const ConfigSnapshot>. A change
// builds a new snapshot (entities are shared between versions, only the
// indexes are copied); the proxy path only ever does hash lookups.
class ConfigSnapshot {
 public:
  template <typename T>
  using Ptr = std::shared_ptr<const T>;

  // Heterogeneous lookup: find(string_view) without building a std::string.
  struct StringHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  template <typename T>
  using Index = std::unordered_map<std::string, Ptr<T>, StringHash, std::equal_to<>>;

  static Ptr<ConfigSnapshot> Empty();
  // The state a Watch snapshot event describes.
  static Ptr<ConfigSnapshot> FromProto(const tg::v1::ConfigSnapshot& proto, int64_t revision);

  // This state with one committed change applied. Deleting a gateway drops
  // its upstreams, services and rules.
  Ptr<ConfigSnapshot> WithChange(const tg::v1::ConfigChange& change, int64_t revision) const;
  // This state, relabelled (a heartbeat that reports a newer revision).
  Ptr<ConfigSnapshot> WithRevision(int64_t revision) const;

  int64_t revision() const { return revision_; }

  // nullptr when absent. Pointers stay valid as long as the snapshot does.
  const tg::v1::Gateway* FindGateway(std::string_view id) const;
  // Case-insensitive, as host names are.
  const tg::v1::Gateway* FindGatewayBySubdomain(std::string_view subdomain) const;
  const tg::v1::Upstream* FindUpstream(std::string_view id) const;
  const tg::v1::Service* FindService(std::string_view id) const;
  const tg::v1::Rule* FindRule(std::string_view id) const;
  // The gateway's rules, longest path first (ties by id), so that the first
  // match is the most specific; empty when none.
  const std::vector<const tg::v1::Rule*>& RulesOf(std::string_view gateway_id) const;

  const Index<tg::v1::Gateway>& gateways() const { return gateways_; }
  const Index<tg::v1::Upstream>& upstreams() const { return upstreams_; }
  const Index<tg::v1::Service>& services() const { return services_; }
  const Index<tg::v1::Rule>& rules() const { return rules_; }

 private:
  // Rebuilds the derived indexes from the primary maps.
  void Reindex();

  int64_t revision_ = 0;
  Index<tg::v1::Gateway> gateways_;
  Index<tg::v1::Upstream> upstreams_;
  Index<tg::v1::Service> services_;
  Index<tg::v1::Rule> rules_;
  std::unordered_map<std::string, const tg::v1::Gateway*, StringHash, std::equal_to<>>
      by_subdomain_;
  std::unordered_map<std::string, std::vector<const tg::v1::Rule*>, StringHash, std::equal_to<>>
      rules_by_gateway_;
};

}  // namespace tg
