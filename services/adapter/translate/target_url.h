#pragma once

// Where a call goes: the provider's default base URL, unless the target
// overrides it with host/port/protocol, and the provider's default path,
// unless the target sets `path`.
//
// URLs are never assembled as strings: scheme, host, port, path and query
// are set separately through libcurl's URL API (CURLU), and whatever a path
// or a query holds is percent-encoded where it could otherwise end the path
// ('?', '#') or be misread. Nothing a client sends (the passthrough path)
// and nothing an admin configures can become user info or another host.

#include <curl/curl.h>

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tg/adapter/translate/provider_codec.h"
#include "tg/adapter/translate/result.h"

namespace tg::adapter::translate {

struct UrlParts {
  std::string scheme = "https";  // http | https, nothing else
  std::string host;              // name or IP literal, IPv6 without brackets
  int port = 0;                  // 0: the scheme's default
  std::string path = "/";        // may hold a query after '?'; encoded where needed
};

// The URL of `parts` (the default port left out, so that the Host header,
// which SigV4 signs, stays canonical), or an error naming what is wrong.
Result<std::string> BuildUrl(const UrlParts& parts);

// The base (scheme, host, port and a path prefix) of a call: the target's
// override when it has a host, else `provider_default`, a fixed base URL or
// one made from credentials (azure_endpoint, the Bedrock region). A host that
// is not a plain host name or IP literal with an optional port is an error,
// as is a default base with user info, a query or a fragment.
Result<UrlParts> ResolveBase(std::string_view provider_default, const TargetInfo& target);

// The whole URL: `base` with `path` (which may carry a query) appended to its
// prefix, then each of `add_query` unless its name is in the query already.
Result<std::string> ProviderUrl(
    std::string_view provider_default, const TargetInfo& target, std::string_view path,
    const std::vector<std::pair<std::string, std::string>>& add_query = {});

// The path to call: target.path when set (with `{model}` replaced by the
// encoded model, so one override can serve several models), else
// `default_path`.
std::string ResolvePath(std::string_view default_path, const TargetInfo& target,
                        std::string_view encoded_model);

// Percent-encodes everything but RFC 3986 unreserved characters
// (A-Za-z0-9-._~), as AWS requires for a path segment: `a:b/c` → `a%3Ab%2Fc`.
// The SigV4 signer encodes the result once more for its canonical URI
// (`%3A` is signed as `%253A`); the URL carries it encoded once.
std::string PathEncode(std::string_view segment);

// A bad target or credential configuration found while building a call:
// the target cannot be called; another target may be.
AdapterError ConfigurationError(std::string message);

// One part of a URL libcurl parsed, or "" when the URL has none.
std::string UrlPart(CURLU* u, CURLUPart what);

}  // namespace tg::adapter::translate
