#pragma once

// Active health probes (ProviderAdapterService.Probe): one cheap GET on a
// target's origin, authenticated as the target's real calls are.

#include <chrono>
#include <cstddef>
#include <functional>
#include <map>
#include <string>

#include "tg/adapter/http/http_client.h"
#include "tg/adapter/service/auth.h"
#include "tg/adapter/translate/provider_codec.h"
#include "tg/adapter/translate/result.h"
#include "tg/common/worker_pool.h"
#include "tg/v1/adapter.pb.h"
#include "tg/v1/resources.pb.h"

namespace tg::adapter {

struct ProbeOptions {
  // A probe is a liveness question: short deadlines, and no retry (the
  // balancer asks again after its probe_interval).
  std::chrono::milliseconds connect_timeout{2000};
  std::chrono::milliseconds total_timeout{5000};
  // The answer's body is read and discarded up to this many bytes; beyond,
  // the transfer is cut (the status already decided the verdict).
  size_t max_body_bytes = 64 * 1024;
};

// The probe's HTTP request before auth, and how to authenticate it.
struct ProbeCall {
  http::HttpRequest request;
  translate::HttpRequestSpec spec;  // auth scheme and SigV4 parameters of the target's calls
};

// Builds GET <origin><path> for `target`, where origin is the scheme, host
// and port the target's calls go to (its host/port/protocol override, else
// the provider's base URL: a fixed one, azure_endpoint, the Bedrock region).
// The provider's base path prefix is not kept: `path` is absolute on the
// origin, as TrustGate's health_checks.path is. Headers: the provider's
// version headers (anthropic-version, …) and the target's headers, then
// `headers`, each replacing a header of the same name. The URL is built with
// the URL API (translate::BuildUrl): nothing in `path` can reach another host.
translate::Result<ProbeCall> BuildProbeCall(const tg::v1::Target& target,
                                            const tg::v1::Credentials& credentials,
                                            const std::string& path,
                                            const std::map<std::string, std::string>& headers,
                                            const ProbeOptions& options);

// Adds the target's credentials to `call` as its real calls get them (a
// probe header of the same name as an auth header wins, except with SigV4,
// which signs the headers as they are). false (and *error) when the target
// has no usable credentials.
bool AuthenticateProbe(const tg::v1::Credentials& credentials, const std::string& entra_token,
                       ProbeCall* call, std::string* error,
                       const std::map<std::string, std::string>& probe_headers);

// Runs one probe of `target` and calls `done` exactly once, from the HTTP
// client's loop or a worker (an Entra token miss is fetched on a worker).
// Never blocks the caller. Neither the request's headers nor its URL are
// logged or returned.
void RunProbe(http::HttpClient& client, EntraTokenSource* entra, WorkerPool& workers,
              const tg::v1::Target& target, const tg::v1::Credentials& credentials,
              const tg::v1::ProbeRequest& request, const ProbeOptions& options,
              std::function<void(tg::v1::ProbeResponse)> done);

}  // namespace tg::adapter
