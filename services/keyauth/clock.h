#pragma once

#include "tg/common/clock.h"

namespace tg::keyauth {

// Time as tg-keyauth sees it: expiry checks and created_at/updated_at. The
// suite's one clock seam (tg/common/clock.h).
using ::tg::Clock;
using ::tg::SystemClock;

}  // namespace tg::keyauth
