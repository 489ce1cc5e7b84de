#include "tg/common/log.h"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <mutex>

#include "tg/common/json_util.h"

namespace tg::log {
namespace {

std::atomic<int> g_level{static_cast<int>(Level::kInfo)};
std::string g_service = "tg";  // set before threads start
std::mutex g_write_mu;
std::atomic<uint64_t> g_written{0};
std::atomic<uint64_t> g_dropped{0};

const char* LevelName(Level l) {
  switch (l) {
    case Level::kDebug: return "debug";
    case Level::kInfo: return "info";
    case Level::kWarn: return "warn";
    case Level::kError: return "error";
  }
  return "info";
}

}  // namespace

void SetLevel(Level level) { g_level = static_cast<int>(level); }

void SetLevel(std::string_view name) {
  if (name == "debug") SetLevel(Level::kDebug);
  else if (name == "warn" || name == "warning") SetLevel(Level::kWarn);
  else if (name == "error") SetLevel(Level::kError);
  else SetLevel(Level::kInfo);
}

void SetService(std::string_view service) { g_service = std::string(service); }

bool Enabled(Level level) { return static_cast<int>(level) >= g_level.load(std::memory_order_relaxed); }

void Write(Level level, std::string_view msg, std::initializer_list<Field> fields) {
  if (!Enabled(level)) return;
  auto now = std::chrono::system_clock::now();
  auto secs = std::chrono::system_clock::to_time_t(now);
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char ts[64];
  std::snprintf(ts, sizeof ts, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
  std::string line;
  line.reserve(128);
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
  size_t n;
  {
    std::lock_guard lock(g_write_mu);
    n = std::fwrite(line.data(), 1, line.size(), stderr);
  }
  (n == line.size() ? g_written : g_dropped).fetch_add(1, std::memory_order_relaxed);
}

LogStats Stats() {
  return LogStats{g_written.load(std::memory_order_relaxed),
                  g_dropped.load(std::memory_order_relaxed)};
}

}  // namespace tg::log
