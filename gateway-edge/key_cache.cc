#include "tg/edge/key_cache.h"

#include <google/protobuf/util/time_util.h>

#include <algorithm>
#include <condition_variable>
#include <thread>

#include "tg/common/crypto.h"
#include "tg/common/log.h"

namespace tg::edge {

// tg-keyauth's WatchKeys: revocations and resets, applied to the cache.
class KeyCache::RevocationStream : public grpc::ClientReadReactor<tg::v1::KeyEvent> {
 public:
  explicit RevocationStream(KeyCache* cache) : cache_(cache) {}

  void Begin(tg::v1::KeyAuthService::Stub* stub, int64_t from_revision,
             std::shared_ptr<RevocationStream> self) {
    self_ = std::move(self);
    request_.set_from_revision(from_revision);
    // Starts the moment tg-keyauth is reachable again (see ConfigWatcher).
    context_.set_wait_for_ready(true);
    stub->async()->WatchKeys(&context_, &request_, this);
    StartRead(&event_);
    StartCall();
  }
  void Cancel() { context_.TryCancel(); }

  void OnReadDone(bool ok) override {
    if (!ok) return;
    cache_->watching_ = true;
    if (event_.has_revoked()) {
      cache_->OnRevoked(event_.revoked().key_id(), event_.revision());
    } else if (event_.reset()) {
      cache_->OnReset(event_.revision());
    }
    {
      std::lock_guard lock(cache_->stream_mu_);
      cache_->revision_ = std::max(cache_->revision_, event_.revision());
      cache_->backoff_ = std::chrono::milliseconds(200);  // the stream works again
    }
    event_.Clear();
    StartRead(&event_);
  }

  void OnDone(const grpc::Status&) override {
    cache_->OnStreamEnded();
    std::lock_guard lock(done_mu_);
    done_ = true;
    done_cv_.notify_all();
    auto self = std::move(self_);  // may destroy this: nothing after
  }

  void WaitDone() {
    std::unique_lock lock(done_mu_);
    done_cv_.wait(lock, [this] { return done_; });
  }

 private:
  KeyCache* cache_;
  grpc::ClientContext context_;
  tg::v1::WatchKeysRequest request_;
  tg::v1::KeyEvent event_;
  std::shared_ptr<RevocationStream> self_;
  std::mutex done_mu_;
  std::condition_variable done_cv_;
  bool done_ = false;
};

KeyCache::KeyCache(std::shared_ptr<grpc::Channel> keyauth, KeyCacheOptions options)
    : stub_(tg::v1::KeyAuthService::NewStub(std::move(keyauth))),
      options_(options),
      clock_(options.clock != nullptr ? *options.clock : SystemClock::Get()) {}

KeyCache::~KeyCache() { Stop(); }

void KeyCache::Start() {
  OpenStream();
  reconnect_thread_ = std::thread([this] {
    std::unique_lock lock(stream_mu_);
    while (!stopping_) {
      reconnect_cv_.wait(lock, [this] { return stopping_ || reconnect_wanted_; });
      if (stopping_) return;
      reconnect_wanted_ = false;
      auto delay = backoff_;
      backoff_ = std::min(backoff_ * 2, std::chrono::milliseconds(5000));
      lock.unlock();
      std::this_thread::sleep_for(delay);
      if (!stopping_) OpenStream();
      lock.lock();
    }
  });
}

void KeyCache::Stop() {
  if (stopping_.exchange(true)) return;
  std::shared_ptr<RevocationStream> stream;
  {
    std::lock_guard lock(stream_mu_);
    stream = stream_;
    reconnect_cv_.notify_all();
  }
  if (stream) {
    stream->Cancel();
    stream->WaitDone();
  }
  if (reconnect_thread_.joinable()) reconnect_thread_.join();
}

void KeyCache::OpenStream() {
  auto stream = std::make_shared<RevocationStream>(this);
  int64_t from;
  {
    std::lock_guard lock(stream_mu_);
    stream_ = stream;
    from = revision_;
  }
  stream->Begin(stub_.get(), from, stream);
}

void KeyCache::OnStreamEnded() {
  watching_ = false;
  if (stopping_) return;
  std::lock_guard lock(stream_mu_);
  reconnect_wanted_ = true;
  reconnect_cv_.notify_all();
}

void KeyCache::OnRevoked(const std::string& key_id, int64_t revision) {
  std::lock_guard lock(mu_);
  RevokeLocked(key_id, revision);
}

void KeyCache::Revoke(const std::string& key_id, int64_t revision) {
  std::lock_guard lock(mu_);
  RevokeLocked(key_id, revision);
}

void KeyCache::RevokeLocked(const std::string& key_id, int64_t revision) {
  if (auto it = by_id_.find(key_id); it != by_id_.end()) {
    entries_.erase(it->second);
    by_id_.erase(it);
  }
  auto now = clock_.Steady();
  PruneRevokedLocked(now);
  if (revoked_.size() >= options_.max_entries) {
    // Forget them all; answers older than what they covered are refused.
    revoked_.clear();
    floor_ = required_;
  }
  auto& r = revoked_[key_id];
  r.revision = std::max(r.revision, revision);
  r.at = now;
  required_ = std::max(required_, revision);
}

void KeyCache::PruneRevokedLocked(std::chrono::steady_clock::time_point now) {
  if (revoked_.empty() || now - last_prune_ < std::chrono::seconds(10)) return;
  last_prune_ = now;
  std::erase_if(revoked_, [&](const auto& kv) {
    if (now - kv.second.at < options_.revoked_retention) return false;
    // No longer known individually: answers at or below it are not trusted.
    floor_ = std::max(floor_, kv.second.revision);
    return true;
  });
}

void KeyCache::OnReset(int64_t revision) {
  std::lock_guard lock(mu_);
  entries_.clear();
  by_id_.clear();
  // Which keys were revoked up to here is unknown: every answer must now be
  // at least as new as anything this cache has seen.
  revoked_.clear();
  floor_ = std::max({floor_, required_, revision});
  required_ = floor_;
}

bool KeyCache::IsRevoked(const std::string& key_id) const {
  std::lock_guard lock(mu_);
  return revoked_.count(key_id) > 0;
}

int64_t KeyCache::required_revision() const {
  std::lock_guard lock(mu_);
  return required_;
}

size_t KeyCache::size() const {
  std::lock_guard lock(mu_);
  return entries_.size();
}

void KeyCache::Verify(std::string_view key, Done done,
                      const std::optional<trace::TraceContext>& trace) {
  std::string hash = crypto::Sha256(key);
  auto now = clock_.Steady();
  bool hit = false;
  std::optional<Verified> cached;
  {
    std::lock_guard lock(mu_);
    if (auto it = entries_.find(hash); it != entries_.end()) {
      const Entry& e = it->second;
      auto age = now - e.checked;
      hit = e.verified ? age < options_.positive_ttl &&
                             (watching_.load() || age < options_.disconnected_ttl)
                       : age < options_.negative_ttl;
      if (hit) cached = e.verified;
    }
    if (!hit) {
      auto [pit, first] = pending_.try_emplace(hash);
      pit->second.waiters.push_back(std::move(done));
      if (!first) return;  // an RPC for this key is already in flight
    }
  }
  if (hit) {
    if (cached && cached->expires_at && *cached->expires_at <= clock_.Now()) {
      cached.reset();  // expired since it was cached
    }
    auto status = cached ? grpc::Status::OK
                         : grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "invalid API key");
    // `done` was moved only on the miss path, which returned or goes on below.
    done(std::move(cached), status);  // NOLINT(bugprone-use-after-move)
    return;
  }

  StartVerify(std::string(key), std::move(hash), 0, trace);
}

void KeyCache::StartVerify(std::string key, std::string hash, int attempt,
                           const std::optional<trace::TraceContext>& trace) {
  struct Call {
    grpc::ClientContext ctx;
    tg::v1::VerifyKeyRequest req;
    tg::v1::VerifyKeyResponse resp;
  };
  auto call = std::make_shared<Call>();
  call->ctx.set_deadline(std::chrono::system_clock::now() + options_.verify_deadline);
  if (trace) trace::Inject(*trace, &call->ctx);
  call->req.set_key(std::move(key));
  const int64_t required = required_revision();
  call->req.set_min_revision(required);
  stub_->async()->VerifyKey(
      &call->ctx, &call->req, &call->resp,
      [this, call, hash, attempt, required, trace](grpc::Status status) {
        std::optional<Verified> v;
        int64_t revision = call->resp.revision();
        if (status.ok() && revision < required && !IsRevoked(call->resp.key_id())) {
          // A replica that ignored min_revision: its answer may predate a
          // revocation this cache knows of.
          status = grpc::Status(grpc::StatusCode::UNAVAILABLE, "stale key state");
        }
        if (status.error_code() == grpc::StatusCode::UNAVAILABLE && attempt == 0 && !stopping_) {
          // Once more: another replica, or this one caught up.
          StartVerify(call->req.key(), hash, 1, trace);
          return;
        }
        if (status.ok()) {
          Verified ver;
          ver.key_id = call->resp.key_id();
          ver.gateway_id = call->resp.gateway_id();
          if (call->resp.has_expires_at()) {
            auto us =
                google::protobuf::util::TimeUtil::TimestampToMicroseconds(call->resp.expires_at());
            ver.expires_at = std::chrono::system_clock::time_point(std::chrono::microseconds(us));
          }
          v = std::move(ver);
        }
        OnVerified(hash, std::move(v), revision, status);
      });
}

void KeyCache::OnVerified(const std::string& hash, std::optional<Verified> v, int64_t revision,
                          grpc::Status status) {
  std::vector<Done> waiters;
  {
    std::lock_guard lock(mu_);
    if (v && revoked_.count(v->key_id) > 0) {
      // Revoked after the state this answer reflects (it was in flight, or
      // the replica lags): never admitted again.
      v.reset();
      status = grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "invalid API key");
    } else if (v && revision < floor_) {
      v.reset();
      status = grpc::Status(grpc::StatusCode::UNAVAILABLE, "stale key state");
    }
    if (auto it = pending_.find(hash); it != pending_.end()) {
      waiters = std::move(it->second.waiters);
      pending_.erase(it);
    }
    // Only definite answers are cached: an unreachable tg-keyauth is not a
    // verdict on the key.
    if (status.ok() || status.error_code() == grpc::StatusCode::UNAUTHENTICATED) {
      if (entries_.size() >= options_.max_entries) {
        entries_.clear();
        by_id_.clear();
      }
      entries_[hash] = Entry{v, clock_.Steady()};
      if (v) by_id_[v->key_id] = hash;
    }
  }
  grpc::Status answer = status;
  if (!status.ok() && status.error_code() != grpc::StatusCode::UNAUTHENTICATED) {
    answer = grpc::Status(grpc::StatusCode::UNAVAILABLE, "key service unavailable");
  } else if (!status.ok()) {
    answer = grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "invalid API key");
  }
  for (auto& w : waiters) w(v, answer);
}

}  // namespace tg::edge
