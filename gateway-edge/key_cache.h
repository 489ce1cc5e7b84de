#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <thread>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <grpcpp/grpcpp.h>

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
};

// Verifies gateway keys for the proxy: a hit costs one SHA-256 and a hash
// lookup; a miss costs one VerifyKey RPC (concurrent misses for the same key
// share it). Revocations arrive on tg-keyauth's WatchKeys stream and drop the
// key's entry at once. Raw keys are never stored: entries are keyed by the
// key's SHA-256.
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

  bool watching() const { return watching_.load(); }
  size_t size() const;

 private:
  class RevocationStream;
  struct Entry {
    std::optional<Verified> verified;  // nullopt: known bad
    std::chrono::steady_clock::time_point checked;
  };
  struct Pending {
    std::vector<Done> waiters;
  };

  void OnVerified(const std::string& hash, std::optional<Verified> v, const grpc::Status& status);
  void OnRevoked(const std::string& key_id);
  void OnReset();
  void OnStreamEnded();
  void OpenStream();

  std::unique_ptr<tg::v1::KeyAuthService::Stub> stub_;
  const KeyCacheOptions options_;

  mutable std::mutex mu_;
  std::unordered_map<std::string, Entry> entries_;      // SHA-256(key) → entry
  std::unordered_map<std::string, std::string> by_id_;  // key id → SHA-256(key)
  std::unordered_map<std::string, Pending> pending_;    // misses in flight

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
