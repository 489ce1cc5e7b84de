#pragma once

#include <string>
#include <string_view>

#include "tg/common/config_snapshot.h"
#include "tg/edge/http_server.h"
#include "tg/v1/adapter.pb.h"

namespace tg::edge {

// The pure decisions of the proxy path: who is calling, which rule serves the
// path, in which format the client speaks. No I/O; all of it is a few string
// comparisons against the immutable config snapshot.

// The gateway key, from X-TG-API-Key, X-Api-Key or `Authorization: Bearer`
// (so that stock SDKs work unchanged), in that order; "" when none.
std::string_view ExtractApiKey(const HttpRequest& request);

// The subdomain of `host` (port stripped, case folded) when it is
// "<subdomain>.<base_domain>"; "" otherwise or when base_domain is empty.
std::string SubdomainOf(std::string_view host, std::string_view base_domain);

struct RouteMatch {
  enum class Result { kMatched, kNoRule, kWrongMethod };
  Result result = Result::kNoRule;
  const tg::v1::Rule* rule = nullptr;
  const tg::v1::Service* service = nullptr;
  std::string allow;  // for kWrongMethod: the methods the matching rules accept
};

// The active rule of `gateway_id` whose path matches `path` on whole segments
// ("/v1" matches "/v1" and "/v1/chat", not "/v12"), longest path first, and
// whose methods include `method` (any method when `method` is empty). A path
// matched only by rules of other methods is kWrongMethod (405).
RouteMatch MatchRule(const ConfigSnapshot& snapshot, std::string_view gateway_id,
                     std::string_view method, std::string_view path);

// `path` with the rule's prefix removed when the rule strips it ("/ai/v1/x"
// under "/ai" → "/v1/x"; "/ai" → "/").
std::string ForwardPath(const tg::v1::Rule& rule, std::string_view path);

// The client's format, from the path it called (…/chat/completions,
// …/messages, …/responses, …/embeddings); UNSPECIFIED for anything else.
tg::v1::ClientFormat ClientFormatOf(std::string_view path);

}  // namespace tg::edge
