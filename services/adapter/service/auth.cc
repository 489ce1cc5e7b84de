#include "tg/adapter/service/auth.h"

#include <curl/curl.h>
#include <rapidjson/document.h>

#include <algorithm>
#include <cctype>
#include <memory>

#include "tg/adapter/aws/sigv4.h"
#include "tg/adapter/translate/target_url.h"
#include "tg/common/bounded_json.h"

namespace tg::adapter {

EntraTokenSource::EntraTokenSource(http::HttpClient& client, Options options)
    : client_(client), options_(std::move(options)) {}

bool EntraTokenSource::Cached() const {
  std::lock_guard lock(mu_);
  return !token_.empty() && std::chrono::system_clock::now() + options_.refresh_before < expires_;
}

std::optional<std::string> EntraTokenSource::Get(std::string* error) {
  {
    std::lock_guard lock(mu_);
    if (!token_.empty() && std::chrono::system_clock::now() + options_.refresh_before < expires_) {
      return token_;
    }
  }
  http::HttpRequest req;
  req.method = "GET";
  if (!ImdsUrl(options_.endpoint, options_.resource, &req.url)) {
    *error = "managed identity endpoint is not an http URL";
    return std::nullopt;
  }
  req.headers.emplace_back("Metadata", "true");
  // The deliberate exception to the egress policy: IMDS lives at a
  // link-local metadata address. This request, built here from the
  // adapter's own flag, is the only one that sets it.
  req.metadata_call = true;
  http::HttpTimeouts t;
  t.connect = std::chrono::milliseconds(2000);
  t.first_byte = std::chrono::milliseconds(5000);
  t.total = std::chrono::milliseconds(10000);
  req.timeouts = t;
  auto resp = http::Fetch(client_, std::move(req), 64 * 1024).get();
  if (!resp.result.ok() || resp.head.status != 200) {
    *error =
        "managed identity token unavailable (IMDS status " + std::to_string(resp.head.status) + ")";
    return std::nullopt;
  }
  rapidjson::Document d;
  if (!::tg::json::Parse(resp.body, &d).ok() || !d.IsObject() || !d.HasMember("access_token") ||
      !d["access_token"].IsString()) {
    *error = "managed identity token answer unreadable";
    return std::nullopt;
  }
  // IMDS gives expires_on as a string of epoch seconds (some versions a number).
  int64_t expires_on = 0;
  if (d.HasMember("expires_on")) {
    const auto& v = d["expires_on"];
    if (v.IsString())
      expires_on = std::atoll(v.GetString());
    else if (v.IsInt64())
      expires_on = v.GetInt64();
  }
  if (expires_on == 0)
    expires_on = std::chrono::duration_cast<std::chrono::seconds>(
                     std::chrono::system_clock::now().time_since_epoch())
                     .count() +
                 3600;
  std::lock_guard lock(mu_);
  token_ = d["access_token"].GetString();
  expires_ = std::chrono::system_clock::time_point(std::chrono::seconds(expires_on));
  return token_;
}

bool ImdsUrl(const std::string& endpoint, const std::string& resource, std::string* url) {
  std::unique_ptr<CURLU, void (*)(CURLU*)> u(curl_url(), curl_url_cleanup);
  if (!u || curl_url_set(u.get(), CURLUPART_URL, endpoint.c_str(), 0) != CURLUE_OK) return false;
  std::string scheme = translate::UrlPart(u.get(), CURLUPART_SCHEME);
  if (scheme != "http" && scheme != "https") return false;
  std::string resource_param = "resource=" + resource;
  if (curl_url_set(u.get(), CURLUPART_QUERY, "api-version=2018-02-01", 0) != CURLUE_OK ||
      curl_url_set(u.get(), CURLUPART_QUERY, resource_param.c_str(),
                   CURLU_APPENDQUERY | CURLU_URLENCODE) != CURLUE_OK) {
    return false;
  }
  char* raw = nullptr;
  if (curl_url_get(u.get(), CURLUPART_URL, &raw, 0) != CURLUE_OK || raw == nullptr) return false;
  *url = raw;
  curl_free(raw);
  return true;
}

bool SplitUrl(const std::string& url, std::string* host, std::string* path, std::string* query) {
  std::unique_ptr<CURLU, void (*)(CURLU*)> u(curl_url(), curl_url_cleanup);
  if (!u || curl_url_set(u.get(), CURLUPART_URL, url.c_str(), 0) != CURLUE_OK) return false;
  *host = translate::UrlPart(u.get(), CURLUPART_HOST);
  // Only a port that is not the scheme's default: the Host header a client sends.
  std::string scheme = translate::UrlPart(u.get(), CURLUPART_SCHEME);
  std::string port = translate::UrlPart(u.get(), CURLUPART_PORT);
  if (!port.empty() && !(scheme == "https" && port == "443") &&
      !(scheme == "http" && port == "80")) {
    *host += ":" + port;
  }
  *path = translate::UrlPart(u.get(), CURLUPART_PATH);
  if (path->empty()) *path = "/";
  *query = translate::UrlPart(u.get(), CURLUPART_QUERY);
  return !host->empty();
}

bool ApplyAuth(const translate::HttpRequestSpec& spec, const tg::v1::Credentials& c,
               const std::string& entra_token, http::HttpRequest* request, std::string* error,
               std::chrono::system_clock::time_point now) {
  using translate::AuthScheme;
  auto add = [&](std::string name, std::string value) {
    request->headers.emplace_back(std::move(name), std::move(value));
  };
  if (!c.header_name().empty() && spec.auth != AuthScheme::kAwsSigV4) {
    add(c.header_name(), c.header_value());
    return true;
  }
  switch (spec.auth) {
    case AuthScheme::kNone:
      return true;
    case AuthScheme::kBearer:
      if (c.api_key().empty()) break;
      add("Authorization", "Bearer " + c.api_key());
      return true;
    case AuthScheme::kAnthropicApiKey:
      if (c.api_key().empty()) break;
      add("x-api-key", c.api_key());
      return true;
    case AuthScheme::kGoogleApiKey:
      if (c.api_key().empty()) break;
      add("x-goog-api-key", c.api_key());
      return true;
    case AuthScheme::kAzureApiKey:
      if (c.api_key().empty()) break;
      add("api-key", c.api_key());
      return true;
    case AuthScheme::kAzureEntraToken:
      if (entra_token.empty()) break;
      add("Authorization", "Bearer " + entra_token);
      return true;
    case AuthScheme::kAwsSigV4: {
      if (c.aws_access_key_id().empty() || c.aws_secret_access_key().empty()) break;
      aws::SigningRequest sr;
      sr.method = request->method;
      std::string host;
      if (!SplitUrl(request->url, &host, &sr.path, &sr.query)) {
        *error = "cannot sign a request to an unparseable URL";
        return false;
      }
      sr.headers = request->headers;
      sr.headers.emplace_back("host", host);
      sr.body = request->body;
      aws::SigV4Options opts;
      opts.region = spec.aws_region;
      opts.service = spec.aws_service;
      auto sig = aws::SignV4(
          sr, {c.aws_access_key_id(), c.aws_secret_access_key(), c.aws_session_token()}, opts, now);
      for (auto& h : sig.headers) request->headers.push_back(std::move(h));
      request->headers.emplace_back("Host", host);
      return true;
    }
  }
  *error = "target has no credentials for " + std::string(translate::AuthSchemeName(spec.auth));
  return false;
}

}  // namespace tg::adapter
