// tg-config: wires flags to the config store, its change feed and the gRPC
// service. See docs/ARCHITECTURE.md.
#include <google/protobuf/util/time_util.h>

#include <cstdio>

#include "tg/common/flags.h"
#include "tg/common/grpc_server.h"
#include "tg/common/internal_tls.h"
#include "tg/common/limits.h"
#include "tg/common/log.h"
#include "tg/common/pg.h"
#include "tg/common/service_main.h"
#include "tg/common/service_ports.h"
#include "tg/common/worker_pool.h"
#include "tg/config/config_feed.h"
#include "tg/config/config_service.h"
#include "tg/config/config_store.h"
#include "tg/config/secrets_key.h"

namespace {

// The options: the one place for their defaults (`tg-config --help`).
std::vector<tg::FlagSpec> Options() {
  using T = tg::FlagSpec::Type;
  return {
      {"config-listen", T::kString, tg::ports::Loopback(tg::ports::kConfig), "gRPC listen address"},
      {"config-metrics-listen", T::kString, tg::ports::AnyAddress(tg::ports::kConfigMetrics),
       "/metrics and /healthz listen address (\"off\": none)"},
      {"pg-dsn", T::kString, "host=127.0.0.1 port=5432 user=postgres dbname=trustgate",
       "PostgreSQL connection string"},
      {"pg-connect-timeout", T::kInt, "60", "seconds to wait for PostgreSQL at start-up"},
      {"pg-pool-size", T::kInt, "4", "PostgreSQL connections"},
      {"pg-statement-timeout-ms", T::kInt, "10000", "statement timeout"},
      {"secrets-key", T::kString, "",
       "credential encryption key, 64 hex characters (else read from --secrets-key-file)"},
      {"secrets-key-file", T::kString, "secrets.key",
       "file holding the credential encryption key (created when missing)"},
      {"workers", T::kInt, "4", "worker threads for database calls"},
  };
}

}  // namespace

int main(int argc, char** argv) {
  int exit_code = 0;
  auto svc =
      tg::ServiceMain::Start(argc, argv,
                             {.name = "tg-config",
                              .summary = "gateways, upstreams, services and rules in "
                                         "PostgreSQL; streams snapshots to the other services",
                              .options = Options(),
                              .metrics_flag = "config-metrics-listen",
                              .identity = tg::kConfigIdentity},
                             &exit_code);
  if (!svc) return exit_code;
  const tg::Flags& flags = svc->flags();
  tg::pg::SetDefaultConnectTimeout(5);

  std::string dsn = flags.String("pg-dsn");
  std::string error;
  auto box = tg::config::LoadSecretsKey(
      {flags.String("secrets-key"), flags.String("secrets-key-file")}, &error);
  if (!box) {
    tg::log::Error("cannot load the secrets key", {{"error", error}});
    return 1;
  }

  try {
    auto conn =
        tg::pg::ConnectWithRetry(dsn, std::chrono::seconds(flags.Int("pg-connect-timeout")));
    tg::pg::ApplyMigrations(*conn, "config", tg::config::ConfigStore::Migrations());
  } catch (const std::exception& e) {
    tg::log::Error("cannot prepare the database", {{"error", e.what()}});
    return 1;
  }

  tg::pg::Pool pool(
      {.dsn = dsn,
       .size = static_cast<size_t>(flags.Int("pg-pool-size")),
       .statement_timeout = std::chrono::milliseconds(flags.Int("pg-statement-timeout-ms"))});
  tg::config::ConfigStore store(pool, std::move(*box), [] {
    return google::protobuf::util::TimeUtil::MicrosecondsToTimestamp(
        std::chrono::duration_cast<std::chrono::microseconds>(
            std::chrono::system_clock::now().time_since_epoch())
            .count());
  });
  tg::config::ConfigFeed feed(store, dsn, {});
  if (auto st = feed.Start(); !st.ok()) {
    tg::log::Error("cannot load the configuration", {{"error", st.error_message()}});
    return 1;
  }
  tg::WorkerPool workers(static_cast<size_t>(flags.Int("workers")));
  tg::config::ConfigServiceImpl service(store, feed, workers);

  tg::GrpcServerOptions opts;
  opts.listen = flags.String("config-listen");
  opts.health_names = {"tg.v1.ConfigService"};
  opts.trace_unary_rpcs = true;
  // A write carries one entity: bounded, so that every change fits in one
  // Watch message to every follower (tg/common/limits.h).
  opts.max_receive_message_bytes =
      tg::limits::kMaxConfigEntityBytes + tg::limits::kGrpcMessageOverheadBytes;
  opts.tls = svc->tls();
  auto server = tg::GrpcServer::Start(opts, {&service}, &error);
  if (!server) {
    tg::log::Error("cannot start the gRPC server", {{"error", error}});
    return 1;
  }
  svc->Serving(server->serving_state());
  tg::log::Info("tg-config serving",
                {{"listen", opts.listen}, {"port", std::to_string(server->port())}});

  svc->WaitForTermination();
  feed.Close();        // watch streams end now: clients reconnect elsewhere
  server->Shutdown();  // unary RPCs in flight get the grace period
  feed.Stop();
  return 0;
}
