#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <thread>

namespace tg {

// Gives the heap that a burst freed back to the kernel. glibc keeps what its
// arenas free for reuse: after 3,000 concurrent streams tg-adapter stayed at
// seven to nine times its idle resident size for good (docs/BENCHMARKS.md). Every
// `interval` this thread looks at the heap (mallinfo2) and the resident size
// (/proc/self/statm); when at least `min_free_bytes` of the heap is free and
// no less than what is in use (the burst is over), and the process grew by
// `min_free_bytes` since the last trim, it calls malloc_trim(0), which
// returns the free pages of every arena. An idle or a busy process is left
// alone; the check costs a mallinfo2 call and a small /proc read.
// What every service runs (ServiceMain): a look every 2 s, a trim once 8 MiB
// of the heap is free.
inline constexpr std::chrono::milliseconds kMemoryTrimInterval{2000};
inline constexpr size_t kMemoryTrimMinFree = 8u << 20;

class MemoryTrimmer {
 public:
  MemoryTrimmer(std::chrono::milliseconds interval, size_t min_free_bytes);
  ~MemoryTrimmer();  // stops the thread
  MemoryTrimmer(const MemoryTrimmer&) = delete;
  MemoryTrimmer& operator=(const MemoryTrimmer&) = delete;

  uint64_t trims() const;        // this trimmer's malloc_trim calls
  static uint64_t TotalTrims();  // every trimmer's, for tg_malloc_trims_total

 private:
  void Run();

  const std::chrono::milliseconds interval_;
  const size_t min_free_bytes_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  uint64_t trims_ = 0;
  std::thread thread_;
};

}  // namespace tg
