// tg-keyauth: API keys (hashed in PostgreSQL, verified from memory).
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include "tg/common/flags.h"
#include "tg/common/grpc_channel.h"
#include "tg/common/grpc_server.h"
#include "tg/common/internal_tls.h"
#include "tg/common/log.h"
#include "tg/common/pg.h"
#include "tg/common/service_main.h"
#include "tg/common/service_ports.h"
#include "tg/common/worker_pool.h"
#include "tg/keyauth/clock.h"
#include "tg/keyauth/gateway_directory.h"
#include "tg/keyauth/key_feed.h"
#include "tg/keyauth/key_index.h"
#include "tg/keyauth/key_store.h"
#include "tg/keyauth/keyauth_service.h"
#include "tg/keyauth/revocation_hub.h"

namespace {

int Run(tg::ServiceMain& svc) {
  using namespace tg::keyauth;
  const tg::Flags& flags = svc.flags();
  const tg::InternalTls& tls = svc.tls();
  const std::string listen = flags.String("keyauth-listen");
  const std::string dsn = flags.String("pg-dsn");
  const std::string config_addr = flags.String("config-addr");
  if (dsn.empty()) {
    tg::log::Error("--pg-dsn (TG_PG_DSN) is required");
    return 2;
  }

  {
    auto conn = tg::pg::ConnectWithRetry(
        dsn, std::chrono::seconds(flags.Int("pg-connect-timeout-seconds")));
    tg::pg::ApplyMigrations(*conn, "keyauth", KeyStore::Migrations());
  }

  tg::pg::Pool pool(tg::pg::PoolOptions{
      .dsn = dsn,
      .size = static_cast<size_t>(flags.Int("pg-pool-size")),
      .statement_timeout = std::chrono::milliseconds(flags.Int("pg-statement-timeout-ms"))});
  KeyStore store(&pool);
  KeyIndex index;
  RevocationHub hub;
  KeyFeed feed(KeyFeedOptions{.dsn = dsn}, &store, &index, &hub);
  feed.Load();
  feed.Start();

  tg::WorkerPool workers(static_cast<size_t>(flags.Int("keyauth-workers")));
  ConfigGatewayDirectory gateways(tg::DialInternal(config_addr, tg::kConfigIdentity, tls));
  SystemClock clock;
  KeyAuthServiceImpl service(KeyAuthDeps{.store = &store,
                                         .feed = &feed,
                                         .index = &index,
                                         .hub = &hub,
                                         .gateways = &gateways,
                                         .workers = &workers,
                                         .clock = &clock});

  std::string error;
  auto server =
      tg::GrpcServer::Start(tg::GrpcServerOptions{.listen = listen,
                                                  .health_names = {"tg.v1.KeyAuthService"},
                                                  .trace_unary_rpcs = true,
                                                  .tls = tls},
                            {&service}, &error);
  if (!server) {
    tg::log::Error("cannot start gRPC server", {{"error", error}});
    service.BeginShutdown();
    return 1;
  }
  svc.Serving(server->serving_state());
  tg::log::Info("tg-keyauth serving",
                {{"listen", listen}, {"port", std::to_string(server->port())}});

  svc.WaitForTermination();

  // Streams first (they never end by themselves), then the server drains the
  // unary RPCs still on the workers; only then may the feed, the workers and
  // the pool go (destroyed in reverse order of construction).
  service.BeginShutdown();
  server->Shutdown();
  server.reset();
  feed.Stop();
  return 0;
}

// The options: the one place for their defaults (`tg-keyauth --help`).
std::vector<tg::FlagSpec> Options() {
  using T = tg::FlagSpec::Type;
  return {
      {"keyauth-listen", T::kString, tg::ports::Loopback(tg::ports::kKeyauth),
       "gRPC listen address"},
      {"keyauth-metrics-listen", T::kString, tg::ports::AnyAddress(tg::ports::kKeyauthMetrics),
       "/metrics and /healthz listen address (\"off\": none)"},
      {"pg-dsn", T::kString, "", "PostgreSQL connection string (required)"},
      {"config-addr", T::kString, tg::ports::Loopback(tg::ports::kConfig), "tg-config address"},
      {"pg-connect-timeout-seconds", T::kInt, "60", "seconds to wait for PostgreSQL at start-up"},
      {"pg-pool-size", T::kInt, "4", "PostgreSQL connections"},
      {"pg-statement-timeout-ms", T::kInt, "10000", "statement timeout"},
      {"keyauth-workers", T::kInt, "8", "worker threads for database calls"},
  };
}

}  // namespace

int main(int argc, char** argv) {
  int exit_code = 0;
  auto svc = tg::ServiceMain::Start(
      argc, argv,
      {.name = "tg-keyauth",
       .summary = "API keys (hashed, in PostgreSQL): create, verify, revoke, watch",
       .options = Options(),
       .metrics_flag = "keyauth-metrics-listen",
       .identity = tg::kKeyauthIdentity},
      &exit_code);
  if (!svc) return exit_code;
  tg::pg::SetDefaultConnectTimeout(5);
  try {
    return Run(*svc);
  } catch (const tg::pg::Unavailable& e) {
    tg::log::Error("PostgreSQL unavailable at start-up", {{"error", e.what()}});
  } catch (const std::exception& e) {
    tg::log::Error("start-up failed", {{"error", e.what()}});
  }
  return 1;
}
