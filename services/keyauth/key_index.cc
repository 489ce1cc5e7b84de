#include "tg/keyauth/key_index.h"

#include <algorithm>

#include "tg/common/crypto.h"
#include "tg/keyauth/key_format.h"

namespace tg::keyauth {

KeyIndex::KeyIndex() : snapshot_(std::make_shared<const Snapshot>()) {}

void KeyIndex::Remove(Snapshot& s, const std::string& id) {
  auto p = s.prefix_of.find(id);
  if (p == s.prefix_of.end()) return;
  auto bucket = s.by_prefix.find(p->second);
  if (bucket != s.by_prefix.end()) {
    auto& v = bucket->second;
    std::erase_if(v, [&id](const Entry& e) { return e.id == id; });
    if (v.empty()) s.by_prefix.erase(bucket);
  }
  s.prefix_of.erase(p);
}

void KeyIndex::Insert(Snapshot& s, const KeyRecord& r) {
  Remove(s, r.id);
  s.by_prefix[r.prefix].push_back(Entry{r.id, r.gateway_id, r.hash, r.expires_at});
  s.prefix_of[r.id] = r.prefix;
}

void KeyIndex::Reset(const std::vector<KeyRecord>& keys, int64_t revision) {
  auto next = std::make_shared<Snapshot>();
  for (const auto& k : keys) Insert(*next, k);
  next->revision = revision;
  std::lock_guard lock(write_mu_);
  snapshot_.store(std::move(next));
  current_revision_.store(revision);
}

void KeyIndex::Apply(const std::vector<KeyUpdate>& updates, int64_t revision) {
  std::lock_guard lock(write_mu_);
  auto current = snapshot_.load();
  if (updates.empty()) {
    // Only the revision moves (other topics' writes): no copy of the keys.
    if (revision > current_revision_.load()) current_revision_.store(revision);
    return;
  }
  auto next = std::make_shared<Snapshot>(*current);
  for (const auto& u : updates) {
    if (u.deleted) {
      Remove(*next, u.id);
    } else {
      Insert(*next, u.record);
    }
  }
  next->revision = std::max(revision, current->revision);
  int64_t applied = next->revision;
  snapshot_.store(std::move(next));
  // After the snapshot: a reader that sees this revision sees those keys.
  if (applied > current_revision_.load()) current_revision_.store(applied);
}

std::optional<VerifiedKey> KeyIndex::Verify(std::string_view key, std::string_view gateway_id,
                                            TimePoint now) const {
  if (!HasKeyShape(key)) return std::nullopt;
  // The revision before the snapshot (writers store them the other way
  // round), so the answer never claims a revision its keys do not reflect.
  int64_t current = current_revision_.load();
  auto snap = snapshot_.load();
  auto bucket = snap->by_prefix.find(std::string(KeyPrefix(key)));
  if (bucket == snap->by_prefix.end()) return std::nullopt;
  const std::string hash = KeyHash(key);
  const Entry* match = nullptr;
  // No early exit: the time taken does not depend on which entry matched.
  for (const auto& e : bucket->second) {
    if (crypto::ConstantTimeEquals(e.hash, hash)) match = &e;
  }
  if (match == nullptr) return std::nullopt;
  if (!gateway_id.empty() && match->gateway_id != gateway_id) return std::nullopt;
  if (match->expires_at && *match->expires_at <= now) return std::nullopt;
  return VerifiedKey{match->id, match->gateway_id, match->expires_at,
                     std::max(current, snap->revision)};
}

int64_t KeyIndex::revision() const {
  int64_t current = current_revision_.load();
  return std::max(current, snapshot_.load()->revision);
}

size_t KeyIndex::size() const { return snapshot_.load()->prefix_of.size(); }

}  // namespace tg::keyauth
