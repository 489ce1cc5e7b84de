// tg-healthcheck HOST:PORT [SERVICE]: exits 0 when the gRPC server answers
// SERVING on grpc.health.v1, 1 otherwise. Used by scripts and compose.
//
// Internal gRPC is mutual TLS: give it a certificate the way the services get
// theirs (--grpc-tls-dir, or --grpc-tls-ca/-cert/-key; --grpc-insecure=true
// for a plaintext server). --identity=NAME picks <NAME>.pem in the directory
// (default tg-operator); --server-identity=NAME is the name the server's
// certificate must carry (default: the certificate's own identity, so that a
// service's container checks itself with its own certificate).
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "tg/common/flags.h"
#include "tg/common/grpc_channel.h"
#include "tg/common/health_client.h"
#include "tg/common/internal_tls.h"

int main(int argc, char** argv) {
  std::vector<std::string> positional;
  for (int i = 1; i < argc; ++i) {
    if (std::string(argv[i]).rfind("--", 0) != 0) positional.emplace_back(argv[i]);
  }
  if (positional.empty()) {
    std::fprintf(stderr,
                 "usage: tg-healthcheck HOST:PORT [SERVICE] [--grpc-tls-dir=DIR "
                 "[--identity=tg-operator]] [--server-identity=NAME]\n");
    return 2;
  }
  tg::Flags flags(argc, argv);
  std::string error;
  // With --grpc-tls-cert, whatever identity it holds; otherwise the
  // directory's certificate of --identity.
  const std::string identity =
      flags.Get("grpc-tls-cert") ? "" : flags.String("identity", "tg-operator");
  auto tls = tg::InternalTlsFromFlags(flags, identity, &error);
  if (!tls) {
    std::fprintf(stderr, "tg-healthcheck: %s\n", error.c_str());
    return 2;
  }
  const std::string server_identity = flags.String("server-identity", tls->identity);
  std::string service = positional.size() > 1 ? positional[1] : "";
  auto status = tg::CheckHealth(tg::DialInternal(positional[0], server_identity, *tls), service,
                                std::chrono::seconds(2));
  std::printf("%s\n", status.c_str());
  return status == "SERVING" ? 0 : 1;
}
