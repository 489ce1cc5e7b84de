#pragma once

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "tg/common/config_snapshot.h"
#include "tg/v1/config.grpc.pb.h"

namespace tg {

struct ConfigWatcherOptions {
  // Ask tg-config for credentials in clear (tg-adapter calls providers with
  // them); every other consumer leaves them masked.
  bool include_credentials = false;
  std::chrono::milliseconds initial_backoff{200};  // first reconnect delay after a stream ends
  std::chrono::milliseconds max_backoff{5000};     // reconnect delays double up to this
  // No event, not even a heartbeat, for this long: the stream is presumed dead
  // (e.g. a silently dropped connection) and is restarted.
  std::chrono::milliseconds stale_after{30000};
};

// Follows tg.v1.ConfigService/Watch (credentials masked) and keeps the
// current ConfigSnapshot. Readers call snapshot(): one atomic load, no lock
// shared with the writer. When the stream ends it reconnects with backoff,
// resuming from the revision it holds, so a reconnect normally costs only the
// changes missed. While tg-config is unreachable the new stream waits for the
// channel to connect (wait_for_ready), so it resumes as soon as tg-config is
// back (with tg::DialInternal's channels, within about a second).
//
// Threads: events are applied on gRPC's callback threads (one stream at a
// time, so applies never race); a small timer thread fires WaitForRevision
// deadlines and reconnects.
class ConfigWatcher {
 public:
  ConfigWatcher(std::shared_ptr<grpc::Channel> channel, ConfigWatcherOptions options = {});
  ~ConfigWatcher();  // Stop()
  ConfigWatcher(const ConfigWatcher&) = delete;
  ConfigWatcher& operator=(const ConfigWatcher&) = delete;

  void Start();
  // Cancels the stream, waits for it to end, and fails pending waits. Idempotent.
  void Stop();

  std::shared_ptr<const ConfigSnapshot> snapshot() const { return snapshot_.load(); }
  int64_t revision() const { return snapshot()->revision(); }

  // The stream is up and has delivered its first complete event (the state
  // is loaded and current).
  bool connected() const { return connected_.load(); }

  // For readiness: whether a configuration from tg-config is held at all,
  // and since when the stream has been down.
  struct Health {
    bool loaded = false;     // a configuration was loaded (it may be getting old)
    bool connected = false;  // as connected()
    // When the stream went down, while it is (system clock); unset while
    // connected and before the first connection.
    std::optional<std::chrono::system_clock::time_point> down_since;
  };
  Health health() const;

  // Calls done(true) once the snapshot has reached `revision`, or done(false)
  // at `deadline` (or on Stop, or when not started). May call done before
  // returning, and otherwise calls it from a gRPC or timer thread: done must
  // be quick and must not block.
  void WaitForRevision(int64_t revision, std::chrono::steady_clock::time_point deadline,
                       std::function<void(bool reached)> done);

  // Calls `listener` with the current snapshot at once, then with every new
  // snapshot before it is published: whoever sees revision R (snapshot(),
  // revision(), WaitForRevision) also sees what the listener derived from R.
  // Runs on the watch's callback thread: it must be quick and must not call
  // back into the watcher.
  using SnapshotListener = std::function<void(const std::shared_ptr<const ConfigSnapshot>&)>;
  void AddSnapshotListener(SnapshotListener listener);

 private:
  class Stream;
  struct Waiter {
    int64_t revision;
    std::chrono::steady_clock::time_point deadline;
    std::function<void(bool)> done;
  };

  void StartStream();
  void OnEvent(Stream* stream, tg::v1::WatchEvent& event);
  void OnStreamDone(Stream* stream, const grpc::Status& status);
  void TimerLoop();
  std::chrono::milliseconds NextBackoff();

  const ConfigWatcherOptions options_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<tg::v1::ConfigService::Stub> stub_;

  std::atomic<std::shared_ptr<const ConfigSnapshot>> snapshot_;
  std::mutex listeners_mu_;  // held while a new snapshot is derived and published
  std::vector<SnapshotListener> listeners_;
  std::atomic<bool> connected_{false};
  std::atomic<bool> loaded_{false};
  std::atomic<int64_t> down_since_ms_{0};  // Unix ms; 0: not down (or never up)

  std::mutex mu_;
  std::condition_variable cv_;
  bool started_ = false;
  bool stopping_ = false;
  bool stream_active_ = false;  // from StartStream until the stream's OnDone
  int streams_alive_ = 0;       // Stream objects not yet destroyed
  std::shared_ptr<Stream> stream_;
  std::chrono::steady_clock::time_point last_event_;
  std::optional<std::chrono::steady_clock::time_point> reconnect_at_;
  std::chrono::milliseconds backoff_;
  int failures_ = 0;  // streams in a row that ended before their first event
  std::list<Waiter> waiters_;
  std::thread timer_;
};

}  // namespace tg
