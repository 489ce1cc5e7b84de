#include "tg/common/config_watcher.h"

#include <random>
#include <vector>

#include "tg/common/log.h"

namespace tg {

using Clock = std::chrono::steady_clock;

class ConfigWatcher::Stream : public grpc::ClientReadReactor<tg::v1::WatchEvent> {
 public:
  explicit Stream(ConfigWatcher* watcher) : alive_(watcher), watcher_(watcher) {}

  // `self` keeps the stream alive until OnDone: gRPC owns no reference.
  void Begin(tg::v1::ConfigService::Stub* stub, int64_t from_revision, bool include_credentials,
             std::shared_ptr<Stream> self) {
    self_ = std::move(self);
    request_.set_from_revision(from_revision);
    request_.set_include_credentials(include_credentials);
    // While tg-config is away the call waits for the channel to connect
    // rather than failing at once: it then starts the moment tg-config is
    // back, instead of at the next backoff tick (which could leave the
    // snapshot stale for seconds after a restart).
    context_.set_wait_for_ready(true);
    stub->async()->Watch(&context_, &request_, this);
    StartRead(&event_);
    StartCall();
  }

  // Safe at any time, also after OnDone: the context keeps its call alive.
  void Cancel() { context_.TryCancel(); }

  void OnReadDone(bool ok) override {
    if (!ok) return;  // the stream is over; OnDone follows
    try {
      watcher_->OnEvent(this, event_);
    } catch (const std::exception& e) {
      log::Error("applying a config event failed", {{"what", e.what()}});
    }
    event_.Clear();
    StartRead(&event_);
  }

  void OnDone(const grpc::Status& status) override {
    watcher_->OnStreamDone(this, status);
    auto last_reference = std::move(self_);  // may destroy this on return
  }

  bool got_event = false;  // guarded by the watcher's mu_

  // A snapshot arriving in parts (config.proto): gathered here, applied at
  // its last part. Only the stream's reactions touch it, one at a time.
  bool assembling = false;
  int64_t assembling_revision = 0;
  tg::v1::ConfigSnapshot assembled;

 private:
  // Counts the stream as alive until its last member is gone. Declared first,
  // so destroyed last, after the ClientContext: Stop() waits for it, so that
  // no part of a call outlives the watcher (and its channel).
  struct Alive {
    // StartStream counts the stream in, under the lock it already holds.
    explicit Alive(ConfigWatcher* w) : watcher(w) {}
    ~Alive() {
      std::lock_guard lock(watcher->mu_);
      --watcher->streams_alive_;
      watcher->cv_.notify_all();
    }
    ConfigWatcher* watcher;
  };

  Alive alive_;
  ConfigWatcher* const watcher_;
  std::shared_ptr<Stream> self_;
  grpc::ClientContext context_;
  tg::v1::WatchRequest request_;
  tg::v1::WatchEvent event_;
};

ConfigWatcher::ConfigWatcher(std::shared_ptr<grpc::Channel> channel, ConfigWatcherOptions options)
    : options_(options),
      channel_(std::move(channel)),
      stub_(tg::v1::ConfigService::NewStub(channel_)),
      snapshot_(ConfigSnapshot::Empty()),
      backoff_(options.initial_backoff) {}

ConfigWatcher::~ConfigWatcher() { Stop(); }

void ConfigWatcher::Start() {
  {
    std::lock_guard lock(mu_);
    if (started_ || stopping_) return;
    started_ = true;
  }
  timer_ = std::thread([this] { TimerLoop(); });
  StartStream();
}

void ConfigWatcher::Stop() {
  std::shared_ptr<Stream> stream;
  {
    std::lock_guard lock(mu_);
    if (stopping_) return;
    stopping_ = true;
    stream = stream_;
    cv_.notify_all();
  }
  if (stream) stream->Cancel();
  stream.reset();  // the wait below is for every Stream to be destroyed
  {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [this] { return !stream_active_ && streams_alive_ == 0; });
  }
  if (timer_.joinable()) timer_.join();
  std::list<Waiter> left;
  {
    std::lock_guard lock(mu_);
    left.swap(waiters_);
  }
  for (auto& w : left) w.done(false);
}

void ConfigWatcher::StartStream() {
  std::shared_ptr<Stream> stream;
  int64_t from;
  {
    std::lock_guard lock(mu_);
    if (stopping_ || stream_active_) return;
    reconnect_at_.reset();
    stream_active_ = true;
    stream = std::make_shared<Stream>(this);
    ++streams_alive_;
    stream_ = stream;
    last_event_ = Clock::now();
    from = snapshot_.load()->revision();
  }
  log::Debug("config watch starting", {{"from_revision", std::to_string(from)}});
  // Outside the lock: gRPC may run reactions inline.
  stream->Begin(stub_.get(), from, options_.include_credentials, stream);
}

namespace {

template <typename T>
void MoveAppend(google::protobuf::RepeatedPtrField<T>* from,
                google::protobuf::RepeatedPtrField<T>* to) {
  to->Reserve(to->size() + from->size());
  for (auto& item : *from) *to->Add() = std::move(item);
}

}  // namespace

void ConfigWatcher::OnEvent(Stream* stream, tg::v1::WatchEvent& event) {
  if (event.has_snapshot_part()) {
    auto* part = event.mutable_snapshot_part();
    if (stream->assembling && stream->assembling_revision != event.revision()) {
      log::Error("config watch: snapshot parts of two revisions; restarting the watch",
                 {{"revision", std::to_string(event.revision())},
                  {"expected", std::to_string(stream->assembling_revision)}});
      stream->Cancel();
      return;
    }
    stream->assembling = true;
    stream->assembling_revision = event.revision();
    auto* entities = part->mutable_entities();
    MoveAppend(entities->mutable_gateways(), stream->assembled.mutable_gateways());
    MoveAppend(entities->mutable_upstreams(), stream->assembled.mutable_upstreams());
    MoveAppend(entities->mutable_services(), stream->assembled.mutable_services());
    MoveAppend(entities->mutable_rules(), stream->assembled.mutable_rules());
    if (!part->last()) {
      std::lock_guard lock(mu_);
      last_event_ = Clock::now();  // a long snapshot is not a silent stream
      return;
    }
  } else if (stream->assembling) {
    log::Error("config watch: an event inside a snapshot sent in parts; restarting the watch",
               {{"revision", std::to_string(event.revision())}});
    stream->Cancel();
    return;
  }
  auto current = snapshot_.load();
  std::shared_ptr<const ConfigSnapshot> next;
  switch (event.event_case()) {
    case tg::v1::WatchEvent::kSnapshotPart:
      next = ConfigSnapshot::FromProto(stream->assembled, event.revision());
      stream->assembled.Clear();
      stream->assembling = false;
      break;
    case tg::v1::WatchEvent::kSnapshot:
      next = ConfigSnapshot::FromProto(event.snapshot(), event.revision());
      break;
    case tg::v1::WatchEvent::kChange:
      // After a reconnect the server may resend what we hold; applying it
      // again is harmless but would move the revision backwards.
      if (event.revision() > current->revision()) {
        next = current->WithChange(event.change(), event.revision());
      }
      break;
    case tg::v1::WatchEvent::kHeartbeat:
      if (event.revision() > current->revision()) next = current->WithRevision(event.revision());
      break;
    case tg::v1::WatchEvent::EVENT_NOT_SET:
      break;
  }
  if (next) {
    std::lock_guard lock(listeners_mu_);
    for (const auto& listener : listeners_) listener(next);
    snapshot_.store(next);
    current = next;
  }
  const int64_t revision = current->revision();

  bool first = false;
  std::vector<std::function<void(bool)>> reached;
  {
    // Taken after the store: a WaitForRevision that locks after us sees the
    // new revision; one that locked before has its waiter found here.
    std::lock_guard lock(mu_);
    last_event_ = Clock::now();
    if (!stream->got_event) {
      stream->got_event = true;
      first = true;
      backoff_ = options_.initial_backoff;
    }
    for (auto it = waiters_.begin(); it != waiters_.end();) {
      if (it->revision <= revision) {
        reached.push_back(std::move(it->done));
        it = waiters_.erase(it);
      } else {
        ++it;
      }
    }
  }
  if (first) {
    connected_.store(true);
    loaded_.store(true);
    down_since_ms_.store(0);
    log::Info("config watch connected", {{"revision", std::to_string(revision)}});
  }
  for (auto& done : reached) done(true);
}

void ConfigWatcher::OnStreamDone(Stream* stream, const grpc::Status& status) {
  bool stopping;
  std::chrono::milliseconds delay{0};
  int failures;
  {
    std::lock_guard lock(mu_);
    failures_ = stream->got_event ? 0 : failures_ + 1;
    failures = failures_;
    if (stream_.get() == stream) stream_.reset();
    stream_active_ = false;
    stopping = stopping_;
    if (!stopping) {
      delay = NextBackoff();
      reconnect_at_ = Clock::now() + delay;
    }
    cv_.notify_all();
  }
  connected_.store(false);
  if (loaded_.load() && down_since_ms_.load() == 0) {
    down_since_ms_.store(std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count());
  }
  if (stopping) return;
  // While tg-config stays unreachable, one warning per ten attempts is enough.
  auto level = failures <= 1 || failures % 10 == 0 ? log::Level::kWarn : log::Level::kDebug;
  log::Write(level, "config watch ended; reconnecting",
             {{"code", std::to_string(static_cast<int>(status.error_code()))},
              {"error", status.error_message()},
              {"attempts_failed", std::to_string(failures)},
              {"retry_in_ms", std::to_string(delay.count())}});
}

ConfigWatcher::Health ConfigWatcher::health() const {
  Health h;
  h.loaded = loaded_.load();
  h.connected = connected_.load();
  if (const int64_t ms = down_since_ms_.load(); ms != 0 && !h.connected) {
    h.down_since = std::chrono::system_clock::time_point(std::chrono::milliseconds(ms));
  }
  return h;
}

// Called with mu_ held.
std::chrono::milliseconds ConfigWatcher::NextBackoff() {
  // +-20% jitter so that many edges do not reconnect to a restarted tg-config
  // in lockstep.
  thread_local std::minstd_rand rng{std::random_device{}()};
  std::uniform_real_distribution<double> jitter(0.8, 1.2);
  auto delay = std::chrono::milliseconds(
      static_cast<int64_t>(static_cast<double>(backoff_.count()) * jitter(rng)));
  backoff_ = std::min(backoff_ * 2, options_.max_backoff);
  return delay;
}

void ConfigWatcher::WaitForRevision(int64_t revision, Clock::time_point deadline,
                                    std::function<void(bool)> done) {
  {
    std::lock_guard lock(mu_);
    if (started_ && !stopping_ && snapshot_.load()->revision() < revision) {
      waiters_.push_back(Waiter{revision, deadline, std::move(done)});
      cv_.notify_all();
      return;
    }
  }
  done(snapshot_.load()->revision() >= revision);
}

void ConfigWatcher::TimerLoop() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    auto now = Clock::now();
    std::vector<std::function<void(bool)>> expired;
    for (auto it = waiters_.begin(); it != waiters_.end();) {
      if (it->deadline <= now) {
        expired.push_back(std::move(it->done));
        it = waiters_.erase(it);
      } else {
        ++it;
      }
    }
    bool reconnect = !stream_active_ && reconnect_at_ && *reconnect_at_ <= now;
    std::shared_ptr<Stream> stale;
    if (stream_active_ && stream_ && now - last_event_ >= options_.stale_after) {
      stale = stream_;
      last_event_ = now;  // one cancel per silence
    }
    if (!expired.empty() || reconnect || stale) {
      lock.unlock();
      for (auto& done : expired) done(false);
      if (stale) {
        log::Warn("config watch silent for too long; restarting it",
                  {{"stale_after_ms", std::to_string(options_.stale_after.count())}});
        stale->Cancel();
      }
      if (reconnect) StartStream();
      lock.lock();
      continue;
    }
    auto wake = now + std::chrono::hours(1);
    for (const auto& w : waiters_) wake = std::min(wake, w.deadline);
    if (reconnect_at_ && !stream_active_) wake = std::min(wake, *reconnect_at_);
    if (stream_active_) wake = std::min(wake, last_event_ + options_.stale_after);
    cv_.wait_until(lock, wake);
  }
}

void ConfigWatcher::AddSnapshotListener(SnapshotListener listener) {
  std::lock_guard lock(listeners_mu_);
  listener(snapshot_.load());
  listeners_.push_back(std::move(listener));
}

}  // namespace tg
