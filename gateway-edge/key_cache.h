#pragma once

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "tg/common/clock.h"
#include "tg/common/trace.h"
#include "tg/v1/keyauth.grpc.pb.h"

namespace tg::edge {

struct KeyCacheOptions {
  // A verified key is re-checked with tg-keyauth after this long even when no
  // revocation arrived (a safety net, not the revocation path).
  std::chrono::seconds positive_ttl{300};
  // An unknown key is answered from cache this long, so a client hammering
  // with a bad key costs one RPC per second, not one per request.
  std::chrono::milliseconds negative_ttl{1000};
  // While the revocation stream is down, cached verifications older than this
  // are re-checked: a revocation must take effect within a second.
  std::chrono::milliseconds disconnected_ttl{1000};
  std::chrono::milliseconds verify_deadline{2000};
  size_t max_entries = 200000;  // the cache is cleared when it grows past this
  // How long a revocation is remembered to refuse stale VerifyKey answers
  // (longer than any replica can lag and stay in rotation: a replica behind a
  // revocation we know of must catch up before it answers, see min_revision).
  std::chrono::seconds revoked_retention{600};
  // Time as the cache sees it (ages of entries, expiry of cached keys);
  // nullptr: the system's. Tests pass a ManualClock.
  const Clock* clock = nullptr;
};

// Verifies gateway keys for the proxy: a hit costs one SHA-256 and a hash
// lookup; a miss costs one VerifyKey RPC (concurrent misses for the same key
// share it). Revocations arrive on tg-keyauth's WatchKeys stream and drop the
// key's entry at once. Raw keys are never stored: entries are keyed by the
// key's SHA-256.
//
// Revisions (several tg-keyauth replicas, one of which may lag): the cache
// remembers every revocation it learned (WatchKeys events, and this edge's
// own admin DELETEs through Revoke) with its revision, and knows them all
// above `floor` (a reset or a pruned revocation raises it). A VerifyKey asks
// for min_revision = the newest of those, so the replica answering must have
// applied them (it catches up or answers UNAVAILABLE); an answer for a key
// the cache knows revoked, or at a revision below the floor, never admits
// the key.
class KeyCache {
 public:
  struct Verified {
    std::string key_id;
    std::string gateway_id;
    std::optional<std::chrono::system_clock::time_point> expires_at;
  };
  // ok with the key, or nullopt + UNAUTHENTICATED (unknown, expired, revoked)
  // or UNAVAILABLE (tg-keyauth unreachable).
  using Done = std::function<void(std::optional<Verified>, grpc::Status)>;

  KeyCache(std::shared_ptr<grpc::Channel> keyauth, KeyCacheOptions options = {});
  ~KeyCache();

  void Start();  // opens the revocation stream (reconnecting with backoff)
  void Stop();

  // Calls `done` exactly once: inline on a cache hit, else from a gRPC thread.
  // A miss's VerifyKey call carries `trace` (the request's span) as its
  // traceparent, so tg-keyauth's span joins the request's trace.
  void Verify(std::string_view key, Done done,
              const std::optional<trace::TraceContext>& trace = std::nullopt);

  // This edge revoked `key_id` at `revision` (the admin API's DELETE, once
  // tg-keyauth committed it): the entry is gone when this returns, and no
  // older VerifyKey answer can bring it back.
  void Revoke(const std::string& key_id, int64_t revision);

  bool watching() const { return watching_.load(); }
  size_t size() const;
  // The min_revision a VerifyKey sent now would carry.
  int64_t required_revision() const;

 private:
  class RevocationStream;
  struct Entry {
    std::optional<Verified> verified;  // nullopt: known bad
    std::chrono::steady_clock::time_point checked;
  };
  struct Pending {
    std::vector<Done> waiters;
  };
  struct Revocation {
    int64_t revision;
    std::chrono::steady_clock::time_point at;
  };

  void StartVerify(std::string key, std::string hash, int attempt,
                   const std::optional<trace::TraceContext>& trace);
  void OnVerified(const std::string& hash, std::optional<Verified> v, int64_t revision,
                  grpc::Status status);
  void OnRevoked(const std::string& key_id, int64_t revision);
  void OnReset(int64_t revision);
  void RevokeLocked(const std::string& key_id, int64_t revision);
  void PruneRevokedLocked(std::chrono::steady_clock::time_point now);
  // A key the cache knows revoked is refused at once, whatever answered (an
  // OK for it is stale by definition: key ids are never reused).
  bool IsRevoked(const std::string& key_id) const;
  void OnStreamEnded();
  void OpenStream();

  std::unique_ptr<tg::v1::KeyAuthService::Stub> stub_;
  const KeyCacheOptions options_;
  const Clock& clock_;

  mutable std::mutex mu_;
  std::unordered_map<std::string, Entry> entries_;       // SHA-256(key) → entry
  std::unordered_map<std::string, std::string> by_id_;   // key id → SHA-256(key)
  std::unordered_map<std::string, Pending> pending_;     // misses in flight
  std::unordered_map<std::string, Revocation> revoked_;  // key id → its revocation
  int64_t floor_ = 0;     // revocations at or below are not all in revoked_
  int64_t required_ = 0;  // max(floor_, every revision in revoked_): min_revision
  std::chrono::steady_clock::time_point last_prune_;

  std::atomic<bool> watching_{false};
  std::atomic<bool> stopping_{false};
  std::mutex stream_mu_;
  std::shared_ptr<RevocationStream> stream_;
  int64_t revision_ = 0;  // last revocation revision seen (resume point)
  std::chrono::milliseconds backoff_{200};
  std::thread reconnect_thread_;
  std::condition_variable reconnect_cv_;
  bool reconnect_wanted_ = false;
};

}  // namespace tg::edge
