#pragma once

// Where a call goes: the provider's default base URL, unless the target
// overrides it with host/port/protocol, and the provider's default path,
// unless the target sets `path`.

#include <string>
#include <string_view>

#include "translate/provider_codec.h"

namespace tg::adapter::translate {

// `scheme://host[:port][/prefix]` without a trailing slash: the target's
// override when it has a host, else `provider_default`. A port equal to the
// scheme's default is left out so the Host header (which SigV4 signs) stays
// canonical.
std::string ResolveBaseUrl(std::string_view provider_default, const TargetInfo& target);

// base + path, with exactly one '/' between them. `path` may carry a query.
std::string JoinUrl(std::string_view base, std::string_view path);

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

// Appends `name=value` to the URL's query unless `name` is already there.
std::string AddQueryParam(std::string url, std::string_view name, std::string_view value);

}  // namespace tg::adapter::translate
