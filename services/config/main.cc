// tg-config: wires flags to the config store, its change feed and the gRPC
// service. See docs/ARCHITECTURE.md.
#include <google/protobuf/util/time_util.h>

#include <cstdio>

#include "config_feed.h"
#include "config_service.h"
#include "config_store.h"
#include "secrets_key.h"
#include "tg/common/flags.h"
#include "tg/common/grpc_server.h"
#include "tg/common/internal_tls.h"
#include "tg/common/limits.h"
#include "tg/common/log.h"
#include "tg/common/pg.h"
#include "tg/common/telemetry.h"
#include "tg/common/worker_pool.h"

int main(int argc, char** argv) {
  tg::BlockTerminationSignals();
  tg::DisableMutexDeadlockDetection();
  tg::pg::SetDefaultConnectTimeout(5);
  tg::Flags flags(argc, argv);
  tg::log::SetService("tg-config");
  tg::log::SetLevel(flags.String("log-level", "info"));
  std::string telemetry_error;
  auto telemetry = tg::Telemetry::Start("tg-config", flags, "config-metrics-listen", "0.0.0.0:9091",
                                        &telemetry_error);
  if (!telemetry) {
    tg::log::Error("cannot start telemetry", {{"error", telemetry_error}});
    return 1;
  }

  std::string tls_error;
  auto tls = tg::InternalTlsFromFlags(flags, tg::kConfigIdentity, &tls_error);
  if (!tls) {
    tg::log::Error("cannot set up internal gRPC TLS", {{"error", tls_error}});
    std::fprintf(stderr, "tg-config: %s\n", tls_error.c_str());
    return 2;
  }

  std::string dsn =
      flags.String("pg-dsn", "host=127.0.0.1 port=5432 user=postgres dbname=trustgate");
  std::string error;
  auto box = tg::config::LoadSecretsKey(
      {flags.String("secrets-key"), flags.String("secrets-key-file", "secrets.key")}, &error);
  if (!box) {
    tg::log::Error("cannot load the secrets key", {{"error", error}});
    return 1;
  }

  try {
    auto conn =
        tg::pg::ConnectWithRetry(dsn, std::chrono::seconds(flags.Int("pg-connect-timeout", 60)));
    tg::pg::ApplyMigrations(*conn, "config", tg::config::ConfigStore::Migrations());
  } catch (const std::exception& e) {
    tg::log::Error("cannot prepare the database", {{"error", e.what()}});
    return 1;
  }

  tg::pg::Pool pool({.dsn = dsn,
                     .size = static_cast<size_t>(flags.Int("pg-pool-size", 4)),
                     .statement_timeout =
                         std::chrono::milliseconds(flags.Int("pg-statement-timeout-ms", 10000))});
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
  tg::WorkerPool workers(static_cast<size_t>(flags.Int("workers", 4)));
  tg::config::ConfigServiceImpl service(store, feed, workers);

  tg::GrpcServerOptions opts;
  opts.listen = flags.String("config-listen", "127.0.0.1:50051");
  opts.health_names = {"tg.v1.ConfigService"};
  opts.trace_unary_rpcs = true;
  // A write carries one entity: bounded, so that every change fits in one
  // Watch message to every follower (tg/common/limits.h).
  opts.max_receive_message_bytes =
      tg::limits::kMaxConfigEntityBytes + tg::limits::kGrpcMessageOverheadBytes;
  opts.tls = *tls;
  auto server = tg::GrpcServer::Start(opts, {&service}, &error);
  if (!server) {
    tg::log::Error("cannot start the gRPC server", {{"error", error}});
    return 1;
  }
  telemetry->ReportServing(server->serving_state());
  tg::log::Info("tg-config serving",
                {{"listen", opts.listen}, {"port", std::to_string(server->port())}});

  tg::WaitForTerminationSignal();
  feed.Close();        // watch streams end now: clients reconnect elsewhere
  server->Shutdown();  // unary RPCs in flight get the grace period
  feed.Stop();
  return 0;
}
