#include "tg/edge/quota/redis_quota_store.h"

#include <hiredis/hiredis.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <iterator>
#include <limits>
#include <utility>

#include "tg/common/log.h"
#include "tg/edge/quota/redis_connection.h"

namespace tg::edge::quota {
namespace {

bool ParseInt(std::string_view s, int64_t* out) {
  if (s.empty()) return false;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && ptr == s.data() + s.size();
}

int64_t Micros(std::chrono::milliseconds ms) { return ms.count() * 1000; }

// One script call: op on key with the bucket's parameters (gcra.h).
struct ScriptCall {
  std::string_view op;
  std::string_view key;
  int64_t capacity = 0;
  int64_t period_us = 0;
  int64_t a = 0;
  int64_t b = 0;
};

struct ScriptAnswer {
  int64_t granted = 0;
  int64_t remaining = 0;
  int64_t retry_after_us = 0;
  int64_t reset_us = 0;
};

// Pipelined flushes go out in batches of this many calls.
constexpr size_t kFlushBatch = 256;

}  // namespace

// The script calls over one RedisConnection: the script is loaded on every
// fresh connection, and EVAL replaces EVALSHA after a NOSCRIPT.
class RedisQuotaStore::Connection {
 public:
  explicit Connection(const RedisQuotaOptions& options) : link_(options) {}

  const std::string& error() const { return link_.error(); }

  // One call (connecting first when needed); false on any failure.
  bool Call(const ScriptCall& call, ScriptAnswer* out) {
    if (!Ensure()) return false;
    Append(call, /*eval=*/false);
    Status s = Read(out);
    if (s == Status::kNoScript) {  // SCRIPT FLUSH since we connected
      Append(call, /*eval=*/true);
      s = Read(out);
    }
    return s == Status::kOk;
  }

  // Pipelined calls; (*done)[i] tells which are settled when it returns
  // false: answered, or refused with an error reply (not worth sending again).
  bool CallAll(const std::vector<ScriptCall>& calls, std::vector<char>* done) {
    done->assign(calls.size(), 0);
    if (!Ensure()) return false;
    for (const ScriptCall& c : calls) Append(c, /*eval=*/false);
    std::vector<size_t> again;
    ScriptAnswer ignored;
    bool refused = false;
    for (size_t i = 0; i < calls.size(); ++i) {
      switch (Read(&ignored)) {
        case Status::kOk:
          (*done)[i] = 1;
          break;
        case Status::kNoScript:
          again.push_back(i);
          break;
        case Status::kErrorReply:
          (*done)[i] = 1;
          refused = true;
          break;
        case Status::kFailed:
          return false;
      }
    }
    for (size_t i : again) {
      Append(calls[i], /*eval=*/true);
      const Status s = Read(&ignored);
      if (s == Status::kFailed) return false;
      (*done)[i] = 1;
      refused = refused || s == Status::kErrorReply;
    }
    return !refused;
  }

 private:
  // kErrorReply: Redis answered with an error (or an unexpected shape) and
  // the connection stays in step; kFailed: no answer, the connection is closed.
  enum class Status { kOk, kNoScript, kErrorReply, kFailed };

  bool Ensure() {
    if (link_.connected()) return true;
    if (!link_.Connect()) return false;
    RedisReply r = link_.Command({"SCRIPT", "LOAD", kGcraScript});
    if (!r) return false;
    if (r->type != REDIS_REPLY_STRING) {
      return link_.Fail("SCRIPT LOAD failed: " + std::string(ReplyText(r.get())));
    }
    sha_ = std::string(ReplyText(r.get()));
    return true;
  }

  void Append(const ScriptCall& c, bool eval) {
    const std::string capacity = std::to_string(c.capacity);
    const std::string period = std::to_string(c.period_us);
    const std::string a = std::to_string(c.a);
    const std::string b = std::to_string(c.b);
    link_.Append({eval ? "EVAL" : "EVALSHA", eval ? kGcraScript : std::string_view(sha_), "1",
                  c.key, c.op, capacity, period, a, b});
  }

  Status Read(ScriptAnswer* out) {
    RedisReply r = link_.Get();
    if (!r) return Status::kFailed;
    if (r->type == REDIS_REPLY_ERROR) {
      const std::string_view text = ReplyText(r.get());
      if (text.substr(0, 8) == "NOSCRIPT") return Status::kNoScript;
      link_.SetError("Redis error: " + std::string(text));
      return Status::kErrorReply;
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 4) {
      link_.SetError("unexpected reply to the quota script");
      return Status::kErrorReply;
    }
    int64_t v[4];
    for (size_t i = 0; i < 4; ++i) {
      const redisReply* e = r->element[i];
      if (e->type == REDIS_REPLY_INTEGER) {
        v[i] = e->integer;
      } else if (!ParseInt(ReplyText(e), &v[i])) {
        link_.SetError("unexpected reply to the quota script");
        return Status::kErrorReply;
      }
    }
    *out = ScriptAnswer{v[0], v[1], v[2], v[3]};
    return Status::kOk;
  }

  RedisConnection link_;
  std::string sha_;
};

struct RedisQuotaStore::Entry {
  int64_t capacity = 0;
  int64_t period_us = 0;
  int64_t last_used_us = 0;
  // The lease: units Redis granted to this edge and not yet spent.
  int64_t lease = 0;
  int64_t lease_expires_us = 0;
  int64_t chunk = 0;  // the chunk of the last fetch: the lease holds at most chunk - 1
  // Units used per Take lately (Takes and positive Adjusts: a token bucket's
  // settlement is most of what a request uses), halved every 64 Takes.
  int64_t used_units = 0;
  int64_t used_takes = 0;
  // Redis's last answer (for lease hits and Peek).
  bool answered = false;
  int64_t redis_remaining = 0;
  int64_t answered_at_us = 0;
  int64_t full_at_us = 0;
  // Not yet in Redis: a net adjustment, a block.
  int64_t pending = 0;
  int64_t pending_since_us = 0;
  int64_t block_until_us = 0;  // Takes refuse until then (local clock)
  bool block_pending = false;
  // While Redis is down.
  bool has_fallback = false;
  Tat fallback;
  // Script calls on the Take path in flight for this key: never evicted meanwhile.
  int in_flight = 0;
  bool fetching = false;  // one of them asks for a chunk
};

struct RedisQuotaStore::FlushItem {
  std::string key;  // spec.key
  std::string redis_key;
  int64_t capacity = 0;
  int64_t period_us = 0;
  int64_t adjust = 0;
  int64_t adjust_since_us = 0;
  int64_t block_us = 0;  // > 0: empty for this long from now
  bool adjust_done = true;
  bool block_done = true;
};

std::optional<RedisQuotaOptions> ParseRedisQuotaUrl(std::string_view url, std::string* error) {
  RedisQuotaOptions o;
  constexpr std::string_view kScheme = "redis://";
  if (url.substr(0, kScheme.size()) != kScheme) {
    *error = "Redis URL must start with redis://";
    return std::nullopt;
  }
  std::string_view rest = url.substr(kScheme.size());
  if (const size_t slash = rest.find('/'); slash != std::string_view::npos) {
    const std::string_view db = rest.substr(slash + 1);
    rest = rest.substr(0, slash);
    if (!db.empty()) {
      int64_t n = 0;
      if (!ParseInt(db, &n) || n < 0 || n > 65535) {
        *error = "Redis URL has an invalid database number";
        return std::nullopt;
      }
      o.db = static_cast<int>(n);
    }
  }
  if (const size_t at = rest.rfind('@'); at != std::string_view::npos) {
    const std::string_view auth = rest.substr(0, at);
    rest = rest.substr(at + 1);
    const size_t colon = auth.find(':');
    o.password = std::string(colon == std::string_view::npos ? auth : auth.substr(colon + 1));
  }
  std::string_view host = rest;
  const size_t colon = rest.rfind(':');
  const bool bracketed = !rest.empty() && rest.front() == '[';
  const size_t close = rest.find(']');
  if (colon != std::string_view::npos &&
      (!bracketed || (close != std::string_view::npos && colon > close))) {
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

RedisQuotaStore::RedisQuotaStore(RedisQuotaOptions options, const Clock* clock)
    : options_(std::move(options)),
      clock_(clock != nullptr ? clock : &SteadyClock::Get()),
      take_conn_(std::make_unique<Connection>(options_)) {
  flusher_ = std::thread([this] { Loop(); });
}

RedisQuotaStore::~RedisQuotaStore() {
  {
    std::lock_guard lock(stop_mu_);
    stopping_ = true;
  }
  stop_cv_.notify_all();
  if (flusher_.joinable()) flusher_.join();
}

std::string RedisQuotaStore::KeyOf(const Spec& spec) const {
  std::string key;
  key.reserve(options_.prefix.size() + 1 + spec.key.size());
  key.append(options_.prefix).append(":").append(spec.key);
  return key;
}

int64_t RedisQuotaStore::ChunkOf(int64_t capacity, int64_t n) const {
  const int64_t divisor = std::max<int64_t>(options_.lease_divisor, 1);
  const int64_t takes = std::max<int64_t>(options_.lease_takes, 1);
  n = std::max<int64_t>(n, 1);
  const int64_t for_takes = n > std::numeric_limits<int64_t>::max() / takes
                                ? std::numeric_limits<int64_t>::max()
                                : n * takes;
  return std::clamp<int64_t>(capacity / divisor, 1,
                             std::max<int64_t>({options_.max_lease, for_takes, 1}));
}

bool RedisQuotaStore::redis_up() const { return up_.load(); }

RedisQuotaStore::Stats RedisQuotaStore::stats() const {
  return Stats{redis_takes_.load(), lease_hits_.load(), fallback_answers_.load()};
}

bool RedisQuotaStore::Down(int64_t now_us) const { return now_us < down_until_us_.load(); }

void RedisQuotaStore::MarkDown(const std::string& reason) {
  down_until_us_.store(clock_->NowMicros() + Micros(options_.down_retry));
  if (up_.exchange(false)) {
    log::Warn("Redis unreachable: rate limits answered by each edge alone",
              {{"reason", reason}, {"redis", options_.host + ":" + std::to_string(options_.port)}});
  }
}

void RedisQuotaStore::MarkUp() {
  if (up_.exchange(true)) return;
  log::Info("Redis reachable: rate limits shared again",
            {{"redis", options_.host + ":" + std::to_string(options_.port)}});
  std::lock_guard lock(mu_);
  for (auto& [key, e] : entries_) e.has_fallback = false;
}

RedisQuotaStore::Entry* RedisQuotaStore::Find(const std::string& key) {
  auto it = entries_.find(key);
  return it == entries_.end() ? nullptr : &it->second;
}

RedisQuotaStore::Entry* RedisQuotaStore::FindOrCreate(const Spec& spec, int64_t now_us) {
  if (Entry* e = Find(spec.key)) return e;
  if (entries_.size() >= options_.max_buckets) return nullptr;
  Entry* e = &entries_[spec.key];
  Touch(e, spec, now_us);
  return e;
}

void RedisQuotaStore::Touch(Entry* e, const Spec& spec, int64_t now_us) const {
  e->capacity = spec.capacity;
  e->period_us = std::chrono::microseconds(spec.period).count();
  e->last_used_us = now_us;
}

void RedisQuotaStore::NoteUse(Entry* e, int64_t n, bool take) {
  e->used_units = n > std::numeric_limits<int64_t>::max() - e->used_units
                      ? std::numeric_limits<int64_t>::max()
                      : e->used_units + n;
  if (!take) return;
  if (++e->used_takes >= 64) {
    e->used_units /= 2;
    e->used_takes /= 2;
  }
}

int64_t RedisQuotaStore::UsePerTake(const Entry& e) {
  if (e.used_takes <= 0) return 1;
  return e.used_units / e.used_takes + (e.used_units % e.used_takes != 0 ? 1 : 0);
}

void RedisQuotaStore::AddPending(Entry* e, int64_t n, int64_t now_us) {
  if (n == 0) return;
  if (e->pending == 0) e->pending_since_us = now_us;
  e->pending += n;
}

// A lease lives lease_ttl, and never longer than its bucket's period: a unit
// is spent at most that long after Redis granted it.
int64_t RedisQuotaStore::LeaseExpiry(const Entry& e, int64_t now_us) const {
  return now_us + std::min(Micros(options_.lease_ttl), e.period_us);
}

void RedisQuotaStore::ReturnLease(Entry* e, int64_t now_us) {
  // Inside a block they are dropped instead: giving them back would shorten it.
  if (now_us >= e->block_until_us) AddPending(e, -e->lease, now_us);
  e->lease = 0;
}

void RedisQuotaStore::AddToLease(Entry* e, int64_t units, int64_t now_us) {
  if (units <= 0) return;
  if (now_us < e->block_until_us) return;  // returning them would shorten the block
  // At most chunk - 1 units; and no more than the bucket missed at Redis's
  // last answer, so that a give-back never lifts this edge above full.
  // The last fetch's chunk, within what the bucket's capacity allows now.
  const int64_t chunk = std::clamp(e->chunk, ChunkOf(e->capacity),
                                   ChunkOf(e->capacity, std::numeric_limits<int64_t>::max()));
  int64_t room = chunk - 1 - e->lease;
  if (e->answered) {
    const Gcra gcra(e->capacity, e->period_us);
    const double refilled =
        std::floor(static_cast<double>(now_us - e->answered_at_us) / gcra.emission_us());
    const int64_t available = std::min<int64_t>(
        e->capacity, e->redis_remaining + static_cast<int64_t>(std::min<double>(
                                              refilled, static_cast<double>(e->capacity))));
    room = std::min(room, e->capacity - available - e->lease);
  } else {
    room = 0;
  }
  const int64_t kept = std::clamp<int64_t>(units, 0, std::max<int64_t>(room, 0));
  if (kept > 0) {
    if (e->lease == 0) e->lease_expires_us = LeaseExpiry(*e, now_us);
    e->lease += kept;
  }
  AddPending(e, -(units - kept), now_us);
}

Answer RedisQuotaStore::LeaseAnswer(const Spec& spec, const Entry& e, int64_t now_us) const {
  Answer a;
  a.admitted = true;
  a.limit = spec.capacity;
  a.local = !up_.load();
  int64_t base = spec.capacity;
  if (e.answered) {
    const Gcra gcra(spec.capacity, std::chrono::microseconds(spec.period).count());
    const double refilled =
        std::floor(static_cast<double>(now_us - e.answered_at_us) / gcra.emission_us());
    base = e.redis_remaining +
           static_cast<int64_t>(std::min<double>(refilled, static_cast<double>(spec.capacity)));
    a.reset = CeilMillis(e.full_at_us - now_us);
  }
  a.remaining = std::clamp<int64_t>(base + e.lease, 0, spec.capacity);
  return a;
}

Answer RedisQuotaStore::FallbackTake(const Spec& spec, int64_t n, Entry* e, int64_t now_us) {
  fallback_answers_.fetch_add(1, std::memory_order_relaxed);
  if (e == nullptr) e = FindOrCreate(spec, now_us);
  const Gcra gcra(spec.capacity, std::chrono::microseconds(spec.period).count());
  const double ahead = e != nullptr && e->has_fallback ? AheadOf(e->fallback, now_us) : 0;
  const GcraResult r = gcra.Take(ahead, n, n);
  if (e != nullptr) {
    e->fallback = TatAt(now_us, r.ahead);
    e->has_fallback = true;
  }
  return AnswerOf(spec, r, r.granted >= n, /*local=*/true);
}

Answer RedisQuotaStore::Take(const Spec& spec, int64_t n) {
  if (!ValidSpec(spec)) return NeverFits(spec);
  if (n <= 0) return Peek(spec);
  if (n > spec.capacity) {
    Answer a = Peek(spec);
    a.admitted = false;
    a.retry_after = std::chrono::milliseconds(0);
    return a;
  }
  const int64_t period_us = std::chrono::microseconds(spec.period).count();
  int64_t detached = 0;  // lease units counted into this take
  bool tracked = false;  // an entry holds this take's leftovers
  bool chunked = false;  // this take asks for a chunk
  int64_t chunk = 1;     // what it asks for beyond n
  {
    std::lock_guard lock(mu_);
    const int64_t now = clock_->NowMicros();
    Entry* e = Find(spec.key);
    if (e != nullptr) {
      Touch(e, spec, now);
      if (now < e->block_until_us) {
        const Gcra gcra(spec.capacity, period_us);
        GcraResult r;
        r.retry_after_us =
            e->block_until_us - now +
            static_cast<int64_t>(std::ceil(static_cast<double>(n) * gcra.emission_us()));
        r.reset_us = e->block_until_us - now + period_us;
        return AnswerOf(spec, r, /*admitted=*/false, /*local=*/!up_.load());
      }
    }
    if (Down(now)) return FallbackTake(spec, n, e, now);
    if (e == nullptr) e = FindOrCreate(spec, now);
    if (e != nullptr) {
      NoteUse(e, n, /*take=*/true);
      if (e->lease > 0 && now >= e->lease_expires_us) ReturnLease(e, now);  // never spent late
      if (e->lease >= n) {
        e->lease -= n;
        lease_hits_.fetch_add(1, std::memory_order_relaxed);
        return LeaseAnswer(spec, *e, now);
      }
      detached = e->lease;
      e->lease = 0;
      chunked = !e->fetching;
      e->fetching = e->fetching || chunked;
      if (chunked) {
        e->chunk = ChunkOf(spec.capacity, std::max(n, UsePerTake(*e)));
        chunk = e->chunk;
      }
      ++e->in_flight;
      tracked = true;
    }
  }

  // Concurrent takes of one key: one asks for a chunk, the others for exactly
  // what they lack, so the lease stays within chunk - 1.

  const ScriptCall call{.op = "take",
                        .key = {},
                        .capacity = spec.capacity,
                        .period_us = period_us,
                        .a = n + chunk - 1 - detached,
                        .b = n - detached};
  const std::string key = KeyOf(spec);
  ScriptAnswer got;
  bool called = false;
  bool ok = false;
  std::string error;
  {
    std::lock_guard lock(take_mu_);
    // Another take may have found Redis down while this one waited.
    if (!Down(clock_->NowMicros())) {
      called = true;
      redis_takes_.fetch_add(1, std::memory_order_relaxed);
      ScriptCall c = call;
      c.key = key;
      ok = take_conn_->Call(c, &got);
      if (!ok) error = take_conn_->error();
    }
  }
  if (called) {
    if (ok) {
      MarkUp();
    } else {
      MarkDown(error);
    }
  }

  std::lock_guard lock(mu_);
  const int64_t now = clock_->NowMicros();
  Entry* e = tracked ? Find(spec.key) : nullptr;
  if (e != nullptr) {
    --e->in_flight;
    if (chunked) e->fetching = false;
  }
  if (!ok) {
    if (e != nullptr) AddToLease(e, detached, now);
    return FallbackTake(spec, n, e, now);
  }
  if (e != nullptr) {
    e->answered = true;
    e->redis_remaining = got.remaining;
    e->answered_at_us = now;
    e->full_at_us = now + got.reset_us;
  }
  if (got.granted > 0 && got.granted >= call.b) {
    if (e != nullptr) {
      // detached + granted - n <= chunk - 1 (want = n + chunk - 1 - detached).
      const int64_t leftover = detached + got.granted - n;
      AddToLease(e, leftover, now);
      if (leftover > 0 && e->lease > 0) e->lease_expires_us = LeaseExpiry(*e, now);
      return LeaseAnswer(spec, *e, now);
    }
    Answer a;  // no entry: exactly n were asked for
    a.admitted = true;
    a.limit = spec.capacity;
    a.remaining = std::clamp<int64_t>(got.remaining, 0, spec.capacity);
    a.reset = CeilMillis(got.reset_us);
    return a;
  }
  if (e != nullptr) AddToLease(e, detached, now);
  Answer a;
  a.limit = spec.capacity;
  a.remaining =
      std::clamp<int64_t>(got.remaining + (e != nullptr ? e->lease : 0), 0, spec.capacity);
  a.retry_after = std::max(CeilMillis(got.retry_after_us), std::chrono::milliseconds(1));
  a.reset = CeilMillis(got.reset_us);
  return a;
}

void RedisQuotaStore::Adjust(const Spec& spec, int64_t n) {
  if (!ValidSpec(spec) || n == 0) return;
  std::lock_guard lock(mu_);
  const int64_t now = clock_->NowMicros();
  Entry* e = FindOrCreate(spec, now);
  if (e == nullptr) return;
  Touch(e, spec, now);
  if (e->has_fallback || Down(now)) {
    const Gcra gcra(spec.capacity, e->period_us);
    const double ahead = e->has_fallback ? AheadOf(e->fallback, now) : 0;
    e->fallback = TatAt(now, gcra.Adjust(ahead, n).ahead);
    e->has_fallback = true;
  }
  if (n > 0) {
    NoteUse(e, n, /*take=*/false);
    const int64_t spent = std::min(e->lease, n);
    e->lease -= spent;
    AddPending(e, n - spent, now);
  } else if (now < e->block_until_us) {
    AddPending(e, n, now);  // Redis gives back what the block leaves
  } else {
    AddToLease(e, -n, now);
  }
}

void RedisQuotaStore::BlockFor(const Spec& spec, std::chrono::milliseconds d) {
  if (!ValidSpec(spec) || d.count() <= 0) return;
  std::lock_guard lock(mu_);
  const int64_t now = clock_->NowMicros();
  Entry* e = FindOrCreate(spec, now);
  if (e == nullptr) return;
  Touch(e, spec, now);
  const int64_t block_us = Micros(d);
  e->lease = 0;  // dropped: giving them back would shorten the block
  e->block_until_us = std::max(e->block_until_us, now + block_us);
  e->block_pending = true;
  if (e->has_fallback || Down(now)) {
    const Gcra gcra(spec.capacity, e->period_us);
    const double ahead = e->has_fallback ? AheadOf(e->fallback, now) : 0;
    e->fallback = TatAt(now, gcra.Block(ahead, block_us).ahead);
    e->has_fallback = true;
  }
}

Answer RedisQuotaStore::Peek(const Spec& spec) {
  if (!ValidSpec(spec)) return NeverFits(spec);
  const int64_t period_us = std::chrono::microseconds(spec.period).count();
  std::lock_guard lock(mu_);
  const int64_t now = clock_->NowMicros();
  const Entry* e = Find(spec.key);
  if (e != nullptr && now < e->block_until_us) {
    GcraResult r;
    r.reset_us = e->block_until_us - now + period_us;
    return AnswerOf(spec, r, /*admitted=*/true, /*local=*/!up_.load());
  }
  if (e != nullptr && e->has_fallback && !up_.load()) {
    const Gcra gcra(spec.capacity, period_us);
    return AnswerOf(spec, gcra.Peek(AheadOf(e->fallback, now)), /*admitted=*/true,
                    /*local=*/true);
  }
  if (e != nullptr) return LeaseAnswer(spec, *e, now);
  Answer a;
  a.admitted = true;
  a.limit = spec.capacity;
  a.remaining = spec.capacity;
  a.local = !up_.load();
  return a;
}

void RedisQuotaStore::Loop() {
  Connection conn(options_);
  std::unique_lock lock(stop_mu_);
  while (!stopping_) {
    stop_cv_.wait_for(lock, options_.flush_interval, [&] { return stopping_; });
    if (stopping_) break;
    lock.unlock();
    FlushOnce(conn, /*final=*/false, 0);
    lock.lock();
  }
  lock.unlock();
  const int64_t budget = Micros(options_.connect_timeout) + 4 * Micros(options_.command_timeout);
  FlushOnce(conn, /*final=*/true, clock_->NowMicros() + budget);
}

void RedisQuotaStore::FlushOnce(Connection& conn, bool final, int64_t deadline_us) {
  std::vector<FlushItem> items;
  {
    std::lock_guard lock(mu_);
    const int64_t now = clock_->NowMicros();
    const int64_t idle_us = Micros(options_.lease_ttl);
    for (auto it = entries_.begin(); it != entries_.end();) {
      Entry& e = it->second;
      if (e.lease > 0 && (final || now >= e.lease_expires_us)) ReturnLease(&e, now);
      if (e.block_pending && now >= e.block_until_us) e.block_pending = false;
      if (e.pending != 0 || e.block_pending) {
        FlushItem item;
        item.key = it->first;
        item.redis_key = options_.prefix + ":" + it->first;
        item.capacity = e.capacity;
        item.period_us = e.period_us;
        item.adjust = e.pending;
        item.adjust_since_us = e.pending_since_us;
        item.adjust_done = e.pending == 0;
        item.block_us = e.block_pending ? e.block_until_us - now : 0;
        item.block_done = !e.block_pending;
        e.pending = 0;
        e.pending_since_us = 0;
        e.block_pending = false;
        items.push_back(std::move(item));
        ++it;
        continue;
      }
      const bool idle = e.in_flight == 0 && e.lease == 0 && now >= e.block_until_us &&
                        (!e.has_fallback || AheadOf(e.fallback, now) <= 0) &&
                        now - e.last_used_us >= idle_us;
      it = !final && idle ? entries_.erase(it) : std::next(it);
    }
  }
  if (items.empty()) return;
  if (Down(clock_->NowMicros())) {
    if (!final) Requeue(items, clock_->NowMicros());
    return;
  }

  // Adjust before block: a give-back after the block would shorten it.
  std::vector<ScriptCall> calls;
  std::vector<std::pair<size_t, bool>> owners;  // item, is the block
  calls.reserve(items.size());
  for (size_t i = 0; i < items.size(); ++i) {
    const FlushItem& item = items[i];
    if (!item.adjust_done) {
      calls.push_back({"adjust", item.redis_key, item.capacity, item.period_us, item.adjust, 0});
      owners.emplace_back(i, false);
    }
    if (!item.block_done) {
      calls.push_back({"block", item.redis_key, item.capacity, item.period_us, item.block_us, 0});
      owners.emplace_back(i, true);
    }
  }
  bool ok = true;
  std::string error;
  for (size_t begin = 0; begin < calls.size() && ok; begin += kFlushBatch) {
    if (final && clock_->NowMicros() >= deadline_us) break;
    const size_t end = std::min(calls.size(), begin + kFlushBatch);
    const std::vector<ScriptCall> batch(calls.begin() + static_cast<std::ptrdiff_t>(begin),
                                        calls.begin() + static_cast<std::ptrdiff_t>(end));
    std::vector<char> done;
    ok = conn.CallAll(batch, &done);
    if (!ok) error = conn.error();
    for (size_t i = 0; i < batch.size(); ++i) {
      if (!done[i]) continue;
      FlushItem& item = items[owners[begin + i].first];
      (owners[begin + i].second ? item.block_done : item.adjust_done) = true;
    }
  }
  if (!ok) {
    MarkDown(error);
    if (!final) Requeue(items, clock_->NowMicros());
    return;
  }
  MarkUp();
}

void RedisQuotaStore::Requeue(const std::vector<FlushItem>& items, int64_t now_us) {
  std::lock_guard lock(mu_);
  for (const FlushItem& item : items) {
    if (item.adjust_done && item.block_done) continue;
    Entry* e = Find(item.key);
    if (e == nullptr) continue;
    // An adjustment older than its bucket's period is dropped: the bucket
    // would have refilled what it corrects.
    if (!item.adjust_done && now_us - item.adjust_since_us <= item.period_us) {
      if (e->pending == 0 || item.adjust_since_us < e->pending_since_us) {
        e->pending_since_us = item.adjust_since_us;
      }
      e->pending += item.adjust;
    }
    if (!item.block_done && now_us < e->block_until_us) e->block_pending = true;
  }
}

}  // namespace tg::edge::quota
