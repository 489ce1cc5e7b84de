#include "tg/keyauth/key_format.h"

#include <cstdio>
#include <cstdlib>

#include "tg/common/crypto.h"

namespace tg::keyauth {

GeneratedKey KeyFromRandom(std::string_view random) {
  if (random.size() != kKeyRandomBytes) {
    // A short key would silently weaken every credential issued after it.
    std::fputs("fatal: key material has the wrong size\n", stderr);
    std::abort();
  }
  GeneratedKey k;
  k.key = std::string(kKeyScheme) + crypto::Base64UrlEncode(random);
  k.prefix = std::string(KeyPrefix(k.key));
  k.hash = KeyHash(k.key);
  return k;
}

GeneratedKey GenerateKey() { return KeyFromRandom(crypto::RandomBytes(kKeyRandomBytes)); }

std::string_view KeyPrefix(std::string_view key) { return key.substr(0, kPrefixLength); }

std::string KeyHash(std::string_view key) { return crypto::Sha256(key); }

bool HasKeyShape(std::string_view key) {
  if (key.size() != kKeyLength || key.substr(0, kKeyScheme.size()) != kKeyScheme) return false;
  for (char c : key.substr(kKeyScheme.size())) {
    bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_';
    if (!ok) return false;
  }
  return true;
}

}  // namespace tg::keyauth
