#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>

namespace tg::jwt {

// Admin tokens: HS256 JWTs (RFC 7519), verified here with OpenSSL's HMAC and
// a constant-time comparison (libjwt 1.10 compared signatures with strcmp).

enum class Verdict {
  kOk,
  kMalformed,  // not three base64url parts, not JSON objects, too large
  kBadSignature,
  kWrongAlgorithm,  // the header's alg is not HS256 ("none" included)
  kExpired,
  kMissingExpiry,  // no numeric `exp`: a token that never expires is refused
  kNotYetValid,    // `nbf` in the future
  kWrongIssuer,
  kWrongAudience,
};

struct VerifyOptions {
  std::string issuer;              // when set, `iss` must be exactly this
  std::string audience;            // when set, `aud` (a string or an array) must contain it
  std::chrono::seconds leeway{0};  // clock skew tolerated on `exp` and `nbf`
};

// Larger tokens are malformed without being decoded.
inline constexpr size_t kMaxTokenBytes = 8192;

// The verdict on `token`: header {"alg":"HS256"} (any other alg, "none"
// included, is kWrongAlgorithm; a `crit` header is malformed), a valid
// signature under `secret`, then the claims: `exp` required and in the
// future, `nbf` (when present) not in the future, `iss`/`aud` as `options`
// ask. A pure function of its arguments (`now` injected), bounded in time and
// memory by kMaxTokenBytes, and never recursive: a fuzz target calls it.
Verdict VerifyHs256(std::string_view token, std::string_view secret,
                    std::chrono::system_clock::time_point now, const VerifyOptions& options = {});

std::string_view VerdictMessage(Verdict v);

// Shortest admin secret accepted (256 bits when random): a short or guessable
// secret can be brute-forced offline from any one token.
inline constexpr size_t kMinSecretBytes = 32;

// "" when `secret` may sign admin tokens; otherwise why not, with how to make
// one: shorter than kMinSecretBytes, or a placeholder (CHANGE-ME, changeme,
// secret, the deploy/ examples, one repeated character …).
std::string CheckSecret(std::string_view secret);

struct SignOptions {
  std::string issuer;    // `iss` when not empty
  std::string audience;  // `aud` when not empty
};

// Signs {"sub": subject, "iat": now, "exp": now + ttl[, "iss", "aud"]}.
std::string SignHs256(std::string_view secret, std::string_view subject,
                      std::chrono::system_clock::time_point now, std::chrono::seconds ttl,
                      const SignOptions& options = {});

}  // namespace tg::jwt
