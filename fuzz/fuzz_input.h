#pragma once

// The shape every fuzz target's input shares: leading selector bytes (which
// codec, which status, how to split a stream), then the payload. Seeds are
// written in the same shape by tg-fuzz-seeds (seeds.cc), so a selector byte
// in a seed file means exactly what the target reads it as.

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace tg::fuzz {

class FuzzInput {
 public:
  FuzzInput(const uint8_t* data, size_t size) : rest_(reinterpret_cast<const char*>(data), size) {}

  // The next byte, 0 once the input is used up.
  uint8_t Byte() {
    if (rest_.empty()) return 0;
    auto b = static_cast<uint8_t>(rest_.front());
    rest_.remove_prefix(1);
    return b;
  }
  // Everything not consumed yet.
  std::string_view Rest() const { return rest_; }

 private:
  std::string_view rest_;
};

// Feeds `data` to `feed` in pieces of `split` bytes (0: in one piece), the
// way a network read may cut it anywhere.
template <typename Feed>
void FeedSplit(std::string_view data, size_t split, Feed&& feed) {
  if (split == 0 || split >= data.size()) {
    feed(data);
    return;
  }
  for (size_t pos = 0; pos < data.size(); pos += split) feed(data.substr(pos, split));
}

}  // namespace tg::fuzz
