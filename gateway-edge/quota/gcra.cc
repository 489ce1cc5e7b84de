#include "tg/edge/quota/gcra.h"

#include <algorithm>
#include <cmath>

namespace tg::edge::quota {
namespace {

// No bucket is ever more than this far from full (~3 years): keeps every
// stored TAT and PEXPIRE an exact integer however large an Adjust is.
constexpr double kMaxAheadUs = 1e14;

}  // namespace

int64_t SteadyClock::NowMicros() const {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

const Clock& SteadyClock::Get() {
  static const SteadyClock clock;
  return clock;
}

Gcra::Gcra(int64_t capacity, int64_t period_us)
    : capacity_(capacity),
      emission_us_(static_cast<double>(period_us) / static_cast<double>(capacity)),
      tau_us_(static_cast<double>(period_us)) {}

int64_t Gcra::Available(double ahead) const {
  const double a = std::max(ahead, 0.0);
  const double units = std::floor((tau_us_ - a) / emission_us_ + 1e-9);
  if (units <= 0) return 0;
  if (units >= static_cast<double>(capacity_)) return capacity_;
  return static_cast<int64_t>(units);
}

GcraResult Gcra::Result(double ahead, int64_t granted) const {
  GcraResult r;
  r.granted = granted;
  r.ahead = std::clamp(ahead, 0.0, kMaxAheadUs);
  r.remaining = Available(r.ahead);
  r.reset_us = static_cast<int64_t>(std::ceil(r.ahead));
  return r;
}

GcraResult Gcra::Take(double ahead, int64_t want, int64_t min) const {
  const double a = std::max(ahead, 0.0);
  min = std::max<int64_t>(min, 1);
  want = std::max(want, min);
  const int64_t granted = std::min(want, Available(a));
  if (granted >= min) return Result(a + static_cast<double>(granted) * emission_us_, granted);
  GcraResult r = Result(a, 0);
  if (min <= capacity_) {
    // Refused means (tau - a) / T + 1e-9 < min, so this is > 0.
    const double wait = a + static_cast<double>(min) * emission_us_ - tau_us_;
    r.retry_after_us = std::max<int64_t>(1, static_cast<int64_t>(std::ceil(wait)));
  }
  return r;
}

GcraResult Gcra::Adjust(double ahead, int64_t n) const {
  const double a = std::max(ahead, 0.0);
  return Result(std::max(0.0, a + static_cast<double>(n) * emission_us_), 0);
}

GcraResult Gcra::Block(double ahead, int64_t block_us) const {
  const double a = std::max(ahead, 0.0);
  return Result(std::max(a, tau_us_ + static_cast<double>(std::max<int64_t>(block_us, 0))), 0);
}

GcraResult Gcra::Peek(double ahead) const { return Result(std::max(ahead, 0.0), 0); }

double AheadOf(const Tat& tat, int64_t now_us) {
  const double ahead = static_cast<double>(tat.micros - now_us) + tat.frac;
  return ahead > 0 ? ahead : 0;
}

Tat TatAt(int64_t now_us, double ahead) {
  if (!(ahead > 0)) return Tat{now_us, 0};
  const double whole = std::floor(ahead);
  return Tat{now_us + static_cast<int64_t>(whole), ahead - whole};
}

std::chrono::milliseconds CeilMillis(int64_t micros) {
  if (micros <= 0) return std::chrono::milliseconds(0);
  return std::chrono::milliseconds((micros + 999) / 1000);
}

// The same formulas as Gcra, operation for operation, so that the local
// fallback and the unit tests describe what Redis does.
const std::string_view kGcraScript = R"lua(
if redis.replicate_commands then redis.replicate_commands() end
local key = KEYS[1]
local op = ARGV[1]
local capacity = tonumber(ARGV[2])
local tau = tonumber(ARGV[3])
local a = tonumber(ARGV[4])
local b = tonumber(ARGV[5])
if not capacity or capacity <= 0 or not tau or tau <= 0 or not a or not b then
  return redis.error_reply('ERR tg quota: bad arguments')
end
local T = tau / capacity
local max_ahead = 1e14
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])

local ahead = 0
local stored = redis.call('GET', key)
if stored then
  local dot = string.find(stored, '.', 1, true)
  local whole = tonumber(dot and string.sub(stored, 1, dot - 1) or stored)
  local frac = 0
  if dot then frac = tonumber('0' .. string.sub(stored, dot)) end
  if whole and frac then ahead = (whole - now) + frac end
  if ahead < 0 then ahead = 0 end
end

local function available(x)
  local units = math.floor((tau - x) / T + 1e-9)
  if units <= 0 then return 0 end
  if units >= capacity then return capacity end
  return units
end

local function save(x)
  if x <= 0 then
    redis.call('DEL', key)
    return
  end
  local whole = math.floor(x)
  local frac = string.format('%.12f', x - whole)
  if string.sub(frac, 1, 1) ~= '0' then
    whole = whole + 1
    frac = '0.000000000000'
  end
  redis.call('SET', key, string.format('%.0f', now + whole) .. string.sub(frac, 2),
             'PX', string.format('%.0f', math.floor(x / 1000) + 1000))
end

local function clamp(x)
  if x < 0 then return 0 end
  if x > max_ahead then return max_ahead end
  return x
end

if op == 'take' then
  local min = b
  if min < 1 then min = 1 end
  local want = a
  if want < min then want = min end
  local granted = math.min(want, available(ahead))
  if granted >= min then
    ahead = clamp(ahead + granted * T)
    save(ahead)
    return {granted, available(ahead), 0, math.ceil(ahead)}
  end
  local retry = 0
  if min <= capacity then
    retry = math.ceil(ahead + min * T - tau)
    if retry < 1 then retry = 1 end
  end
  return {0, available(ahead), retry, math.ceil(ahead)}
elseif op == 'adjust' then
  ahead = clamp(ahead + a * T)
elseif op == 'block' then
  if a < 0 then a = 0 end
  ahead = clamp(math.max(ahead, tau + a))
else
  return redis.error_reply('ERR tg quota: unknown op')
end
save(ahead)
return {0, available(ahead), 0, math.ceil(ahead)}
)lua";

}  // namespace tg::edge::quota
