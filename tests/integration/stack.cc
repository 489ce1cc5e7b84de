#include "stack.h"

#include <gtest/gtest.h>

#include <cctype>

#include "test_tls.h"
#include "tg/common/crypto.h"
#include "tg/common/health_client.h"
#include "tg/common/jwt.h"

namespace tg::testing {

Stack::Stack(const std::string& db_prefix, StackOptions options)
    : db_(db_prefix, options.pg_admin_dsn), options_(std::move(options)) {
  dir_ = std::filesystem::temp_directory_path() /
         ("tg-e2e-" + crypto::HexEncode(crypto::RandomBytes(4)));
  std::filesystem::create_directories(dir_);
  config_port_ = FreePort();
  keyauth_port_ = FreePort();
  balancer_port_ = FreePort();
  adapter_port_ = FreePort();
  admin_port_ = FreePort();
  proxy_port_ = FreePort();
  for (const char* name : {"tg-config", "tg-keyauth", "tg-balancer", "tg-adapter", "tg-edge"}) {
    metrics_ports_[name] = FreePort();
  }
  secret_ = crypto::HexEncode(crypto::RandomBytes(24));
}

Stack::~Stack() {
  StopAll();
  // Keep the services' logs of a failed run for the post-mortem.
  if (::testing::UnitTest::GetInstance()->current_test_suite() != nullptr &&
      ::testing::UnitTest::GetInstance()->current_test_suite()->Failed()) {
    std::fprintf(stderr, "service logs kept in %s\n", dir_.c_str());
    return;
  }
  std::filesystem::remove_all(dir_);
}

int Stack::metrics_port(const std::string& name) const {
  auto it = metrics_ports_.find(name);
  return it == metrics_ports_.end() ? 0 : it->second;
}

std::unique_ptr<Process> Stack::Make(const std::string& name,
                                     std::map<std::string, std::string> env,
                                     const std::string& executable) {
  env["TG_LOG_LEVEL"] = "info";
  for (const auto& [k, v] : options_.common_env) env.emplace(k, v);
  // Each service's own metrics flag: tg-edge's is TG_METRICS_LISTEN, the
  // others' TG_<SERVICE>_METRICS_LISTEN (one environment serves them all).
  std::string var = "TG_METRICS_LISTEN";
  if ((executable.empty() ? name : executable) != "tg-edge") {
    std::string svc = (executable.empty() ? name : executable).substr(3);
    for (auto& c : svc) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    var = "TG_" + svc + "_METRICS_LISTEN";
  }
  env[var] = "127.0.0.1:" + std::to_string(metrics_port(name));
  // Internal gRPC over mutual TLS, each service with its own certificate.
  if (TestGrpcInsecure()) {
    env.emplace("TG_GRPC_INSECURE", "true");
  } else {
    env.emplace("TG_GRPC_TLS_DIR", TestTlsDir());
  }
  return std::make_unique<Process>(name, BinDir() + "/" + (executable.empty() ? name : executable),
                                   std::move(env), (dir_ / (name + ".log")).string());
}

bool Stack::WaitGrpc(Process& p, int port) {
  bool ok = WaitFor(
      [&] {
        // A replica ("tg-keyauth-2") holds its executable's identity.
        return CheckHealth(TestChannel(port, p.executable(), kOperatorIdentity), "",
                           std::chrono::milliseconds(500)) == "SERVING";
      },
      std::chrono::seconds(30));
  if (!ok) ADD_FAILURE() << p.name() << " did not become healthy:\n" << p.LogTail();
  return ok;
}

bool Stack::StartAll() {
  processes_.clear();
  grpc_ports_.clear();
  auto addr = [](int port) { return "127.0.0.1:" + std::to_string(port); };
  auto start = [&](std::unique_ptr<Process> p, int grpc_port) {
    Process* raw = p.get();
    grpc_ports_[raw->name()] = grpc_port;
    processes_.push_back(std::move(p));
    if (!raw->Start()) return false;
    return grpc_port == 0 || WaitGrpc(*raw, grpc_port);
  };
  if (!start(Make("tg-config", {{"TG_CONFIG_LISTEN", addr(config_port_)},
                                {"TG_PG_DSN", db_.dsn()},
                                {"TG_SECRETS_KEY_FILE", (dir_ / "secrets.key").string()}}),
             config_port_)) {
    return false;
  }
  if (!start(Make("tg-keyauth", {{"TG_KEYAUTH_LISTEN", addr(keyauth_port_)},
                                 {"TG_PG_DSN", db_.dsn()},
                                 {"TG_CONFIG_ADDR", addr(config_port_)}}),
             keyauth_port_)) {
    return false;
  }
  if (options_.keyauth_replica) {
    keyauth_replica_port_ = FreePort();
    metrics_ports_["tg-keyauth-2"] = FreePort();
    auto env = options_.keyauth_replica_env;
    env["TG_KEYAUTH_LISTEN"] = addr(keyauth_replica_port_);
    std::string dsn = db_.dsn();
    if (!options_.keyauth_replica_pg_user.empty()) {
      dsn += " user=" + options_.keyauth_replica_pg_user;  // libpq: the last one wins
    }
    env.emplace("TG_PG_DSN", dsn);
    env["TG_CONFIG_ADDR"] = addr(config_port_);
    if (!start(Make("tg-keyauth-2", env, "tg-keyauth"), keyauth_replica_port_)) return false;
  }
  if (options_.balancer) {
    auto env = options_.balancer_env;
    env["TG_BALANCER_LISTEN"] = addr(balancer_port_);
    env["TG_CONFIG_ADDR"] = addr(config_port_);
    env["TG_REDIS_URL"] = "redis://" + options_.redis_addr;
    env["TG_ADAPTER_ADDR"] = addr(adapter_port_);  // active health probes
    if (!start(Make("tg-balancer", env), balancer_port_)) return false;
  }
  if (options_.adapter) {
    // The fake providers listen on loopback: allowed by the egress policy's
    // documented setting, as scripts/up does.
    if (!start(Make("tg-adapter", {{"TG_ADAPTER_LISTEN", addr(adapter_port_)},
                                   {"TG_CONFIG_ADDR", addr(config_port_)},
                                   {"TG_EGRESS_ALLOW_PRIVATE", "true"}}),
               adapter_port_)) {
      return false;
    }
  }
  auto env = options_.edge_env;
  env["TG_CONFIG_ADDR"] = addr(config_port_);
  env["TG_KEYAUTH_ADDR"] = addr(keyauth_port_);
  if (options_.keyauth_replica) {
    env["TG_KEYAUTH_ADDR"] = "ipv4:" + addr(keyauth_port_) + "," + addr(keyauth_replica_port_);
  }
  env["TG_BALANCER_ADDR"] = addr(balancer_port_);
  env["TG_ADAPTER_ADDR"] = addr(adapter_port_);
  env["TG_ADMIN_JWT_SECRET"] = secret_;
  if (!options_.redis_addr.empty()) env.emplace("TG_REDIS_URL", "redis://" + options_.redis_addr);
  if (options_.edge_replica) {
    // Started first: the loop below returns once the first edge is up.
    admin2_port_ = FreePort();
    proxy2_port_ = FreePort();
    metrics_ports_["tg-edge-2"] = FreePort();
    auto env2 = env;
    env2["TG_ADMIN_LISTEN"] = addr(admin2_port_);
    env2["TG_PROXY_LISTEN"] = addr(proxy2_port_);
    if (!start(Make("tg-edge-2", env2, "tg-edge"), 0)) return false;
    const std::string admin2 = "http://127.0.0.1:" + std::to_string(admin2_port_) + "/healthz";
    if (!WaitFor([&] { return Http("GET", admin2).status == 200; }, std::chrono::seconds(30))) {
      ADD_FAILURE() << "tg-edge-2 did not become healthy:\n" << Find("tg-edge-2")->LogTail();
      return false;
    }
  }
  // Tests run in parallel: another may take a port between FreePort() and
  // the edge's bind, once in a long while. The edge then exits saying so,
  // and starts again on new ports.
  for (int attempt = 1;; ++attempt) {
    env["TG_ADMIN_LISTEN"] = addr(admin_port_);
    env["TG_PROXY_LISTEN"] = addr(proxy_port_);
    if (!start(Make("tg-edge", env), 0)) return false;
    bool port_taken = false;
    if (WaitEdge(attempt < 3 ? &port_taken : nullptr)) return true;
    if (!port_taken) return false;
    processes_.pop_back();
    admin_port_ = FreePort();
    proxy_port_ = FreePort();
    metrics_ports_["tg-edge"] = FreePort();
  }
}

bool Stack::WaitEdge(bool* port_taken) {
  // Our edge, not another test's process that took the port between
  // FreePort() and the bind (tests run in parallel): it logs the admin port
  // it listens on before its /healthz counts.
  Process* edge = Find("tg-edge");
  const std::string listening =
      "\"listener\":\"admin\",\"address\":\"127.0.0.1:" + std::to_string(admin_port_) + "\"";
  bool exited = false;
  bool ok = WaitFor(
      [&] {
        if (port_taken != nullptr && edge != nullptr && !edge->running()) {
          exited = true;
          return true;
        }
        return (edge == nullptr || edge->LogTail().find(listening) != std::string::npos) &&
               Http("GET", AdminUrl("/healthz")).status == 200;
      },
      std::chrono::seconds(30));
  if (exited) {
    ok = false;
    *port_taken = edge->LogTail().find("Address already in use") != std::string::npos;
    if (*port_taken) return false;
  }
  if (!ok) {
    for (auto& p : processes_) ADD_FAILURE() << p->name() << " log:\n" << p->LogTail();
  }
  return ok;
}

Process* Stack::Find(const std::string& name) {
  for (auto& p : processes_) {
    if (p->name() == name) return p.get();
  }
  return nullptr;
}

bool Stack::Restart(const std::string& name, const std::function<void()>& while_down) {
  Process* p = Find(name);
  if (p == nullptr) {
    ADD_FAILURE() << name << " is not part of the stack";
    return false;
  }
  int status = p->Stop();
  EXPECT_EQ(status, 0) << name << " did not exit cleanly:\n" << p->LogTail();
  if (while_down) while_down();
  if (!p->Start()) {
    ADD_FAILURE() << name << " did not start again";
    return false;
  }
  int port = grpc_ports_[name];
  return port != 0 ? WaitGrpc(*p, port) : WaitEdge();
}

void Stack::StopAll() {
  for (auto it = processes_.rbegin(); it != processes_.rend(); ++it) {
    auto& p = *it;
    EXPECT_EQ(p->Stop(), 0) << p->name() << " did not exit cleanly:\n" << p->LogTail();
  }
  processes_.clear();
  grpc_ports_.clear();
}

std::string Stack::AdminUrl(const std::string& path) const {
  return "http://127.0.0.1:" + std::to_string(admin_port_) + path;
}

std::string Stack::ProxyUrl(const std::string& path) const {
  return "http://127.0.0.1:" + std::to_string(proxy_port_) + path;
}

std::string Stack::Proxy2Url(const std::string& path) const {
  return "http://127.0.0.1:" + std::to_string(proxy2_port_) + path;
}

std::string Stack::Token(std::chrono::seconds ttl) const {
  return jwt::SignHs256(secret_, "e2e", std::chrono::system_clock::now(), ttl);
}

HttpResponse Stack::Admin(const std::string& method, const std::string& path,
                          const std::string& body) {
  return Http(method, AdminUrl(path), body,
              {"Content-Type: application/json", "Authorization: Bearer " + Token()});
}

rapidjson::Document Json(const std::string& body) {
  rapidjson::Document d;
  d.Parse(body.c_str(), body.size());
  return d;
}

std::string Stack::MustCreate(const std::string& path, const std::string& body) {
  HttpResponse r = Admin("POST", path, body);
  EXPECT_EQ(r.status, 201) << path << ": " << r.body.substr(0, 500);
  rapidjson::Document d = Json(r.body);
  return d.IsObject() && d.HasMember("id") && d["id"].IsString() ? d["id"].GetString() : "";
}

std::string Stack::MustCreateKey(const std::string& gateway_id, const std::string& expires_at) {
  const std::string body = expires_at.empty()
                               ? std::string(R"({"name": "k"})")
                               : R"({"name": "k", "expires_at": ")" + expires_at + R"("})";
  HttpResponse r = Admin("POST", "/api/v1/gateways/" + gateway_id + "/keys", body);
  EXPECT_EQ(r.status, 201) << r.body;
  rapidjson::Document d = Json(r.body);
  return d.IsObject() && d.HasMember("key") && d["key"].IsString() ? d["key"].GetString() : "";
}

std::string Stack::MustRoute(const std::string& gateway_id, const std::string& path,
                             const std::string& upstream_json, bool strip_path,
                             const std::string& rule_extra) {
  const std::string base = "/api/v1/gateways/" + gateway_id;
  std::string upstream = MustCreate(base + "/upstreams", upstream_json);
  std::string service =
      MustCreate(base + "/services",
                 R"({"name": "s", "type": "upstream", "upstream_id": ")" + upstream + "\"}");
  MustCreate(base + "/rules", R"({"path": ")" + path + R"(", "service_id": ")" + service +
                                  R"(", "methods": ["POST"], "strip_path": )" +
                                  (strip_path ? "true" : "false") + rule_extra + "}");
  return upstream;
}

}  // namespace tg::testing
