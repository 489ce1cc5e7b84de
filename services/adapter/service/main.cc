// tg-adapter: wires flags to the HTTP client, the config watch (with
// credentials) and the Invoke service.
#include <cstdio>
#include <memory>

#include "http/curl_http_client.h"
#include "service/adapter_service.h"
#include "tg/common/config_watcher.h"
#include "tg/common/flags.h"
#include "tg/common/grpc_channel.h"
#include "tg/common/grpc_server.h"
#include "tg/common/internal_tls.h"
#include "tg/common/log.h"
#include "tg/common/telemetry.h"
#include "tg/common/worker_pool.h"

int main(int argc, char** argv) {
  tg::BlockTerminationSignals();
  tg::DisableMutexDeadlockDetection();
  tg::Flags flags(argc, argv);
  tg::log::SetService("tg-adapter");
  tg::log::SetLevel(flags.String("log-level", "info"));

  std::string error;
  auto telemetry =
      tg::Telemetry::Start("tg-adapter", flags, "adapter-metrics-listen", "0.0.0.0:9094", &error);
  if (!telemetry) {
    tg::log::Error("cannot start telemetry", {{"error", error}});
    return 1;
  }

  std::string tls_error;
  auto tls = tg::InternalTlsFromFlags(flags, tg::kAdapterIdentity, &tls_error);
  if (!tls) {
    tg::log::Error("cannot set up internal gRPC TLS", {{"error", tls_error}});
    std::fprintf(stderr, "tg-adapter: %s\n", tls_error.c_str());
    return 2;
  }

  tg::adapter::AdapterServiceOptions options;
  auto& t = options.invocation.timeouts;
  t.connect = std::chrono::milliseconds(flags.Int("http-connect-timeout-ms", 5000));
  t.first_byte = std::chrono::milliseconds(flags.Int("http-first-byte-timeout-ms", 60000));
  t.idle = std::chrono::milliseconds(flags.Int("http-idle-timeout-ms", 30000));
  t.total = std::chrono::milliseconds(flags.Int("http-total-timeout-ms", 600000));

  tg::ConfigWatcherOptions watch;
  watch.include_credentials = true;
  tg::ConfigWatcher config(
      tg::DialInternal(flags.String("config-addr", "127.0.0.1:50051"), tg::kConfigIdentity, *tls),
      watch);
  config.Start();

  tg::adapter::http::CurlHttpClientOptions http;
  // Loopback and private addresses (docs/OPERATIONS.md, "Egress policy"):
  // off unless the operator turns it on; scripts/up and the tests do.
  http.egress.allow_private = flags.Bool("egress-allow-private", false);
  tg::adapter::http::CurlHttpClient client(http);
  tg::adapter::EntraTokenSource::Options entra_options;
  entra_options.endpoint = flags.String("azure-imds-endpoint", entra_options.endpoint);
  tg::adapter::EntraTokenSource entra(client, entra_options);
  tg::WorkerPool workers(static_cast<size_t>(flags.Int("workers", 2)));
  tg::adapter::AdapterServiceImpl service(config, client, &entra, workers, options);

  tg::GrpcServerOptions opts;
  opts.listen = flags.String("adapter-listen", "127.0.0.1:50054");
  opts.health_names = {"tg.v1.ProviderAdapterService"};
  opts.shutdown_grace = std::chrono::seconds(flags.Int("shutdown-grace-seconds", 10));
  opts.tls = *tls;
  auto server = tg::GrpcServer::Start(opts, {&service}, &error);
  if (!server) {
    tg::log::Error("cannot start the gRPC server", {{"error", error}});
    return 1;
  }
  telemetry->ReportServing(server->serving_state());
  tg::log::Info("tg-adapter serving",
                {{"listen", opts.listen},
                 {"port", std::to_string(server->port())},
                 {"egress_allow_private", http.egress.allow_private ? "true" : "false"}});
  tg::WaitForTerminationSignal();
  server->Shutdown();  // streams in flight get the grace period, then are cancelled
  config.Stop();
  return 0;
}
