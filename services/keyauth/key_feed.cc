#include "tg/keyauth/key_feed.h"

#include <algorithm>
#include <exception>

#include "tg/common/change_log.h"
#include "tg/common/log.h"

namespace tg::keyauth {

KeyFeed::KeyFeed(KeyFeedOptions options, KeyStore* store, KeyIndex* index, RevocationHub* hub)
    : options_(std::move(options)), store_(store), index_(index), hub_(hub) {}

KeyFeed::~KeyFeed() { Stop(); }

void KeyFeed::Load() {
  std::lock_guard lock(poll_mu_);
  KeySnapshot snap = store_->LoadAll();
  index_->Reset(snap.keys, snap.revision);
  hub_->Reset(snap.revision);
  revision_ = snap.revision;
  log::Info("keys loaded", {{"keys", std::to_string(snap.keys.size())},
                            {"revision", std::to_string(snap.revision)}});
}

void KeyFeed::Start() {
  if (thread_.joinable()) return;
  stop_ = false;
  thread_ = std::thread([this] { Run(); });
}

void KeyFeed::Stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

void KeyFeed::CatchUp(int64_t revision) {
  std::lock_guard lock(poll_mu_);
  if (revision_ < revision) PollLocked();
}

int64_t KeyFeed::revision() const {
  std::lock_guard lock(poll_mu_);
  return revision_;
}

void KeyFeed::PollLocked() {
  for (;;) {
    int64_t as_of = 0;
    auto rows = store_->ReadChanges(revision_, options_.batch_size, &as_of);
    if (rows.empty()) {
      // Nothing new for keys, but the state is current up to as_of: a
      // VerifyKey asking for a revision a config write drew can be answered.
      if (as_of > revision_) {
        index_->Apply({}, as_of);
        hub_->Publish({}, as_of);
        revision_ = as_of;
      }
      return;
    }
    std::vector<KeyUpdate> updates;
    std::vector<Revocation> revoked;
    for (auto& row : rows) {
      const auto& c = row.change;
      if (c.kind != kKeyKind) continue;
      if (c.deleted) {
        updates.push_back(KeyUpdate{c.entity_id, true, {}});
        revoked.push_back(Revocation{row.revision, c.entity_id, c.gateway_id});
        continue;
      }
      auto record = FromChangeDoc(c.doc);
      if (!record) {
        // Skipping keeps every other key current; the entity id (not the doc,
        // which holds the hash) says which row to look at.
        log::Error("unreadable key change skipped",
                   {{"revision", std::to_string(row.revision)}, {"key_id", c.entity_id}});
        continue;
      }
      updates.push_back(KeyUpdate{record->id, false, std::move(*record)});
    }
    int64_t last = std::max(rows.back().revision, as_of);
    index_->Apply(updates, last);
    hub_->Publish(revoked, last);
    revision_ = last;
    if (static_cast<int>(rows.size()) < options_.batch_size) return;
  }
}

void KeyFeed::Run() {
  pg::ChangeListener listener(options_.dsn, std::string(kKeysTopic));
  bool failing = false;
  while (!stop_) {
    // Returns early on a notification; otherwise this is the polling tick.
    listener.Wait(options_.poll_interval);
    if (stop_) break;
    try {
      std::lock_guard lock(poll_mu_);
      PollLocked();
      if (failing) log::Info("key feed recovered");
      failing = false;
    } catch (const std::exception&) {
      // The pool reconnects by itself; one line per outage, not per tick.
      if (!failing) log::Warn("key feed cannot read the change log; retrying");
      failing = true;
    }
    hub_->HeartbeatIfDue(std::chrono::steady_clock::now());
  }
}

}  // namespace tg::keyauth
