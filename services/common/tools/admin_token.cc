// tg-admin-token [--ttl=SECONDS] [--subject=NAME]: prints an admin JWT signed
// with TG_ADMIN_JWT_SECRET (or --admin-jwt-secret), with `iss`/`aud` from
// TG_ADMIN_JWT_ISSUER / TG_ADMIN_JWT_AUDIENCE when tg-edge checks them.
#include <chrono>
#include <cstdio>

#include "tg/common/flags.h"
#include "tg/common/jwt.h"

int main(int argc, char** argv) {
  tg::Flags flags(argc, argv);
  std::string secret = flags.String("admin-jwt-secret");
  // The same check as tg-edge's: a token signed with a secret the edge
  // refuses would never be accepted.
  if (auto e = tg::jwt::CheckSecret(secret); !e.empty()) {
    std::fprintf(stderr, "tg-admin-token: TG_ADMIN_JWT_SECRET refused: %s\n", e.c_str());
    return 2;
  }
  auto ttl = std::chrono::seconds(flags.Int("ttl", 86400));
  if (ttl.count() <= 0) {
    std::fprintf(stderr, "tg-admin-token: --ttl must be > 0 (tokens always expire)\n");
    return 2;
  }
  tg::jwt::SignOptions options;
  options.issuer = flags.String("admin-jwt-issuer");
  options.audience = flags.String("admin-jwt-audience");
  auto token = tg::jwt::SignHs256(secret, flags.String("subject", "admin"),
                                  std::chrono::system_clock::now(), ttl, options);
  if (token.empty()) return 1;
  std::printf("%s\n", token.c_str());
  return 0;
}
