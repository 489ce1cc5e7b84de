#include "tg/common/idempotency_key.h"

namespace tg::idempotency {

std::string Validate(std::string_view key) {
  if (key.empty()) return "Idempotency-Key must not be empty";
  if (key.size() > kMaxKeyLength) return "Idempotency-Key must be at most 255 characters";
  for (unsigned char c : key) {
    if (c < 0x20 || c > 0x7e) return "Idempotency-Key must be printable ASCII";
  }
  return "";
}

}  // namespace tg::idempotency
