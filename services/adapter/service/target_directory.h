#pragma once

// tg-adapter's targets, resolved once per configuration change instead of
// once per call: for every target of every upstream (and every endpoint
// service) what an Invoke or a Probe needs, ready to use. An Invoke names its
// target by id and finds it here with two hash lookups; the adapter never
// calls anything that is not in its configuration.

#include <atomic>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

#include "tg/adapter/translate/provider_codec.h"
#include "tg/common/config_snapshot.h"
#include "tg/common/config_watcher.h"
#include "tg/common/metrics.h"
#include "tg/v1/resources.pb.h"

namespace tg::adapter {

struct ResolvedTarget {
  std::string upstream_id;  // "" for an endpoint service
  // As configured, credentials moved out. An endpoint service is described
  // as a target without provider (id, host, port, protocol, path, headers).
  tg::v1::Target target;
  tg::v1::Credentials credentials;
  // No provider: the client's request is forwarded as it is.
  bool passthrough = false;
  // What the codecs read (model and stream are each call's).
  translate::TargetInfo info;
  // nullptr for a passthrough target, and for a provider no codec knows (its
  // calls are refused with a clear error; tg-config does not accept one).
  const translate::ProviderCodec* codec = nullptr;
  std::string provider_label;  // the metrics' provider label: the provider, or "passthrough"
  std::string gen_ai_system;   // OpenTelemetry's gen_ai.system for the provider

  // The metric children of provider_label, looked up on first use (a child
  // created at config time would be exported before any call).
  metrics::Histogram& Ttfb() const;
  metrics::Histogram& Duration() const;
  metrics::Counter& SkippedEvents() const;

 private:
  mutable std::atomic<metrics::Histogram*> ttfb_{nullptr};
  mutable std::atomic<metrics::Histogram*> duration_{nullptr};
  mutable std::atomic<metrics::Counter*> skipped_events_{nullptr};
};

class TargetDirectory {
 public:
  // The directory of `snapshot`. What `previous` resolved for an upstream or
  // service that did not change (the same entity in both snapshots) is
  // shared, not resolved again.
  static std::shared_ptr<const TargetDirectory> Build(const ConfigSnapshot& snapshot,
                                                      const TargetDirectory* previous);

  // A target of an upstream, or (upstream_id empty) an endpoint service;
  // nullptr when this configuration has none by that id.
  std::shared_ptr<const ResolvedTarget> Find(std::string_view upstream_id,
                                             std::string_view target_id) const;

  int64_t revision() const { return revision_; }

 private:
  using Targets = std::unordered_map<std::string, std::shared_ptr<const ResolvedTarget>,
                                     ConfigSnapshot::StringHash, std::equal_to<>>;
  struct Upstream {
    ConfigSnapshot::Ptr<tg::v1::Upstream> source;
    Targets targets;
  };
  struct Service {
    ConfigSnapshot::Ptr<tg::v1::Service> source;
    std::shared_ptr<const ResolvedTarget> target;
  };

  int64_t revision_ = 0;
  ConfigSnapshot::Index<Upstream> upstreams_;
  ConfigSnapshot::Index<Service> services_;
};

// The directory of a ConfigWatcher's current snapshot, rebuilt on the watch's
// thread before the watcher publishes each new snapshot: a caller that saw
// revision R through the watcher finds R's targets here.
class LiveTargetDirectory {
 public:
  explicit LiveTargetDirectory(ConfigWatcher& watcher);

  std::shared_ptr<const TargetDirectory> current() const { return state_->current.load(); }

 private:
  struct State {
    std::atomic<std::shared_ptr<const TargetDirectory>> current;
  };
  // Shared with the watcher's listener, which may outlive this object.
  std::shared_ptr<State> state_;
};

}  // namespace tg::adapter
