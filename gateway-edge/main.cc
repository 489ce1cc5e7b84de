// tg-edge: the admin API (REST → gRPC on tg-config / tg-keyauth) and the
// proxy (tg-keyauth, tg-balancer, tg-adapter). Wiring only: flags and
// environment in, objects out.
#include <grpcpp/grpcpp.h>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "tg/common/config_watcher.h"
#include "tg/common/flags.h"
#include "tg/common/grpc_channel.h"
#include "tg/common/grpc_server.h"
#include "tg/common/internal_tls.h"
#include "tg/common/limits.h"
#include "tg/common/log.h"
#include "tg/common/metrics.h"
#include "tg/common/service_main.h"
#include "tg/common/service_ports.h"
#include "tg/edge/admin_api.h"
#include "tg/edge/http_server.h"
#include "tg/edge/key_cache.h"
#include "tg/edge/proxy_handler.h"
#include "tg/edge/quota/redis_quota_store.h"

namespace {

std::shared_ptr<grpc::Channel> Dial(const std::string& address, std::string_view identity,
                                    const tg::InternalTls& tls) {
  // Bounded reconnect backoff (a restarted service is used again within
  // ~1 s) and keepalive pings the servers accept: InternalChannelArguments.
  return tg::DialInternal(address, identity, tls);
}

// The options: the one place for their defaults (`tg-edge --help`).
std::vector<tg::FlagSpec> Options() {
  using T = tg::FlagSpec::Type;
  return {
      {"admin-listen", T::kString, tg::ports::AnyAddress(tg::ports::kAdmin),
       "admin API listen address"},
      {"proxy-listen", T::kString, tg::ports::AnyAddress(tg::ports::kProxy),
       "proxy listen address"},
      {"metrics-listen", T::kString, tg::ports::AnyAddress(tg::ports::kEdgeMetrics),
       "/metrics listen address (\"off\": none)"},
      {"admin-jwt-secret", T::kString, "", "HS256 secret of admin tokens (required)"},
      {"admin-jwt-issuer", T::kString, "", "required iss of admin tokens (\"\": any)"},
      {"admin-jwt-audience", T::kString, "", "required aud of admin tokens (\"\": any)"},
      {"admin-rpc-timeout-ms", T::kInt, "5000",
       "deadline of an admin call on tg-config or tg-keyauth"},
      {"config-addr", T::kString, tg::ports::Loopback(tg::ports::kConfig), "tg-config address"},
      {"keyauth-addr", T::kString, tg::ports::Loopback(tg::ports::kKeyauth), "tg-keyauth address"},
      {"balancer-addr", T::kString, tg::ports::Loopback(tg::ports::kBalancer),
       "tg-balancer address"},
      {"adapter-addr", T::kString, tg::ports::Loopback(tg::ports::kAdapter), "tg-adapter address"},
      {"io-threads", T::kInt, "2", "admin HTTP threads"},
      {"proxy-io-threads", T::kInt, "2", "proxy HTTP threads"},
      {"proxy-body-limit", T::kInt, "10485760", "largest request body, bytes"},
      {"proxy-idle-timeout-ms", T::kInt, "60000", "idle keep-alive connections close after this"},
      {"proxy-base-domain", T::kString, "",
       "gateways by Host subdomain under this domain (\"\": by key only)"},
      {"proxy-max-attempts", T::kInt, "3",
       "provider calls per request when a rule sets no retry_attempts"},
      {"proxy-access-log", T::kBool, "true", "one JSON access-log line per proxied request"},
      {"proxy-client-ip-header", T::kString, "",
       "header a trusted proxy in front sets to the client address (X-Forwarded-For, "
       "X-Real-IP): its last entry keys per_ip limits (\"\": the peer address)"},
      {"redis-url", T::kString, "",
       "Redis shared by every edge for rate limits (redis://[:password@]host[:port][/db]; "
       "\"\": limits are this edge's own)"},
      {"rate-limit-lease-ttl-ms", T::kInt, "1000",
       "units an edge leased from Redis and did not use go back after this"},
  };
}

}  // namespace

int main(int argc, char** argv) {
  int exit_code = 0;
  auto svc = tg::ServiceMain::Start(
      argc, argv,
      {.name = "tg-edge",
       .summary = "the admin REST API and the proxy",
       .options = Options(),
       .metrics_flag = "metrics-listen",
       .identity = tg::kEdgeIdentity,
       .check =
           [](const tg::Flags& flags) {
             if (auto e = tg::jwt::CheckSecret(flags.String("admin-jwt-secret")); !e.empty()) {
               std::fprintf(stderr,
                            "tg-edge: TG_ADMIN_JWT_SECRET / --admin-jwt-secret refused: %s\n",
                            e.c_str());
               return 2;
             }
             return 0;
           }},
      &exit_code);
  if (!svc) return exit_code;
  const tg::Flags& flags = svc->flags();
  const tg::InternalTls& tls = svc->tls();

  tg::edge::AdminApiOptions admin;
  admin.jwt_secret = flags.String("admin-jwt-secret");
  admin.rpc_timeout = std::chrono::milliseconds(flags.Int("admin-rpc-timeout-ms"));
  admin.jwt.issuer = flags.String("admin-jwt-issuer");
  admin.jwt.audience = flags.String("admin-jwt-audience");
  if (auto e = tg::edge::ValidateAdminApiOptions(admin); !e.empty()) {
    tg::log::Error("invalid admin options", {{"error", e}});
    return 2;
  }

  const std::string config_addr = flags.String("config-addr");
  const std::string keyauth_addr = flags.String("keyauth-addr");
  const std::string balancer_addr = flags.String("balancer-addr");
  const std::string adapter_addr = flags.String("adapter-addr");

  tg::edge::HttpServerOptions http;
  http.name = "admin";
  http.listen = flags.String("admin-listen");
  http.io_threads = static_cast<int>(flags.Int("io-threads"));
  http.body_limit = 1024 * 1024;
  if (auto e = tg::edge::ValidateHttpServerOptions(http); !e.empty()) {
    tg::log::Error("invalid admin listener options", {{"error", e}});
    return 2;
  }

  tg::edge::HttpServerOptions proxy_http;
  proxy_http.name = "proxy";
  proxy_http.listen = flags.String("proxy-listen");
  proxy_http.io_threads = static_cast<int>(flags.Int("proxy-io-threads"));
  proxy_http.body_limit = static_cast<uint64_t>(flags.Int("proxy-body-limit"));
  proxy_http.idle_timeout = std::chrono::milliseconds(flags.Int("proxy-idle-timeout-ms"));
  proxy_http.access_log = false;  // the proxy writes its own, richer line
  if (proxy_http.body_limit > tg::limits::kMaxProxyBodyBytes) {
    // A larger body could not travel to tg-adapter in one message.
    tg::log::Error("invalid proxy listener options",
                   {{"error", "proxy-body-limit must be at most " +
                                  std::to_string(tg::limits::kMaxProxyBodyBytes) + " bytes"}});
    return 2;
  }
  if (auto e = tg::edge::ValidateHttpServerOptions(proxy_http); !e.empty()) {
    tg::log::Error("invalid proxy listener options", {{"error", e}});
    return 2;
  }
  tg::edge::ProxyOptions proxy;
  proxy.base_domain = flags.String("proxy-base-domain");
  proxy.max_attempts = static_cast<int>(flags.Int("proxy-max-attempts"));
  proxy.access_log = flags.Bool("proxy-access-log");
  proxy.client_ip_header = flags.String("proxy-client-ip-header");

  // Rate limits: GCRA buckets in Redis, leased in small batches
  // (docs/API.md, "Rate limits"); without Redis, this edge's own memory.
  std::unique_ptr<tg::edge::quota::Store> quota;
  tg::edge::SpendLedger::Options spend_options;
  if (const std::string redis_url = flags.String("redis-url"); !redis_url.empty()) {
    std::string error;
    auto options = tg::edge::quota::ParseRedisQuotaUrl(redis_url, &error);
    if (!options) {
      tg::log::Error("invalid --redis-url", {{"error", error}});
      return 2;
    }
    options->lease_ttl = std::chrono::milliseconds(flags.Int("rate-limit-lease-ttl-ms"));
    spend_options.redis = *options;
    auto shared = std::make_unique<tg::edge::quota::RedisQuotaStore>(std::move(*options));
    // How the limits' takes were answered: a Redis script call (on the
    // request's thread), this edge's lease, or its own buckets (Redis down).
    auto& registry = tg::metrics::Registry::Default();
    const tg::edge::quota::RedisQuotaStore* store = shared.get();
    registry.AddCallbackCounter(
        "tg_rate_limit_redis_takes_total",
        "Rate-limit takes that called Redis (a lease ran out, or the bucket is too small to "
        "lease).",
        [store] { return static_cast<double>(store->stats().redis_takes); });
    registry.AddCallbackCounter("tg_rate_limit_lease_takes_total",
                                "Rate-limit takes answered from this edge's lease.",
                                [store] { return static_cast<double>(store->stats().lease_hits); });
    registry.AddCallbackCounter(
        "tg_rate_limit_local_takes_total",
        "Rate-limit takes answered by this edge's own buckets while Redis was unreachable.",
        [store] { return static_cast<double>(store->stats().fallback_answers); });
    quota = std::move(shared);
  } else {
    tg::log::Warn("--redis-url is empty: rate limits are counted by this edge alone");
    quota = std::make_unique<tg::edge::quota::LocalQuotaStore>();
  }
  proxy.quota = quota.get();
  // Spend per gateway and key (budgets, GET …/spend), in the same Redis.
  auto spend = std::make_unique<tg::edge::SpendLedger>(std::move(spend_options));
  proxy.spend = spend.get();

  auto watcher = std::make_unique<tg::ConfigWatcher>(Dial(config_addr, tg::kConfigIdentity, tls));
  watcher->Start();
  auto keys = std::make_unique<tg::edge::KeyCache>(Dial(keyauth_addr, tg::kKeyauthIdentity, tls));
  keys->Start();
  auto balancer_channel = Dial(balancer_addr, tg::kBalancerIdentity, tls);
  auto adapter_channel = Dial(adapter_addr, tg::kAdapterIdentity, tls);
  auto proxy_handler = std::make_unique<tg::edge::ProxyHandler>(proxy, watcher.get(), keys.get(),
                                                                balancer_channel, adapter_channel);
  auto readiness = std::make_unique<tg::edge::EdgeReadiness>(watcher.get(), keys.get(),
                                                             balancer_channel, adapter_channel);
  auto api = std::make_unique<tg::edge::AdminApi>(
      admin, Dial(config_addr, tg::kConfigIdentity, tls),
      Dial(keyauth_addr, tg::kKeyauthIdentity, tls), watcher.get(), keys.get());
  api->SetReadiness(readiness.get());
  api->SetBalancer(balancer_channel);
  api->SetSpend(spend.get());
  std::string error;
  auto server = tg::edge::HttpServer::Start(http, api.get(), &error);
  if (!server) {
    tg::log::Error("cannot start the admin listener", {{"error", error}});
    return 1;
  }
  auto proxy_server = tg::edge::HttpServer::Start(proxy_http, proxy_handler.get(), &error);
  if (!proxy_server) {
    tg::log::Error("cannot start the proxy listener", {{"error", error}});
    return 1;
  }
  tg::log::Info("tg-edge started", {{"admin_listen", http.listen},
                                    {"proxy_port", std::to_string(proxy_server->port())},
                                    {"admin_port", std::to_string(server->port())},
                                    {"config_addr", config_addr},
                                    {"keyauth_addr", keyauth_addr}});

  svc->WaitForTermination();
  // Not ready from now on (/healthz 503 while the proxy drains).
  readiness->SetShuttingDown();
  // Drain HTTP first (in-flight answers and streams still need the API, the
  // keys and the watch), then the handlers' last calls, then the followers.
  proxy_server->Stop();
  server->Stop();
  proxy_handler.reset();
  for (const char* name : {"tg_rate_limit_redis_takes_total", "tg_rate_limit_lease_takes_total",
                           "tg_rate_limit_local_takes_total"}) {
    tg::metrics::Registry::Default().RemoveCallback(name);
  }
  quota.reset();  // gives unused leases back
  api.reset();
  spend.reset();  // flushes what this edge counted
  proxy_server.reset();
  server.reset();
  readiness.reset();
  keys.reset();
  watcher.reset();
  return 0;
}
