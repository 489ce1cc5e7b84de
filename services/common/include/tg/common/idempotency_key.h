#pragma once

// The client-facing half of idempotent creates (tg/common/idempotency.h has
// the PostgreSQL half): what a key may be, and what a reused key with another
// request is told. No database here, so tg-edge checks keys without linking
// PostgreSQL.

#include <cstddef>
#include <string>
#include <string_view>

namespace tg::idempotency {

inline constexpr size_t kMaxKeyLength = 255;

// What a create with a reused key and a different request is told; the edge
// recognises it (FAILED_PRECONDITION with this message) and answers 422.
inline constexpr std::string_view kMismatchMessage =
    "Idempotency-Key was already used with a different request";

// "" when `key` is acceptable (1–255 printable ASCII characters), else why not.
std::string Validate(std::string_view key);

}  // namespace tg::idempotency
