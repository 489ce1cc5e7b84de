#pragma once

// Prometheus metrics: counters, gauges and histograms grouped in labelled
// families, and a registry that renders them in the text exposition format
// 0.0.4 (served by tg/common/metrics_server.h).
//
// Hot path: look a child up once (Family::With), keep the reference, then
// Inc/Set/Observe it; those are lock-free atomics. With() itself takes a
// shared lock and hashes the label values, so call it per request only when
// the labels really vary per request, never per stream chunk.
//
// Cardinality: every family has a cap on its label sets (max_children);
// label sets beyond the cap all share one overflow child labelled "_other",
// so a bad label (a raw model name typed by a user) cannot grow memory or the
// scrape without bound.

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

namespace tg::metrics {

// Label VALUES, in the order of the family's label names.
using Labels = std::vector<std::string>;

// The value of every label of the overflow child of a capped family.
inline constexpr std::string_view kOverflowLabel = "_other";

// Monotonically increasing. Whole increments (the usual case: requests,
// tokens) go to an integer atomic with one fetch_add; fractional ones (seconds)
// to a double updated by compare-and-swap. Negative, zero and NaN increments
// are ignored.
class Counter {
 public:
  void Inc(double v = 1) {
    if (!(v > 0)) return;
    if (v < kWholeLimit && v == static_cast<double>(static_cast<uint64_t>(v))) {
      whole_.fetch_add(static_cast<uint64_t>(v), std::memory_order_relaxed);
    } else {
      fraction_.fetch_add(v, std::memory_order_relaxed);
    }
  }
  double Value() const {
    return static_cast<double>(whole_.load(std::memory_order_relaxed)) +
           fraction_.load(std::memory_order_relaxed);
  }

 private:
  static constexpr double kWholeLimit = 9007199254740992.0;  // 2^53: exact in a double
  std::atomic<uint64_t> whole_{0};
  std::atomic<double> fraction_{0};
};

class Gauge {
 public:
  void Set(double v) { value_.store(v, std::memory_order_relaxed); }
  void Add(double v) { value_.fetch_add(v, std::memory_order_relaxed); }
  double Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

// Fixed upper bounds (`le`), one atomic count per bucket plus +Inf, and an
// atomic sum. Observe is a binary search and two relaxed atomic updates; the
// count is the sum of the buckets, so a scrape never shows `_count` differing
// from the +Inf bucket. NaN observations are dropped (they would poison _sum).
class Histogram {
 public:
  // `bounds` as returned by NormalizeBuckets (ascending, finite, unique).
  explicit Histogram(std::shared_ptr<const std::vector<double>> bounds);
  Histogram(const Histogram&) = delete;
  Histogram& operator=(const Histogram&) = delete;

  void Observe(double v);

  // Snapshot accessors (each read is atomic; together they are not a snapshot).
  uint64_t Count() const;
  double Sum() const;
  const std::vector<double>& Bounds() const { return *bounds_; }
  // Cumulative counts, one per bound, then the +Inf bucket (== Count()).
  std::vector<uint64_t> CumulativeCounts() const;

 private:
  std::shared_ptr<const std::vector<double>> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> counts_;  // bounds_->size() + 1
  std::atomic<double> sum_{0};
};

// Seconds: 0.0005 … 60, for total, upstream and time-to-first-byte latencies.
std::vector<double> LatencyBuckets();
// Sorted, de-duplicated, without NaN and ±Inf (+Inf is always implicit).
std::vector<double> NormalizeBuckets(std::vector<double> buckets);

namespace detail {

enum class Kind { kCounter, kGauge, kHistogram };

// What the registry holds: anything that renders itself as one metric family.
class Collectable {
 public:
  virtual ~Collectable() = default;
  virtual void RenderTo(std::string& out) const = 0;
};

struct LabelsHash {
  size_t operator()(const Labels& labels) const noexcept;
};

// Text-format pieces shared by the families and the callback metrics.
void AppendHeader(std::string& out, std::string_view name, std::string_view help, Kind kind);
void AppendSamples(std::string& out, std::string_view name,
                   const std::vector<std::string>& label_names, const Labels& values,
                   const Counter& c);
void AppendSamples(std::string& out, std::string_view name,
                   const std::vector<std::string>& label_names, const Labels& values,
                   const Gauge& g);
void AppendSamples(std::string& out, std::string_view name,
                   const std::vector<std::string>& label_names, const Labels& values,
                   const Histogram& h);
// Logged once per family, the first time a label set lands in the overflow child.
void WarnOverflow(std::string_view family, size_t max_children);

}  // namespace detail

// The label sets of one metric. Build it through a Registry.
template <class M>
class Family final : public detail::Collectable {
 public:
  // `buckets` only for Family<Histogram>. Names are already validated.
  Family(std::string name, std::string help, std::vector<std::string> label_names,
         size_t max_children, std::shared_ptr<const std::vector<double>> buckets = nullptr);

  // Find-or-create the child for `values`; the reference stays valid as long
  // as the family (for Registry::Default(): the process). A wrong number of
  // values is treated as all-"" values; a new label set beyond max_children
  // lands in the overflow child (every value "_other").
  M& With(const Labels& values);

  // Stops rendering every child until With() names it again: for a gauge
  // family rebuilt at each scrape from state owned elsewhere (a scrape hook
  // calls HideAll, then With for what exists now), so that a label set that
  // no longer exists (a deleted target) stops being exported.
  void HideAll();

  const std::string& name() const { return name_; }
  const std::vector<std::string>& label_names() const { return label_names_; }
  // Children, the overflow child included.
  size_t size() const;

  void RenderTo(std::string& out) const override;

 private:
  struct Child {
    template <class... Args>
    explicit Child(Labels l, Args&&... args)
        : labels(std::move(l)), metric(std::forward<Args>(args)...) {}
    Labels labels;
    M metric;
    mutable std::atomic<bool> hidden{false};
  };

  M& Insert(Labels values);

  const std::string name_;
  const std::string help_;
  const std::vector<std::string> label_names_;
  const size_t max_children_;
  const std::shared_ptr<const std::vector<double>> buckets_;

  mutable std::shared_mutex mu_;
  std::deque<Child> children_;  // stable addresses
  std::unordered_map<Labels, Child*, detail::LabelsHash> index_;
  size_t regular_children_ = 0;  // the overflow child not counted
  bool overflowed_ = false;
};

// A set of metric families, rendered together. Adding is meant for start-up;
// adding, With() and Render() are all thread-safe.
class Registry {
 public:
  Registry();
  ~Registry();
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  // Process-wide; created on first use with the process_* metrics registered
  // (RegisterProcessMetrics). Never destroyed.
  static Registry& Default();

  // Adding a name that exists returns the existing family of that kind, so two
  // modules can share one. Invalid metric or label names, a kind clash or a
  // different label set for an existing name are programmer errors: assert in
  // debug builds; in release names are sanitized, a label-set clash returns the
  // existing family and a kind clash a detached family that is never rendered.
  Family<Counter>& AddCounter(std::string name, std::string help,
                              std::vector<std::string> label_names, size_t max_children = 1000);
  Family<Gauge>& AddGauge(std::string name, std::string help, std::vector<std::string> label_names,
                          size_t max_children = 1000);
  Family<Histogram>& AddHistogram(std::string name, std::string help,
                                  std::vector<std::string> label_names, std::vector<double> buckets,
                                  size_t max_children = 1000);

  // Label-less metrics computed at scrape time (in-flight counts or queue sizes
  // owned elsewhere, an exporter's drop counter). `fn` runs under the registry
  // lock during Render(): it must be cheap and must not call into the registry.
  // Adding the same name again replaces the function.
  void AddCallbackGauge(std::string name, std::string help, std::function<double()> fn);
  void AddCallbackCounter(std::string name, std::string help, std::function<double()> fn);
  // Removes a callback metric; once it returns `fn` is never called again, so
  // an owner whose lifetime is shorter than the registry's calls it in its
  // destructor. Families cannot be removed (references to them are handed out).
  void RemoveCallback(const std::string& name);  // also removes a scrape hook of that name

  // Runs `fn` at the start of every Render(), before the registry lock is
  // taken: it may call into families (e.g. set one labelled gauge per target
  // from state owned elsewhere). Removed by RemoveCallback(name), after which
  // it never runs again.
  void AddScrapeHook(std::string name, std::function<void()> fn);

  // Text exposition format 0.0.4: families sorted by name, children by labels.
  std::string Render() const;

 private:
  template <class M, class... Extra>
  Family<M>& Add(detail::Kind kind, std::string name, std::string help,
                 std::vector<std::string> label_names, size_t max_children, Extra&&... extra);
  void AddCallback(detail::Kind kind, std::string name, std::string help,
                   std::function<double()> fn);

  struct Entry {
    detail::Kind kind;
    bool callback = false;
    std::unique_ptr<detail::Collectable> metric;
  };

  mutable std::mutex hooks_mu_;  // held while hooks run: RemoveCallback waits for them
  std::map<std::string, std::function<void()>> hooks_;
  mutable std::mutex mu_;
  std::map<std::string, Entry> entries_;                        // sorted: the render order
  std::vector<std::unique_ptr<detail::Collectable>> detached_;  // kind clashes, not rendered
};

// process_resident_memory_bytes, process_virtual_memory_bytes,
// process_cpu_seconds_total, process_open_fds, process_max_fds,
// process_start_time_seconds; read from /proc/self at scrape time.
void RegisterProcessMetrics(Registry& registry);

// Metric names: [a-zA-Z_:][a-zA-Z0-9_:]*; label names: [a-zA-Z_][a-zA-Z0-9_]*,
// not starting with "__".
bool ValidMetricName(std::string_view name);
bool ValidLabelName(std::string_view name);

// ---------------------------------------------------------------------------
// Family<M> (templates, so here).

template <class M>
Family<M>::Family(std::string name, std::string help, std::vector<std::string> label_names,
                  size_t max_children, std::shared_ptr<const std::vector<double>> buckets)
    : name_(std::move(name)),
      help_(std::move(help)),
      label_names_(std::move(label_names)),
      max_children_(max_children),
      buckets_(std::move(buckets)) {
  // A label-less family has exactly one child; create it now so that it is
  // exported (as 0) before the first event.
  if (label_names_.empty()) Insert({});
}

template <class M>
M& Family<M>::With(const Labels& values) {
  if (values.size() != label_names_.size()) return Insert(Labels(label_names_.size()));
  {
    std::shared_lock lock(mu_);
    auto it = index_.find(values);
    if (it != index_.end()) {
      Child* child = it->second;
      if (child->hidden.load(std::memory_order_relaxed)) {
        child->hidden.store(false, std::memory_order_relaxed);
      }
      return child->metric;
    }
  }
  return Insert(values);
}

template <class M>
void Family<M>::HideAll() {
  std::shared_lock lock(mu_);
  for (const Child& c : children_) c.hidden.store(true, std::memory_order_relaxed);
}

template <class M>
M& Family<M>::Insert(Labels values) {
  bool warn = false;
  M* result = nullptr;
  {
    std::unique_lock lock(mu_);
    auto it = index_.find(values);
    if (it != index_.end()) {
      it->second->hidden.store(false, std::memory_order_relaxed);
      return it->second->metric;
    }
    if (regular_children_ >= max_children_) {
      warn = !overflowed_;
      overflowed_ = true;
      values.assign(label_names_.size(), std::string(kOverflowLabel));
      it = index_.find(values);
      if (it != index_.end()) {
        it->second->hidden.store(false, std::memory_order_relaxed);
        result = &it->second->metric;
      }
    } else {
      ++regular_children_;
    }
    if (result == nullptr) {
      if constexpr (std::is_same_v<M, Histogram>) {
        children_.emplace_back(values, buckets_);
      } else {
        children_.emplace_back(values);
      }
      Child* child = &children_.back();
      index_.emplace(std::move(values), child);
      result = &child->metric;
    }
  }
  if (warn) detail::WarnOverflow(name_, max_children_);  // outside the lock
  return *result;
}

template <class M>
size_t Family<M>::size() const {
  std::shared_lock lock(mu_);
  return children_.size();
}

template <class M>
void Family<M>::RenderTo(std::string& out) const {
  constexpr detail::Kind kind = std::is_same_v<M, Counter> ? detail::Kind::kCounter
                                : std::is_same_v<M, Gauge> ? detail::Kind::kGauge
                                                           : detail::Kind::kHistogram;
  std::vector<const Child*> children;
  {
    std::shared_lock lock(mu_);
    children.reserve(children_.size());
    for (const Child& c : children_) {
      if (!c.hidden.load(std::memory_order_relaxed)) children.push_back(&c);
    }
  }
  // Children are never removed and their labels never change, so reading them
  // after the lock is released is safe.
  std::sort(children.begin(), children.end(),
            [](const Child* a, const Child* b) { return a->labels < b->labels; });
  detail::AppendHeader(out, name_, help_, kind);
  for (const Child* c : children)
    detail::AppendSamples(out, name_, label_names_, c->labels, c->metric);
}

}  // namespace tg::metrics
