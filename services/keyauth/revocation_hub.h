#pragma once

#include <grpcpp/support/status.h>

#include <chrono>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <unordered_set>
#include <vector>

#include "tg/v1/keyauth.pb.h"

namespace tg::keyauth {

// A stream that receives key events: a WatchKeys reactor, or a test's recorder.
class KeyEventSink {
 public:
  virtual ~KeyEventSink() = default;
  // Called with the hub's lock held: must neither block nor call the hub.
  virtual void Send(const tg::v1::KeyEvent& event) = 0;
  // The hub is shutting down: end the stream with `status`.
  virtual void Close(const grpc::Status& status) = 0;
};

struct Revocation {
  int64_t revision = 0;
  std::string key_id;
  std::string gateway_id;
};

struct RevocationHubOptions {
  // Revocations kept in memory so a reconnecting watcher can resume without a reset.
  size_t window = 4096;
  // Quiet streams get a heartbeat this often, so callers notice dead streams.
  std::chrono::milliseconds heartbeat_interval{5000};
};

// Fans revocations out to every WatchKeys stream of this replica. The feed
// publishes in revision order; subscribing and publishing share one lock, so a
// new stream misses nothing between its first event and the next publication.
class RevocationHub {
 public:
  explicit RevocationHub(RevocationHubOptions options = {});

  // The key state was (re)loaded at `revision`: the window restarts there and
  // every open stream is told to drop its cache.
  void Reset(int64_t revision);
  // Revocations committed up to `revision` (which may also cover other changes).
  void Publish(const std::vector<Revocation>& revoked, int64_t revision);

  // Registers `sink` and sends it a reset, or, when `from_revision` is still
  // covered by the window, the revocations after it. false (nothing sent) once
  // the hub is closed.
  bool Subscribe(KeyEventSink* sink, int64_t from_revision);
  // After this returns the hub never touches `sink` again.
  void Unsubscribe(KeyEventSink* sink);

  void HeartbeatIfDue(std::chrono::steady_clock::time_point now);
  // Closes every stream and refuses new ones (server shutdown).
  void CloseAll(const grpc::Status& status);

  int64_t revision() const;
  size_t subscribers() const;

 private:
  static tg::v1::KeyEvent RevokedEvent(const Revocation& r);
  void BroadcastLocked(const tg::v1::KeyEvent& event);

  const RevocationHubOptions options_;
  mutable std::mutex mu_;
  std::unordered_set<KeyEventSink*> sinks_;
  std::deque<Revocation> window_;
  int64_t window_start_ = 0;  // every revocation after this is in window_
  int64_t revision_ = 0;
  bool closed_ = false;
  std::chrono::steady_clock::time_point last_heartbeat_{};
};

}  // namespace tg::keyauth
