#include "key_cache.h"

#include <google/protobuf/util/time_util.h>

#include <condition_variable>
#include <thread>

#include "tg/common/crypto.h"
#include "tg/common/log.h"

namespace tg::edge {

using Clock = std::chrono::steady_clock;

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
      cache_->OnRevoked(event_.revoked().key_id());
    } else if (event_.reset()) {
      cache_->OnReset();
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
    : stub_(tg::v1::KeyAuthService::NewStub(std::move(keyauth))), options_(options) {}

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

void KeyCache::OnRevoked(const std::string& key_id) {
  std::lock_guard lock(mu_);
  auto it = by_id_.find(key_id);
  if (it == by_id_.end()) return;
  entries_.erase(it->second);
  by_id_.erase(it);
}

void KeyCache::OnReset() {
  std::lock_guard lock(mu_);
  entries_.clear();
  by_id_.clear();
}

size_t KeyCache::size() const {
  std::lock_guard lock(mu_);
  return entries_.size();
}

void KeyCache::Verify(std::string_view key, Done done,
                      const std::optional<trace::TraceContext>& trace) {
  std::string hash = crypto::Sha256(key);
  auto now = Clock::now();
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
    if (cached && cached->expires_at && *cached->expires_at <= std::chrono::system_clock::now()) {
      cached.reset();  // expired since it was cached
    }
    auto status = cached ? grpc::Status::OK
                         : grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "invalid API key");
    done(std::move(cached), status);
    return;
  }

  struct Call {
    grpc::ClientContext ctx;
    tg::v1::VerifyKeyRequest req;
    tg::v1::VerifyKeyResponse resp;
  };
  auto call = std::make_shared<Call>();
  call->ctx.set_deadline(std::chrono::system_clock::now() + options_.verify_deadline);
  if (trace) trace::Inject(*trace, &call->ctx);
  call->req.set_key(std::string(key));
  stub_->async()->VerifyKey(&call->ctx, &call->req, &call->resp,
                            [this, call, hash](grpc::Status status) {
                              std::optional<Verified> v;
                              if (status.ok()) {
                                Verified ver;
                                ver.key_id = call->resp.key_id();
                                ver.gateway_id = call->resp.gateway_id();
                                if (call->resp.has_expires_at()) {
                                  auto us = google::protobuf::util::TimeUtil::TimestampToMicroseconds(
                                      call->resp.expires_at());
                                  ver.expires_at = std::chrono::system_clock::time_point(
                                      std::chrono::microseconds(us));
                                }
                                v = std::move(ver);
                              }
                              OnVerified(hash, std::move(v), status);
                            });
}

void KeyCache::OnVerified(const std::string& hash, std::optional<Verified> v,
                          const grpc::Status& status) {
  std::vector<Done> waiters;
  {
    std::lock_guard lock(mu_);
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
      entries_[hash] = Entry{v, Clock::now()};
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
