#include "tg/edge/quota/quota_store.h"

#include <algorithm>

namespace tg::edge::quota {

bool ValidSpec(const Spec& spec) { return spec.capacity > 0 && spec.period.count() > 0; }

Answer NeverFits(const Spec& spec) {
  Answer a;
  a.limit = std::max<int64_t>(spec.capacity, 0);
  return a;
}

Answer AnswerOf(const Spec& spec, const GcraResult& r, bool admitted, bool local) {
  Answer a;
  a.admitted = admitted;
  a.limit = spec.capacity;
  a.remaining = r.remaining;
  a.retry_after = admitted ? std::chrono::milliseconds(0) : CeilMillis(r.retry_after_us);
  a.reset = CeilMillis(r.reset_us);
  a.local = local;
  return a;
}

LocalQuotaStore::LocalQuotaStore(const Clock* clock)
    : clock_(clock != nullptr ? clock : &SteadyClock::Get()) {}

template <typename Op>
GcraResult LocalQuotaStore::Apply(const Spec& spec, Op op) {
  const Gcra gcra(spec.capacity, std::chrono::microseconds(spec.period).count());
  const int64_t now = clock_->NowMicros();
  std::lock_guard lock(mu_);
  auto it = buckets_.find(spec.key);
  const double ahead = it == buckets_.end() ? 0 : AheadOf(it->second, now);
  const GcraResult r = op(gcra, ahead);
  if (r.ahead > 0) {
    if (it == buckets_.end()) {
      MaybeSweep(now);
      buckets_.emplace(spec.key, TatAt(now, r.ahead));
    } else {
      it->second = TatAt(now, r.ahead);
    }
  } else if (it != buckets_.end()) {
    buckets_.erase(it);  // full again: the same as no entry
  }
  return r;
}

void LocalQuotaStore::MaybeSweep(int64_t now_us) {
  if (buckets_.size() < sweep_at_) return;
  std::erase_if(buckets_, [&](const auto& kv) { return AheadOf(kv.second, now_us) <= 0; });
  sweep_at_ = std::max<size_t>(1024, 2 * buckets_.size());
}

Answer LocalQuotaStore::Take(const Spec& spec, int64_t n) {
  if (!ValidSpec(spec) || n > spec.capacity) {
    Answer a = NeverFits(spec);
    a.local = true;
    return a;
  }
  if (n <= 0) return Peek(spec);
  const GcraResult r =
      Apply(spec, [n](const Gcra& g, double ahead) { return g.Take(ahead, n, n); });
  return AnswerOf(spec, r, r.granted >= n, /*local=*/true);
}

void LocalQuotaStore::Adjust(const Spec& spec, int64_t n) {
  if (!ValidSpec(spec) || n == 0) return;
  Apply(spec, [n](const Gcra& g, double ahead) { return g.Adjust(ahead, n); });
}

void LocalQuotaStore::BlockFor(const Spec& spec, std::chrono::milliseconds d) {
  if (!ValidSpec(spec) || d.count() <= 0) return;
  const int64_t block_us = std::chrono::microseconds(d).count();
  Apply(spec, [block_us](const Gcra& g, double ahead) { return g.Block(ahead, block_us); });
}

Answer LocalQuotaStore::Peek(const Spec& spec) {
  if (!ValidSpec(spec)) {
    Answer a = NeverFits(spec);
    a.local = true;
    return a;
  }
  const Gcra gcra(spec.capacity, std::chrono::microseconds(spec.period).count());
  const int64_t now = clock_->NowMicros();
  double ahead = 0;
  {
    std::lock_guard lock(mu_);
    auto it = buckets_.find(spec.key);
    if (it != buckets_.end()) ahead = AheadOf(it->second, now);
  }
  return AnswerOf(spec, gcra.Peek(ahead), /*admitted=*/true, /*local=*/true);
}

size_t LocalQuotaStore::size() const {
  std::lock_guard lock(mu_);
  return buckets_.size();
}

}  // namespace tg::edge::quota
