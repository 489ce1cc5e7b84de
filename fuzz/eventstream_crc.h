#pragma once

// Random bytes almost never carry the two CRC32s of an AWS eventstream frame,
// so a fuzzer mutating frames would spend its time on the CRC checks. When a
// target's selector asks for it, this rewrites both CRCs of every frame it can
// delimit, letting the mutations reach the header parser behind them.

#include <zlib.h>

#include <cstddef>
#include <cstdint>
#include <string>

namespace tg::fuzz {

inline uint32_t ReadBigEndian32(const std::string& s, size_t pos) {
  return (uint32_t{static_cast<uint8_t>(s[pos])} << 24) |
         (uint32_t{static_cast<uint8_t>(s[pos + 1])} << 16) |
         (uint32_t{static_cast<uint8_t>(s[pos + 2])} << 8) |
         uint32_t{static_cast<uint8_t>(s[pos + 3])};
}

inline void WriteBigEndian32(std::string& s, size_t pos, uint32_t v) {
  for (int i = 0; i < 4; ++i) s[pos + i] = static_cast<char>(v >> (24 - 8 * i));
}

inline uint32_t Crc32Of(const std::string& s, size_t pos, size_t len) {
  return static_cast<uint32_t>(
      crc32(0L, reinterpret_cast<const Bytef*>(s.data() + pos), static_cast<uInt>(len)));
}

// Prelude: [0,4) total, [4,8) headers length, [8,12) CRC of [0,8); the
// message CRC is the frame's last 4 bytes, over everything before them.
inline void FixEventStreamCrcs(std::string& s) {
  size_t pos = 0;
  while (s.size() - pos >= 12) {
    WriteBigEndian32(s, pos + 8, Crc32Of(s, pos, 8));
    uint32_t total = ReadBigEndian32(s, pos);
    if (total < 16 || total > s.size() - pos) return;
    WriteBigEndian32(s, pos + total - 4, Crc32Of(s, pos, total - 4));
    pos += total;
  }
}

}  // namespace tg::fuzz
