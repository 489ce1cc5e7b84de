// tg-admin-token [--ttl=SECONDS] [--subject=NAME]: prints an admin JWT signed
// with TG_ADMIN_JWT_SECRET (or --admin-jwt-secret).
#include <chrono>
#include <cstdio>

#include "tg/common/flags.h"
#include "tg/common/jwt.h"

int main(int argc, char** argv) {
  tg::Flags flags(argc, argv);
  std::string secret = flags.String("admin-jwt-secret");
  if (secret.empty()) {
    std::fprintf(stderr, "tg-admin-token: TG_ADMIN_JWT_SECRET is not set\n");
    return 2;
  }
  auto ttl = std::chrono::seconds(flags.Int("ttl", 86400));
  auto token = tg::jwt::SignHs256(secret, flags.String("subject", "admin"),
                                  std::chrono::system_clock::now(), ttl);
  if (token.empty()) return 1;
  std::printf("%s\n", token.c_str());
  return 0;
}
