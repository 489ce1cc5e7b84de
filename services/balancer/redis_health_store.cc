// Size: shared health's Redis scripts and their C++ side (batching, degraded mode).
#include "tg/balancer/redis_health_store.h"

#include <hiredis/hiredis.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <memory>
#include <set>
#include <utility>

#include "tg/common/log.h"

namespace tg::balancer {
namespace {

struct ReplyDeleter {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};
using Reply = std::unique_ptr<redisReply, ReplyDeleter>;

timeval ToTimeval(std::chrono::milliseconds ms) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(ms.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((ms.count() % 1000) * 1000);
  return tv;
}

bool ParseInt(std::string_view s, int64_t* out) {
  if (s.empty()) return false;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && ptr == s.data() + s.size();
}

std::string_view AsView(const redisReply* r) {
  if (r == nullptr || r->str == nullptr) return {};
  return std::string_view(r->str, r->len);
}

// An HGETALL answer as a state; an absent key is the healthy default.
TargetHealthState ParseState(const redisReply* r) {
  TargetHealthState s;
  if (r == nullptr || r->type != REDIS_REPLY_ARRAY) return s;
  for (size_t i = 0; i + 1 < r->elements; i += 2) {
    const std::string_view field = AsView(r->element[i]);
    int64_t v = 0;
    if (!ParseInt(AsView(r->element[i + 1]), &v)) continue;
    if (field == "failures") {
      s.consecutive_failures = static_cast<int32_t>(v);
    } else if (field == "ejections") {
      s.ejections = static_cast<int32_t>(v);
    } else if (field == "ejected_until_ms") {
      s.ejected_until_ms = v;
    } else if (field == "version") {
      s.version = v;
    }
  }
  return s;
}

std::vector<std::string_view> Split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (start <= s.size()) {
    size_t end = s.find(sep, start);
    if (end == std::string_view::npos) end = s.size();
    if (end > start) out.push_back(s.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

}  // namespace

// One synchronous hiredis connection. Any I/O error closes it: hiredis leaves
// a context unusable after one, and a fresh connection is cheap.
class RedisHealthStore::Connection {
 public:
  explicit Connection(const RedisHealthStoreOptions& options) : options_(options) {}
  ~Connection() { Close(); }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  bool connected() const { return ctx_ != nullptr; }
  redisContext* context() { return ctx_; }
  const std::string& error() const { return error_; }

  bool Connect(bool select_db) {
    Close();
    ctx_ = redisConnectWithTimeout(options_.host.c_str(), options_.port,
                                   ToTimeval(options_.connect_timeout));
    if (ctx_ == nullptr || ctx_->err != 0) {
      error_ = ctx_ == nullptr ? "cannot allocate a Redis context" : ctx_->errstr;
      Close();
      return false;
    }
    redisSetTimeout(ctx_, ToTimeval(options_.command_timeout));
    if (!options_.password.empty()) {
      Reply r = Command({"AUTH", options_.password});
      if (!r) return false;
      if (r->type == REDIS_REPLY_ERROR) {
        error_ = "AUTH failed";  // never the password
        Close();
        return false;
      }
    }
    if (select_db && options_.db != 0) {
      Reply r = Command({"SELECT", std::to_string(options_.db)});
      if (!r) return false;
      if (r->type == REDIS_REPLY_ERROR) {
        error_ = "SELECT failed: " + std::string(AsView(r.get()));
        Close();
        return false;
      }
    }
    return true;
  }

  void Close() {
    if (ctx_ != nullptr) redisFree(ctx_);
    ctx_ = nullptr;
  }

  void Append(std::initializer_list<std::string_view> args) {
    std::vector<const char*> argv;
    std::vector<size_t> lens;
    argv.reserve(args.size());
    lens.reserve(args.size());
    for (auto a : args) {
      argv.push_back(a.data());
      lens.push_back(a.size());
    }
    redisAppendCommandArgv(ctx_, static_cast<int>(argv.size()), argv.data(), lens.data());
  }

  // The next reply, or nullptr after an I/O error (the connection is closed).
  Reply Get() {
    if (ctx_ == nullptr) return nullptr;
    void* raw = nullptr;
    if (redisGetReply(ctx_, &raw) != REDIS_OK || raw == nullptr) {
      error_ = ctx_->errstr[0] != '\0' ? ctx_->errstr : "connection lost";
      Close();
      return nullptr;
    }
    return Reply(static_cast<redisReply*>(raw));
  }

  Reply Command(std::initializer_list<std::string_view> args) {
    Append(args);
    return Get();
  }

 private:
  const RedisHealthStoreOptions& options_;
  redisContext* ctx_ = nullptr;
  std::string error_;
};

std::optional<RedisHealthStoreOptions> ParseRedisUrl(std::string_view url, std::string* error) {
  RedisHealthStoreOptions o;
  constexpr std::string_view kScheme = "redis://";
  if (url.substr(0, kScheme.size()) != kScheme) {
    *error = "Redis URL must start with redis://";
    return std::nullopt;
  }
  std::string_view rest = url.substr(kScheme.size());
  if (auto slash = rest.find('/'); slash != std::string_view::npos) {
    std::string_view db = rest.substr(slash + 1);
    rest = rest.substr(0, slash);
    int64_t n = 0;
    if (!db.empty()) {
      if (!ParseInt(db, &n) || n < 0 || n > 65535) {
        *error = "Redis URL has an invalid database number";
        return std::nullopt;
      }
      o.db = static_cast<int>(n);
    }
  }
  if (auto at = rest.rfind('@'); at != std::string_view::npos) {
    std::string_view auth = rest.substr(0, at);
    rest = rest.substr(at + 1);
    auto colon = auth.find(':');
    o.password = std::string(colon == std::string_view::npos ? auth : auth.substr(colon + 1));
  }
  std::string_view host = rest;
  if (auto colon = rest.rfind(':'); colon != std::string_view::npos && rest.back() != ']') {
    host = rest.substr(0, colon);
    int64_t port = 0;
    if (!ParseInt(rest.substr(colon + 1), &port) || port < 1 || port > 65535) {
      *error = "Redis URL has an invalid port";
      return std::nullopt;
    }
    o.port = static_cast<int>(port);
  }
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  if (host.empty()) {
    *error = "Redis URL has no host";
    return std::nullopt;
  }
  o.host = std::string(host);
  return o;
}

RedisHealthStore::RedisHealthStore(RedisHealthStoreOptions options, const Clock* clock)
    : options_(std::move(options)), clock_(clock), channel_(options_.prefix + ":health") {}

RedisHealthStore::~RedisHealthStore() { Stop(); }

std::string RedisHealthStore::KeyOf(std::string_view upstream_id,
                                    std::string_view target_id) const {
  std::string key = options_.prefix;
  key.append(":health:").append(upstream_id).append(":").append(target_id);
  return key;
}

void RedisHealthStore::Start(HealthSink* sink) {
  {
    std::lock_guard lock(mu_);
    if (started_ || stopping_) return;
    started_ = true;
    sink_ = sink;
  }
  wake_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  writer_ = std::thread([this] { WriterLoop(); });
  subscriber_ = std::thread([this] { SubscriberLoop(); });
}

void RedisHealthStore::Stop() {
  {
    std::lock_guard lock(mu_);
    if (stopping_) return;
    stopping_ = true;
    cv_.notify_all();
  }
  if (wake_fd_ >= 0) {
    uint64_t one = 1;
    [[maybe_unused]] ssize_t n = write(wake_fd_, &one, sizeof(one));
  }
  if (writer_.joinable()) writer_.join();
  if (subscriber_.joinable()) subscriber_.join();
  if (wake_fd_ >= 0) close(wake_fd_);
  wake_fd_ = -1;
  std::lock_guard lock(claim_mu_);
  claim_conn_.reset();
}

void RedisHealthStore::Record(HealthEvent event) {
  std::lock_guard lock(mu_);
  if (stopping_) return;
  if (events_.size() >= options_.max_queued_events) {
    // The local view already holds the event's effect; the resync writes it
    // back (newer version wins) once the queue has drained.
    resync_requested_ = true;
  } else {
    events_.push_back(std::move(event));
  }
  cv_.notify_all();
}

void RedisHealthStore::Follow(std::vector<FollowedTarget> targets) {
  std::lock_guard lock(mu_);
  std::set<std::pair<std::string, std::string>> known;
  for (const auto& t : followed_) known.emplace(t.upstream_id, t.target_id);
  for (const auto& t : targets) {
    if (!known.count({t.upstream_id, t.target_id})) to_load_.push_back(t);
  }
  followed_ = std::move(targets);
  cv_.notify_all();
}

bool RedisHealthStore::ClaimProbe(const std::string& upstream_id, const std::string& target_id,
                                  int64_t ttl_ms) {
  std::lock_guard lock(claim_mu_);
  if (!claim_conn_) claim_conn_ = std::make_unique<Connection>(options_);
  if (!claim_conn_->connected()) {
    if (std::chrono::steady_clock::now() < claim_retry_at_) return true;
    if (!claim_conn_->Connect(/*select_db=*/true)) {
      claim_retry_at_ = std::chrono::steady_clock::now() + std::chrono::seconds(1);
      return true;
    }
  }
  std::string key = options_.prefix;
  key.append(":probe:").append(upstream_id).append(":").append(target_id);
  const std::string now = std::to_string(clock_->NowMs());
  const std::string ttl = std::to_string(std::max<int64_t>(ttl_ms, 1));
  Reply r = claim_conn_->Command({"SET", key, now, "NX", "PX", ttl});
  if (!r) {
    claim_retry_at_ = std::chrono::steady_clock::now() + std::chrono::seconds(1);
    return true;
  }
  // OK: ours; nil: another replica holds it.
  return r->type != REDIS_REPLY_NIL;
}

HealthStoreStatus RedisHealthStore::status() const {
  std::lock_guard lock(status_mu_);
  HealthStoreStatus s;
  if (!subscriber_ok_) {
    s.reason = subscriber_reason_;
  } else if (!writer_ok_) {
    s.reason = writer_reason_;
  } else if (resync_pending_) {
    s.reason = "resynchronising with Redis";
  }
  s.degraded = !s.reason.empty();
  return s;
}

void RedisHealthStore::SetStatusListener(std::function<void(const HealthStoreStatus&)> listener) {
  std::lock_guard lock(status_mu_);
  listener_ = std::move(listener);
}

void RedisHealthStore::PublishStatus() {
  const HealthStoreStatus s = status();
  std::function<void(const HealthStoreStatus&)> listener;
  {
    std::lock_guard lock(status_mu_);
    if (s.degraded == last_degraded_) return;
    last_degraded_ = s.degraded;
    listener = listener_;
  }
  if (s.degraded) {
    log::Warn(
        "Redis unreachable: balancing on the local health view",
        {{"reason", s.reason}, {"redis", options_.host + ":" + std::to_string(options_.port)}});
  } else {
    log::Info("Redis reachable: health state shared and resynchronised");
  }
  if (listener) listener(s);
}

// A lost connection means changes may have been missed (or not written):
// the store stays degraded until a resynchronisation has completed while the
// subscriber is up again.
void RedisHealthStore::SetWriterOk(bool ok, const std::string& reason) {
  {
    std::lock_guard lock(status_mu_);
    writer_ok_ = ok;
    if (!ok) {
      writer_reason_ = "Redis writer: " + reason;
      resync_pending_ = true;
    }
  }
  PublishStatus();
}

void RedisHealthStore::SetSubscriberOk(bool ok, const std::string& reason) {
  {
    std::lock_guard lock(status_mu_);
    subscriber_ok_ = ok;
    if (!ok) {
      subscriber_reason_ = "Redis subscriber: " + reason;
      resync_pending_ = true;
    }
  }
  PublishStatus();
}

void RedisHealthStore::OnResyncDone() {
  {
    std::lock_guard lock(status_mu_);
    writer_ok_ = true;
    // A resync that ran while the subscriber was down may have missed what
    // was published meanwhile; the subscriber asks for another on return.
    if (subscriber_ok_) resync_pending_ = false;
  }
  PublishStatus();
}

std::string RedisHealthStore::Message(std::string_view upstream_id, std::string_view target_id,
                                      const TargetHealthState& s) const {
  std::string m;
  m.append(upstream_id).append(" ").append(target_id);
  for (int64_t v : {static_cast<int64_t>(s.consecutive_failures), static_cast<int64_t>(s.ejections),
                    s.ejected_until_ms, s.version}) {
    m.append(" ").append(std::to_string(v));
  }
  return m;
}

void RedisHealthStore::OnMessage(std::string_view payload) {
  auto parts = Split(payload, ' ');
  if (parts.size() != 6) return;
  int64_t v[4];
  for (int i = 0; i < 4; ++i) {
    if (!ParseInt(parts[2 + i], &v[i])) return;
  }
  TargetHealthState s;
  s.consecutive_failures = static_cast<int32_t>(v[0]);
  s.ejections = static_cast<int32_t>(v[1]);
  s.ejected_until_ms = v[2];
  s.version = v[3];
  sink_->OnSharedState(std::string(parts[0]), std::string(parts[1]), s);
}

RedisHealthStore::WriteOutcome RedisHealthStore::WriteState(
    Connection& conn, const std::string& key, std::string_view upstream_id,
    std::string_view target_id, const TargetHealthState& s, int64_t interval_ms) {
  const int64_t ttl = std::max<int64_t>(s.ejected_until_ms - clock_->NowMs(), 0) +
                      10 * std::max<int64_t>(interval_ms, 1000);
  const std::string failures = std::to_string(s.consecutive_failures);
  const std::string ejections = std::to_string(s.ejections);
  const std::string until = std::to_string(s.ejected_until_ms);
  const std::string version = std::to_string(s.version);
  const std::string ttl_ms = std::to_string(ttl);
  const std::string message = Message(upstream_id, target_id, s);
  conn.Append({"MULTI"});
  conn.Append({"HSET", key, "failures", failures, "ejections", ejections, "ejected_until_ms", until,
               "version", version});
  conn.Append({"PEXPIRE", key, ttl_ms});
  conn.Append({"PUBLISH", channel_, message});
  conn.Append({"EXEC"});
  Reply exec;
  for (int i = 0; i < 5; ++i) {
    exec = conn.Get();
    if (!exec) return WriteOutcome::kConnectionLost;
  }
  if (exec->type == REDIS_REPLY_NIL) return WriteOutcome::kConflict;
  if (exec->type == REDIS_REPLY_ERROR) {
    log::Error("Redis rejected a health update", {{"error", std::string(AsView(exec.get()))}});
    return WriteOutcome::kRejected;
  }
  return WriteOutcome::kWritten;
}

bool RedisHealthStore::Transact(Connection& conn, const HealthEvent& event) {
  const std::string key = KeyOf(event.upstream_id, event.target_id);
  // Optimistic concurrency: a replica writing the key between our read and
  // our EXEC makes EXEC answer nil, and we apply the verdict again on top of
  // its state. Contention needs many replicas failing on one target in the
  // same millisecond; a handful of rounds always suffices.
  for (int attempt = 0; attempt < 16; ++attempt) {
    conn.Append({"WATCH", key});
    conn.Append({"HGETALL", key});
    Reply watched = conn.Get();
    Reply stored = watched ? conn.Get() : nullptr;
    if (!stored) return false;
    const TargetHealthState current = ParseState(stored.get());
    // Written even when the verdict changes nothing in Redis: this replica's
    // local view changed (it was behind), and a new version makes every
    // replica, this one included, adopt the stored state again.
    TargetHealthState next = ApplyVerdict(current, event.verdict, event.now_ms, event.options);
    next.version = NextVersion(current.version, event.now_ms);
    switch (WriteState(conn, key, event.upstream_id, event.target_id, next,
                       event.options.interval_ms)) {
      case WriteOutcome::kConnectionLost:
        return false;
      case WriteOutcome::kWritten:
      case WriteOutcome::kRejected:  // retrying would fail the same way
        return true;
      case WriteOutcome::kConflict:  // another replica wrote the key first: again on its state
        break;
    }
  }
  log::Warn("health update abandoned after repeated write conflicts", {{"key", key}});
  return true;
}

bool RedisHealthStore::WriteIfNewer(Connection& conn, const FollowedTarget& target,
                                    const TargetHealthState& local) {
  const std::string key = KeyOf(target.upstream_id, target.target_id);
  for (int attempt = 0; attempt < 16; ++attempt) {
    conn.Append({"WATCH", key});
    conn.Append({"HGETALL", key});
    Reply watched = conn.Get();
    Reply stored = watched ? conn.Get() : nullptr;
    if (!stored) return false;
    const TargetHealthState current = ParseState(stored.get());
    if (current.version >= local.version) {
      Reply r = conn.Command({"UNWATCH"});
      if (!r) return false;
      sink_->OnSharedState(target.upstream_id, target.target_id, current);
      return true;
    }
    switch (
        WriteState(conn, key, target.upstream_id, target.target_id, local, target.interval_ms)) {
      case WriteOutcome::kConnectionLost:
        return false;
      case WriteOutcome::kWritten:
      case WriteOutcome::kRejected:
        return true;
      case WriteOutcome::kConflict:  // written meanwhile: compare with that
        break;
    }
  }
  return true;
}

bool RedisHealthStore::Sync(Connection& conn, const std::vector<FollowedTarget>& targets) {
  // Pipelined reads in batches: one round trip per 256 targets.
  constexpr size_t kBatch = 256;
  for (size_t begin = 0; begin < targets.size(); begin += kBatch) {
    {
      std::lock_guard lock(mu_);
      if (stopping_) return true;
    }
    const size_t end = std::min(targets.size(), begin + kBatch);
    for (size_t i = begin; i < end; ++i) {
      conn.Append({"HGETALL", KeyOf(targets[i].upstream_id, targets[i].target_id)});
    }
    std::vector<TargetHealthState> stored;
    for (size_t i = begin; i < end; ++i) {
      Reply r = conn.Get();
      if (!r) return false;
      stored.push_back(ParseState(r.get()));
    }
    for (size_t i = begin; i < end; ++i) {
      const FollowedTarget& t = targets[i];
      const TargetHealthState& s = stored[i - begin];
      auto local = sink_->LocalState(t.upstream_id, t.target_id);
      // A local state newer than the stored one was made while Redis was
      // away (or Redis lost its data): write it back. A healthy local state
      // against an absent key needs no write: absence means healthy.
      if (local && local->version > s.version &&
          !(s.version == 0 && local->SameAs(TargetHealthState{}))) {
        if (!WriteIfNewer(conn, t, *local)) return false;
      } else {
        sink_->OnSharedState(t.upstream_id, t.target_id, s);
      }
    }
  }
  return true;
}

void RedisHealthStore::WriterLoop() {
  Connection conn(options_);
  std::chrono::milliseconds backoff = options_.initial_backoff;
  auto next_attempt = std::chrono::steady_clock::now();
  std::unique_lock lock(mu_);
  while (!stopping_) {
    const bool work = !events_.empty() || resync_requested_ || !to_load_.empty();
    if (!work) {
      cv_.wait(lock);
      continue;
    }
    if (!conn.connected()) {
      if (std::chrono::steady_clock::now() < next_attempt) {
        // Redis is away: events wait in the local view, not here (the resync
        // after reconnecting writes back whatever is newer).
        if (!events_.empty()) {
          events_.clear();
          resync_requested_ = true;
        }
        cv_.wait_until(lock, next_attempt);
        continue;
      }
      lock.unlock();
      const bool ok = conn.Connect(/*select_db=*/true);
      lock.lock();
      if (!ok) {
        const std::string error = conn.error();
        next_attempt = std::chrono::steady_clock::now() + backoff;
        backoff = std::min(backoff * 2, options_.max_backoff);
        lock.unlock();
        SetWriterOk(false, error);
        lock.lock();
        continue;
      }
      backoff = options_.initial_backoff;
      // Whatever happened while disconnected, the shared and local views may
      // have drifted apart.
      resync_requested_ = true;
    }
    bool ok = true;
    if (resync_requested_) {
      resync_requested_ = false;
      to_load_.clear();  // the resync loads everything
      std::vector<FollowedTarget> targets = followed_;
      lock.unlock();
      ok = Sync(conn, targets);
      if (ok) OnResyncDone();
      lock.lock();
      if (!ok) resync_requested_ = true;
    } else if (!to_load_.empty()) {
      std::vector<FollowedTarget> targets;
      targets.swap(to_load_);
      lock.unlock();
      ok = Sync(conn, targets);
      lock.lock();
      if (!ok) resync_requested_ = true;
    } else {
      HealthEvent event = std::move(events_.front());
      events_.pop_front();
      lock.unlock();
      ok = Transact(conn, event);
      lock.lock();
      if (!ok) resync_requested_ = true;
    }
    if (!ok) {
      const std::string error = conn.error();
      conn.Close();
      lock.unlock();
      SetWriterOk(false, error);
      lock.lock();
      next_attempt = std::chrono::steady_clock::now();  // one immediate retry: Redis may be back
    }
  }
}

void RedisHealthStore::SubscriberLoop() {
  Connection conn(options_);
  std::chrono::milliseconds backoff = options_.initial_backoff;
  auto stopping = [this] {
    std::lock_guard lock(mu_);
    return stopping_;
  };
  // Sleeps up to `d` unless Stop wakes it; true when stopping.
  auto sleep = [this](std::chrono::milliseconds d) {
    pollfd p{wake_fd_, POLLIN, 0};
    poll(&p, 1, static_cast<int>(d.count()));
    std::lock_guard lock(mu_);
    return stopping_;
  };
  while (!stopping()) {
    if (!conn.Connect(/*select_db=*/false)) {
      SetSubscriberOk(false, conn.error());
      if (sleep(backoff)) break;
      backoff = std::min(backoff * 2, options_.max_backoff);
      continue;
    }
    Reply r = conn.Command({"SUBSCRIBE", channel_});
    if (!r || r->type == REDIS_REPLY_ERROR) {
      SetSubscriberOk(false, r ? std::string(AsView(r.get())) : conn.error());
      conn.Close();
      if (sleep(backoff)) break;
      backoff = std::min(backoff * 2, options_.max_backoff);
      continue;
    }
    backoff = options_.initial_backoff;
    SetSubscriberOk(true, "");
    {
      // Subscribed first, loaded second: a change published in between is
      // both delivered and loaded, and versions make the order irrelevant.
      std::lock_guard lock(mu_);
      resync_requested_ = true;
      cv_.notify_all();
    }
    std::string error;
    while (error.empty()) {
      void* raw = nullptr;
      while (redisGetReplyFromReader(conn.context(), &raw) == REDIS_OK && raw != nullptr) {
        Reply msg(static_cast<redisReply*>(raw));
        raw = nullptr;
        if (msg->type == REDIS_REPLY_ARRAY && msg->elements == 3 &&
            AsView(msg->element[0]) == "message") {
          OnMessage(AsView(msg->element[2]));
        }
      }
      pollfd fds[2] = {{conn.context()->fd, POLLIN, 0}, {wake_fd_, POLLIN, 0}};
      if (poll(fds, 2, 1000) < 0) continue;
      if (fds[1].revents != 0) break;  // Stop
      if (fds[0].revents != 0 && redisBufferRead(conn.context()) != REDIS_OK) {
        error = conn.context()->errstr[0] != '\0' ? conn.context()->errstr : "connection lost";
      }
    }
    conn.Close();
    if (stopping()) break;
    SetSubscriberOk(false, error);
  }
}

}  // namespace tg::balancer
