// The admin token verifier (services/common/src/jwt.cc), as tg-edge calls it
// on every admin request's `Authorization: Bearer` token.
//
// Input: mode:u8 | bytes.
//   mode 0: the bytes are the token as sent.
//   mode 1: the bytes are "header JSON \n payload JSON"; the target encodes
//           and signs them with the verifier's secret, so the claims checks
//           behind the signature get fuzzed too.
//   mode 2: as 1, signed with another secret (must never verify).

#include <chrono>
#include <cstdlib>
#include <string>

#include "fuzz_input.h"
#include "tg/common/crypto.h"
#include "tg/common/jwt.h"

namespace {

constexpr std::string_view kSecret = "fuzz-admin-secret-0123456789abcdef0123456789";
constexpr std::string_view kOtherSecret = "another-secret-0123456789abcdef0123456789ab";

std::string Signed(std::string_view bytes, std::string_view secret) {
  size_t nl = bytes.find('\n');
  std::string_view header = bytes.substr(0, nl);
  std::string_view payload = nl == std::string_view::npos ? "" : bytes.substr(nl + 1);
  std::string signing_input =
      tg::crypto::Base64UrlEncode(header) + "." + tg::crypto::Base64UrlEncode(payload);
  return signing_input + "." +
         tg::crypto::Base64UrlEncode(tg::crypto::HmacSha256(secret, signing_input));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  tg::fuzz::FuzzInput in(data, size);
  uint8_t mode = in.Byte() % 3;
  std::string_view bytes = in.Rest();
  const auto now = std::chrono::system_clock::time_point(std::chrono::seconds(1700000000));

  std::string token;
  if (mode == 0) {
    token = std::string(bytes);
  } else {
    token = Signed(bytes, mode == 1 ? kSecret : kOtherSecret);
  }
  tg::jwt::Verdict v = tg::jwt::VerifyHs256(token, kSecret, now);
  (void)tg::jwt::VerdictMessage(v);
  if (mode == 2 && v == tg::jwt::Verdict::kOk) std::abort();  // forged with the wrong secret
  return 0;
}
