#pragma once

#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>

#include "tg/balancer/upstream_source.h"
#include "tg/common/config_watcher.h"

namespace tg::balancer {

// Upstreams from the suite's shared tg::ConfigWatcher (tg-config's Watch
// feed, credentials masked: the balancer never hands them out).
//
// ConfigWatcher has no change callback, so one thread of ours waits for the
// next revision (WaitForRevision(applied + 1)), whose completion only wakes
// it, then publishes the new upstreams and runs on_change there: the
// watcher's gRPC threads never wait for a plan rebuild. A change is in effect
// as soon as the watcher has applied it (milliseconds). Entities are shared
// between snapshots, so unchanged upstreams keep their pointers and the
// balancer skips them.
class ConfigWatcherSource final : public UpstreamSource {
 public:
  // `watcher` is started and stopped by the caller and outlives this.
  explicit ConfigWatcherSource(tg::ConfigWatcher* watcher);
  ~ConfigWatcherSource() override;  // Stop()

  void Start();
  void Stop();  // Idempotent.

  std::shared_ptr<const UpstreamSet> Current() const override { return current_.load(); }
  void SetOnChange(std::function<void()> on_change) override { on_change_ = std::move(on_change); }

 private:
  void Run();

  tg::ConfigWatcher* const watcher_;
  std::function<void()> on_change_;
  std::atomic<std::shared_ptr<const UpstreamSet>> current_;

  // Shared with the WaitForRevision callbacks, which may outlive this object
  // by a moment (the watcher holds them until they fire).
  struct Signal {
    std::mutex mu;
    std::condition_variable cv;
    bool fired = false;
    bool reached = false;
    bool stopping = false;
  };
  std::shared_ptr<Signal> signal_ = std::make_shared<Signal>();
  bool started_ = false;
  std::thread thread_;
};

}  // namespace tg::balancer
