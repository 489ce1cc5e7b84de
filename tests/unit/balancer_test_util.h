#pragma once

// Builders for tg-balancer tests: upstream protos as tg-config would send them.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "tg/v1/resources.pb.h"

namespace tg::balancer::testing {

struct TargetSpec {
  // Every member has an initializer, so designated initializers may omit any.
  std::string id{};
  std::optional<int32_t> weight{};
  std::optional<int32_t> priority{};
  std::string default_model{};
  std::vector<std::string> models{};
  std::string provider = "openai";
};

inline tg::v1::Target MakeTarget(const TargetSpec& s) {
  tg::v1::Target t;
  t.set_id(s.id);
  t.set_provider(s.provider);
  if (s.weight) t.set_weight(*s.weight);
  if (s.priority) t.set_priority(*s.priority);
  t.set_default_model(s.default_model);
  for (const auto& m : s.models) t.add_models(m);
  t.mutable_credentials()->set_api_key("sk-secret-" + s.id);
  return t;
}

struct HealthSpec {
  bool passive = true;
  int32_t threshold = 3;
  int32_t interval_s = 60;
  std::string probe_path{};      // health_checks.path: "" = no active probes
  int32_t probe_interval_s = 0;  // 0: unset (default 5 s)
};

inline std::shared_ptr<const tg::v1::Upstream> MakeUpstream(
    const std::string& id, const std::string& algorithm, const std::vector<TargetSpec>& targets,
    std::optional<HealthSpec> health = std::nullopt, const std::string& gateway_id = "gw-1") {
  auto u = std::make_shared<tg::v1::Upstream>();
  u->set_id(id);
  u->set_gateway_id(gateway_id);
  u->set_name(id);
  u->set_algorithm(algorithm);
  for (const auto& t : targets) *u->add_targets() = MakeTarget(t);
  if (health) {
    auto* h = u->mutable_health_checks();
    h->set_passive(health->passive);
    h->set_threshold(health->threshold);
    h->set_interval(health->interval_s);
    h->set_path(health->probe_path);
    if (health->probe_interval_s > 0) h->set_probe_interval(health->probe_interval_s);
  }
  return u;
}

}  // namespace tg::balancer::testing
