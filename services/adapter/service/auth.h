#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "tg/adapter/http/http_client.h"
#include "tg/adapter/translate/provider_codec.h"
#include "tg/v1/resources.pb.h"

namespace tg::adapter {

// Azure managed identity: an Entra access token from the instance metadata
// service (IMDS), cached until shortly before it expires, so that one token
// serves every call of its lifetime.
class EntraTokenSource {
 public:
  struct Options {
    std::string endpoint = "http://169.254.169.254/metadata/identity/oauth2/token";
    std::string resource = "https://cognitiveservices.azure.com/";
    std::chrono::seconds refresh_before{300};  // renew this long before expiry
  };
  EntraTokenSource(http::HttpClient& client, Options options);

  // The token, or nullopt with *error. Blocks on a miss: call it from a worker.
  std::optional<std::string> Get(std::string* error);
  // Whether Get would answer without a network call.
  bool Cached() const;

 private:
  http::HttpClient& client_;
  const Options options_;
  mutable std::mutex mu_;
  std::string token_;
  std::chrono::system_clock::time_point expires_{};
};

// Adds the credentials `spec.auth` asks for to `request`, or says why it
// cannot. The target's explicit header credentials (header_name +
// header_value) win over the provider's scheme: they are how the seeds
// configure a key as a raw header. Bedrock calls are signed here (SigV4);
// the signature covers the request exactly as it will be sent.
bool ApplyAuth(const translate::HttpRequestSpec& spec, const tg::v1::Credentials& credentials,
               const std::string& entra_token, http::HttpRequest* request, std::string* error,
               std::chrono::system_clock::time_point now = std::chrono::system_clock::now());

// The IMDS token URL: `endpoint` with api-version and the URL-encoded
// resource as its query, built with libcurl's URL API. false when `endpoint`
// is not an http(s) URL.
bool ImdsUrl(const std::string& endpoint, const std::string& resource, std::string* url);

// "https://host:8443/a/b?x=1" → host "host:8443", path "/a/b", query "x=1"
// (parsed by libcurl; a default port is left out of host).
bool SplitUrl(const std::string& url, std::string* host, std::string* path, std::string* query);

}  // namespace tg::adapter
