#pragma once

#include <chrono>
#include <string>
#include <string_view>

namespace tg::jwt {

// Admin tokens: HS256 JWTs. Verification requires alg HS256 (never "none" or
// another algorithm), a valid signature, and an `exp` claim in the future when
// present. `now` is injected so tests are exact.
enum class Verdict { kOk, kMalformed, kBadSignature, kWrongAlgorithm, kExpired };

Verdict VerifyHs256(std::string_view token, std::string_view secret,
                    std::chrono::system_clock::time_point now);

std::string_view VerdictMessage(Verdict v);

// Signs {"sub": subject, "iat": now, "exp": now + ttl}.
std::string SignHs256(std::string_view secret, std::string_view subject,
                      std::chrono::system_clock::time_point now, std::chrono::seconds ttl);

}  // namespace tg::jwt
