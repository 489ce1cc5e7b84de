#include "tg/adapter/translate/target_url.h"

#include <curl/curl.h>

#include <cctype>
#include <memory>

#include "tg/common/egress.h"

namespace tg::adapter::translate {

namespace {

struct CurlUrlDeleter {
  void operator()(CURLU* u) const { curl_url_cleanup(u); }
};
using CurlUrl = std::unique_ptr<CURLU, CurlUrlDeleter>;

struct CurlStringDeleter {
  void operator()(char* s) const { curl_free(s); }
};

bool IsUnreserved(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_' || c == '~';
}

bool IsHex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

// RFC 3986 pchar (plus '/' in a path, '/' and '?' in a query) kept as it is;
// any other byte, and a '%' that does not start an escape, is escaped. The
// result can only be read back as the same path: no '?' or '#' ends it early,
// no space or line break splits the request line.
void AppendEncoded(std::string_view s, bool query, std::string* out) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  static constexpr std::string_view kKeep = "!$&'()*+,;=:@/";
  for (size_t i = 0; i < s.size(); ++i) {
    auto c = static_cast<unsigned char>(s[i]);
    bool keep = IsUnreserved(c) || kKeep.find(static_cast<char>(c)) != std::string_view::npos ||
                (query && c == '?') ||
                (c == '%' && i + 2 < s.size() && IsHex(s[i + 1]) && IsHex(s[i + 2]));
    if (keep) {
      out->push_back(static_cast<char>(c));
    } else {
      out->push_back('%');
      out->push_back(kHex[c >> 4]);
      out->push_back(kHex[c & 0xf]);
    }
  }
}

// Every byte but the unreserved ones (RFC 3986) as %XX: safe in a path
// segment and in a query name or value alike.
std::string PercentEncode(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size() + 8);
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    if (IsUnreserved(c)) {
      out.push_back(ch);
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xf]);
    }
  }
  return out;
}

bool HasParam(std::string_view query, std::string_view name) {
  for (size_t at = query.find(name); at != std::string_view::npos; at = query.find(name, at + 1)) {
    bool starts = at == 0 || query[at - 1] == '&';
    size_t end = at + name.size();
    bool ends = end == query.size() || query[end] == '=' || query[end] == '&';
    if (starts && ends) return true;
  }
  return false;
}

std::string_view TrimSlashes(std::string_view s) {
  while (!s.empty() && s.back() == '/') s.remove_suffix(1);
  return s;
}

// A fixed or credential-made base URL, parsed by libcurl (the same parser
// that will act on it), with what a base must not have refused.
Result<UrlParts> ParseDefaultBase(std::string_view base) {
  CurlUrl u(curl_url());
  if (!u) return ConfigurationError("out of memory");
  std::string text(TrimSlashes(base));
  if (curl_url_set(u.get(), CURLUPART_URL, text.c_str(), 0) != CURLUE_OK) {
    return ConfigurationError("provider base URL is not a valid URL");
  }
  UrlParts parts;
  parts.scheme = UrlPart(u.get(), CURLUPART_SCHEME);
  if (parts.scheme != "http" && parts.scheme != "https") {
    return ConfigurationError("provider base URL must be http or https");
  }
  if (!UrlPart(u.get(), CURLUPART_USER).empty() || !UrlPart(u.get(), CURLUPART_PASSWORD).empty() ||
      !UrlPart(u.get(), CURLUPART_OPTIONS).empty() || !UrlPart(u.get(), CURLUPART_QUERY).empty() ||
      !UrlPart(u.get(), CURLUPART_FRAGMENT).empty() ||
      text.find_first_of("@?#") != std::string::npos) {
    return ConfigurationError("provider base URL must not carry user info, a query or a fragment");
  }
  std::string host = UrlPart(u.get(), CURLUPART_HOST);
  std::string error;
  auto hp = egress::ParseHost(host, &error);
  if (!hp) return ConfigurationError("provider base URL host " + error);
  parts.host = hp->host;
  std::string port = UrlPart(u.get(), CURLUPART_PORT);
  if (!port.empty()) parts.port = std::atoi(port.c_str());
  parts.path = std::string(TrimSlashes(UrlPart(u.get(), CURLUPART_PATH)));
  return parts;
}

}  // namespace

std::string UrlPart(CURLU* u, CURLUPart what) {
  char* raw = nullptr;
  if (curl_url_get(u, what, &raw, 0) != CURLUE_OK || raw == nullptr) return "";
  std::unique_ptr<char, CurlStringDeleter> s(raw);
  return std::string(raw);
}

AdapterError ConfigurationError(std::string message) {
  return AdapterError{ErrorKind::kHttp, 502, false, "configuration_error", std::move(message)};
}

Result<std::string> BuildUrl(const UrlParts& parts) {
  if (parts.scheme != "http" && parts.scheme != "https") {
    return ConfigurationError("target protocol must be http or https");
  }
  std::string error;
  auto hp = egress::ParseHost(parts.host, &error);
  if (!hp || hp->port != 0) return ConfigurationError("target host " + error);
  if (parts.port < 0 || parts.port > 65535) {
    return ConfigurationError("target port must be between 1 and 65535");
  }
  std::string_view full = parts.path;
  size_t q = full.find('?');
  // Always absolute: whatever follows the authority is path. A leading "//"
  // stays a path too, since the URL keeps its scheme and host before it.
  std::string_view raw_path = full.substr(0, q);
  std::string path = raw_path.starts_with('/') ? "" : "/";
  AppendEncoded(raw_path, false, &path);
  std::string query;
  if (q != std::string_view::npos) AppendEncoded(full.substr(q + 1), true, &query);

  CurlUrl u(curl_url());
  if (!u) return ConfigurationError("out of memory");
  std::string host = hp->ipv6 ? "[" + hp->host + "]" : hp->host;
  std::string port = std::to_string(parts.port);
  if (curl_url_set(u.get(), CURLUPART_SCHEME, parts.scheme.c_str(), 0) != CURLUE_OK ||
      curl_url_set(u.get(), CURLUPART_HOST, host.c_str(), 0) != CURLUE_OK ||
      (parts.port > 0 && curl_url_set(u.get(), CURLUPART_PORT, port.c_str(), 0) != CURLUE_OK) ||
      curl_url_set(u.get(), CURLUPART_PATH, path.c_str(), 0) != CURLUE_OK ||
      (!query.empty() && curl_url_set(u.get(), CURLUPART_QUERY, query.c_str(), 0) != CURLUE_OK)) {
    return ConfigurationError("target URL cannot be built from its host, port and path");
  }
  char* raw = nullptr;
  if (curl_url_get(u.get(), CURLUPART_URL, &raw, CURLU_NO_DEFAULT_PORT) != CURLUE_OK ||
      raw == nullptr) {
    return ConfigurationError("target URL cannot be built from its host, port and path");
  }
  std::unique_ptr<char, CurlStringDeleter> holder(raw);
  // libcurl writes escapes set as parts in lower case ("%3a"); RFC 3986 §2.1
  // makes the cases equivalent and prefers upper case, which SigV4's
  // canonical URI and the providers' documentation use.
  std::string url(raw);
  for (size_t i = 0; i + 2 < url.size(); ++i) {
    if (url[i] == '%' && IsHex(url[i + 1]) && IsHex(url[i + 2])) {
      url[i + 1] = static_cast<char>(std::toupper(static_cast<unsigned char>(url[i + 1])));
      url[i + 2] = static_cast<char>(std::toupper(static_cast<unsigned char>(url[i + 2])));
      i += 2;
    }
  }
  return url;
}

Result<UrlParts> ResolveBase(std::string_view provider_default, const TargetInfo& target) {
  if (target.host.empty()) return ParseDefaultBase(provider_default);
  std::string error;
  auto hp = egress::ParseHost(target.host, &error);
  if (!hp) return ConfigurationError("target host " + error);
  UrlParts parts;
  parts.scheme = target.protocol.empty() ? "https" : target.protocol;
  if (parts.scheme != "http" && parts.scheme != "https") {
    return ConfigurationError("target protocol must be http or https");
  }
  parts.host = hp->host;
  parts.port = hp->port != 0 ? hp->port : target.port;
  parts.path = "";
  return parts;
}

Result<std::string> ProviderUrl(std::string_view provider_default, const TargetInfo& target,
                                std::string_view path,
                                const std::vector<std::pair<std::string, std::string>>& add_query) {
  auto base = ResolveBase(provider_default, target);
  if (!base.ok()) return base.error();
  UrlParts parts = std::move(base.value());
  std::string full = parts.path;  // the prefix, without a trailing '/'
  if (path.empty() || path.front() != '/') full.push_back('/');
  full.append(path);
  for (const auto& [name, value] : add_query) {
    size_t q = full.find('?');
    std::string_view query =
        q == std::string::npos ? std::string_view() : std::string_view(full).substr(q + 1);
    if (HasParam(query, name)) continue;
    full.push_back(q == std::string::npos ? '?' : '&');
    full.append(PercentEncode(name)).append("=").append(PercentEncode(value));
  }
  parts.path = std::move(full);
  return BuildUrl(parts);
}

std::string ResolvePath(std::string_view default_path, const TargetInfo& target,
                        std::string_view encoded_model) {
  if (target.path.empty()) return std::string(default_path);
  std::string path = target.path;
  constexpr std::string_view kModel = "{model}";
  for (size_t at = path.find(kModel); at != std::string::npos; at = path.find(kModel, at)) {
    path.replace(at, kModel.size(), encoded_model);
    at += encoded_model.size();
  }
  if (path.front() != '/') path.insert(path.begin(), '/');
  return path;
}

std::string PathEncode(std::string_view segment) { return PercentEncode(segment); }

}  // namespace tg::adapter::translate
