#include "translate/target_url.h"

namespace tg::adapter::translate {

namespace {

bool IsUnreserved(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_' || c == '~';
}

std::string_view TrimSlashes(std::string_view s) {
  while (!s.empty() && s.back() == '/') s.remove_suffix(1);
  return s;
}

}  // namespace

std::string ResolveBaseUrl(std::string_view provider_default, const TargetInfo& target) {
  if (target.host.empty()) return std::string(TrimSlashes(provider_default));
  std::string_view host = TrimSlashes(target.host);
  std::string scheme = target.protocol.empty() ? "https" : target.protocol;
  std::string_view authority = host;
  std::string_view prefix;  // a path prefix given as part of a full base URL
  if (size_t sep = host.find("://"); sep != std::string_view::npos) {
    scheme.assign(host.substr(0, sep));
    authority = host.substr(sep + 3);
  }
  if (size_t slash = authority.find('/'); slash != std::string_view::npos) {
    prefix = authority.substr(slash);
    authority = authority.substr(0, slash);
  }
  if (authority.empty()) return std::string(TrimSlashes(provider_default));
  std::string out = scheme + "://";
  bool bare_ipv6 = authority.find(':') != authority.rfind(':') && authority.front() != '[';
  if (bare_ipv6) {
    out.append("[").append(authority).append("]");
  } else {
    out.append(authority);
  }
  bool has_port =
      !bare_ipv6 && authority.find(':') != std::string_view::npos && authority.back() != ']';
  bool default_port =
      (scheme == "https" && target.port == 443) || (scheme == "http" && target.port == 80);
  if (target.port > 0 && !has_port && !default_port) {
    out.append(":").append(std::to_string(target.port));
  }
  out.append(prefix);
  return out;
}

std::string JoinUrl(std::string_view base, std::string_view path) {
  std::string out(TrimSlashes(base));
  if (path.empty()) return out;
  if (path.front() != '/') out.push_back('/');
  out.append(path);
  return out;
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

std::string PathEncode(std::string_view segment) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(segment.size() + 8);
  for (char ch : segment) {
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

std::string AddQueryParam(std::string url, std::string_view name, std::string_view value) {
  size_t q = url.find('?');
  if (q != std::string::npos) {
    std::string_view query = std::string_view(url).substr(q + 1);
    // Is `name=` at the start of the query or right after an '&'?
    for (size_t at = query.find(name); at != std::string_view::npos;
         at = query.find(name, at + 1)) {
      bool starts = at == 0 || query[at - 1] == '&';
      bool ends = at + name.size() < query.size() && query[at + name.size()] == '=';
      if (starts && ends) return url;
    }
  }
  url.push_back(q == std::string::npos ? '?' : '&');
  url.append(name).append("=").append(value);
  return url;
}

}  // namespace tg::adapter::translate
