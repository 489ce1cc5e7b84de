#include "tg/balancer/config_watcher_source.h"

#include <chrono>

namespace tg::balancer {

ConfigWatcherSource::ConfigWatcherSource(tg::ConfigWatcher* watcher) : watcher_(watcher) {}

ConfigWatcherSource::~ConfigWatcherSource() { Stop(); }

void ConfigWatcherSource::Start() {
  std::lock_guard lock(signal_->mu);
  if (started_ || signal_->stopping) return;
  started_ = true;
  thread_ = std::thread([this] { Run(); });
}

void ConfigWatcherSource::Stop() {
  {
    std::lock_guard lock(signal_->mu);
    if (signal_->stopping) return;
    signal_->stopping = true;
    signal_->cv.notify_all();
  }
  if (thread_.joinable()) thread_.join();
}

void ConfigWatcherSource::Run() {
  std::shared_ptr<const tg::ConfigSnapshot> applied;
  int64_t applied_revision = -1;
  while (true) {
    auto snapshot = watcher_->snapshot();
    // The watcher's initial empty snapshot is not a configuration: wait for
    // the feed's first event (connected), or any revision it delivered.
    const bool loaded = snapshot->revision() > 0 || watcher_->connected();
    if (loaded && snapshot != applied) {
      auto set = std::make_shared<UpstreamSet>();
      set->revision = snapshot->revision();
      set->upstreams.reserve(snapshot->upstreams().size());
      for (const auto& [id, upstream] : snapshot->upstreams()) set->upstreams.push_back(upstream);
      current_.store(set);
      if (on_change_) on_change_();
      applied = snapshot;
      applied_revision = snapshot->revision();
    }
    {
      std::lock_guard lock(signal_->mu);
      if (signal_->stopping) return;
      signal_->fired = false;
    }
    // Woken by the next revision; the deadline re-checks anyway (quickly
    // until loaded: connecting to an empty tg-config moves no revision).
    const auto wait = applied ? std::chrono::milliseconds(1000) : std::chrono::milliseconds(50);
    const auto deadline = std::chrono::steady_clock::now() + wait;
    std::weak_ptr<Signal> weak = signal_;
    watcher_->WaitForRevision(applied_revision + 1, deadline, [weak](bool reached) {
      if (auto s = weak.lock()) {
        std::lock_guard lock(s->mu);
        s->fired = true;
        s->reached = reached;
        s->cv.notify_all();
      }
    });
    std::unique_lock lock(signal_->mu);
    signal_->cv.wait(lock, [this] { return signal_->fired || signal_->stopping; });
    // A watcher that is not running answers at once; do not spin on it.
    if (!signal_->reached) {
      signal_->cv.wait_until(lock, deadline, [this] { return signal_->stopping; });
    }
    if (signal_->stopping) return;
  }
}

}  // namespace tg::balancer
