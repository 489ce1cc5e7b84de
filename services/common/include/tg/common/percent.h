#pragma once

// Percent-decoding (RFC 3986), written once: OTLP exporter headers, SigV4
// canonical queries, the fake provider's query strings.

#include <string>
#include <string_view>

namespace tg::percent {

// The value of a hex digit (either case), -1 for anything else.
int HexValue(char c);

// Every %XX decoded; a '%' without two hex digits after it stays as it is.
// '+' becomes a space only when `plus_is_space` (HTML form encoding); in
// SigV4 and OTLP headers it is a literal plus.
std::string Decode(std::string_view s, bool plus_is_space = false);

}  // namespace tg::percent
