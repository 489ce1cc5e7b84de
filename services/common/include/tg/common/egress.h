#pragma once

// Egress policy: where the gateway may open connections on behalf of its
// configuration. tg-config uses it to refuse bad hosts when they are
// configured; tg-adapter checks every address it connects to (after DNS,
// so a name that resolves somewhere forbidden is refused as well).

#include <sys/socket.h>

#include <optional>
#include <string>
#include <string_view>

namespace tg::egress {

// A target's or a service's `host` field, parsed: a DNS name, an IPv4
// literal, or an IPv6 literal ("[::1]", or bare "::1" without a port), with
// an optional ":port". Never a scheme, user info, path, query or fragment.
struct HostPort {
  std::string host;  // without brackets; lower-cased
  int port = 0;      // 0: none given
  bool ipv6 = false;
};

// nullopt with *error (a phrase without the field's name, e.g. "must be a
// host name or IP address (no scheme, user info or path)") when `text` is not
// such a host.
std::optional<HostPort> ParseHost(std::string_view text, std::string* error);

// What an IP address is, as far as egress is concerned. IPv4-mapped,
// IPv4-compatible and NAT64 (64:ff9b::/96) IPv6 addresses are classified by
// the IPv4 address they carry.
enum class AddressClass {
  kPublic,
  kLoopback,     // 127.0.0.0/8, ::1
  kPrivate,      // 10/8, 172.16/12, 192.168/16, 100.64/10 (CGNAT), 198.18/15, fc00::/7
  kLinkLocal,    // 169.254.0.0/16, fe80::/10
  kMetadata,     // cloud instance metadata and platform endpoints (see egress.cc)
  kUnspecified,  // 0.0.0.0/8, :: (Linux connects these to the local host)
  kMulticast,    // 224.0.0.0/4, ff00::/8, 240.0.0.0/4 and broadcast
};
std::string_view AddressClassName(AddressClass c);

// nullopt when `sa` is neither AF_INET nor AF_INET6.
std::optional<AddressClass> Classify(const sockaddr* sa, socklen_t len);
// nullopt when `literal` is not an IP address literal.
std::optional<AddressClass> ClassifyLiteral(std::string_view literal);

struct Policy {
  // Loopback and private ranges (scripts/up, tests and on-premises providers
  // need them; a cloud deployment usually must not reach its own network).
  bool allow_private = false;
};

// Whether a connection to an address of class `c` may be opened.
// `metadata_call` is the one deliberate exception (the Azure IMDS token
// request): it may reach link-local and metadata addresses.
bool Allowed(AddressClass c, const Policy& policy, bool metadata_call = false);

// Classes refused whatever the policy: no configuration may point at them.
bool AlwaysRefused(AddressClass c);

// Host names that are well-known aliases of metadata services
// (metadata.google.internal, …): refused when configured.
bool IsMetadataHostName(std::string_view host);

}  // namespace tg::egress
