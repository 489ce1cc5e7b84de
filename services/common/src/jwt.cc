#include "tg/common/jwt.h"

#include <jwt.h>

#include <cerrno>
#include <cstdlib>
#include <memory>

#include "tg/common/crypto.h"

namespace tg::jwt {
namespace {

struct JwtDeleter {
  void operator()(jwt_t* j) const { jwt_free(j); }
};
using JwtPtr = std::unique_ptr<jwt_t, JwtDeleter>;

// Three base64url segments with a JSON-object header: anything else is
// malformed, whatever the signature.
bool WellFormed(std::string_view token) {
  auto first = token.find('.');
  if (first == std::string_view::npos) return false;
  auto second = token.find('.', first + 1);
  if (second == std::string_view::npos || token.find('.', second + 1) != std::string_view::npos) {
    return false;
  }
  auto header = crypto::Base64UrlDecode(token.substr(0, first));
  auto payload = crypto::Base64UrlDecode(token.substr(first + 1, second - first - 1));
  return header && payload && !header->empty() && header->front() == '{' && !payload->empty() &&
         payload->front() == '{';
}

}  // namespace

Verdict VerifyHs256(std::string_view token, std::string_view secret,
                    std::chrono::system_clock::time_point now) {
  if (!WellFormed(token)) return Verdict::kMalformed;
  if (secret.empty()) return Verdict::kBadSignature;
  jwt_t* raw = nullptr;
  std::string tok(token);
  int rc = jwt_decode(&raw, tok.c_str(), reinterpret_cast<const unsigned char*>(secret.data()),
                      static_cast<int>(secret.size()));
  JwtPtr j(raw);
  if (rc != 0 || !j) return Verdict::kBadSignature;
  if (jwt_get_alg(j.get()) != JWT_ALG_HS256) return Verdict::kWrongAlgorithm;
  errno = 0;
  long exp = jwt_get_grant_int(j.get(), "exp");
  if (errno == 0) {
    auto now_s = std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
    if (exp <= now_s) return Verdict::kExpired;
  }
  return Verdict::kOk;
}

std::string_view VerdictMessage(Verdict v) {
  switch (v) {
    case Verdict::kOk: return "ok";
    case Verdict::kMalformed: return "malformed admin token";
    case Verdict::kBadSignature: return "invalid admin token signature";
    case Verdict::kWrongAlgorithm: return "admin token must be signed with HS256";
    case Verdict::kExpired: return "admin token expired";
  }
  return "invalid admin token";
}

std::string SignHs256(std::string_view secret, std::string_view subject,
                      std::chrono::system_clock::time_point now, std::chrono::seconds ttl) {
  jwt_t* raw = nullptr;
  if (jwt_new(&raw) != 0) return "";
  JwtPtr j(raw);
  auto now_s = std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
  jwt_add_grant(j.get(), "sub", std::string(subject).c_str());
  jwt_add_grant_int(j.get(), "iat", now_s);
  jwt_add_grant_int(j.get(), "exp", now_s + ttl.count());
  jwt_set_alg(j.get(), JWT_ALG_HS256, reinterpret_cast<const unsigned char*>(secret.data()),
              static_cast<int>(secret.size()));
  char* encoded = jwt_encode_str(j.get());
  if (encoded == nullptr) return "";
  std::string out(encoded);
  free(encoded);  // libjwt 1.10 allocates with malloc
  return out;
}

}  // namespace tg::jwt
