#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace tg::utf8 {

// True when `s` is well-formed UTF-8 (RFC 3629: no overlong forms, no
// surrogates, nothing above U+10FFFF), what protobuf requires of a string
// field.
bool IsValid(std::string_view s);

// `s` with every ill-formed sequence replaced by U+FFFD (one per maximal
// invalid subpart, as WHATWG's decoder does).
std::string Sanitize(std::string_view s);

// The longest prefix of `s` of at most `max_bytes` that does not end inside
// a multi-byte character (of valid UTF-8: a cut never splits a character).
std::string_view TruncateAtBoundary(std::string_view s, size_t max_bytes);

}  // namespace tg::utf8
