#pragma once

#include "tg/common/clock.h"

namespace tg::balancer {

// Wall time (Clock::NowMs) as tg-balancer sees it: ejection deadlines are
// shared with the other replicas through Redis (their clocks are assumed
// NTP-synchronised; a skew of a few hundred milliseconds only shifts a trial
// by as much). The suite's one clock seam (tg/common/clock.h).
using ::tg::Clock;
using ::tg::SystemClock;

}  // namespace tg::balancer
