// Size: three metric kinds, their text exposition, the registry and the process metrics.
#include "tg/common/metrics.h"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <set>

#include "tg/common/log.h"

namespace tg::metrics {
namespace {

using detail::Kind;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

const char* KindName(Kind kind) {
  switch (kind) {
    case Kind::kCounter:
      return "counter";
    case Kind::kGauge:
      return "gauge";
    case Kind::kHistogram:
      return "histogram";
  }
  return "untyped";
}

// Integers that a double holds exactly print without exponent or fraction
// (1000000, not 1e+06); everything else in the shortest form that reads back
// to the same double, %g style (0.0005, 2.5, 1.5e+20), which Prometheus parses.
void AppendNumber(std::string& out, double v) {
  if (std::isnan(v)) {
    out += "NaN";
    return;
  }
  if (std::isinf(v)) {
    out += v > 0 ? "+Inf" : "-Inf";
    return;
  }
  char buf[40];
  std::to_chars_result r;
  if (v == std::trunc(v) && std::fabs(v) < 9007199254740992.0) {
    r = std::to_chars(buf, buf + sizeof buf, static_cast<int64_t>(v));
  } else {
    r = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::general);
  }
  out.append(buf, r.ptr);
}

void AppendUint(std::string& out, uint64_t v) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, r.ptr);
}

// Label values: backslash, double quote and newline are escaped.
void AppendLabelValue(std::string& out, std::string_view v) {
  for (char c : v) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '"':
        out += "\\\"";
        break;
      case '\n':
        out += "\\n";
        break;
      default:
        out += c;
    }
  }
}

// HELP text: backslash and newline are escaped (a quote is not).
void AppendHelp(std::string& out, std::string_view v) {
  for (char c : v) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      default:
        out += c;
    }
  }
}

// `{a="x",b="y",le="0.5"}`; nothing when there are no labels at all.
void AppendLabels(std::string& out, const std::vector<std::string>& names, const Labels& values,
                  std::string_view le = {}) {
  if (names.empty() && le.empty()) return;
  out += '{';
  for (size_t i = 0; i < names.size(); ++i) {
    if (i > 0) out += ',';
    out += names[i];
    out += "=\"";
    if (i < values.size()) AppendLabelValue(out, values[i]);
    out += '"';
  }
  if (!le.empty()) {
    if (!names.empty()) out += ',';
    out += "le=\"";
    out += le;
    out += '"';
  }
  out += '}';
}

bool IsAlpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }

std::string SanitizeMetricName(std::string name) {
  if (ValidMetricName(name)) return name;
  assert(false && "invalid metric name");
  std::string bad = name;
  for (char& c : name) {
    if (!IsAlpha(c) && !IsDigit(c) && c != '_' && c != ':') c = '_';
  }
  if (name.empty() || IsDigit(name[0])) name.insert(name.begin(), '_');
  log::Error("invalid metric name, sanitized", {{"metric", bad}, {"as", name}});
  return name;
}

// Label names are sanitized, de-duplicated, kept off the reserved "__" prefix
// and, for histograms, off "le".
std::vector<std::string> SanitizeLabelNames(std::string_view metric, std::vector<std::string> names,
                                            bool histogram) {
  std::set<std::string> seen;
  for (std::string& n : names) {
    bool ok = ValidLabelName(n) && !(histogram && n == "le") && !seen.count(n);
    if (!ok) {
      assert(false && "invalid or duplicate label name");
      std::string bad = n;
      for (char& c : n) {
        if (!IsAlpha(c) && !IsDigit(c) && c != '_') c = '_';
      }
      if (n.empty() || IsDigit(n[0])) n.insert(n.begin(), '_');
      while (n.size() > 1 && n[0] == '_' && n[1] == '_') n.erase(0, 1);
      if (histogram && n == "le") n = "le_";
      while (seen.count(n)) n += '_';
      log::Error("invalid label name, sanitized", {{"metric", metric}, {"label", bad}, {"as", n}});
    }
    seen.insert(n);
  }
  return names;
}

// A label-less metric whose value is computed at scrape time.
class CallbackMetric final : public detail::Collectable {
 public:
  CallbackMetric(std::string name, std::string help, Kind kind, std::function<double()> fn)
      : name_(std::move(name)), help_(std::move(help)), kind_(kind), fn_(std::move(fn)) {}

  void RenderTo(std::string& out) const override {
    double v = kNaN;
    try {
      if (fn_) v = fn_();
    } catch (...) {
      v = kNaN;  // a scrape must not fail because one callback did
    }
    detail::AppendHeader(out, name_, help_, kind_);
    out += name_;
    out += ' ';
    AppendNumber(out, v);
    out += '\n';
  }

 private:
  const std::string name_;
  const std::string help_;
  const Kind kind_;
  const std::function<double()> fn_;
};

std::string ReadSmallFile(const char* path) {
  std::string s;
  std::FILE* f = std::fopen(path, "re");
  if (f == nullptr) return s;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) s.append(buf, n);
  std::fclose(f);
  return s;
}

// /proc/self/statm: size resident shared text lib data dt, in pages.
double StatmBytes(int field) {
  std::string s = ReadSmallFile("/proc/self/statm");
  const char* p = s.c_str();
  char* end = nullptr;
  unsigned long long v = 0;
  for (int i = 0; i <= field; ++i) {
    v = std::strtoull(p, &end, 10);
    if (end == p) return kNaN;
    p = end;
  }
  return static_cast<double>(v) * static_cast<double>(sysconf(_SC_PAGESIZE));
}

double CpuSeconds() {
  rusage ru{};
  if (getrusage(RUSAGE_SELF, &ru) != 0) return kNaN;
  auto secs = [](const timeval& tv) { return tv.tv_sec + tv.tv_usec / 1e6; };
  return secs(ru.ru_utime) + secs(ru.ru_stime);
}

double OpenFds() {
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return kNaN;
  int n = 0;
  while (dirent* e = readdir(dir)) {
    if (e->d_name[0] != '.') ++n;
  }
  closedir(dir);
  return n - 1;  // not the descriptor that listed the directory
}

double MaxFds() {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return kNaN;
  if (rl.rlim_cur == RLIM_INFINITY) return std::numeric_limits<double>::infinity();
  return static_cast<double>(rl.rlim_cur);
}

// Boot time (/proc/stat btime) plus the process's start in clock ticks since
// boot (/proc/self/stat field 22); now if either is unreadable.
double StartTimeSeconds() {
  double now =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  std::string stat = ReadSmallFile("/proc/self/stat");
  size_t paren = stat.rfind(')');  // the command name may hold spaces and parens
  if (paren == std::string::npos) return now;
  // After ")": field 3 (state) onwards; starttime is field 22.
  const char* p = stat.c_str() + paren + 1;
  int field = 2;
  unsigned long long start_ticks = 0;
  while (*p != '\0' && field < 22) {
    while (*p == ' ') ++p;
    ++field;
    if (field == 22) {
      start_ticks = std::strtoull(p, nullptr, 10);
      break;
    }
    while (*p != '\0' && *p != ' ') ++p;
  }
  if (field != 22) return now;
  std::string proc_stat = ReadSmallFile("/proc/stat");
  size_t pos = proc_stat.find("\nbtime ");
  if (pos == std::string::npos) return now;
  unsigned long long btime = std::strtoull(proc_stat.c_str() + pos + 7, nullptr, 10);
  long ticks = sysconf(_SC_CLK_TCK);
  if (btime == 0 || ticks <= 0) return now;
  return static_cast<double>(btime) + static_cast<double>(start_ticks) / ticks;
}

}  // namespace

// ---------------------------------------------------------------------------
// Histogram

Histogram::Histogram(std::shared_ptr<const std::vector<double>> bounds)
    : bounds_(bounds ? std::move(bounds) : std::make_shared<const std::vector<double>>()),
      counts_(std::make_unique<std::atomic<uint64_t>[]>(bounds_->size() + 1)) {
  for (size_t i = 0; i <= bounds_->size(); ++i) counts_[i].store(0, std::memory_order_relaxed);
}

void Histogram::Observe(double v) {
  if (std::isnan(v)) return;
  const std::vector<double>& b = *bounds_;
  // Bucket i counts v <= b[i]: the first bound not less than v; past the end is +Inf.
  size_t i = std::lower_bound(b.begin(), b.end(), v) - b.begin();
  counts_[i].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(v, std::memory_order_relaxed);
}

uint64_t Histogram::Count() const {
  uint64_t n = 0;
  for (size_t i = 0; i <= bounds_->size(); ++i) n += counts_[i].load(std::memory_order_relaxed);
  return n;
}

double Histogram::Sum() const { return sum_.load(std::memory_order_relaxed); }

std::vector<uint64_t> Histogram::CumulativeCounts() const {
  std::vector<uint64_t> out(bounds_->size() + 1);
  uint64_t n = 0;
  for (size_t i = 0; i <= bounds_->size(); ++i) {
    n += counts_[i].load(std::memory_order_relaxed);
    out[i] = n;
  }
  return out;
}

std::vector<double> LatencyBuckets() {
  return {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
}

std::vector<double> NormalizeBuckets(std::vector<double> buckets) {
  std::erase_if(buckets, [](double b) { return !std::isfinite(b); });
  std::sort(buckets.begin(), buckets.end());
  buckets.erase(std::unique(buckets.begin(), buckets.end()), buckets.end());
  return buckets;
}

bool ValidMetricName(std::string_view name) {
  if (name.empty() || !(IsAlpha(name[0]) || name[0] == '_' || name[0] == ':')) return false;
  return std::all_of(name.begin(), name.end(),
                     [](char c) { return IsAlpha(c) || IsDigit(c) || c == '_' || c == ':'; });
}

bool ValidLabelName(std::string_view name) {
  if (name.empty() || !(IsAlpha(name[0]) || name[0] == '_')) return false;
  if (name.size() >= 2 && name[0] == '_' && name[1] == '_') return false;
  return std::all_of(name.begin(), name.end(),
                     [](char c) { return IsAlpha(c) || IsDigit(c) || c == '_'; });
}

// ---------------------------------------------------------------------------
// Text format

namespace detail {

size_t LabelsHash::operator()(const Labels& labels) const noexcept {
  size_t h = labels.size();
  for (const std::string& s : labels) {
    h ^= std::hash<std::string_view>{}(s) + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
  }
  return h;
}

void AppendHeader(std::string& out, std::string_view name, std::string_view help, Kind kind) {
  if (!help.empty()) {
    out += "# HELP ";
    out += name;
    out += ' ';
    AppendHelp(out, help);
    out += '\n';
  }
  out += "# TYPE ";
  out += name;
  out += ' ';
  out += KindName(kind);
  out += '\n';
}

// One sample line: name{labels} value.
void AppendSample(std::string& out, std::string_view name,
                  const std::vector<std::string>& label_names, const Labels& values, double value) {
  out += name;
  AppendLabels(out, label_names, values);
  out += ' ';
  AppendNumber(out, value);
  out += '\n';
}

void AppendSamples(std::string& out, std::string_view name,
                   const std::vector<std::string>& label_names, const Labels& values,
                   const Counter& c) {
  AppendSample(out, name, label_names, values, c.Value());
}

void AppendSamples(std::string& out, std::string_view name,
                   const std::vector<std::string>& label_names, const Labels& values,
                   const Gauge& g) {
  AppendSample(out, name, label_names, values, g.Value());
}

void AppendSamples(std::string& out, std::string_view name,
                   const std::vector<std::string>& label_names, const Labels& values,
                   const Histogram& h) {
  // Sum is read first: an Observe racing the scrape then shows in the counts
  // but perhaps not the sum, never a sum with no count behind it.
  double sum = h.Sum();
  std::vector<uint64_t> cumulative = h.CumulativeCounts();
  const std::vector<double>& bounds = h.Bounds();
  std::string le;
  for (size_t i = 0; i < cumulative.size(); ++i) {
    le.clear();
    if (i < bounds.size()) {
      AppendNumber(le, bounds[i]);
    } else {
      le = "+Inf";
    }
    out += name;
    out += "_bucket";
    AppendLabels(out, label_names, values, le);
    out += ' ';
    AppendUint(out, cumulative[i]);
    out += '\n';
  }
  out += name;
  out += "_sum";
  AppendLabels(out, label_names, values);
  out += ' ';
  AppendNumber(out, sum);
  out += '\n';
  out += name;
  out += "_count";
  AppendLabels(out, label_names, values);
  out += ' ';
  AppendUint(out, cumulative.back());
  out += '\n';
}

void WarnOverflow(std::string_view family, size_t max_children) {
  log::Warn("metric label sets over the cap; new ones are counted under \"_other\"",
            {{"metric", family}, {"max_children", std::to_string(max_children)}});
}

}  // namespace detail

// ---------------------------------------------------------------------------
// Registry

Registry::Registry() = default;
Registry::~Registry() = default;

Registry& Registry::Default() {
  // Never destroyed: services' threads may still count while the process exits.
  static Registry* registry = [] {
    auto* r = new Registry();
    RegisterProcessMetrics(*r);
    return r;
  }();
  return *registry;
}

template <class M, class... Extra>
Family<M>& Registry::Add(Kind kind, std::string name, std::string help,
                         std::vector<std::string> label_names, size_t max_children,
                         Extra&&... extra) {
  name = SanitizeMetricName(std::move(name));
  label_names = SanitizeLabelNames(name, std::move(label_names), kind == Kind::kHistogram);
  std::lock_guard lock(mu_);
  auto it = entries_.find(name);
  if (it != entries_.end()) {
    if (it->second.kind == kind && !it->second.callback) {
      auto* family = static_cast<Family<M>*>(it->second.metric.get());
      if (family->label_names() != label_names) {
        assert(false && "metric re-added with different label names");
        log::Error("metric re-added with different label names; keeping the first",
                   {{"metric", name}});
      }
      return *family;
    }
    assert(false && "metric re-added as a different kind");
    log::Error("metric re-added as a different kind; the second is not exported",
               {{"metric", name}, {"kind", KindName(kind)}});
    detached_.push_back(std::make_unique<Family<M>>(std::move(name), std::move(help),
                                                    std::move(label_names), max_children,
                                                    std::forward<Extra>(extra)...));
    return *static_cast<Family<M>*>(detached_.back().get());
  }
  auto family = std::make_unique<Family<M>>(name, std::move(help), std::move(label_names),
                                            max_children, std::forward<Extra>(extra)...);
  Family<M>& ref = *family;
  entries_.emplace(std::move(name), Entry{kind, false, std::move(family)});
  return ref;
}

Family<Counter>& Registry::AddCounter(std::string name, std::string help,
                                      std::vector<std::string> label_names, size_t max_children) {
  return Add<Counter>(Kind::kCounter, std::move(name), std::move(help), std::move(label_names),
                      max_children);
}

Family<Gauge>& Registry::AddGauge(std::string name, std::string help,
                                  std::vector<std::string> label_names, size_t max_children) {
  return Add<Gauge>(Kind::kGauge, std::move(name), std::move(help), std::move(label_names),
                    max_children);
}

Family<Histogram>& Registry::AddHistogram(std::string name, std::string help,
                                          std::vector<std::string> label_names,
                                          std::vector<double> buckets, size_t max_children) {
  auto bounds = std::make_shared<const std::vector<double>>(NormalizeBuckets(std::move(buckets)));
  return Add<Histogram>(Kind::kHistogram, std::move(name), std::move(help), std::move(label_names),
                        max_children, std::move(bounds));
}

void Registry::AddCallback(Kind kind, std::string name, std::string help,
                           std::function<double()> fn) {
  name = SanitizeMetricName(std::move(name));
  auto metric = std::make_unique<CallbackMetric>(name, std::move(help), kind, std::move(fn));
  std::lock_guard lock(mu_);
  auto it = entries_.find(name);
  if (it != entries_.end()) {
    if (!it->second.callback || it->second.kind != kind) {
      assert(false && "callback metric clashes with an existing metric");
      log::Error("callback metric clashes with an existing metric; ignored", {{"metric", name}});
      return;
    }
    it->second.metric = std::move(metric);
    return;
  }
  entries_.emplace(std::move(name), Entry{kind, true, std::move(metric)});
}

void Registry::AddCallbackGauge(std::string name, std::string help, std::function<double()> fn) {
  AddCallback(Kind::kGauge, std::move(name), std::move(help), std::move(fn));
}

void Registry::AddCallbackCounter(std::string name, std::string help, std::function<double()> fn) {
  AddCallback(Kind::kCounter, std::move(name), std::move(help), std::move(fn));
}

void Registry::RemoveCallback(const std::string& name) {
  {
    std::lock_guard lock(hooks_mu_);
    hooks_.erase(name);
  }
  std::lock_guard lock(mu_);
  auto it = entries_.find(name);
  if (it != entries_.end() && it->second.callback) entries_.erase(it);
}

void Registry::AddScrapeHook(std::string name, std::function<void()> fn) {
  std::lock_guard lock(hooks_mu_);
  hooks_[std::move(name)] = std::move(fn);
}

std::string Registry::Render() const {
  {
    std::lock_guard lock(hooks_mu_);
    for (const auto& [name, fn] : hooks_) {
      try {
        fn();
      } catch (...) {
        // A failing hook leaves its gauges as they were.
      }
    }
  }
  std::string out;
  out.reserve(16 * 1024);
  std::lock_guard lock(mu_);  // held while callbacks run, so RemoveCallback is a barrier
  for (const auto& [name, entry] : entries_) entry.metric->RenderTo(out);
  return out;
}

void RegisterProcessMetrics(Registry& registry) {
  registry.AddCallbackGauge("process_resident_memory_bytes", "Resident memory size in bytes.",
                            [] { return StatmBytes(1); });
  registry.AddCallbackGauge("process_virtual_memory_bytes", "Virtual memory size in bytes.",
                            [] { return StatmBytes(0); });
  registry.AddCallbackCounter("process_cpu_seconds_total",
                              "Total user and system CPU time spent in seconds.", CpuSeconds);
  registry.AddCallbackGauge("process_open_fds", "Number of open file descriptors.", OpenFds);
  registry.AddCallbackGauge("process_max_fds", "Maximum number of open file descriptors.", MaxFds);
  double start = StartTimeSeconds();
  registry.AddCallbackGauge("process_start_time_seconds",
                            "Start time of the process since unix epoch in seconds.",
                            [start] { return start; });
}

}  // namespace tg::metrics
