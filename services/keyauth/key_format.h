#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace tg::keyauth {

// A key is "tg_" + Base64Url(32 random bytes): 3 + 43 URL-safe characters.
inline constexpr std::string_view kKeyScheme = "tg_";
inline constexpr size_t kKeyRandomBytes = 32;
inline constexpr size_t kKeyLength = 46;
// The first characters of a key; shown in the admin API and used to index the
// verifier. 12 characters keep 9 random ones (54 bits): collisions are rare
// but allowed.
inline constexpr size_t kPrefixLength = 12;

struct GeneratedKey {
  std::string key;     // the secret, shown once
  std::string prefix;  // KeyPrefix(key)
  std::string hash;    // KeyHash(key), 32 raw bytes
};

// Builds a key from `random` (kKeyRandomBytes bytes). Pure: tests pass fixed bytes.
GeneratedKey KeyFromRandom(std::string_view random);

// A fresh key from the system CSPRNG.
GeneratedKey GenerateKey();

// The non-secret prefix of a presented key (shorter keys are returned whole).
std::string_view KeyPrefix(std::string_view key);

// SHA-256 of the key, 32 raw bytes. Keys carry 256 bits of entropy, so a plain
// hash (no salt, no stretching) cannot be brute-forced and keeps lookups O(1).
std::string KeyHash(std::string_view key);

// Whether `key` has the shape of a generated key (scheme, length, alphabet).
// VerifyKey rejects anything else before hashing.
bool HasKeyShape(std::string_view key);

}  // namespace tg::keyauth
