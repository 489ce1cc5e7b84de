#pragma once

#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <string>

#include "process.h"
#include "test_db.h"

namespace tg::testing {

struct StackOptions {
  bool balancer = false;  // also tg-balancer (needs redis_addr)
  bool adapter = false;   // also tg-adapter
  std::string redis_addr;                    // host:port
  std::map<std::string, std::string> edge_env;  // extra TG_* for tg-edge
  std::map<std::string, std::string> balancer_env;
};

// The TrustGate services as separate processes on free loopback ports, on a
// throwaway database: what scripts/up runs, for end-to-end tests.
class Stack {
 public:
  Stack(const std::string& db_prefix, StackOptions options = {});
  ~Stack();

  bool StartAll();  // in dependency order; waits until each is healthy
  void StopAll();   // SIGTERM in reverse order; expects clean exits

  std::string AdminUrl(const std::string& path) const;
  std::string ProxyUrl(const std::string& path) const;
  std::string Token(std::chrono::seconds ttl = std::chrono::seconds(3600)) const;
  HttpResponse Admin(const std::string& method, const std::string& path, const std::string& body = "");
  int proxy_port() const { return proxy_port_; }
  const std::string& dsn() const { return db_.dsn(); }

 private:
  std::unique_ptr<Process> Make(const std::string& name, std::map<std::string, std::string> env);
  bool WaitGrpc(Process& p, int port);

  TestDatabase db_;
  StackOptions options_;
  std::filesystem::path dir_;
  int config_port_, keyauth_port_, balancer_port_, adapter_port_, admin_port_, proxy_port_;
  std::string secret_;
  std::vector<std::unique_ptr<Process>> processes_;  // in start order
};

}  // namespace tg::testing
