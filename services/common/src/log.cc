#include "tg/common/log.h"

#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <ctime>
#include <mutex>
#include <thread>

#include "tg/common/json_util.h"

namespace tg::log {
namespace {

std::atomic<int> g_level{static_cast<int>(Level::kInfo)};
std::string g_service = "tg";  // set before threads start
std::atomic<uint64_t> g_written{0};
std::atomic<uint64_t> g_dropped{0};

const char* LevelName(Level l) {
  switch (l) {
    case Level::kDebug:
      return "debug";
    case Level::kInfo:
      return "info";
    case Level::kWarn:
      return "warn";
    case Level::kError:
      return "error";
  }
  return "info";
}

// Writes all of `data` to stderr's descriptor; false if it cannot.
bool WriteAll(const char* data, size_t size) {
  while (size > 0) {
    ssize_t n = ::write(STDERR_FILENO, data, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    data += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

// Lines go to a buffer that one background thread writes out, many lines per
// write(2) under load: a request thread formats its line and appends it, it
// never waits for the disk or a slow log reader. A full buffer drops lines
// (counted), so a stuck stderr cannot stall the service.
class Writer {
 public:
  ~Writer() { Stop(); }

  void Append(const std::string& line) {
    std::unique_lock lock(mu_);
    if (stopped_) {  // after Stop (process exit): write it ourselves
      lock.unlock();
      Count(WriteAll(line.data(), line.size()), 1);
      return;
    }
    if (!thread_.joinable()) thread_ = std::thread([this] { Run(); });
    if (pending_.size() + line.size() > limit_) {
      lock.unlock();
      g_dropped.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    const bool was_empty = pending_.empty();
    pending_ += line;
    ++pending_lines_;
    lock.unlock();
    if (was_empty) cv_.notify_one();
  }

  void Flush() {
    std::unique_lock lock(mu_);
    ++flush_requests_;
    cv_.notify_one();
    drained_.wait(lock, [this] {
      return stopped_ || !thread_.joinable() || (pending_.empty() && !writing_);
    });
  }

  void SetLimit(size_t bytes) {
    std::lock_guard lock(mu_);
    limit_ = bytes;
  }

  // At exit: the thread writes what is queued, given two seconds. A stderr
  // nobody reads (a full pipe) must not hang the exit, so after that the
  // thread is left behind and what it still holds is lost.
  void Stop() {
    std::unique_lock lock(mu_);
    if (stopped_) return;
    stopped_ = true;
    cv_.notify_one();
    if (!thread_.joinable()) return;
    const bool drained = drained_.wait_for(lock, std::chrono::seconds(2),
                                           [this] { return pending_.empty() && !writing_; });
    lock.unlock();
    if (drained) {
      thread_.join();
    } else {
      thread_.detach();
    }
  }

 private:
  static void Count(bool ok, uint64_t lines) {
    (ok ? g_written : g_dropped).fetch_add(lines, std::memory_order_relaxed);
  }

  void Run() {
    std::string batch;
    std::unique_lock lock(mu_);
    for (;;) {
      cv_.wait(lock, [this] { return stopped_ || !pending_.empty() || flush_requests_ > 0; });
      flush_requests_ = 0;
      if (pending_.empty()) {
        drained_.notify_all();
        if (stopped_) return;
        continue;
      }
      batch.swap(pending_);
      const uint64_t lines = pending_lines_;
      pending_lines_ = 0;
      writing_ = true;
      lock.unlock();
      Count(WriteAll(batch.data(), batch.size()), lines);
      batch.clear();
      lock.lock();
      writing_ = false;
      if (pending_.empty()) drained_.notify_all();
      if (stopped_ && pending_.empty()) return;
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::condition_variable drained_;
  std::thread thread_;
  std::string pending_;
  uint64_t pending_lines_ = 0;
  size_t limit_ = 8 * 1024 * 1024;
  int flush_requests_ = 0;
  bool writing_ = false;
  bool stopped_ = false;
};

// Never destroyed before the last static that might log: flushed and stopped
// at exit by an atexit handler instead.
Writer& TheWriter() {
  static Writer* writer = [] {
    auto* w = new Writer();
    std::atexit([] { TheWriter().Stop(); });
    return w;
  }();
  return *writer;
}

}  // namespace

void SetLevel(Level level) { g_level = static_cast<int>(level); }

void SetLevel(std::string_view name) {
  if (name == "debug")
    SetLevel(Level::kDebug);
  else if (name == "warn" || name == "warning")
    SetLevel(Level::kWarn);
  else if (name == "error")
    SetLevel(Level::kError);
  else
    SetLevel(Level::kInfo);
}

void SetService(std::string_view service) { g_service = std::string(service); }

bool Enabled(Level level) {
  return static_cast<int>(level) >= g_level.load(std::memory_order_relaxed);
}

void Write(Level level, std::string_view msg, std::initializer_list<Field> fields) {
  if (!Enabled(level)) return;
  auto now = std::chrono::system_clock::now();
  auto secs = std::chrono::system_clock::to_time_t(now);
  auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char ts[64];
  std::snprintf(ts, sizeof ts, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
  std::string line;
  line.reserve(256);
  line += "{\"ts\":\"";
  line += ts;
  line += "\",\"level\":\"";
  line += LevelName(level);
  line += "\",\"service\":";
  json::AppendQuoted(line, g_service);
  line += ",\"msg\":";
  json::AppendQuoted(line, msg);
  for (const auto& [k, v] : fields) {
    line += ',';
    json::AppendQuoted(line, k);
    line += ':';
    json::AppendQuoted(line, v);
  }
  line += "}\n";
  TheWriter().Append(line);
}

void Flush() { TheWriter().Flush(); }

void SetBufferLimit(size_t bytes) { TheWriter().SetLimit(bytes); }

LogStats Stats() {
  return LogStats{g_written.load(std::memory_order_relaxed),
                  g_dropped.load(std::memory_order_relaxed)};
}

}  // namespace tg::log
