#include "tg/common/egress.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>

namespace tg::egress {
namespace {

constexpr std::string_view kNotAHost =
    "must be a host name or IP address with an optional :port (no scheme, user info, path, "
    "query or fragment)";

bool IsNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.';
}

bool ParsePort(std::string_view s, int* port) {
  if (s.empty() || s.size() > 5) return false;
  int v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  if (v < 1 || v > 65535) return false;
  *port = v;
  return true;
}

bool IsIpv6Literal(const std::string& s) {
  in6_addr a{};
  return s.find('%') == std::string::npos && inet_pton(AF_INET6, s.c_str(), &a) == 1;
}

// A DNS name: labels of letters, digits, '-' and '_', 1-63 characters each,
// 253 in all. A name whose last label is numeric would be read as an IPv4
// address in some non-standard form ("127.1", "2130706433") by the resolver.
bool IsDnsName(std::string_view s, std::string* error) {
  if (!s.empty() && s.back() == '.') s.remove_suffix(1);
  if (s.empty() || s.size() > 253) return false;
  if (!std::all_of(s.begin(), s.end(), IsNameChar)) return false;
  size_t start = 0;
  std::string_view last;
  while (start <= s.size()) {
    size_t dot = std::min(s.find('.', start), s.size());
    std::string_view label = s.substr(start, dot - start);
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') {
      return false;
    }
    last = label;
    start = dot + 1;
  }
  bool numeric = std::all_of(last.begin(), last.end(), [](char c) { return c >= '0' && c <= '9'; });
  bool hex = last.size() > 2 && last[0] == '0' && last[1] == 'x';
  if (numeric || hex) {
    *error = "must be a host name or an IPv4 address in dotted-decimal form (a.b.c.d)";
    return false;
  }
  return true;
}

uint32_t V4(const uint8_t* b) {
  return (uint32_t{b[0]} << 24) | (uint32_t{b[1]} << 16) | (uint32_t{b[2]} << 8) | b[3];
}

bool InV4(uint32_t a, uint32_t net, int bits) {
  uint32_t mask = bits == 0 ? 0 : ~uint32_t{0} << (32 - bits);
  return (a & mask) == (net & mask);
}

constexpr uint32_t Ip(uint8_t a, uint8_t b, uint8_t c, uint8_t d) {
  return (uint32_t{a} << 24) | (uint32_t{b} << 16) | (uint32_t{c} << 8) | d;
}

AddressClass ClassifyV4(uint32_t a) {
  // Instance metadata and platform endpoints: AWS/GCP/Azure/OCI/DigitalOcean
  // (169.254.169.254), AWS ECS task metadata (169.254.170.2), Alibaba Cloud
  // (100.100.100.200), Azure WireServer (168.63.129.16, a public address),
  // Oracle Cloud Classic (192.0.0.192).
  for (uint32_t m : {Ip(169, 254, 169, 254), Ip(169, 254, 170, 2), Ip(100, 100, 100, 200),
                     Ip(168, 63, 129, 16), Ip(192, 0, 0, 192)}) {
    if (a == m) return AddressClass::kMetadata;
  }
  if (InV4(a, Ip(0, 0, 0, 0), 8)) return AddressClass::kUnspecified;
  if (InV4(a, Ip(127, 0, 0, 0), 8)) return AddressClass::kLoopback;
  if (InV4(a, Ip(169, 254, 0, 0), 16)) return AddressClass::kLinkLocal;
  if (InV4(a, Ip(10, 0, 0, 0), 8) || InV4(a, Ip(172, 16, 0, 0), 12) ||
      InV4(a, Ip(192, 168, 0, 0), 16) || InV4(a, Ip(100, 64, 0, 0), 10) ||
      InV4(a, Ip(198, 18, 0, 0), 15)) {
    return AddressClass::kPrivate;
  }
  if (InV4(a, Ip(224, 0, 0, 0), 4) || InV4(a, Ip(240, 0, 0, 0), 4)) {
    return AddressClass::kMulticast;  // multicast, reserved and 255.255.255.255
  }
  return AddressClass::kPublic;
}

AddressClass ClassifyV6(const uint8_t* b) {
  static constexpr uint8_t kAwsMetadata[16] = {0xfd, 0x00, 0x0e, 0xc2, 0, 0, 0,    0,
                                               0,    0,    0,    0,    0, 0, 0x02, 0x54};
  if (std::memcmp(b, kAwsMetadata, 16) == 0) return AddressClass::kMetadata;
  static constexpr uint8_t kZero[12] = {};
  static constexpr uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  static constexpr uint8_t kNat64[12] = {0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0};
  if (std::memcmp(b, kMapped, 12) == 0 || std::memcmp(b, kNat64, 12) == 0) {
    return ClassifyV4(V4(b + 12));
  }
  if (std::memcmp(b, kZero, 12) == 0) {
    uint32_t low = V4(b + 12);
    if (low == 0) return AddressClass::kUnspecified;  // ::
    if (low == 1) return AddressClass::kLoopback;     // ::1
    return ClassifyV4(low);                           // IPv4-compatible ::a.b.c.d
  }
  if (b[0] == 0x20 && b[1] == 0x02) {  // 6to4 2002:AABB:CCDD::/48 carries an IPv4 address
    AddressClass inner = ClassifyV4(V4(b + 2));
    if (inner != AddressClass::kPublic) return inner;
  }
  if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80) return AddressClass::kLinkLocal;  // fe80::/10
  if (b[0] == 0xfe && (b[1] & 0xc0) == 0xc0) return AddressClass::kPrivate;    // fec0::/10
  if ((b[0] & 0xfe) == 0xfc) return AddressClass::kPrivate;                    // fc00::/7
  if (b[0] == 0xff) return AddressClass::kMulticast;
  return AddressClass::kPublic;
}

}  // namespace

std::optional<HostPort> ParseHost(std::string_view text, std::string* error) {
  *error = std::string(kNotAHost);
  if (text.empty()) {
    *error = "must not be empty";
    return std::nullopt;
  }
  if (text.size() > 300) return std::nullopt;
  std::string s(text);
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) {
    return static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c);
  });
  HostPort out;
  if (s.front() == '[') {
    size_t close = s.find(']');
    if (close == std::string::npos) return std::nullopt;
    out.host = s.substr(1, close - 1);
    std::string_view rest = std::string_view(s).substr(close + 1);
    if (!rest.empty() && (rest.front() != ':' || !ParsePort(rest.substr(1), &out.port))) {
      return std::nullopt;
    }
    if (!IsIpv6Literal(out.host)) return std::nullopt;
    out.ipv6 = true;
  } else if (std::count(s.begin(), s.end(), ':') > 1) {
    if (!IsIpv6Literal(s)) return std::nullopt;  // bare IPv6: no port possible
    out.host = s;
    out.ipv6 = true;
  } else {
    size_t colon = s.find(':');
    out.host = s.substr(0, colon);
    if (colon != std::string::npos &&
        !ParsePort(std::string_view(s).substr(colon + 1), &out.port)) {
      return std::nullopt;
    }
    in_addr v4{};
    if (inet_pton(AF_INET, out.host.c_str(), &v4) != 1 && !IsDnsName(out.host, error)) {
      return std::nullopt;
    }
    if (!out.host.empty() && out.host.back() == '.') out.host.pop_back();
  }
  error->clear();
  return out;
}

std::string_view AddressClassName(AddressClass c) {
  switch (c) {
    case AddressClass::kPublic:
      return "public";
    case AddressClass::kLoopback:
      return "loopback";
    case AddressClass::kPrivate:
      return "private";
    case AddressClass::kLinkLocal:
      return "link-local";
    case AddressClass::kMetadata:
      return "cloud metadata";
    case AddressClass::kUnspecified:
      return "unspecified";
    case AddressClass::kMulticast:
      return "multicast or reserved";
  }
  return "unknown";
}

std::optional<AddressClass> Classify(const sockaddr* sa, socklen_t len) {
  if (sa == nullptr) return std::nullopt;
  if (sa->sa_family == AF_INET && len >= static_cast<socklen_t>(sizeof(sockaddr_in))) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(sa);
    return ClassifyV4(ntohl(in->sin_addr.s_addr));
  }
  if (sa->sa_family == AF_INET6 && len >= static_cast<socklen_t>(sizeof(sockaddr_in6))) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(sa);
    return ClassifyV6(in6->sin6_addr.s6_addr);
  }
  return std::nullopt;
}

std::optional<AddressClass> ClassifyLiteral(std::string_view literal) {
  std::string s(literal);
  if (s.size() > 2 && s.front() == '[' && s.back() == ']') s = s.substr(1, s.size() - 2);
  in_addr v4{};
  if (inet_pton(AF_INET, s.c_str(), &v4) == 1) return ClassifyV4(ntohl(v4.s_addr));
  in6_addr v6{};
  if (inet_pton(AF_INET6, s.c_str(), &v6) == 1) return ClassifyV6(v6.s6_addr);
  return std::nullopt;
}

bool AlwaysRefused(AddressClass c) {
  return c == AddressClass::kLinkLocal || c == AddressClass::kMetadata ||
         c == AddressClass::kUnspecified || c == AddressClass::kMulticast;
}

bool Allowed(AddressClass c, const Policy& policy, bool metadata_call) {
  switch (c) {
    case AddressClass::kPublic:
      return true;
    case AddressClass::kLoopback:
    case AddressClass::kPrivate:
      return policy.allow_private;
    case AddressClass::kLinkLocal:
    case AddressClass::kMetadata:
      return metadata_call;
    case AddressClass::kUnspecified:
    case AddressClass::kMulticast:
      return false;
  }
  return false;
}

bool IsMetadataHostName(std::string_view host) {
  std::string h(host);
  std::transform(h.begin(), h.end(), h.begin(), [](unsigned char c) {
    return static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c);
  });
  if (!h.empty() && h.back() == '.') h.pop_back();
  for (std::string_view name : {"metadata.google.internal", "metadata.goog", "instance-data",
                                "instance-data.ec2.internal"}) {
    if (h == name) return true;
  }
  return false;
}

}  // namespace tg::egress
