#include "tg/common/memory_trim.h"

#include <malloc.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>

namespace tg {
namespace {
std::atomic<uint64_t> g_total_trims{0};
}  // namespace

uint64_t MemoryTrimmer::TotalTrims() { return g_total_trims.load(std::memory_order_relaxed); }

MemoryTrimmer::MemoryTrimmer(std::chrono::milliseconds interval, size_t min_free_bytes)
    : interval_(interval), min_free_bytes_(min_free_bytes), thread_([this] { Run(); }) {}

MemoryTrimmer::~MemoryTrimmer() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

uint64_t MemoryTrimmer::trims() const {
  std::lock_guard lock(mu_);
  return trims_;
}

namespace {

// Resident bytes (/proc/self/statm's second field), 0 when unreadable.
size_t ResidentBytes() {
  FILE* f = std::fopen("/proc/self/statm", "r");
  if (f == nullptr) return 0;
  unsigned long size = 0, resident = 0;
  const int n = std::fscanf(f, "%lu %lu", &size, &resident);
  std::fclose(f);
  return n == 2 ? resident * static_cast<size_t>(sysconf(_SC_PAGESIZE)) : 0;
}

}  // namespace

void MemoryTrimmer::Run() {
  size_t resident_after_trim = ResidentBytes();
  std::unique_lock lock(mu_);
  while (!cv_.wait_for(lock, interval_, [this] { return stopping_; })) {
    lock.unlock();
    // A trim when the heap is mostly free (free chunks at least as large as
    // the chunks in use: a burst is over, not under way) and the process
    // grew since the last trim (glibc counts trimmed pages as free all the
    // same, so the free total alone would trim an idle process forever).
    const struct mallinfo2 info = mallinfo2();
    const bool mostly_free = info.fordblks >= min_free_bytes_ && info.fordblks >= info.uordblks;
    const bool trim = mostly_free && ResidentBytes() >= resident_after_trim + min_free_bytes_;
    if (trim) {
      malloc_trim(0);
      resident_after_trim = ResidentBytes();
      g_total_trims.fetch_add(1, std::memory_order_relaxed);
    }
    lock.lock();
    if (trim) ++trims_;
  }
}

}  // namespace tg
