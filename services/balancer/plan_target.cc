#include "tg/balancer/plan_target.h"

namespace tg::balancer {

PlanTarget PlanTargetOf(const tg::v1::Target& t) {
  PlanTarget p;
  p.id = t.id();
  p.weight = t.has_weight() ? t.weight() : 1;
  p.priority = t.has_priority() ? t.priority() : 1;
  p.default_model = t.default_model();
  p.models.assign(t.models().begin(), t.models().end());
  p.assistant_prefill = t.assistant_prefill();
  return p;
}

}  // namespace tg::balancer
