#include "tg/common/jwt.h"

#include <openssl/crypto.h>
#include <rapidjson/document.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <optional>

#include "tg/common/crypto.h"
#include "tg/common/json_util.h"

namespace tg::jwt {
namespace {

struct Parts {
  std::string_view header, payload, signature;  // base64url text
  std::string_view signed_input;                // header "." payload
};

std::optional<Parts> Split(std::string_view token) {
  if (token.empty() || token.size() > kMaxTokenBytes) return std::nullopt;
  size_t first = token.find('.');
  if (first == std::string_view::npos) return std::nullopt;
  size_t second = token.find('.', first + 1);
  if (second == std::string_view::npos || token.find('.', second + 1) != std::string_view::npos) {
    return std::nullopt;
  }
  // JWTs are unpadded base64url (RFC 7515 §2).
  if (token.find('=') != std::string_view::npos) return std::nullopt;
  Parts p;
  p.header = token.substr(0, first);
  p.payload = token.substr(first + 1, second - first - 1);
  p.signature = token.substr(second + 1);
  p.signed_input = token.substr(0, second);
  if (p.header.empty() || p.payload.empty()) return std::nullopt;
  return p;
}

// A JSON object, parsed without recursion (the token's size bounds the work).
bool ParseObject(std::string_view b64, rapidjson::Document* doc) {
  auto json = crypto::Base64UrlDecode(b64);
  if (!json || json->empty()) return false;
  doc->Parse<rapidjson::kParseIterativeFlag>(json->data(), json->size());
  return !doc->HasParseError() && doc->IsObject();
}

const rapidjson::Value* Member(const rapidjson::Value& obj, const char* name) {
  auto it = obj.FindMember(name);
  return it == obj.MemberEnd() ? nullptr : &it->value;
}

// A NumericDate (RFC 7519 §2): seconds since the epoch, possibly fractional.
std::optional<double> NumericDate(const rapidjson::Value* v) {
  if (v == nullptr || !v->IsNumber()) return std::nullopt;
  double d = v->GetDouble();
  if (!std::isfinite(d)) return std::nullopt;
  return d;
}

bool HasAudience(const rapidjson::Value* aud, std::string_view want) {
  if (aud == nullptr) return false;
  auto equals = [&](const rapidjson::Value& v) {
    return v.IsString() && std::string_view(v.GetString(), v.GetStringLength()) == want;
  };
  if (equals(*aud)) return true;
  if (!aud->IsArray()) return false;
  return std::any_of(aud->Begin(), aud->End(), equals);
}

}  // namespace

Verdict VerifyHs256(std::string_view token, std::string_view secret,
                    std::chrono::system_clock::time_point now, const VerifyOptions& options) {
  auto parts = Split(token);
  if (!parts) return Verdict::kMalformed;

  rapidjson::Document header;
  if (!ParseObject(parts->header, &header)) return Verdict::kMalformed;
  const rapidjson::Value* alg = Member(header, "alg");
  if (alg == nullptr || !alg->IsString()) return Verdict::kMalformed;
  if (std::string_view(alg->GetString(), alg->GetStringLength()) != "HS256") {
    return Verdict::kWrongAlgorithm;  // "none", RS256 (key confusion), HS512 …
  }
  if (Member(header, "crit") != nullptr) return Verdict::kMalformed;  // extensions we do not know

  if (secret.empty()) return Verdict::kBadSignature;
  auto signature = crypto::Base64UrlDecode(parts->signature);
  if (!signature || signature->size() != 32) return Verdict::kBadSignature;
  std::string expected = crypto::HmacSha256(secret, parts->signed_input);
  if (CRYPTO_memcmp(expected.data(), signature->data(), expected.size()) != 0) {
    return Verdict::kBadSignature;
  }

  rapidjson::Document claims;
  if (!ParseObject(parts->payload, &claims)) return Verdict::kMalformed;
  const double now_s = std::chrono::duration<double>(now.time_since_epoch()).count();
  const double leeway = static_cast<double>(options.leeway.count());
  const rapidjson::Value* exp_value = Member(claims, "exp");
  if (exp_value == nullptr) return Verdict::kMissingExpiry;
  auto exp = NumericDate(exp_value);
  if (!exp) return Verdict::kMalformed;
  if (*exp + leeway <= now_s) return Verdict::kExpired;
  if (const rapidjson::Value* nbf_value = Member(claims, "nbf")) {
    auto nbf = NumericDate(nbf_value);
    if (!nbf) return Verdict::kMalformed;
    if (*nbf - leeway > now_s) return Verdict::kNotYetValid;
  }
  if (!options.issuer.empty()) {
    const rapidjson::Value* iss = Member(claims, "iss");
    if (iss == nullptr || !iss->IsString() ||
        std::string_view(iss->GetString(), iss->GetStringLength()) != options.issuer) {
      return Verdict::kWrongIssuer;
    }
  }
  if (!options.audience.empty() && !HasAudience(Member(claims, "aud"), options.audience)) {
    return Verdict::kWrongAudience;
  }
  return Verdict::kOk;
}

std::string_view VerdictMessage(Verdict v) {
  switch (v) {
    case Verdict::kOk:
      return "ok";
    case Verdict::kMalformed:
      return "malformed admin token";
    case Verdict::kBadSignature:
      return "invalid admin token signature";
    case Verdict::kWrongAlgorithm:
      return "admin token must be signed with HS256";
    case Verdict::kExpired:
      return "admin token expired";
    case Verdict::kMissingExpiry:
      return "admin token has no exp claim";
    case Verdict::kNotYetValid:
      return "admin token not valid yet (nbf)";
    case Verdict::kWrongIssuer:
      return "admin token has the wrong issuer";
    case Verdict::kWrongAudience:
      return "admin token has the wrong audience";
  }
  return "invalid admin token";
}

std::string CheckSecret(std::string_view secret) {
  constexpr std::string_view kHowTo = "; generate one with: openssl rand -hex 32";
  if (secret.empty()) return "the admin JWT secret is not set" + std::string(kHowTo);
  std::string lower(secret);
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) {
    return static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c);
  });
  // The deploy/ examples (k8s CHANGE-ME, compose's *-change-me) and the
  // usual stand-ins: any of these inside a secret marks it as not replaced.
  for (std::string_view word :
       {"change-me", "changeme", "change_me", "replace-me", "replaceme", "replace_me",
        "placeholder", "your-secret", "your_secret", "yoursecret", "example", "secret-here"}) {
    if (lower.find(word) != std::string::npos) {
      return "the admin JWT secret is a placeholder (\"" + std::string(word) +
             "\"): set a random one" + std::string(kHowTo);
    }
  }
  if (secret.size() < kMinSecretBytes) {
    return "the admin JWT secret must be at least " + std::to_string(kMinSecretBytes) +
           " bytes (it is " + std::to_string(secret.size()) + ")" + std::string(kHowTo);
  }
  std::array<bool, 256> seen{};
  int distinct = 0;
  for (unsigned char c : secret) {
    if (!seen[c]) ++distinct;
    seen[c] = true;
  }
  if (distinct < 8 || lower.starts_with("secret") || lower.starts_with("password")) {
    return "the admin JWT secret looks like a placeholder, not a random value" +
           std::string(kHowTo);
  }
  return "";
}

std::string SignHs256(std::string_view secret, std::string_view subject,
                      std::chrono::system_clock::time_point now, std::chrono::seconds ttl,
                      const SignOptions& options) {
  const int64_t now_s =
      std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
  std::string payload = "{\"sub\":";
  json::AppendQuoted(payload, subject);
  payload += ",\"iat\":" + std::to_string(now_s);
  payload += ",\"exp\":" + std::to_string(now_s + ttl.count());
  if (!options.issuer.empty()) {
    payload += ",\"iss\":";
    json::AppendQuoted(payload, options.issuer);
  }
  if (!options.audience.empty()) {
    payload += ",\"aud\":";
    json::AppendQuoted(payload, options.audience);
  }
  payload += "}";
  std::string out = crypto::Base64UrlEncode(R"({"alg":"HS256","typ":"JWT"})");
  out += ".";
  out += crypto::Base64UrlEncode(payload);
  std::string signature = crypto::HmacSha256(secret, out);
  out += ".";
  out += crypto::Base64UrlEncode(signature);
  return out;
}

}  // namespace tg::jwt
