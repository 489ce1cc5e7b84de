#include "tg/keyauth/revocation_hub.h"

namespace tg::keyauth {

RevocationHub::RevocationHub(RevocationHubOptions options) : options_(options) {}

tg::v1::KeyEvent RevocationHub::RevokedEvent(const Revocation& r) {
  tg::v1::KeyEvent ev;
  ev.set_revision(r.revision);
  ev.mutable_revoked()->set_key_id(r.key_id);
  ev.mutable_revoked()->set_gateway_id(r.gateway_id);
  return ev;
}

void RevocationHub::BroadcastLocked(const tg::v1::KeyEvent& event) {
  for (auto* sink : sinks_) sink->Send(event);
}

void RevocationHub::Reset(int64_t revision) {
  std::lock_guard lock(mu_);
  window_.clear();
  window_start_ = revision;
  revision_ = revision;
  tg::v1::KeyEvent ev;
  ev.set_revision(revision);
  ev.set_reset(true);
  BroadcastLocked(ev);
}

void RevocationHub::Publish(const std::vector<Revocation>& revoked, int64_t revision) {
  std::lock_guard lock(mu_);
  for (const auto& r : revoked) {
    if (r.revision <= revision_) continue;  // already published
    window_.push_back(r);
    revision_ = r.revision;
    BroadcastLocked(RevokedEvent(r));
  }
  while (window_.size() > options_.window) {
    window_start_ = window_.front().revision;
    window_.pop_front();
  }
  if (revision > revision_) revision_ = revision;
}

bool RevocationHub::Subscribe(KeyEventSink* sink, int64_t from_revision) {
  std::lock_guard lock(mu_);
  if (closed_) return false;
  sinks_.insert(sink);
  bool resumable =
      from_revision > 0 && from_revision >= window_start_ && from_revision <= revision_;
  if (!resumable) {
    tg::v1::KeyEvent ev;
    ev.set_revision(revision_);
    ev.set_reset(true);
    sink->Send(ev);
    return true;
  }
  for (const auto& r : window_) {
    if (r.revision > from_revision) sink->Send(RevokedEvent(r));
  }
  return true;
}

void RevocationHub::Unsubscribe(KeyEventSink* sink) {
  std::lock_guard lock(mu_);
  sinks_.erase(sink);
}

void RevocationHub::HeartbeatIfDue(std::chrono::steady_clock::time_point now) {
  std::lock_guard lock(mu_);
  if (now - last_heartbeat_ < options_.heartbeat_interval) return;
  last_heartbeat_ = now;
  tg::v1::KeyEvent ev;
  ev.set_revision(revision_);
  ev.set_heartbeat(true);
  BroadcastLocked(ev);
}

void RevocationHub::CloseAll(const grpc::Status& status) {
  std::lock_guard lock(mu_);
  closed_ = true;
  for (auto* sink : sinks_) sink->Close(status);
}

int64_t RevocationHub::revision() const {
  std::lock_guard lock(mu_);
  return revision_;
}

size_t RevocationHub::subscribers() const {
  std::lock_guard lock(mu_);
  return sinks_.size();
}

}  // namespace tg::keyauth
