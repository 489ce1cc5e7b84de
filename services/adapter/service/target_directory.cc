#include "tg/adapter/service/target_directory.h"

#include "tg/adapter/service/adapter_metrics.h"
#include "tg/adapter/service/target_info.h"
#include "tg/common/telemetry.h"

namespace tg::adapter {
namespace {

template <class M>
M& Child(std::atomic<M*>& slot, metrics::Family<M>& family, const std::string& label) {
  M* child = slot.load(std::memory_order_acquire);
  if (child == nullptr) {
    child = &family.With({label});  // the same child whichever thread gets here first
    slot.store(child, std::memory_order_release);
  }
  return *child;
}

std::shared_ptr<const ResolvedTarget> Resolve(std::string upstream_id, tg::v1::Target target) {
  auto r = std::make_shared<ResolvedTarget>();
  r->upstream_id = std::move(upstream_id);
  r->credentials = std::move(*target.mutable_credentials());
  target.clear_credentials();
  r->target = std::move(target);
  r->passthrough = r->target.provider().empty();
  r->info = TargetInfoOf(r->target, r->credentials);
  if (r->passthrough) {
    r->provider_label = "passthrough";
  } else {
    r->codec = translate::ProviderCodecFor(r->info);
    r->provider_label = r->target.provider();
    r->gen_ai_system = std::string(GenAiSystemName(r->target.provider()));
  }
  return r;
}

tg::v1::Target ServiceAsTarget(const tg::v1::Service& s) {
  tg::v1::Target t;
  t.set_id(s.id());
  t.set_host(s.host());
  if (s.has_port()) t.set_port(s.port());
  t.set_protocol(s.protocol());
  t.set_path(s.path());
  *t.mutable_headers() = s.headers();
  *t.mutable_credentials() = s.credentials();
  return t;
}

}  // namespace

metrics::Histogram& ResolvedTarget::Ttfb() const {
  return Child(ttfb_, AdapterMetrics::Get().ttfb, provider_label);
}
metrics::Histogram& ResolvedTarget::Duration() const {
  return Child(duration_, AdapterMetrics::Get().duration, provider_label);
}
metrics::Counter& ResolvedTarget::SkippedEvents() const {
  return Child(skipped_events_, AdapterMetrics::Get().skipped_events, provider_label);
}

std::shared_ptr<const TargetDirectory> TargetDirectory::Build(const ConfigSnapshot& snapshot,
                                                              const TargetDirectory* previous) {
  auto dir = std::make_shared<TargetDirectory>();
  dir->revision_ = snapshot.revision();
  dir->upstreams_.reserve(snapshot.upstreams().size());
  for (const auto& [id, upstream] : snapshot.upstreams()) {
    if (previous != nullptr) {
      auto it = previous->upstreams_.find(id);
      if (it != previous->upstreams_.end() && it->second->source == upstream) {
        dir->upstreams_.emplace(id, it->second);
        continue;
      }
    }
    auto entry = std::make_shared<Upstream>();
    entry->source = upstream;
    for (const auto& t : upstream->targets()) entry->targets.emplace(t.id(), Resolve(id, t));
    dir->upstreams_.emplace(id, std::move(entry));
  }
  for (const auto& [id, service] : snapshot.services()) {
    if (service->type() != "endpoint") continue;
    if (previous != nullptr) {
      auto it = previous->services_.find(id);
      if (it != previous->services_.end() && it->second->source == service) {
        dir->services_.emplace(id, it->second);
        continue;
      }
    }
    auto entry = std::make_shared<Service>();
    entry->source = service;
    entry->target = Resolve("", ServiceAsTarget(*service));
    dir->services_.emplace(id, std::move(entry));
  }
  return dir;
}

std::shared_ptr<const ResolvedTarget> TargetDirectory::Find(std::string_view upstream_id,
                                                            std::string_view target_id) const {
  if (upstream_id.empty()) {
    auto it = services_.find(target_id);
    return it == services_.end() ? nullptr : it->second->target;
  }
  auto u = upstreams_.find(upstream_id);
  if (u == upstreams_.end()) return nullptr;
  auto t = u->second->targets.find(target_id);
  return t == u->second->targets.end() ? nullptr : t->second;
}

LiveTargetDirectory::LiveTargetDirectory(ConfigWatcher& watcher)
    : state_(std::make_shared<State>()) {
  watcher.AddSnapshotListener([state = state_](const std::shared_ptr<const ConfigSnapshot>& next) {
    auto previous = state->current.load();
    state->current.store(TargetDirectory::Build(*next, previous.get()));
  });
}

}  // namespace tg::adapter
