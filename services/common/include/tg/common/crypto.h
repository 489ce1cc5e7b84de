#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace tg::crypto {

// Cryptographically secure random bytes (OpenSSL RAND_bytes). Aborts if the
// system RNG fails: no key may ever come from a weak source.
std::string RandomBytes(size_t n);

std::string Base64Encode(std::string_view data);
std::optional<std::string> Base64Decode(std::string_view b64);
// RFC 4648 §5 alphabet, no padding.
std::string Base64UrlEncode(std::string_view data);
std::optional<std::string> Base64UrlDecode(std::string_view b64);
std::string HexEncode(std::string_view data);

std::string Sha256(std::string_view data);                            // 32 raw bytes
std::string HmacSha256(std::string_view key, std::string_view data);  // 32 raw bytes

// Compares in time independent of where the inputs differ (lengths are not secret).
bool ConstantTimeEquals(std::string_view a, std::string_view b);

// Random (version 4) UUID, lower-case canonical form.
std::string NewUuid();
bool IsUuid(std::string_view s);

// AES-256-GCM authenticated encryption of short secrets. A sealed value is
// "enc:v1:" + base64(nonce(12) | ciphertext | tag(16)); a fresh random nonce per seal.
class SecretBox {
 public:
  static constexpr size_t kKeySize = 32;
  static constexpr std::string_view kPrefix = "enc:v1:";

  // `key` is 32 raw bytes; anything else is rejected.
  static std::optional<SecretBox> FromKey(std::string key);

  std::string Seal(std::string_view plaintext) const;
  // nullopt when the value was not sealed by this key or was tampered with.
  std::optional<std::string> Open(std::string_view sealed) const;
  static bool IsSealed(std::string_view value);

 private:
  explicit SecretBox(std::string key) : key_(std::move(key)) {}
  std::string key_;
};

}  // namespace tg::crypto
