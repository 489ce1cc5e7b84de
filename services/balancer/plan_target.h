#pragma once

#include "tg/balancer/pick_plan.h"
#include "tg/v1/resources.pb.h"

namespace tg::balancer {

// What config says about a target, as a plan sees it (weight and priority
// defaulting to 1): tg-balancer and tg-edge build their plans from the same
// Target protos this way. Health fields and counters are the caller's.
PlanTarget PlanTargetOf(const tg::v1::Target& target);

}  // namespace tg::balancer
