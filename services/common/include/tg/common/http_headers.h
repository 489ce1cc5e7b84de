#pragma once

#include <algorithm>
#include <cctype>
#include <string_view>

namespace tg::http_headers {

// Header names compare case-insensitively (RFC 9110 5.1).
inline bool NameEquals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

// Headers that describe one connection, not the message (RFC 9110 7.6.1),
// plus Host and Content-Length, which the next hop sets itself: never
// forwarded in either direction by the edge or the adapter.
inline bool IsHopByHop(std::string_view name) {
  for (std::string_view n :
       {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
        "transfer-encoding", "upgrade", "host", "content-length"}) {
    if (NameEquals(n, name)) return true;
  }
  return false;
}

}  // namespace tg::http_headers
