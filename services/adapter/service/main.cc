// tg-adapter: wires flags to the HTTP client, the config watch (with
// credentials) and the Invoke service.
#include <cstdio>
#include <memory>

#include "tg/adapter/http/curl_http_client.h"
#include "tg/adapter/service/adapter_service.h"
#include "tg/common/config_watcher.h"
#include "tg/common/flags.h"
#include "tg/common/grpc_channel.h"
#include "tg/common/grpc_server.h"
#include "tg/common/internal_tls.h"
#include "tg/common/log.h"
#include "tg/common/service_main.h"
#include "tg/common/service_ports.h"
#include "tg/common/worker_pool.h"

namespace {

// The options: the one place for their defaults (`tg-adapter --help`).
std::vector<tg::FlagSpec> Options() {
  using T = tg::FlagSpec::Type;
  return {
      {"adapter-listen", T::kString, tg::ports::Loopback(tg::ports::kAdapter),
       "gRPC listen address"},
      {"adapter-metrics-listen", T::kString, tg::ports::AnyAddress(tg::ports::kAdapterMetrics),
       "/metrics and /healthz listen address (\"off\": none)"},
      {"config-addr", T::kString, tg::ports::Loopback(tg::ports::kConfig),
       "tg-config address (targets and their credentials)"},
      {"http-connect-timeout-ms", T::kInt, "5000",
       "provider connect timeout (a rule's timeouts override it)"},
      {"http-first-byte-timeout-ms", T::kInt, "60000", "provider time to the answer's head"},
      {"http-idle-timeout-ms", T::kInt, "30000", "longest gap between two body bytes"},
      {"http-total-timeout-ms", T::kInt, "600000", "longest provider call"},
      {"egress-allow-private", T::kBool, "false",
       "allow provider hosts on private, loopback and link-local addresses"},
      {"azure-imds-endpoint", T::kString, "http://169.254.169.254/metadata/identity/oauth2/token",
       "Azure managed identity token endpoint"},
      {"workers", T::kInt, "2", "worker threads (blocking token fetches)"},
      {"shutdown-grace-seconds", T::kInt, "10", "time given to calls in flight at shutdown"},
  };
}

}  // namespace

int main(int argc, char** argv) {
  int exit_code = 0;
  auto svc = tg::ServiceMain::Start(argc, argv,
                                    {.name = "tg-adapter",
                                     .summary = "calls the providers: translates each request and "
                                                "streams the answer back in the client's format",
                                     .options = Options(),
                                     .metrics_flag = "adapter-metrics-listen",
                                     .identity = tg::kAdapterIdentity},
                                    &exit_code);
  if (!svc) return exit_code;
  const tg::Flags& flags = svc->flags();
  const tg::InternalTls& tls = svc->tls();

  tg::adapter::AdapterServiceOptions options;
  auto& t = options.invocation.timeouts;
  t.connect = std::chrono::milliseconds(flags.Int("http-connect-timeout-ms"));
  t.first_byte = std::chrono::milliseconds(flags.Int("http-first-byte-timeout-ms"));
  t.idle = std::chrono::milliseconds(flags.Int("http-idle-timeout-ms"));
  t.total = std::chrono::milliseconds(flags.Int("http-total-timeout-ms"));

  tg::ConfigWatcherOptions watch;
  watch.include_credentials = true;
  tg::ConfigWatcher config(tg::DialInternal(flags.String("config-addr"), tg::kConfigIdentity, tls),
                           watch);
  config.Start();

  tg::adapter::http::CurlHttpClientOptions http;
  // Loopback and private addresses (docs/OPERATIONS.md, "Egress policy"):
  // off unless the operator turns it on; scripts/up and the tests do.
  http.egress.allow_private = flags.Bool("egress-allow-private");
  tg::adapter::http::CurlHttpClient client(http);
  tg::adapter::EntraTokenSource::Options entra_options;
  entra_options.endpoint = flags.String("azure-imds-endpoint");
  tg::adapter::EntraTokenSource entra(client, entra_options);
  tg::WorkerPool workers(static_cast<size_t>(flags.Int("workers")));
  tg::adapter::AdapterServiceImpl service(config, client, &entra, workers, options);

  tg::GrpcServerOptions opts;
  opts.listen = flags.String("adapter-listen");
  opts.health_names = {"tg.v1.ProviderAdapterService"};
  opts.shutdown_grace = std::chrono::seconds(flags.Int("shutdown-grace-seconds"));
  opts.tls = tls;
  std::string error;
  auto server = tg::GrpcServer::Start(opts, {&service}, &error);
  if (!server) {
    tg::log::Error("cannot start the gRPC server", {{"error", error}});
    return 1;
  }
  svc->Serving(server->serving_state());
  tg::log::Info("tg-adapter serving",
                {{"listen", opts.listen},
                 {"port", std::to_string(server->port())},
                 {"egress_allow_private", http.egress.allow_private ? "true" : "false"}});
  svc->WaitForTermination();
  server->Shutdown();  // streams in flight get the grace period, then are cancelled
  config.Stop();
  return 0;
}
