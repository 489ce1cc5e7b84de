#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "tg/common/memory_trim.h"

namespace tg {
namespace {

#if defined(__SANITIZE_ADDRESS__)
constexpr bool kGlibcMalloc = false;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool kGlibcMalloc = false;
#else
constexpr bool kGlibcMalloc = true;
#endif
#else
constexpr bool kGlibcMalloc = true;
#endif

long RssKib() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

// A burst: 64 MiB in 4 KiB blocks (below the mmap threshold, so they live in
// the arena), touched, then freed in the order that leaves the arena's top
// in use, as a burst of streams does: glibc keeps the freed pages.
TEST(MemoryTrimmerTest, GivesABurstsFreedHeapBack) {
  if (!kGlibcMalloc) GTEST_SKIP() << "the sanitizers' allocator is not glibc's";
  MemoryTrimmer trimmer(std::chrono::milliseconds(20), 8u << 20);  // from start-up on
  std::vector<std::unique_ptr<char[]>> blocks;
  for (int i = 0; i < 16 * 1024; ++i) {
    blocks.emplace_back(new char[4096]);
    for (int b = 0; b < 4096; b += 512) blocks.back()[b] = static_cast<char>(i);
  }
  std::unique_ptr<char[]> pin(new char[4096]);  // holds the arena's top
  pin[0] = 1;
  const long held = RssKib();
  blocks.clear();

  for (int i = 0; i < 200 && trimmer.trims() == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_GE(trimmer.trims(), 1u);
  EXPECT_GE(MemoryTrimmer::TotalTrims(), trimmer.trims());
  EXPECT_LT(RssKib(), held - 32 * 1024) << "at least half of the 64 MiB went back";
  // Idle now: the heap is still mostly free, but nothing grew since.
  const uint64_t trims = trimmer.trims();
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_EQ(trimmer.trims(), trims);
}

TEST(MemoryTrimmerTest, LeavesAHeapInUseAlone) {
  if (!kGlibcMalloc) GTEST_SKIP() << "the sanitizers' allocator is not glibc's";
  MemoryTrimmer trimmer(std::chrono::milliseconds(20), 8u << 20);
  std::vector<std::unique_ptr<char[]>> blocks;  // 32 MiB in use, none free
  for (int i = 0; i < 8 * 1024; ++i) {
    blocks.emplace_back(new char[4096]);
    for (int b = 0; b < 4096; b += 512) blocks.back()[b] = static_cast<char>(i);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_EQ(trimmer.trims(), 0u);
}

TEST(MemoryTrimmerTest, LeavesASmallFreeHeapAlone) {
  MemoryTrimmer trimmer(std::chrono::milliseconds(5), size_t{1} << 40);
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(trimmer.trims(), 0u);
}  // and stops promptly when destroyed

}  // namespace
}  // namespace tg
