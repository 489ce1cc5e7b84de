#include "tg/config/config_feed.h"

#include <algorithm>

#include "tg/common/change_log.h"
#include "tg/common/log.h"

namespace tg::config {

void ConfigFeed::Subscription::Notify() {
  std::lock_guard lock(mu_);
  if (listener_ != nullptr) listener_->OnFeedAdvanced();
}

void ConfigFeed::Subscription::Cancel() {
  std::lock_guard lock(mu_);
  listener_ = nullptr;
}

ConfigFeed::ConfigFeed(ConfigStore& store, std::string dsn, Options options)
    : store_(store), dsn_(std::move(dsn)), options_(options) {}

ConfigFeed::~ConfigFeed() { Stop(); }

grpc::Status ConfigFeed::Start() {
  tg::v1::ConfigSnapshot snap;
  int64_t rev = 0;
  auto status = store_.LoadSnapshot(&snap, &rev);
  if (!status.ok()) return status;
  {
    std::lock_guard lock(mu_);
    for (auto& g : *snap.mutable_gateways()) gateways_[g.id()] = std::move(g);
    for (auto& u : *snap.mutable_upstreams()) upstreams_[u.id()] = std::move(u);
    for (auto& s : *snap.mutable_services()) services_[s.id()] = std::move(s);
    for (auto& r : *snap.mutable_rules()) rules_[r.id()] = std::move(r);
    revision_ = rev;
    window_start_ = rev;
  }
  thread_ = std::thread([this] { Run(); });
  return grpc::Status::OK;
}

void ConfigFeed::Close() {
  closed_ = true;
  NotifyAll();
}

void ConfigFeed::Stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

std::shared_ptr<ConfigFeed::Subscription> ConfigFeed::Subscribe(Listener* listener,
                                                                WorkerPool& workers) {
  auto sub = std::make_shared<Subscription>(listener);
  {
    std::lock_guard lock(subs_mu_);
    subs_.push_back(sub);
  }
  workers.Post([this, sub] {
    PollOnce();
    sub->caught_up = true;
    sub->Notify();
  });
  return sub;
}

void ConfigFeed::Unsubscribe(const std::shared_ptr<Subscription>& sub) {
  sub->Cancel();
  std::lock_guard lock(subs_mu_);
  subs_.erase(std::remove(subs_.begin(), subs_.end(), sub), subs_.end());
}

void ConfigFeed::NotifyAll() {
  std::vector<std::shared_ptr<Subscription>> subs;
  {
    std::lock_guard lock(subs_mu_);
    subs = subs_;
  }
  for (auto& s : subs) s->Notify();
}

void ConfigFeed::Run() {
  pg::ChangeListener listener(dsn_, "config");
  while (!stop_) {
    listener.Wait(options_.poll);
    if (stop_) break;
    PollOnce();
    // Also wakes idle streams so they can send heartbeats on time.
    NotifyAll();
  }
}

void ConfigFeed::PollOnce() {
  std::lock_guard poll_lock(poll_mu_);
  for (;;) {
    std::vector<pg::ChangeRow> rows;
    int64_t after = revision();
    try {
      store_.pool().Run([&](pqxx::connection& c) {
        pqxx::read_transaction tx(c);
        rows = pg::ReadChanges(tx, "config", after, 1000);
      });
    } catch (const std::exception& e) {
      // PostgreSQL is away: keep serving what we have, try again next tick.
      return;
    }
    for (const auto& row : rows) Apply(row.revision, row);
    if (rows.size() < 1000) return;
  }
}

void ConfigFeed::Apply(int64_t revision, const pg::ChangeRow& row) {
  const auto& c = row.change;
  tg::v1::ConfigChange change;
  std::lock_guard lock(mu_);
  if (revision <= revision_) return;
  if (c.deleted) {
    auto* d = change.mutable_deleted();
    d->set_id(c.entity_id);
    d->set_gateway_id(c.gateway_id);
    if (c.kind == "gateway") {
      d->set_kind(tg::v1::RESOURCE_KIND_GATEWAY);
      gateways_.erase(c.entity_id);
      auto drop = [&](auto& m) {
        std::erase_if(m, [&](const auto& kv) { return kv.second.gateway_id() == c.entity_id; });
      };
      drop(upstreams_);
      drop(services_);
      drop(rules_);
    } else if (c.kind == "upstream") {
      d->set_kind(tg::v1::RESOURCE_KIND_UPSTREAM);
      upstreams_.erase(c.entity_id);
    } else if (c.kind == "service") {
      d->set_kind(tg::v1::RESOURCE_KIND_SERVICE);
      services_.erase(c.entity_id);
    } else if (c.kind == "rule") {
      d->set_kind(tg::v1::RESOURCE_KIND_RULE);
      rules_.erase(c.entity_id);
    }
  } else if (c.kind == "gateway") {
    if (ParseDoc(c.doc, change.mutable_gateway())) gateways_[c.entity_id] = change.gateway();
  } else if (c.kind == "upstream") {
    if (ParseDoc(c.doc, change.mutable_upstream())) upstreams_[c.entity_id] = change.upstream();
  } else if (c.kind == "service") {
    if (ParseDoc(c.doc, change.mutable_service())) services_[c.entity_id] = change.service();
  } else if (c.kind == "rule") {
    if (ParseDoc(c.doc, change.mutable_rule())) rules_[c.entity_id] = change.rule();
  }
  revision_ = revision;
  window_.emplace_back(revision, std::move(change));
  while (window_.size() > options_.window) {
    window_start_ = window_.front().first;
    window_.pop_front();
  }
}

ConfigFeed::Next ConfigFeed::NextAfter(int64_t after, int64_t* revision,
                                       tg::v1::ConfigChange* change) const {
  std::lock_guard lock(mu_);
  if (after < window_start_) return Next::kGap;
  auto it = std::upper_bound(window_.begin(), window_.end(), after,
                             [](int64_t rev, const auto& e) { return rev < e.first; });
  if (it == window_.end()) return Next::kNone;
  *revision = it->first;
  *change = it->second;
  return Next::kEvent;
}

void ConfigFeed::Snapshot(tg::v1::ConfigSnapshot* out, int64_t* revision) const {
  std::lock_guard lock(mu_);
  for (const auto& [id, g] : gateways_) *out->add_gateways() = g;
  for (const auto& [id, u] : upstreams_) *out->add_upstreams() = u;
  for (const auto& [id, s] : services_) *out->add_services() = s;
  for (const auto& [id, r] : rules_) *out->add_rules() = r;
  *revision = revision_;
}

int64_t ConfigFeed::revision() const {
  std::lock_guard lock(mu_);
  return revision_;
}

}  // namespace tg::config
