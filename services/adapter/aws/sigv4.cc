#include "tg/adapter/aws/sigv4.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <ctime>
#include <map>
#include <optional>

#include "tg/common/crypto.h"
#include "tg/common/percent.h"

namespace tg::adapter::aws {
namespace {

constexpr std::string_view kAlgorithm = "AWS4-HMAC-SHA256";

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

// Leading/trailing whitespace removed, inner runs collapsed to one space
// (SigV4's "Trimall"), quotes or not: get-header-value-trim signs
// "\"a   b   c\"" as "\"a b c\"".
std::string TrimAll(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  bool pending_space = false;
  for (char c : v) {
    if (IsSpace(c)) {
      pending_space = !out.empty();
      continue;
    }
    if (pending_space) out += ' ';
    pending_space = false;
    out += c;
  }
  return out;
}

std::string HexSha256(std::string_view data) { return crypto::HexEncode(crypto::Sha256(data)); }

// Lower-cased name -> canonical value, sorted by name (std::map orders bytewise).
using CanonicalHeaderMap = std::map<std::string, std::string>;

void AddHeader(CanonicalHeaderMap& map, std::string_view name, std::string_view value) {
  std::string key = Lower(TrimAll(name));
  std::string v = TrimAll(value);
  auto [it, inserted] = map.emplace(key, v);
  if (!inserted) it->second += "," + v;
}

std::string BuildCanonicalRequest(std::string_view method, std::string_view canonical_uri,
                                  std::string_view canonical_query,
                                  const CanonicalHeaderMap& headers,
                                  std::string_view signed_headers, std::string_view payload_hash) {
  std::string out;
  out.reserve(256 + canonical_uri.size() + canonical_query.size());
  out.append(method).append("\n");
  out.append(canonical_uri).append("\n");
  out.append(canonical_query).append("\n");
  for (const auto& [name, value] : headers) out.append(name).append(":").append(value).append("\n");
  out.append("\n");
  out.append(signed_headers).append("\n");
  out.append(payload_hash);
  return out;
}

std::string Scope(std::string_view date, const SigV4Options& options) {
  std::string s(date);
  s.append("/").append(options.region).append("/").append(options.service).append("/aws4_request");
  return s;
}

std::string StringToSign(std::string_view amz_date, std::string_view scope,
                         std::string_view canonical_request) {
  std::string s(kAlgorithm);
  s.append("\n").append(amz_date).append("\n").append(scope).append("\n");
  s.append(HexSha256(canonical_request));
  return s;
}

// Headers the signer leaves unsigned: proxies and client libraries add or
// rewrite them (as the AWS SDKs also do).
bool Unsigned(std::string_view lower_name) {
  return lower_name == "authorization" || lower_name == "user-agent" || lower_name == "expect" ||
         lower_name == "x-amzn-trace-id" || lower_name == "content-length" ||
         lower_name == "connection" || lower_name == "transfer-encoding";
}

std::optional<std::chrono::system_clock::time_point> ParseAmzDate(std::string_view s) {
  if (s.size() != 16 || s[8] != 'T' || s[15] != 'Z') return std::nullopt;
  for (size_t i = 0; i < 15; ++i) {
    if (i != 8 && !std::isdigit(static_cast<unsigned char>(s[i]))) return std::nullopt;
  }
  auto num = [&](size_t pos, size_t len) { return std::stoi(std::string(s.substr(pos, len))); };
  std::tm tm{};
  tm.tm_year = num(0, 4) - 1900;
  tm.tm_mon = num(4, 2) - 1;
  tm.tm_mday = num(6, 2);
  tm.tm_hour = num(9, 2);
  tm.tm_min = num(11, 2);
  tm.tm_sec = num(13, 2);
  return std::chrono::system_clock::from_time_t(timegm(&tm));
}

SigV4Verification Fail(std::string type, std::string message) {
  SigV4Verification v;
  v.error_type = std::move(type);
  v.message = std::move(message);
  return v;
}

}  // namespace

std::string FormatAmzDate(std::chrono::system_clock::time_point t) {
  std::time_t tt = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[20];
  std::strftime(buf, sizeof(buf), "%Y%m%dT%H%M%SZ", &tm);
  return buf;
}

std::string UriEncode(std::string_view s, bool keep_slash) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size() * 3 / 2);
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~' ||
        (keep_slash && c == '/')) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

std::string CanonicalUri(std::string_view wire_path, const SigV4Options& options) {
  if (wire_path.empty()) return "/";
  if (!options.normalize_path) {
    return options.double_encode_path ? UriEncode(wire_path, /*keep_slash=*/true)
                                      : std::string(wire_path);
  }
  // RFC 3986 dot-segment removal; empty segments ("//") collapse as well,
  // which the suite's get-slashes expects ("//example//" -> "/example/").
  std::vector<std::string_view> segments;
  size_t pos = 0;
  while (pos <= wire_path.size()) {
    size_t slash = wire_path.find('/', pos);
    if (slash == std::string_view::npos) slash = wire_path.size();
    std::string_view seg = wire_path.substr(pos, slash - pos);
    if (seg == "..") {
      if (!segments.empty()) segments.pop_back();
    } else if (!seg.empty() && seg != ".") {
      segments.push_back(seg);
    }
    pos = slash + 1;
  }
  bool trailing =
      wire_path.back() == '/' || wire_path.ends_with("/.") || wire_path.ends_with("/..");
  std::string out;
  for (std::string_view seg : segments) {
    out += '/';
    if (options.double_encode_path) {
      out += UriEncode(seg, /*keep_slash=*/false);
    } else {
      out += seg;
    }
  }
  if (out.empty() || trailing) out += '/';
  return out;
}

std::string CanonicalQuery(std::string_view wire_query) {
  std::vector<std::pair<std::string, std::string>> pairs;
  size_t pos = 0;
  while (pos < wire_query.size()) {
    size_t amp = wire_query.find('&', pos);
    if (amp == std::string_view::npos) amp = wire_query.size();
    std::string_view item = wire_query.substr(pos, amp - pos);
    pos = amp + 1;
    if (item.empty()) continue;
    size_t eq = item.find('=');
    std::string_view name = item.substr(0, eq);
    std::string_view value =
        eq == std::string_view::npos ? std::string_view() : item.substr(eq + 1);
    pairs.emplace_back(UriEncode(percent::Decode(name), false),
                       UriEncode(percent::Decode(value), false));
  }
  std::sort(pairs.begin(), pairs.end());
  std::string out;
  for (const auto& [name, value] : pairs) {
    if (!out.empty()) out += '&';
    out.append(name).append("=").append(value);
  }
  return out;
}

std::string SigningKey(std::string_view secret_access_key, std::string_view yyyymmdd,
                       std::string_view region, std::string_view service) {
  std::string key = "AWS4";
  key.append(secret_access_key);
  std::string k_date = crypto::HmacSha256(key, yyyymmdd);
  std::string k_region = crypto::HmacSha256(k_date, region);
  std::string k_service = crypto::HmacSha256(k_region, service);
  return crypto::HmacSha256(k_service, "aws4_request");
}

SigV4Signature SignV4(const SigningRequest& request, const Credentials& credentials,
                      const SigV4Options& options, std::chrono::system_clock::time_point now) {
  SigV4Signature out;
  const std::string amz_date = FormatAmzDate(now);
  const std::string date = amz_date.substr(0, 8);
  const std::string payload_hash = HexSha256(request.body);

  CanonicalHeaderMap headers;
  for (const auto& [name, value] : request.headers) {
    std::string lower = Lower(name);
    if (Unsigned(lower) || lower == "x-amz-date" || lower == "x-amz-security-token" ||
        lower == "x-amz-content-sha256") {
      continue;
    }
    AddHeader(headers, lower, value);
  }
  out.headers.emplace_back("X-Amz-Date", amz_date);
  AddHeader(headers, "x-amz-date", amz_date);
  if (!credentials.session_token.empty()) {
    out.headers.emplace_back("X-Amz-Security-Token", credentials.session_token);
    AddHeader(headers, "x-amz-security-token", credentials.session_token);
  }
  if (options.sign_content_sha256) {
    out.headers.emplace_back("X-Amz-Content-Sha256", payload_hash);
    AddHeader(headers, "x-amz-content-sha256", payload_hash);
  }
  for (const auto& entry : headers) {
    if (!out.signed_headers.empty()) out.signed_headers += ';';
    out.signed_headers += entry.first;
  }

  out.canonical_request = BuildCanonicalRequest(request.method, CanonicalUri(request.path, options),
                                                CanonicalQuery(request.query), headers,
                                                out.signed_headers, payload_hash);
  const std::string scope = Scope(date, options);
  out.string_to_sign = StringToSign(amz_date, scope, out.canonical_request);
  const std::string key =
      SigningKey(credentials.secret_access_key, date, options.region, options.service);
  out.signature = crypto::HexEncode(crypto::HmacSha256(key, out.string_to_sign));
  out.authorization = std::string(kAlgorithm) + " Credential=" + credentials.access_key_id + "/" +
                      scope + ", SignedHeaders=" + out.signed_headers +
                      ", Signature=" + out.signature;
  out.headers.emplace_back("Authorization", out.authorization);
  return out;
}

SigV4Verification VerifySigV4(const SigningRequest& request, const Credentials& expected,
                              const SigV4Options& options,
                              const std::chrono::system_clock::time_point* now,
                              std::chrono::seconds max_skew) {
  CanonicalHeaderMap all;
  for (const auto& [name, value] : request.headers) AddHeader(all, name, value);

  auto auth_it = all.find("authorization");
  if (auth_it == all.end()) {
    return Fail("MissingAuthenticationTokenException", "Missing Authentication Token");
  }
  std::string_view auth = auth_it->second;
  if (!auth.starts_with(kAlgorithm) || auth.size() == kAlgorithm.size() ||
      auth[kAlgorithm.size()] != ' ') {
    return Fail("IncompleteSignatureException",
                "Authorization header requires the AWS4-HMAC-SHA256 algorithm.");
  }
  // "Credential=AKID/date/region/service/aws4_request, SignedHeaders=a;b, Signature=hex"
  std::string credential, signed_headers, signature;
  std::string_view rest = auth.substr(kAlgorithm.size() + 1);
  while (!rest.empty()) {
    size_t comma = rest.find(',');
    std::string_view part = rest.substr(0, comma);
    rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
    while (!part.empty() && IsSpace(part.front())) part.remove_prefix(1);
    while (!part.empty() && IsSpace(part.back())) part.remove_suffix(1);
    size_t eq = part.find('=');
    if (eq == std::string_view::npos) continue;
    std::string_view key = part.substr(0, eq), value = part.substr(eq + 1);
    if (key == "Credential") credential = value;
    if (key == "SignedHeaders") signed_headers = value;
    if (key == "Signature") signature = value;
  }
  if (credential.empty() || signed_headers.empty() || signature.empty()) {
    return Fail("IncompleteSignatureException",
                "Authorization header requires 'Credential', 'SignedHeaders' and 'Signature' "
                "parameters.");
  }
  // Credential scope: AKID/yyyymmdd/region/service/aws4_request.
  std::vector<std::string> scope_parts;
  for (size_t pos = 0;;) {
    size_t slash = credential.find('/', pos);
    scope_parts.push_back(credential.substr(pos, slash - pos));
    if (slash == std::string::npos) break;
    pos = slash + 1;
  }
  if (scope_parts.size() != 5 || scope_parts[4] != "aws4_request") {
    return Fail("IncompleteSignatureException", "Credential is not a valid credential scope.");
  }
  if (!crypto::ConstantTimeEquals(scope_parts[0], expected.access_key_id)) {
    return Fail("UnrecognizedClientException",
                "The security token included in the request is invalid.");
  }
  auto token_it = all.find("x-amz-security-token");
  std::string_view token = token_it == all.end() ? std::string_view() : token_it->second;
  if (!crypto::ConstantTimeEquals(token, expected.session_token)) {
    return Fail("UnrecognizedClientException",
                "The security token included in the request is invalid.");
  }
  if (!options.region.empty() && scope_parts[2] != options.region) {
    return Fail("InvalidSignatureException", "Credential should be scoped to a valid region.");
  }
  if (scope_parts[3] != options.service) {
    return Fail("InvalidSignatureException",
                "Credential should be scoped to correct service: '" + options.service + "'.");
  }
  auto date_it = all.find("x-amz-date");
  if (date_it == all.end()) {
    return Fail("IncompleteSignatureException", "Authorization header requires X-Amz-Date.");
  }
  const std::string amz_date = date_it->second;
  auto when = ParseAmzDate(amz_date);
  if (!when) return Fail("IncompleteSignatureException", "X-Amz-Date is not ISO 8601 basic.");
  if (scope_parts[1] != amz_date.substr(0, 8)) {
    return Fail("InvalidSignatureException",
                "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date "
                "from HTTP.");
  }
  if (now != nullptr && (*when > *now + max_skew || *when < *now - max_skew)) {
    return Fail("InvalidSignatureException", "Signature expired or not yet valid: " + amz_date +
                                                 " is outside the allowed clock skew.");
  }

  // Rebuild the canonical request from exactly the headers the client signed.
  CanonicalHeaderMap signed_map;
  bool host_signed = false;
  for (size_t pos = 0; pos <= signed_headers.size();) {
    size_t semi = signed_headers.find(';', pos);
    if (semi == std::string::npos) semi = signed_headers.size();
    std::string name = signed_headers.substr(pos, semi - pos);
    pos = semi + 1;
    auto it = all.find(name);
    if (it == all.end()) {
      return Fail("IncompleteSignatureException", "Signed header '" + name + "' is missing.");
    }
    if (name == "host") host_signed = true;
    signed_map.emplace(name, it->second);
  }
  if (!host_signed) {
    return Fail("IncompleteSignatureException", "The host header must be signed.");
  }
  const std::string payload_hash = HexSha256(request.body);
  auto content_it = all.find("x-amz-content-sha256");
  if (content_it != all.end() && content_it->second != payload_hash) {
    return Fail("InvalidSignatureException",
                "The provided 'x-amz-content-sha256' header does not match what was computed.");
  }
  std::string canonical = BuildCanonicalRequest(request.method, CanonicalUri(request.path, options),
                                                CanonicalQuery(request.query), signed_map,
                                                signed_headers, payload_hash);
  SigV4Options scoped = options;
  scoped.region = scope_parts[2];
  std::string string_to_sign = StringToSign(amz_date, Scope(scope_parts[1], scoped), canonical);
  std::string key =
      SigningKey(expected.secret_access_key, scope_parts[1], scoped.region, options.service);
  std::string computed = crypto::HexEncode(crypto::HmacSha256(key, string_to_sign));
  if (!crypto::ConstantTimeEquals(computed, signature)) {
    return Fail("InvalidSignatureException",
                "The request signature we calculated does not match the signature you provided. "
                "Check your AWS Secret Access Key and signing method. Consult the service "
                "documentation for details.");
  }
  SigV4Verification ok;
  ok.ok = true;
  return ok;
}

}  // namespace tg::adapter::aws
