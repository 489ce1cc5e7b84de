// tg-balancer: picks provider targets and keeps passive health (DESIGN §5).
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>

#include <chrono>
#include <cstdio>
#include <exception>
#include <memory>
#include <string>
#include <vector>

#include "adapter_probe_client.h"
#include "balancer.h"
#include "balancer_service.h"
#include "clock.h"
#include "config_watcher_source.h"
#include "health_store.h"
#include "prober.h"
#include "random.h"
#include "redis_health_store.h"
#include "tg/common/config_watcher.h"
#include "tg/common/flags.h"
#include "tg/common/grpc_channel.h"
#include "tg/common/grpc_server.h"
#include "tg/common/internal_tls.h"
#include "tg/common/log.h"
#include "tg/common/metrics.h"
#include "tg/common/telemetry.h"

namespace {

// Health name that follows Redis reachability. The server ("") and
// tg.v1.BalancerService stay SERVING while Redis is away, because picks go on
// from the local view and taking replicas out of rotation would turn a Redis
// outage into a balancer outage; this name lets probes and operators see it.
constexpr char kRedisHealthName[] = "tg.v1.BalancerService.Redis";

int Run(const tg::Flags& flags) {
  using namespace tg::balancer;
  const std::string listen = flags.String("balancer-listen");
  const std::string config_addr = flags.String("config-addr");
  const std::string redis_url = flags.String("redis-url");
  // Active health probes go through tg-adapter (it holds the credentials).
  const std::string adapter_addr = flags.String("adapter-addr");
  std::string tls_error;
  auto tls = tg::InternalTlsFromFlags(flags, tg::kBalancerIdentity, &tls_error);
  if (!tls) {
    tg::log::Error("cannot set up internal gRPC TLS", {{"error", tls_error}});
    std::fprintf(stderr, "tg-balancer: %s\n", tls_error.c_str());
    return 2;
  }

  SystemClock clock;
  SystemRandom random;
  std::unique_ptr<HealthStore> store;
  if (redis_url.empty()) {
    tg::log::Warn("--redis-url is empty: passive health is not shared between replicas");
    store = std::make_unique<LocalOnlyHealthStore>();
  } else {
    std::string error;
    auto options = ParseRedisUrl(redis_url, &error);
    if (!options) {
      tg::log::Error("invalid --redis-url", {{"error", error}});
      return 2;
    }
    store = std::make_unique<RedisHealthStore>(std::move(*options), &clock);
  }

  BalancerOptions balancer_options;
  balancer_options.pick_timeout = std::chrono::seconds(flags.Int("pick-timeout-seconds"));
  Balancer balancer(&clock, &random, store.get(), balancer_options);
  BalancerServiceImpl service(&balancer);

  // After the balancer, so that it stops (and its scrape hook goes) first.
  std::string telemetry_error;
  auto telemetry = tg::Telemetry::Start("tg-balancer", flags, "balancer-metrics-listen",
                                        flags.String("balancer-metrics-listen"), &telemetry_error);
  if (!telemetry) {
    tg::log::Error("cannot start telemetry", {{"error", telemetry_error}});
    return 1;
  }
  auto& registry = tg::metrics::Registry::Default();
  auto& healthy = registry.AddGauge("tg_balancer_target_healthy",
                                    "1 while a target takes traffic, 0 while it is ejected.",
                                    {"upstream", "target"}, 1000);
  auto& circuit = registry.AddGauge(
      "tg_balancer_target_state",
      "1 for the current circuit state of a target (closed, open, half_open), 0 for the others.",
      {"upstream", "target", "state"}, 3000);
  registry.AddScrapeHook("tg_balancer_target_healthy", [&balancer, &healthy, &circuit] {
    healthy.HideAll();  // a target deleted from the config stops being exported
    circuit.HideAll();
    balancer.VisitTargets([&healthy, &circuit](const std::string& u, const std::string& t,
                                               HealthPhase p) {
      healthy.With({u, t}).Set(p == HealthPhase::kEjected ? 0 : 1);
      for (HealthPhase each : {HealthPhase::kHealthy, HealthPhase::kEjected, HealthPhase::kTrial}) {
        circuit.With({u, t, CircuitStateName(each)}).Set(each == p ? 1 : 0);
      }
    });
  });
  registry.AddCallbackGauge(
      "tg_balancer_outstanding_picks", "Picks handed out and not yet reported.",
      [&balancer] { return static_cast<double>(balancer.outstanding_picks()); });
  struct Unhook {
    tg::metrics::Registry& r;
    ~Unhook() {
      r.RemoveCallback("tg_balancer_target_healthy");
      r.RemoveCallback("tg_balancer_outstanding_picks");
    }
  } unhook{registry};
  tg::ConfigWatcher watcher(tg::DialInternal(config_addr, tg::kConfigIdentity, *tls));
  ConfigWatcherSource source(&watcher);
  source.SetOnChange([&] {
    if (auto set = source.Current()) {
      balancer.ApplyConfig(*set);
      service.OnConfigApplied();
    }
  });
  store->Start(&balancer);
  watcher.Start();
  source.Start();
  AdapterProbeClient probe_client(tg::DialInternal(adapter_addr, tg::kAdapterIdentity, *tls));
  ProberOptions prober_options;
  prober_options.tick = std::chrono::milliseconds(flags.Int("probe-tick-ms"));
  Prober prober(&balancer, &probe_client, store.get(), &clock, prober_options);
  prober.Start();

  std::string error;
  auto server = tg::GrpcServer::Start(
      tg::GrpcServerOptions{.listen = listen,
                            .health_names = {"tg.v1.BalancerService", kRedisHealthName},
                            .shutdown_grace = std::chrono::seconds(1),
                            .tls = *tls},
      {&service}, &error);
  if (!server) {
    tg::log::Error("cannot start gRPC server", {{"error", error}});
    service.BeginShutdown();
    prober.Stop();
    source.Stop();
    watcher.Stop();
    store->Stop();
    return 1;
  }
  telemetry->ReportServing(server->serving_state());
  auto* health = server->server()->GetHealthCheckService();
  auto apply_status = [health](const HealthStoreStatus& s) {
    if (health != nullptr) health->SetServingStatus(kRedisHealthName, !s.degraded);
  };
  store->SetStatusListener(apply_status);
  apply_status(store->status());
  tg::log::Info("tg-balancer serving", {{"listen", listen},
                                        {"port", std::to_string(server->port())},
                                        {"config_addr", config_addr},
                                        {"adapter_addr", adapter_addr}});

  tg::WaitForTerminationSignal();

  // Waiting picks first (they would otherwise hold the drain), then the
  // server drains the rest; only then may the config feed and the store go.
  store->SetStatusListener(nullptr);
  prober.Stop();  // before the store and the balancer it uses
  service.BeginShutdown();
  server->Shutdown();
  server.reset();
  source.Stop();
  watcher.Stop();
  store->Stop();
  tg::log::Info("tg-balancer stopped");
  return 0;
}

// The options: the one place for their defaults (`tg-balancer --help`).
std::vector<tg::FlagSpec> Options() {
  using T = tg::FlagSpec::Type;
  return {
      {"balancer-listen", T::kString, "127.0.0.1:50053", "gRPC listen address"},
      {"balancer-metrics-listen", T::kString, "0.0.0.0:9093",
       "/metrics and /healthz listen address (\"off\": none)"},
      {"config-addr", T::kString, "127.0.0.1:50051", "tg-config address"},
      {"redis-url", T::kString, "redis://127.0.0.1:6379",
       "Redis for shared health (\"\": local only)"},
      {"adapter-addr", T::kString, "127.0.0.1:50054", "tg-adapter address (active health probes)"},
      {"pick-timeout-seconds", T::kInt, "300", "a pick with no report after this long is released"},
      {"probe-tick-ms", T::kInt, "250", "how often the prober looks for targets due a probe"},
  };
}

}  // namespace

int main(int argc, char** argv) {
  tg::BlockTerminationSignals();
  tg::DisableMutexDeadlockDetection();
  tg::log::SetService("tg-balancer");
  int exit_code = 0;
  const auto parsed = tg::Flags::ForService(argc, argv, "tg-balancer",
                                            "picks provider targets and keeps their health "
                                            "(passive, and active probes through tg-adapter)",
                                            Options(), &exit_code);
  if (!parsed) return exit_code;
  const tg::Flags& flags = *parsed;
  tg::log::SetLevel(flags.String("log-level"));
  try {
    return Run(flags);
  } catch (const std::exception& e) {
    tg::log::Error("start-up failed", {{"error", e.what()}});
  }
  return 1;
}
