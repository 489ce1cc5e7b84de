#pragma once

#include <rapidjson/document.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "process.h"
#include "test_db.h"

namespace tg::testing {

struct StackOptions {
  bool balancer = false;                        // also tg-balancer (needs redis_addr)
  bool adapter = false;                         // also tg-adapter
  std::string redis_addr;                       // host:port
  std::map<std::string, std::string> edge_env;  // extra TG_* for tg-edge
  std::map<std::string, std::string> balancer_env;
  std::map<std::string, std::string> common_env;  // every service (OTEL_*, …)
  // The PostgreSQL server for the throwaway database, as an admin DSN like
  // TG_TEST_PG_DSN's; "" uses TG_TEST_PG_DSN.
  std::string pg_admin_dsn;
  // A second tg-keyauth replica ("tg-keyauth-2") with these extra TG_* (e.g.
  // its own TG_PG_DSN); the edge then dials both (ipv4:a,b, round robin).
  bool keyauth_replica = false;
  std::map<std::string, std::string> keyauth_replica_env;
  std::string keyauth_replica_pg_user;  // its PostgreSQL role; "" = the stack's
  // A second tg-edge replica ("tg-edge-2", its own admin, proxy and metrics
  // ports, the same services behind it). Both edges get TG_REDIS_URL when
  // redis_addr is set.
  bool edge_replica = false;
};

// The TrustGate services as separate processes on free loopback ports, on a
// throwaway database: what scripts/up runs, for end-to-end tests.
// A body as JSON (a null document when it is not JSON).
rapidjson::Document Json(const std::string& body);

class Stack {
 public:
  Stack(const std::string& db_prefix, StackOptions options = {});
  ~Stack();

  bool StartAll();  // in dependency order; waits until each is healthy
  void StopAll();   // SIGTERM in reverse order; expects clean exits

  // A started service by executable name ("tg-edge", "tg-config", …); nullptr
  // when it is not part of the stack.
  Process* Find(const std::string& name);
  // SIGTERM one service (expecting a clean exit), run `while_down` (e.g.
  // traffic during an outage), then start it again with the same settings on
  // the same ports, and wait until it is healthy.
  bool Restart(const std::string& name, const std::function<void()>& while_down = nullptr);

  std::string AdminUrl(const std::string& path) const;
  std::string ProxyUrl(const std::string& path) const;
  std::string Token(std::chrono::seconds ttl = std::chrono::seconds(3600)) const;
  HttpResponse Admin(const std::string& method, const std::string& path,
                     const std::string& body = "");
  // Admin calls that set a scene, each expecting success (anything else
  // fails the calling test, with the answer): POST `path`, the new entity's
  // id; a key of gateway `gateway_id` (never expiring unless `expires_at`),
  // its plaintext; an upstream, a service on it and a POST rule at `path`,
  // the upstream's id.
  std::string MustCreate(const std::string& path, const std::string& body);
  std::string MustCreateKey(const std::string& gateway_id, const std::string& expires_at = "");
  std::string MustRoute(const std::string& gateway_id, const std::string& path,
                        const std::string& upstream_json, bool strip_path = true,
                        const std::string& rule_extra = "");
  int proxy_port() const { return proxy_port_; }
  // tg-edge-2's proxy (edge_replica), like ProxyUrl.
  std::string Proxy2Url(const std::string& path) const;
  // The gRPC port of a started service ("tg-config", "tg-keyauth-2", …); 0
  // for tg-edge or an unknown name. Dial it with TestChannel (test_tls.h).
  int grpc_port(const std::string& name) const {
    auto it = grpc_ports_.find(name);
    return it == grpc_ports_.end() ? 0 : it->second;
  }
  // The /metrics port of a service ("tg-edge", "tg-balancer", …).
  int metrics_port(const std::string& name) const;
  const std::string& dsn() const { return db_.dsn(); }

 private:
  std::unique_ptr<Process> Make(const std::string& name, std::map<std::string, std::string> env,
                                const std::string& executable = "");
  bool WaitGrpc(Process& p, int port);
  // *port_taken (when given): the edge exited because a port it was given
  // was taken meanwhile (no test failure is recorded then).
  bool WaitEdge(bool* port_taken = nullptr);

  TestDatabase db_;
  StackOptions options_;
  std::filesystem::path dir_;
  int keyauth_replica_port_ = 0;
  int config_port_, keyauth_port_, balancer_port_, adapter_port_, admin_port_, proxy_port_;
  int admin2_port_ = 0, proxy2_port_ = 0;
  std::string secret_;
  std::vector<std::unique_ptr<Process>> processes_;  // in start order
  std::map<std::string, int> grpc_ports_;            // by name; 0 for tg-edge
  std::map<std::string, int> metrics_ports_;         // by name, fixed at construction
};

}  // namespace tg::testing
