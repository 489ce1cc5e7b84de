#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

namespace tg::log {

enum class Level { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };

// Process-wide settings, set once by main.cc.
void SetLevel(Level level);
void SetLevel(std::string_view name);  // debug | info | warn | error
void SetService(std::string_view service);
bool Enabled(Level level);

using Field = std::pair<std::string_view, std::string_view>;

// Queues one JSON line for stderr: {"ts":...,"level":...,"service":...,"msg":...,fields...}.
// A background thread writes the queue out, many lines per write(2), so the
// caller never waits for the disk or the log reader; when 8 MiB are waiting,
// further lines are dropped and counted (Stats). Queued lines are written at
// exit; an abort loses them. Callers never pass credentials, keys or prompts.
void Write(Level level, std::string_view msg, std::initializer_list<Field> fields = {});

// Returns once every line queued before the call is written (tests, and
// before an intentional abort).
void Flush();
// The most bytes waiting to be written before lines are dropped.
void SetBufferLimit(size_t bytes);

// Lines written and lines lost (stderr closed or failing) since start.
struct LogStats {
  uint64_t written = 0;
  uint64_t dropped = 0;
};
LogStats Stats();

inline void Debug(std::string_view m, std::initializer_list<Field> f = {}) {
  Write(Level::kDebug, m, f);
}
inline void Info(std::string_view m, std::initializer_list<Field> f = {}) {
  Write(Level::kInfo, m, f);
}
inline void Warn(std::string_view m, std::initializer_list<Field> f = {}) {
  Write(Level::kWarn, m, f);
}
inline void Error(std::string_view m, std::initializer_list<Field> f = {}) {
  Write(Level::kError, m, f);
}

}  // namespace tg::log
