#include "tg/edge/spend.h"

#include <hiredis/hiredis.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <iterator>
#include <limits>

#include "tg/common/log.h"
#include "tg/edge/quota/redis_connection.h"

namespace tg::edge {
namespace {

using Steady = std::chrono::steady_clock;
using std::chrono::system_clock;

// List prices in USD per million tokens (input, output), as the providers
// publish them for standard (non-batch, non-cached) use: OpenAI's and
// Anthropic's pricing pages, Google AI's Gemini API (paid tier, prompts up
// to 128k tokens for 1.5 Pro and 200k for 2.5 Pro) and Amazon Bedrock's
// on-demand prices (us-east-1). Embeddings have no output price. A default
// for gateways that set no model_prices, not a bill: a gateway overrides any
// entry. Entries exist for some names that a shorter entry would otherwise
// match with another price (o1-mini under o1, gpt-4o-mini under gpt-4o,
// claude-opus-4-5 under claude-opus-4, gpt-4.5-preview under gpt-4 by '.').
constexpr std::pair<std::string_view, Price> kPrices[] = {
    // OpenAI
    {"gpt-4o", {2.50, 10.00}},
    {"gpt-4o-2024-05-13", {5.00, 15.00}},
    {"gpt-4o-mini", {0.15, 0.60}},
    {"gpt-4.1", {2.00, 8.00}},
    {"gpt-4.1-mini", {0.40, 1.60}},
    {"gpt-4.1-nano", {0.10, 0.40}},
    {"gpt-4.5-preview", {75.00, 150.00}},
    {"gpt-4-turbo", {10.00, 30.00}},
    {"gpt-4", {30.00, 60.00}},
    {"gpt-4-32k", {60.00, 120.00}},
    {"gpt-3.5-turbo", {0.50, 1.50}},
    {"o1", {15.00, 60.00}},
    {"o1-mini", {1.10, 4.40}},
    {"o1-pro", {150.00, 600.00}},
    {"o3", {2.00, 8.00}},
    {"o3-mini", {1.10, 4.40}},
    {"o3-pro", {20.00, 80.00}},
    {"o4-mini", {1.10, 4.40}},
    {"text-embedding-3-small", {0.02, 0}},
    {"text-embedding-3-large", {0.13, 0}},
    {"text-embedding-ada-002", {0.10, 0}},
    // Anthropic
    {"claude-3-haiku", {0.25, 1.25}},
    {"claude-3-sonnet", {3.00, 15.00}},
    {"claude-3-opus", {15.00, 75.00}},
    {"claude-3-5-haiku", {0.80, 4.00}},
    {"claude-3-5-sonnet", {3.00, 15.00}},
    {"claude-3-7-sonnet", {3.00, 15.00}},
    {"claude-sonnet-4", {3.00, 15.00}},
    {"claude-opus-4", {15.00, 75.00}},
    {"claude-opus-4-5", {5.00, 25.00}},
    {"claude-haiku-4-5", {1.00, 5.00}},
    // Google (Gemini API)
    {"gemini-1.5-pro", {1.25, 5.00}},
    {"gemini-1.5-flash", {0.075, 0.30}},
    {"gemini-1.5-flash-8b", {0.0375, 0.15}},
    {"gemini-2.0-flash", {0.10, 0.40}},
    {"gemini-2.0-flash-lite", {0.075, 0.30}},
    {"gemini-2.5-pro", {1.25, 10.00}},
    {"gemini-2.5-flash", {0.30, 2.50}},
    {"gemini-2.5-flash-lite", {0.10, 0.40}},
    {"text-embedding-004", {0, 0}},  // free of charge on the Gemini API
    {"gemini-embedding-001", {0.15, 0}},
    // Amazon Bedrock (model ids; inference profiles' region prefixes are stripped)
    {"anthropic.claude-3-haiku", {0.25, 1.25}},
    {"anthropic.claude-3-sonnet", {3.00, 15.00}},
    {"anthropic.claude-3-opus", {15.00, 75.00}},
    {"anthropic.claude-3-5-haiku", {0.80, 4.00}},
    {"anthropic.claude-3-5-sonnet", {3.00, 15.00}},
    {"anthropic.claude-3-7-sonnet", {3.00, 15.00}},
    {"anthropic.claude-sonnet-4", {3.00, 15.00}},
    {"anthropic.claude-opus-4", {15.00, 75.00}},
    {"anthropic.claude-opus-4-5", {5.00, 25.00}},
    {"anthropic.claude-haiku-4-5", {1.00, 5.00}},
    {"amazon.nova-micro", {0.035, 0.14}},
    {"amazon.nova-lite", {0.06, 0.24}},
    {"amazon.nova-pro", {0.80, 3.20}},
    {"amazon.titan-embed-text-v1", {0.10, 0}},
    {"amazon.titan-embed-text-v2", {0.02, 0}},
    {"cohere.embed-english-v3", {0.10, 0}},
    {"cohere.embed-multilingual-v3", {0.10, 0}},
};

// Bedrock cross-region inference profiles: "us.anthropic.claude-…".
constexpr std::string_view kRegionPrefixes[] = {"us.", "eu.", "apac.", "global."};
constexpr size_t kMaxModelName = 256;

const std::unordered_map<std::string_view, Price>& PriceIndex() {
  static const auto* index = [] {
    auto* m = new std::unordered_map<std::string_view, Price>();
    for (const auto& [name, price] : kPrices) m->emplace(name, price);
    return m;
  }();
  return *index;
}

bool IsSeparator(char c) { return c == '-' || c == '@' || c == ':' || c == '.'; }

// The most specific entry for model that lookup (string_view -> pointer or
// nullptr) finds: the exact name, else the longest prefix ending before a
// separator; then the same without a region prefix. *covered: how much of
// model the match spans (a region prefix counts), to compare two matches.
template <typename Lookup>
auto Match(std::string_view model, const Lookup& lookup, size_t* covered)
    -> decltype(lookup(model)) {
  if (model.empty() || model.size() > kMaxModelName) return nullptr;
  auto in = [&](std::string_view name, size_t offset) -> decltype(lookup(model)) {
    if (auto p = lookup(name)) {
      *covered = offset + name.size();
      return p;
    }
    for (size_t i = name.size(); i-- > 1;) {
      if (!IsSeparator(name[i])) continue;
      if (auto p = lookup(name.substr(0, i))) {
        *covered = offset + i;
        return p;
      }
    }
    return nullptr;
  };
  if (auto p = in(model, 0)) return p;
  for (std::string_view region : kRegionPrefixes) {
    if (model.size() > region.size() && model.substr(0, region.size()) == region) {
      return in(model.substr(region.size()), region.size());
    }
  }
  return nullptr;
}

const Price* FindDefault(std::string_view model, size_t* covered) {
  const auto& index = PriceIndex();
  return Match(
      model,
      [&index](std::string_view name) -> const Price* {
        auto it = index.find(name);
        return it == index.end() ? nullptr : &it->second;
      },
      covered);
}

// USD per million tokens is micro-dollars per token: x 1e6, pico-dollars.
int64_t PicoPerToken(double per_million) {
  if (!(per_million > 0)) return 0;  // negative, zero, NaN
  const double pico = std::round(per_million * 1e6);
  if (pico >= 9.2e18) return std::numeric_limits<int64_t>::max();
  return static_cast<int64_t>(pico);
}

int64_t SatAdd(int64_t a, int64_t b) {
  int64_t r = 0;
  if (__builtin_add_overflow(a, b, &r)) {
    return b > 0 ? std::numeric_limits<int64_t>::max() : std::numeric_limits<int64_t>::min();
  }
  return r;
}

void AddTotals(SpendTotals* into, const SpendTotals& d) {
  into->usd_micros = SatAdd(into->usd_micros, d.usd_micros);
  into->input_tokens = SatAdd(into->input_tokens, d.input_tokens);
  into->output_tokens = SatAdd(into->output_tokens, d.output_tokens);
  into->requests = SatAdd(into->requests, d.requests);
}

bool IsZero(const SpendTotals& t) {
  return t.usd_micros == 0 && t.input_tokens == 0 && t.output_tokens == 0 && t.requests == 0;
}

// Gateway and key ids: UUIDs in practice; they become part of Redis keys
// and fields, so anything else is refused.
bool ValidId(std::string_view id) {
  if (id.empty() || id.size() > 64) return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_';
  });
}

bool ParseInt(std::string_view s, int64_t* out) {
  if (s.empty()) return false;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && ptr == s.data() + s.size();
}

bool AllDigits(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

struct PeriodInfo {
  system_clock::time_point end;
  std::chrono::seconds expire;  // of its Redis hash, after each write
};

// "dYYYYMMDD" or "mYYYYMM" (PeriodOf), nullopt otherwise.
std::optional<PeriodInfo> ParsePeriodId(std::string_view id) {
  using namespace std::chrono;
  int64_t y = 0;
  int64_t m = 0;
  int64_t d = 1;
  const bool daily = id.size() == 9 && id[0] == 'd';
  const bool monthly = id.size() == 7 && id[0] == 'm';
  if ((!daily && !monthly) || !AllDigits(id.substr(1))) return std::nullopt;
  ParseInt(id.substr(1, 4), &y);
  ParseInt(id.substr(5, 2), &m);
  if (daily) ParseInt(id.substr(7, 2), &d);
  const year_month_day ymd{year(static_cast<int>(y)), month(static_cast<unsigned>(m)),
                           day(static_cast<unsigned>(d))};
  if (!ymd.ok()) return std::nullopt;
  if (daily) return PeriodInfo{sys_days(ymd) + days(1), hours(24 * 3)};
  const year_month next = ymd.year() / ymd.month() + months(1);
  return PeriodInfo{sys_days(next / 1), hours(24 * 40)};
}

// A Redis integer in a bulk string (HMGET, HGETALL); 0 for nil or garbage.
int64_t IntOf(const redisReply* r) {
  int64_t v = 0;
  if (r != nullptr && r->type == REDIS_REPLY_STRING && ParseInt(quota::ReplyText(r), &v)) return v;
  if (r != nullptr && r->type == REDIS_REPLY_INTEGER) return r->integer;
  return 0;
}

constexpr std::string_view kFieldSuffixes[] = {"usd", "in", "out", "req"};

int64_t* FieldOf(SpendTotals* t, size_t i) {
  switch (i) {
    case 0:
      return &t->usd_micros;
    case 1:
      return &t->input_tokens;
    case 2:
      return &t->output_tokens;
    default:
      return &t->requests;
  }
}

// "gw:" or "k:<key_id>:"; the four fields are this plus kFieldSuffixes.
std::string FieldPrefix(const std::string& key_id) {
  return key_id.empty() ? std::string("gw:") : "k:" + key_id + ":";
}

constexpr size_t kFlushBatch = 64;      // hashes per pipelined round trip
constexpr size_t kHmgetCounters = 128;  // counters (x 4 fields) per HMGET
constexpr auto kRecentGet = std::chrono::minutes(1);
constexpr auto kIdle = std::chrono::minutes(10);
constexpr auto kPastIdle = std::chrono::minutes(1);
constexpr auto kPastKeep = std::chrono::hours(1);
constexpr auto kEvictEvery = std::chrono::seconds(5);

}  // namespace

std::optional<Price> DefaultPrice(std::string_view model) {
  size_t covered = 0;
  const Price* p = FindDefault(model, &covered);
  if (p == nullptr) return std::nullopt;
  return *p;
}

std::optional<Price> PriceOf(const tg::v1::Gateway& gateway, std::string_view model) {
  size_t default_covered = 0;
  const Price* builtin = FindDefault(model, &default_covered);
  const auto& overrides = gateway.model_prices();
  if (!overrides.empty()) {
    size_t covered = 0;
    const tg::v1::ModelPrice* o = Match(
        model,
        [&overrides](std::string_view name) -> const tg::v1::ModelPrice* {
          auto it = overrides.find(std::string(name));
          return it == overrides.end() ? nullptr : &it->second;
        },
        &covered);
    if (o != nullptr && (builtin == nullptr || covered >= default_covered)) {
      const Price base = builtin != nullptr ? *builtin : Price{};
      return Price{o->has_input_per_million() ? o->input_per_million() : base.input_per_million,
                   o->has_output_per_million() ? o->output_per_million() : base.output_per_million};
    }
  }
  if (builtin == nullptr) return std::nullopt;
  return *builtin;
}

int64_t CostMicros(const Price& price, int64_t input_tokens, int64_t output_tokens) {
  using Wide = __int128;
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  const int64_t in = std::max<int64_t>(input_tokens, 0);
  const int64_t out = std::max<int64_t>(output_tokens, 0);
  const int64_t in_pico = PicoPerToken(price.input_per_million);
  const int64_t out_pico = PicoPerToken(price.output_per_million);
  // A price beyond what pico-dollars per token hold (~9.2e12 USD per
  // million): whatever it is charged for costs everything.
  if ((in > 0 && in_pico == kMax) || (out > 0 && out_pico == kMax)) return kMax;
  // Each product < 2^126, the sum < 2^127: no overflow.
  const Wide pico = static_cast<Wide>(in) * in_pico + static_cast<Wide>(out) * out_pico;
  const Wide micros = (pico + 999'999) / 1'000'000;
  return micros > static_cast<Wide>(kMax) ? kMax : static_cast<int64_t>(micros);
}

std::vector<std::pair<std::string_view, Price>> DefaultPriceTable() {
  return {std::begin(kPrices), std::end(kPrices)};
}

Period PeriodOf(std::string_view period, system_clock::time_point now) {
  using namespace std::chrono;
  const sys_days today = floor<days>(now);
  const year_month_day ymd{today};
  char id[32];
  if (period == "daily") {
    std::snprintf(id, sizeof id, "d%04d%02u%02u", static_cast<int>(ymd.year()),
                  static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()));
    return Period{id, today + days(1)};
  }
  std::snprintf(id, sizeof id, "m%04d%02u", static_cast<int>(ymd.year()),
                static_cast<unsigned>(ymd.month()));
  const year_month next = ymd.year() / ymd.month() + months(1);
  return Period{id, sys_days(next / 1)};
}

// ---------------------------------------------------------------------------
// SpendLedger

struct SpendLedger::Counter {
  SpendTotals base;       // Redis's value at the last refresh
  SpendTotals pending;    // added here, not yet sent
  SpendTotals flushing;   // being sent (the background thread, under flush_mu_)
  SpendTotals in_flight;  // sent since the last refresh read it
  Steady::time_point last_used = Steady::time_point::min();  // Get or Add
  Steady::time_point last_get = Steady::time_point::min();
  bool read = false;   // a refresh has read it
  bool dirty = false;  // listed in its hash's dirty list

  SpendTotals View() const {
    SpendTotals t = base;
    AddTotals(&t, pending);
    AddTotals(&t, flushing);
    AddTotals(&t, in_flight);
    return t;
  }
  bool Unsent() const { return !IsZero(pending) || !IsZero(flushing); }
};

struct SpendLedger::Hash {
  std::string redis_key;
  system_clock::time_point end;
  std::chrono::seconds expire{0};
  Counter gw;
  std::unordered_map<std::string, Counter> keys;
  // Counters with pending adds ("" for the gateway); each listed once.
  std::vector<std::string> dirty;
  Steady::time_point last_used = Steady::time_point::min();
  Steady::time_point last_get = Steady::time_point::min();
};

struct SpendLedger::FlushItem {
  std::string map_key;
  std::string redis_key;
  std::chrono::seconds expire{0};
  std::vector<std::pair<std::string, SpendTotals>> counters;  // key id ("" gateway), delta
  bool settled = false;  // in Redis (or refused for good: an error inside EXEC)
};

struct SpendLedger::RefreshItem {
  std::string map_key;
  std::string redis_key;
  std::vector<std::string> counters;  // key ids, "" for the gateway
  std::vector<std::pair<std::string, SpendTotals>> read;
};

SpendLedger::SpendLedger(Options options)
    : options_(std::move(options)), shared_(options_.redis.has_value()), up_(shared_) {
  if (shared_) read_conn_ = std::make_unique<quota::RedisConnection>(*options_.redis);
  thread_ = std::thread([this] { Loop(); });
}

SpendLedger::~SpendLedger() {
  {
    std::lock_guard lock(stop_mu_);
    stopping_ = true;
  }
  stop_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

bool SpendLedger::redis_up() const { return shared_ && up_.load(); }

bool SpendLedger::Down(Steady::time_point now) const {
  return now.time_since_epoch().count() < down_until_ns_.load();
}

void SpendLedger::MarkDown(const std::string& reason) {
  const auto until = Steady::now() + options_.redis->down_retry;
  down_until_ns_.store(
      std::chrono::duration_cast<std::chrono::nanoseconds>(until.time_since_epoch()).count());
  if (up_.exchange(false)) {
    log::Warn("Redis unreachable: spend counted by each edge alone until it is back",
              {{"reason", reason},
               {"redis", options_.redis->host + ":" + std::to_string(options_.redis->port)}});
  }
}

void SpendLedger::MarkUp() {
  if (up_.exchange(true)) return;
  log::Info("Redis reachable: spend shared again",
            {{"redis", options_.redis->host + ":" + std::to_string(options_.redis->port)}});
}

SpendLedger::Hash* SpendLedger::FindOrCreate(const std::string& gateway_id,
                                             const std::string& period_id, Steady::time_point now,
                                             bool* created) {
  *created = false;
  std::string map_key;
  map_key.reserve(gateway_id.size() + 1 + period_id.size());
  map_key.append(gateway_id).append(":").append(period_id);
  auto it = hashes_.find(map_key);
  if (it == hashes_.end()) {
    if (!ValidId(gateway_id)) return nullptr;
    const std::optional<PeriodInfo> info = ParsePeriodId(period_id);
    if (!info) return nullptr;
    it = hashes_.emplace(std::move(map_key), Hash{}).first;
    Hash& h = it->second;
    h.redis_key = options_.prefix + ":" + it->first;
    h.end = info->end;
    h.expire = info->expire;
    *created = true;
  }
  it->second.last_used = now;
  return &it->second;
}

SpendTotals SpendLedger::GatewaySpent(const std::string& gateway_id, const std::string& period_id) {
  bool wake = false;
  SpendTotals out;
  {
    std::lock_guard lock(mu_);
    const auto now = Steady::now();
    bool created = false;
    Hash* h = FindOrCreate(gateway_id, period_id, now, &created);
    if (h == nullptr) return out;
    wake = shared_ && h->gw.last_get == Steady::time_point::min();
    h->last_get = now;
    h->gw.last_get = now;
    h->gw.last_used = now;
    out = h->gw.View();
  }
  if (wake) {
    {
      std::lock_guard lock(stop_mu_);
      fresh_.store(true);
    }
    stop_cv_.notify_all();
  }
  return out;
}

SpendTotals SpendLedger::KeySpent(const std::string& gateway_id, const std::string& key_id,
                                  const std::string& period_id) {
  if (!ValidId(key_id)) return {};
  bool wake = false;
  SpendTotals out;
  {
    std::lock_guard lock(mu_);
    const auto now = Steady::now();
    bool created = false;
    Hash* h = FindOrCreate(gateway_id, period_id, now, &created);
    if (h == nullptr) return out;
    Counter& c = h->keys[key_id];
    wake = shared_ && c.last_get == Steady::time_point::min();
    h->last_get = now;
    c.last_get = now;
    c.last_used = now;
    out = c.View();
  }
  if (wake) {
    {
      std::lock_guard lock(stop_mu_);
      fresh_.store(true);
    }
    stop_cv_.notify_all();
  }
  return out;
}

void SpendLedger::Add(const std::string& gateway_id, const std::string& key_id,
                      const std::string& period_id, const SpendTotals& delta) {
  if (IsZero(delta)) return;
  const bool with_key = ValidId(key_id);
  std::lock_guard lock(mu_);
  const auto now = Steady::now();
  bool created = false;
  Hash* h = FindOrCreate(gateway_id, period_id, now, &created);
  if (h == nullptr) return;
  auto count = [&](Counter& c, const std::string& id) {
    AddTotals(&c.pending, delta);
    c.last_used = now;
    if (shared_ && !c.dirty) {
      c.dirty = true;
      h->dirty.push_back(id);
    }
  };
  count(h->gw, std::string());
  if (with_key) count(h->keys[key_id], key_id);
}

SpendLedger::Report SpendLedger::LocalReport(const std::string& gateway_id,
                                             const std::string& period_id) {
  Report report;
  report.period_id = period_id;
  std::lock_guard lock(mu_);
  auto it = hashes_.find(gateway_id + ":" + period_id);
  if (it == hashes_.end()) return report;
  report.gateway = it->second.gw.View();
  for (const auto& [id, c] : it->second.keys) {
    const SpendTotals t = c.View();
    if (!IsZero(t)) report.keys[id] = t;
  }
  return report;
}

SpendLedger::Report SpendLedger::Read(const std::string& gateway_id, const std::string& period_id) {
  if (!ValidId(gateway_id) || !ParsePeriodId(period_id)) return Report{period_id};
  if (!shared_ || Down(Steady::now())) return LocalReport(gateway_id, period_id);

  std::lock_guard conn_lock(read_mu_);
  // No flush in progress while this reads: a delta is either pending here
  // or in Redis, never both, never neither.
  std::lock_guard flush_lock(flush_mu_);
  if (Down(Steady::now())) return LocalReport(gateway_id, period_id);
  SpendTotals gw_pending;
  std::vector<std::pair<std::string, SpendTotals>> keys_pending;
  std::string redis_key;
  {
    std::lock_guard lock(mu_);
    auto it = hashes_.find(gateway_id + ":" + period_id);
    if (it != hashes_.end()) {
      const Hash& h = it->second;
      gw_pending = h.gw.pending;
      for (const auto& [id, c] : h.keys) {
        if (!IsZero(c.pending)) keys_pending.emplace_back(id, c.pending);
      }
    }
  }
  redis_key = options_.prefix + ":" + gateway_id + ":" + period_id;

  quota::RedisConnection& conn = *read_conn_;
  quota::RedisReply r;
  if (conn.Ensure()) r = conn.Command({"HGETALL", redis_key});
  if (!r) {
    MarkDown(conn.error());
    return LocalReport(gateway_id, period_id);
  }
  if (r->type != REDIS_REPLY_ARRAY) return LocalReport(gateway_id, period_id);  // WRONGTYPE …
  MarkUp();

  Report report;
  report.period_id = period_id;
  report.from_redis = true;
  for (size_t i = 0; i + 1 < r->elements; i += 2) {
    const std::string_view field = quota::ReplyText(r->element[i]);
    const size_t colon = field.rfind(':');
    if (colon == std::string_view::npos) continue;
    const std::string_view suffix = field.substr(colon + 1);
    const auto* s = std::find(std::begin(kFieldSuffixes), std::end(kFieldSuffixes), suffix);
    if (s == std::end(kFieldSuffixes)) continue;
    SpendTotals* into = nullptr;
    const std::string_view owner = field.substr(0, colon);
    if (owner == "gw") {
      into = &report.gateway;
    } else if (owner.substr(0, 2) == "k:" && ValidId(owner.substr(2))) {
      into = &report.keys[std::string(owner.substr(2))];
    } else {
      continue;
    }
    int64_t* value = FieldOf(into, static_cast<size_t>(s - std::begin(kFieldSuffixes)));
    *value = SatAdd(*value, IntOf(r->element[i + 1]));
  }
  AddTotals(&report.gateway, gw_pending);
  for (const auto& [id, t] : keys_pending) AddTotals(&report.keys[id], t);
  return report;
}

void SpendLedger::Loop() {
  std::unique_ptr<quota::RedisConnection> conn;
  if (shared_) conn = std::make_unique<quota::RedisConnection>(*options_.redis);
  auto next_refresh = Steady::now() + options_.refresh;
  auto next_evict = Steady::now() + kEvictEvery;
  std::unique_lock lock(stop_mu_);
  while (!stopping_) {
    stop_cv_.wait_for(lock, options_.flush_interval, [&] { return stopping_ || fresh_.load(); });
    if (stopping_) break;
    const bool fresh = fresh_.exchange(false);
    lock.unlock();
    if (shared_) {
      Flush(*conn, Steady::time_point::max());
      const auto now = Steady::now();
      if (now >= next_refresh) {
        Refresh(*conn, /*only_fresh=*/false);
        next_refresh = now + options_.refresh;
      } else if (fresh) {
        Refresh(*conn, /*only_fresh=*/true);
      }
    }
    if (Steady::now() >= next_evict) {
      Evict();
      next_evict = Steady::now() + kEvictEvery;
    }
    lock.lock();
  }
  lock.unlock();
  if (!shared_) return;
  const auto& o = *options_.redis;
  Flush(*conn, Steady::now() + o.connect_timeout + 4 * o.command_timeout);
  size_t unsent = 0;
  {
    std::lock_guard map_lock(mu_);
    for (const auto& [key, h] : hashes_) {
      unsent += h.gw.Unsent() ? 1 : 0;
      for (const auto& [id, c] : h.keys) unsent += c.Unsent() ? 1 : 0;
    }
  }
  if (unsent > 0) {
    log::Warn(
        "spend not sent to Redis at shutdown",
        {{"counters", std::to_string(unsent)}, {"redis", o.host + ":" + std::to_string(o.port)}});
  }
}

void SpendLedger::Flush(quota::RedisConnection& conn, Steady::time_point deadline) {
  std::lock_guard flush_lock(flush_mu_);
  if (Down(Steady::now())) return;
  std::vector<FlushItem> items;
  {
    std::lock_guard lock(mu_);
    for (auto& [map_key, h] : hashes_) {
      if (h.dirty.empty()) continue;
      FlushItem item;
      item.map_key = map_key;
      item.redis_key = h.redis_key;
      item.expire = h.expire;
      for (const std::string& id : h.dirty) {
        Counter* c = &h.gw;
        if (!id.empty()) {
          auto it = h.keys.find(id);
          if (it == h.keys.end()) continue;
          c = &it->second;
        }
        c->dirty = false;
        if (IsZero(c->pending)) continue;
        c->flushing = c->pending;
        c->pending = {};
        item.counters.emplace_back(id, c->flushing);
      }
      h.dirty.clear();
      if (!item.counters.empty()) items.push_back(std::move(item));
    }
  }
  if (items.empty()) return;

  // Per hash: MULTI, HINCRBY per non-zero field, EXPIRE, EXEC. An error
  // before EXEC (EXECABORT, LOADING, READONLY, OOM …) is worth another try;
  // one inside EXEC's answer (a field that is not an integer) is not.
  bool ok = true;
  std::string error;
  for (size_t begin = 0; begin < items.size() && ok; begin += kFlushBatch) {
    if (Steady::now() >= deadline) break;
    if (!conn.Ensure()) {
      ok = false;
      error = conn.error();
      break;
    }
    const size_t end = std::min(items.size(), begin + kFlushBatch);
    std::vector<size_t> replies(end - begin);
    for (size_t i = begin; i < end; ++i) {
      const FlushItem& item = items[i];
      conn.Append({"MULTI"});
      size_t commands = 0;
      for (const auto& [id, delta] : item.counters) {
        const std::string prefix = FieldPrefix(id);
        SpendTotals d = delta;
        for (size_t f = 0; f < std::size(kFieldSuffixes); ++f) {
          const int64_t v = *FieldOf(&d, f);
          if (v == 0) continue;
          const std::string field = prefix + std::string(kFieldSuffixes[f]);
          const std::string by = std::to_string(v);
          conn.Append({"HINCRBY", item.redis_key, field, by});
          ++commands;
        }
      }
      const std::string secs = std::to_string(item.expire.count());
      conn.Append({"EXPIRE", item.redis_key, secs});
      conn.Append({"EXEC"});
      replies[i - begin] = commands + 3;
    }
    for (size_t i = begin; i < end && ok; ++i) {
      bool transient = false;
      quota::RedisReply last;
      for (size_t n = 0; n < replies[i - begin]; ++n) {
        quota::RedisReply r = conn.Get();
        if (!r) {
          ok = false;
          error = conn.error();
          break;
        }
        if (n + 1 < replies[i - begin] && r->type == REDIS_REPLY_ERROR) {
          transient = true;
          error = "Redis error: " + std::string(quota::ReplyText(r.get()));
        }
        last = std::move(r);
      }
      if (!ok) break;
      if (last->type == REDIS_REPLY_ARRAY && !transient) {
        items[i].settled = true;
      } else {
        if (last->type == REDIS_REPLY_ERROR) {
          error = "Redis error: " + std::string(quota::ReplyText(last.get()));
        } else if (!transient) {
          error = "EXEC did not run";
        }
        ok = false;  // the connection stays in step; the rest of the batch is read below
        for (size_t j = i + 1; j < end; ++j) {
          for (size_t n = 0; n < replies[j - begin]; ++n) {
            quota::RedisReply r = conn.Get();
            if (!r) break;
            if (n + 1 == replies[j - begin] && r->type == REDIS_REPLY_ARRAY)
              items[j].settled = true;
          }
        }
      }
    }
  }

  {
    std::lock_guard lock(mu_);
    for (const FlushItem& item : items) {
      auto it = hashes_.find(item.map_key);
      if (it == hashes_.end()) continue;  // never: a hash with unsent counters stays
      Hash& h = it->second;
      for (const auto& [id, delta] : item.counters) {
        Counter* c = &h.gw;
        if (!id.empty()) {
          auto k = h.keys.find(id);
          if (k == h.keys.end()) continue;  // never, as above
          c = &k->second;
        }
        c->flushing = {};
        if (item.settled) {
          AddTotals(&c->in_flight, delta);
        } else {
          AddTotals(&c->pending, delta);
          if (!c->dirty) {
            c->dirty = true;
            h.dirty.push_back(id);
          }
        }
      }
    }
  }
  if (ok) {
    MarkUp();
  } else if (!error.empty()) {
    MarkDown(error);
  }
}

void SpendLedger::Refresh(quota::RedisConnection& conn, bool only_fresh) {
  if (Down(Steady::now())) return;
  std::vector<RefreshItem> items;
  {
    std::lock_guard lock(mu_);
    const auto recent = Steady::now() - kRecentGet;
    for (const auto& [map_key, h] : hashes_) {
      if (h.last_get < recent) continue;
      RefreshItem item;
      auto wanted = [&](const Counter& c) {
        return c.last_get >= recent && (!only_fresh || !c.read);
      };
      if (wanted(h.gw)) item.counters.emplace_back();
      for (const auto& [id, c] : h.keys) {
        if (wanted(c)) item.counters.push_back(id);
      }
      if (item.counters.empty()) continue;
      item.map_key = map_key;
      item.redis_key = h.redis_key;
      items.push_back(std::move(item));
    }
  }
  if (items.empty()) return;
  if (!conn.Ensure()) {
    MarkDown(conn.error());
    return;
  }

  // One HMGET per hash and kHmgetCounters counters, all pipelined.
  std::vector<std::pair<size_t, size_t>> commands;  // item, first counter
  for (size_t i = 0; i < items.size(); ++i) {
    const RefreshItem& item = items[i];
    for (size_t first = 0; first < item.counters.size(); first += kHmgetCounters) {
      const size_t last = std::min(item.counters.size(), first + kHmgetCounters);
      std::vector<std::string> fields;
      fields.reserve((last - first) * std::size(kFieldSuffixes));
      for (size_t c = first; c < last; ++c) {
        const std::string prefix = FieldPrefix(item.counters[c]);
        for (std::string_view s : kFieldSuffixes) fields.push_back(prefix + std::string(s));
      }
      std::vector<std::string_view> args{"HMGET", item.redis_key};
      args.insert(args.end(), fields.begin(), fields.end());
      conn.Append(args);
      commands.emplace_back(i, first);
    }
  }
  std::string error;
  for (const auto& [i, first] : commands) {
    quota::RedisReply r = conn.Get();
    if (!r) {
      error = conn.error();
      break;
    }
    RefreshItem& item = items[i];
    const size_t last = std::min(item.counters.size(), first + kHmgetCounters);
    const size_t want = (last - first) * std::size(kFieldSuffixes);
    if (r->type != REDIS_REPLY_ARRAY || r->elements != want) continue;  // WRONGTYPE …: that hash
    for (size_t c = first; c < last; ++c) {
      SpendTotals t;
      for (size_t f = 0; f < std::size(kFieldSuffixes); ++f) {
        *FieldOf(&t, f) = IntOf(r->element[(c - first) * std::size(kFieldSuffixes) + f]);
      }
      item.read.emplace_back(item.counters[c], t);
    }
  }

  {
    std::lock_guard lock(mu_);
    for (const RefreshItem& item : items) {
      auto it = hashes_.find(item.map_key);
      if (it == hashes_.end()) continue;
      Hash& h = it->second;
      for (const auto& [id, t] : item.read) {
        Counter* c = &h.gw;
        if (!id.empty()) {
          auto k = h.keys.find(id);
          if (k == h.keys.end()) continue;
          c = &k->second;
        }
        // Every flush that succeeded before this read is in t (one thread
        // flushes and refreshes, in turn).
        c->base = t;
        c->in_flight = {};
        c->read = true;
      }
    }
  }
  if (error.empty()) {
    MarkUp();
  } else {
    conn.Fail(error);
    MarkDown(error);
  }
}

void SpendLedger::Evict() {
  std::vector<std::string> dropped;  // past periods dropped with unsent adds
  {
    std::lock_guard lock(mu_);
    const auto now = Steady::now();
    const auto wall = system_clock::now();
    for (auto it = hashes_.begin(); it != hashes_.end();) {
      Hash& h = it->second;
      bool unsent = false;
      if (shared_) {
        unsent = h.gw.Unsent();
        for (const auto& [id, c] : h.keys) unsent = unsent || c.Unsent();
      }
      bool drop = false;
      if (wall >= h.end + kPastKeep) {
        drop = true;
        if (unsent) dropped.push_back(it->first);
      } else if (wall >= h.end) {
        drop = !unsent && h.last_used <= now - kPastIdle;
      } else if (shared_) {
        for (auto k = h.keys.begin(); k != h.keys.end();) {
          const Counter& c = k->second;
          const bool idle =
              !c.dirty && !c.Unsent() && c.last_used <= now - kIdle && c.last_get <= now - kIdle;
          k = idle ? h.keys.erase(k) : std::next(k);
        }
        drop = h.keys.empty() && !h.gw.dirty && !h.gw.Unsent() && h.last_used <= now - kIdle;
      }
      it = drop ? hashes_.erase(it) : std::next(it);
    }
  }
  for (const std::string& key : dropped) {
    log::Warn("spend of a past period dropped before it reached Redis", {{"hash", key}});
  }
}

}  // namespace tg::edge
