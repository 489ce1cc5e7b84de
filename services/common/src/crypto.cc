#include "tg/common/crypto.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <cstdio>
#include <cstdlib>
#include <memory>

#include "tg/common/base64.h"

namespace tg::crypto {

std::string RandomBytes(size_t n) {
  std::string out(n, '\0');
  if (n > 0 && RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(n)) != 1) {
    std::fputs("fatal: RAND_bytes failed\n", stderr);
    std::abort();
  }
  return out;
}

std::string Base64Encode(std::string_view data) { return base64::Encode(data); }
std::optional<std::string> Base64Decode(std::string_view b64) { return base64::Decode(b64); }
std::string Base64UrlEncode(std::string_view data) { return base64::UrlEncode(data); }
std::optional<std::string> Base64UrlDecode(std::string_view b64) { return base64::UrlDecode(b64); }

std::string HexEncode(std::string_view data) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(data.size() * 2);
  for (unsigned char c : data) {
    out += kHex[c >> 4];
    out += kHex[c & 15];
  }
  return out;
}

std::string Sha256(std::string_view data) {
  std::string out(SHA256_DIGEST_LENGTH, '\0');
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(),
         reinterpret_cast<unsigned char*>(out.data()));
  return out;
}

std::string HmacSha256(std::string_view key, std::string_view data) {
  std::string out(32, '\0');
  unsigned int len = 32;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(),
       reinterpret_cast<unsigned char*>(out.data()), &len);
  return out;
}

bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string NewUuid() {
  std::string b = RandomBytes(16);
  b[6] = static_cast<char>((b[6] & 0x0f) | 0x40);
  b[8] = static_cast<char>((b[8] & 0x3f) | 0x80);
  std::string hex = HexEncode(b);
  return hex.substr(0, 8) + "-" + hex.substr(8, 4) + "-" + hex.substr(12, 4) + "-" +
         hex.substr(16, 4) + "-" + hex.substr(20);
}

bool IsUuid(std::string_view s) {
  if (s.size() != 36) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (c != '-') return false;
    } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) {
      return false;
    }
  }
  return true;
}

std::optional<SecretBox> SecretBox::FromKey(std::string key) {
  if (key.size() != kKeySize) return std::nullopt;
  return SecretBox(std::move(key));
}

bool SecretBox::IsSealed(std::string_view value) { return value.rfind(kPrefix, 0) == 0; }

namespace {
struct CtxDeleter {
  void operator()(EVP_CIPHER_CTX* c) const { EVP_CIPHER_CTX_free(c); }
};
using Ctx = std::unique_ptr<EVP_CIPHER_CTX, CtxDeleter>;
constexpr int kNonce = 12;
constexpr int kTag = 16;
}  // namespace

std::string SecretBox::Seal(std::string_view plaintext) const {
  std::string nonce = RandomBytes(kNonce);
  std::string blob = nonce;
  blob.resize(kNonce + plaintext.size() + kTag);
  auto* out = reinterpret_cast<unsigned char*>(blob.data());
  Ctx ctx(EVP_CIPHER_CTX_new());
  int len = 0;
  int total = 0;
  bool ok = ctx &&
            EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr,
                               reinterpret_cast<const unsigned char*>(key_.data()),
                               reinterpret_cast<const unsigned char*>(nonce.data())) == 1 &&
            EVP_EncryptUpdate(ctx.get(), out + kNonce, &len,
                              reinterpret_cast<const unsigned char*>(plaintext.data()),
                              static_cast<int>(plaintext.size())) == 1;
  total = len;
  ok = ok && EVP_EncryptFinal_ex(ctx.get(), out + kNonce + total, &len) == 1;
  ok = ok && EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, kTag,
                                 out + kNonce + plaintext.size()) == 1;
  if (!ok) {
    std::fputs("fatal: AES-256-GCM encryption failed\n", stderr);
    std::abort();
  }
  return std::string(kPrefix) + Base64Encode(blob);
}

std::optional<std::string> SecretBox::Open(std::string_view sealed) const {
  if (!IsSealed(sealed)) return std::nullopt;
  auto blob = Base64Decode(sealed.substr(kPrefix.size()));
  if (!blob || blob->size() < static_cast<size_t>(kNonce + kTag)) return std::nullopt;
  size_t ct_len = blob->size() - kNonce - kTag;
  auto* in = reinterpret_cast<unsigned char*>(blob->data());
  std::string plain(ct_len, '\0');
  Ctx ctx(EVP_CIPHER_CTX_new());
  int len = 0;
  bool ok = ctx &&
            EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr,
                               reinterpret_cast<const unsigned char*>(key_.data()), in) == 1 &&
            EVP_DecryptUpdate(ctx.get(), reinterpret_cast<unsigned char*>(plain.data()), &len,
                              in + kNonce, static_cast<int>(ct_len)) == 1 &&
            EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, kTag, in + kNonce + ct_len) == 1 &&
            EVP_DecryptFinal_ex(ctx.get(), reinterpret_cast<unsigned char*>(plain.data()) + len,
                                &len) == 1;
  if (!ok) return std::nullopt;
  return plain;
}

}  // namespace tg::crypto
