#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "tg/balancer/clock.h"
#include "tg/balancer/health_store.h"

namespace tg::balancer {

struct RedisHealthStoreOptions {
  std::string host = "127.0.0.1";
  int port = 6379;
  std::string password;                   // AUTH when set (never logged)
  int db = 0;                             // SELECT for the keys; pub/sub is server-wide
  std::string prefix = "tg:balancer:v1";  // of every key and of the channel
  std::chrono::milliseconds connect_timeout{500};
  std::chrono::milliseconds command_timeout{500};  // a slower Redis counts as unreachable
  std::chrono::milliseconds initial_backoff{100};  // reconnect delays double up to max_backoff
  std::chrono::milliseconds max_backoff{1000};     // so a returning Redis is found within ~1 s
  size_t max_queued_events = 65536;  // beyond this, events wait for the next resync instead
};

// redis://[[user]:password@]host[:port][/db]; nullopt (and *error) otherwise.
std::optional<RedisHealthStoreOptions> ParseRedisUrl(std::string_view url, std::string* error);

// Passive health shared through Redis (hiredis, synchronous API on two
// threads of its own; no gRPC thread ever waits for Redis).
//
// Key schema (prefix "tg:balancer:v1"):
//   <prefix>:health:<upstream_id>:<target_id>   hash
//       failures          consecutive failures
//       ejections         consecutive ejections (backoff exponent)
//       ejected_until_ms  Unix ms; 0 = not ejected
//       version           NextVersion() of the write: newer wins everywhere
//     TTL: the rest of the ejection + 10 x interval, renewed on every write, so
//     idle counters fade away and a forgotten key simply means healthy.
//   <prefix>:health                             pub/sub channel; every write
//     publishes "<upstream_id> <target_id> <failures> <ejections>
//     <ejected_until_ms> <version>".
//
// Writer thread: applies each recorded verdict to the stored state in an
// optimistic transaction (WATCH, HGETALL, ApplyVerdict, MULTI/HSET/PEXPIRE/
// PUBLISH/EXEC, retried on conflict), so concurrent replicas count every
// failure exactly once with the same policy code as the local view. Two
// round trips per event, and events occur only when a target's health
// changes (successes on a healthy target change nothing), so the steady state
// costs Redis nothing.
//
// Subscriber thread: SUBSCRIBEs to the channel and hands every published
// state to the sink; replicas therefore follow each other within
// milliseconds. A lost connection is retried with backoff; after every
// (re)subscription the writer resynchronises: for each followed target the
// newer of the local and the stored state wins (local states made while
// Redis was away are written back, stored ones adopted).
//
// Degraded while either connection is down or a resynchronisation is pending.
class RedisHealthStore final : public HealthStore {
 public:
  RedisHealthStore(RedisHealthStoreOptions options, const Clock* clock);
  ~RedisHealthStore() override;  // Stop()

  void Start(HealthSink* sink) override;
  void Stop() override;
  void Record(HealthEvent event) override;
  void Follow(std::vector<FollowedTarget> targets) override;
  // SET <prefix>:probe:<upstream_id>:<target_id> <now> NX PX ttl_ms on a
  // connection of its own (the caller's thread; never the writer's, whose
  // queue must not wait behind probes). After a connection failure it
  // answers true without asking for a second.
  bool ClaimProbe(const std::string& upstream_id, const std::string& target_id,
                  int64_t ttl_ms) override;
  HealthStoreStatus status() const override;
  void SetStatusListener(std::function<void(const HealthStoreStatus&)> listener) override;

  std::string KeyOf(std::string_view upstream_id, std::string_view target_id) const;
  const std::string& channel() const { return channel_; }

 private:
  class Connection;

  void WriterLoop();
  void SubscriberLoop();
  // false: the connection failed (and was closed).
  bool Transact(Connection& conn, const HealthEvent& event);
  bool Sync(Connection& conn, const std::vector<FollowedTarget>& targets);
  bool WriteIfNewer(Connection& conn, const FollowedTarget& target, const TargetHealthState& local);
  // With `key` WATCHed: MULTI, HSET of `s`, PEXPIRE, PUBLISH, EXEC.
  enum class WriteOutcome { kConnectionLost, kWritten, kConflict, kRejected };
  WriteOutcome WriteState(Connection& conn, const std::string& key, std::string_view upstream_id,
                          std::string_view target_id, const TargetHealthState& s,
                          int64_t interval_ms);
  std::string Message(std::string_view upstream_id, std::string_view target_id,
                      const TargetHealthState& s) const;
  void OnMessage(std::string_view payload);

  void SetWriterOk(bool ok, const std::string& reason);
  void SetSubscriberOk(bool ok, const std::string& reason);
  void OnResyncDone();
  void PublishStatus();

  const RedisHealthStoreOptions options_;
  const Clock* const clock_;
  const std::string channel_;
  HealthSink* sink_ = nullptr;

  // Writer work, guarded by mu_.
  std::mutex mu_;
  std::condition_variable cv_;
  bool started_ = false;
  bool stopping_ = false;
  std::deque<HealthEvent> events_;
  std::vector<FollowedTarget> followed_;
  std::vector<FollowedTarget> to_load_;  // followed targets not loaded yet
  bool resync_requested_ = false;

  // Status, guarded by status_mu_.
  mutable std::mutex status_mu_;
  bool writer_ok_ = false;
  bool subscriber_ok_ = false;
  bool resync_pending_ = true;
  std::string writer_reason_ = "connecting to Redis";
  std::string subscriber_reason_ = "connecting to Redis";
  bool last_degraded_ = true;
  std::function<void(const HealthStoreStatus&)> listener_;

  // ClaimProbe's connection, guarded by claim_mu_.
  std::mutex claim_mu_;
  std::unique_ptr<Connection> claim_conn_;
  std::chrono::steady_clock::time_point claim_retry_at_{};

  int wake_fd_ = -1;  // eventfd: wakes the subscriber's poll on Stop
  std::thread writer_;
  std::thread subscriber_;
};

}  // namespace tg::balancer
