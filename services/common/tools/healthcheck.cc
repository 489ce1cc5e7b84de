// tg-healthcheck HOST:PORT [SERVICE]: exits 0 when the gRPC server answers
// SERVING on grpc.health.v1, 1 otherwise. Used by scripts, compose and probes.
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <cstdio>
#include <string>

#include "tg/common/health_client.h"

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: tg-healthcheck HOST:PORT [SERVICE]\n");
    return 2;
  }
  std::string service = argc > 2 ? argv[2] : "";
  auto status = tg::CheckHealth(argv[1], service, std::chrono::seconds(2));
  std::printf("%s\n", status.c_str());
  return status == "SERVING" ? 0 : 1;
}
