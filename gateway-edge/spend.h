#pragma once

// What requests cost and what a gateway and each of its API keys spent per
// budget period (tg.v1.Budget). Prices: a built-in table of list prices
// that a gateway's model_prices override. Spend: a ledger shared by every
// edge through Redis, answered from memory on the request path.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "tg/edge/quota/redis_connection.h"
#include "tg/edge/quota/redis_quota_store.h"
#include "tg/v1/resources.pb.h"

namespace tg::edge {

// USD per million tokens.
struct Price {
  double input_per_million = 0;
  double output_per_million = 0;
};

// Built-in list prices (the table is in spend.cc, with where each figure
// comes from). Matching, here and for a gateway's model_prices: the exact
// name; else the longest entry that is a prefix of the model followed by
// '-', '@', ':' or '.' ("gpt-4o-mini-2024-07-18" -> "gpt-4o-mini",
// "anthropic.claude-3-5-sonnet-20240620-v1:0" -> "anthropic.claude-3-5-sonnet");
// then the same again without a Bedrock inference profile's region prefix
// ("us.", "eu.", "apac.", "global."). Names longer than 256 bytes match
// nothing. nullopt: unknown.
std::optional<Price> DefaultPrice(std::string_view model);

// The gateway's model_prices first, then DefaultPrice. An override is used
// when its key matches at least as specifically as the built-in entry does
// (an override "gpt-4o" does not price "gpt-4o-mini-…", which has an entry
// of its own); a field it leaves unset comes from DefaultPrice(model), else 0.
std::optional<Price> PriceOf(const tg::v1::Gateway& gateway, std::string_view model);

// Micro-dollars for the tokens at the price, rounded up; 0 for negative
// token counts and negative or NaN prices; INT64_MAX instead of overflowing.
// Exact for prices with up to 6 decimals (1,000 tokens at 0.15 -> 150).
int64_t CostMicros(const Price& price, int64_t input_tokens, int64_t output_tokens);

// The built-in table, in its order (docs and tests).
std::vector<std::pair<std::string_view, Price>> DefaultPriceTable();

// A budget period on the UTC calendar: "daily" or "monthly" (any other
// value, "" included, is monthly). id: "d20261205" or "m202612"; end: the
// first instant of the next period.
struct Period {
  std::string id;
  std::chrono::system_clock::time_point end;
};
Period PeriodOf(std::string_view period, std::chrono::system_clock::time_point now);

struct SpendTotals {
  int64_t usd_micros = 0;
  int64_t input_tokens = 0;
  int64_t output_tokens = 0;
  int64_t requests = 0;
};

// Spend per gateway and per API key per period, shared by every edge
// through Redis, with no Redis call on the request path.
//
// Redis: one hash per gateway and period, <prefix>:<gateway_id>:<period_id>,
// fields gw:usd|in|out|req and k:<key_id>:usd|in|out|req, changed only by
// HINCRBY (MULTI … EXPIRE … EXEC per hash; kept 3 days after the last write
// for a daily period, 40 days for a monthly one). Ids are at most 64 bytes of
// [A-Za-z0-9_-], period ids as PeriodOf makes them; anything else is
// ignored (Get answers zeros, Add drops it; a bad key id still counts for
// the gateway).
//
// Each counter this edge knows is base (Redis's value at the last refresh) +
// pending (added here, not yet sent) + flushing (being sent) + in_flight
// (sent since the last refresh). The background thread flushes every
// flush_interval and then refreshes: it alone writes and refreshes, so a
// refresh reads every flush that succeeded before it, and drops in_flight of
// the counters it read; nothing is counted twice. A flush whose connection
// fails is sent again (if EXEC had reached Redis but its answer did not come
// back, that delta counts twice: over, never under). Refresh: every
// `refresh`, one HMGET per hash got within the last minute, for the gateway
// and the keys got within the last minute; a counter got for the first time
// is read at once (the thread is woken), so a new (gateway, key) shows other
// edges' spend within a round trip.
//
// Redis down (connection error or timeout): no Redis call for the store
// options' down_retry, then one try; adds stay pending (four counters per
// key, however many adds) and are sent when Redis answers. One log line when
// Redis goes down and one when it is back.
//
// Memory: with Redis, a key's counters are forgotten after 10 minutes
// without a Get or Add once nothing is left to send, and a gateway's hash
// when all of it is; a past period once nothing is left to send and it was
// unused for a minute, and an hour after its end in any case (unsent adds
// are then dropped, with a log line). Without Redis the counters are the
// only record, so the current period's are kept; past periods go as above.
//
// Threads: Get and Add take one mutex for a map lookup and a few additions;
// the background thread has its own connection and never calls Redis under
// that mutex; Read has its own connection and waits for a flush in progress
// (so that what it reads and what is pending never overlap).
class SpendLedger {
 public:
  struct Options {
    std::optional<quota::RedisQuotaOptions> redis;  // nullopt: this edge's memory only
    std::string prefix = "tg:spend:v1";             // (redis->prefix is not used)
    std::chrono::milliseconds refresh{1000};        // how stale Get may be (other edges' spend)
    std::chrono::milliseconds flush_interval{200};
  };

  explicit SpendLedger(Options options);
  // Stops the thread, then sends what is pending (skipped while Redis is
  // down; bounded to connect_timeout + 4 x command_timeout).
  ~SpendLedger();
  SpendLedger(const SpendLedger&) = delete;
  SpendLedger& operator=(const SpendLedger&) = delete;

  // Spend so far in period_id: other edges' as of the last refresh plus
  // this edge's own adds. Registers the counters for refresh. Never calls
  // Redis. An empty key_id: zeros.
  SpendTotals GatewaySpent(const std::string& gateway_id, const std::string& period_id);
  SpendTotals KeySpent(const std::string& gateway_id, const std::string& key_id,
                       const std::string& period_id);
  // Counts delta for the gateway and (unless key_id is empty or invalid)
  // the key, here at once and in Redis within flush_interval. Saturating.
  void Add(const std::string& gateway_id, const std::string& key_id, const std::string& period_id,
           const SpendTotals& delta);

  // The admin view of a gateway's period: one HGETALL of the whole hash
  // plus this edge's unsent adds; from_redis=false when Redis is not
  // configured, down or fails (then the local view). Bounded by a flush in
  // progress plus connect_timeout + command_timeout.
  struct Report {
    std::string period_id;
    bool from_redis = false;
    SpendTotals gateway;
    std::map<std::string, SpendTotals> keys;
  };
  Report Read(const std::string& gateway_id, const std::string& period_id);

  // Redis is configured and its last call succeeded (true until the first
  // failure).
  bool redis_up() const;

 private:
  struct Counter;
  struct Hash;
  struct FlushItem;
  struct RefreshItem;

  Hash* FindOrCreate(const std::string& gateway_id, const std::string& period_id,
                     std::chrono::steady_clock::time_point now, bool* created);
  Report LocalReport(const std::string& gateway_id, const std::string& period_id);

  bool Down(std::chrono::steady_clock::time_point now) const;
  void MarkDown(const std::string& reason);
  void MarkUp();

  void Loop();
  void Flush(quota::RedisConnection& conn, std::chrono::steady_clock::time_point deadline);
  void Refresh(quota::RedisConnection& conn, bool only_fresh);
  void Evict();

  const Options options_;
  const bool shared_;  // Redis configured

  std::mutex mu_;  // hashes_
  std::unordered_map<std::string, Hash> hashes_;

  std::mutex flush_mu_;  // held by a flush from taking pending until its outcome is applied
  std::mutex read_mu_;   // read_conn_
  std::unique_ptr<quota::RedisConnection> read_conn_;

  std::atomic<int64_t> down_until_ns_{0};  // steady clock
  std::atomic<bool> up_;
  std::atomic<bool> fresh_{false};  // a counter was registered: refresh it now

  std::mutex stop_mu_;
  std::condition_variable stop_cv_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace tg::edge
