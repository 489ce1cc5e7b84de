// tg-balancer: picks provider targets and keeps passive health (DESIGN §5).
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>

#include <chrono>
#include <cstdio>
#include <exception>
#include <memory>
#include <string>
#include <vector>

#include "tg/balancer/adapter_probe_client.h"
#include "tg/balancer/balancer.h"
#include "tg/balancer/balancer_service.h"
#include "tg/balancer/clock.h"
#include "tg/balancer/config_watcher_source.h"
#include "tg/balancer/health_store.h"
#include "tg/balancer/prober.h"
#include "tg/balancer/random.h"
#include "tg/balancer/redis_health_store.h"
#include "tg/common/config_watcher.h"
#include "tg/common/flags.h"
#include "tg/common/grpc_channel.h"
#include "tg/common/grpc_server.h"
#include "tg/common/internal_tls.h"
#include "tg/common/log.h"
#include "tg/common/metrics.h"
#include "tg/common/service_main.h"
#include "tg/common/service_ports.h"

namespace {

// Health name that follows Redis reachability. The server ("") and
// tg.v1.BalancerService stay SERVING while Redis is away, because picks go on
// from the local view and taking replicas out of rotation would turn a Redis
// outage into a balancer outage; this name lets probes and operators see it.
constexpr char kRedisHealthName[] = "tg.v1.BalancerService.Redis";

int Run(tg::ServiceMain& svc) {
  using namespace tg::balancer;
  const tg::Flags& flags = svc.flags();
  const tg::InternalTls& tls = svc.tls();
  const std::string listen = flags.String("balancer-listen");
  const std::string config_addr = flags.String("config-addr");
  const std::string redis_url = flags.String("redis-url");
  // Active health probes go through tg-adapter (it holds the credentials).
  const std::string adapter_addr = flags.String("adapter-addr");

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

  // The scrape hooks go (Unhook, below) before the balancer they read: a
  // scrape in progress finishes first (RemoveCallback waits for it).
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
  tg::ConfigWatcher watcher(tg::DialInternal(config_addr, tg::kConfigIdentity, tls));
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
  AdapterProbeClient probe_client(tg::DialInternal(adapter_addr, tg::kAdapterIdentity, tls));
  ProberOptions prober_options;
  prober_options.tick = std::chrono::milliseconds(flags.Int("probe-tick-ms"));
  Prober prober(&balancer, &probe_client, store.get(), &clock, prober_options);
  prober.Start();

  std::string error;
  auto server = tg::GrpcServer::Start(
      tg::GrpcServerOptions{.listen = listen,
                            .health_names = {"tg.v1.BalancerService", kRedisHealthName},
                            .shutdown_grace = std::chrono::seconds(1),
                            .tls = tls},
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
  svc.Serving(server->serving_state());
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

  svc.WaitForTermination();

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
  return 0;
}

// The options: the one place for their defaults (`tg-balancer --help`).
std::vector<tg::FlagSpec> Options() {
  using T = tg::FlagSpec::Type;
  return {
      {"balancer-listen", T::kString, tg::ports::Loopback(tg::ports::kBalancer),
       "gRPC listen address"},
      {"balancer-metrics-listen", T::kString, tg::ports::AnyAddress(tg::ports::kBalancerMetrics),
       "/metrics and /healthz listen address (\"off\": none)"},
      {"config-addr", T::kString, tg::ports::Loopback(tg::ports::kConfig), "tg-config address"},
      {"redis-url", T::kString, "redis://127.0.0.1:6379",
       "Redis for shared health (\"\": local only)"},
      {"adapter-addr", T::kString, tg::ports::Loopback(tg::ports::kAdapter),
       "tg-adapter address (active health probes)"},
      {"pick-timeout-seconds", T::kInt, "300", "a pick with no report after this long is released"},
      {"probe-tick-ms", T::kInt, "250", "how often the prober looks for targets due a probe"},
  };
}

}  // namespace

int main(int argc, char** argv) {
  int exit_code = 0;
  auto svc = tg::ServiceMain::Start(argc, argv,
                                    {.name = "tg-balancer",
                                     .summary = "picks provider targets and keeps their health "
                                                "(passive, and active probes through tg-adapter)",
                                     .options = Options(),
                                     .metrics_flag = "balancer-metrics-listen",
                                     .identity = tg::kBalancerIdentity},
                                    &exit_code);
  if (!svc) return exit_code;
  try {
    return Run(*svc);
  } catch (const std::exception& e) {
    tg::log::Error("start-up failed", {{"error", e.what()}});
  }
  return 1;
}
