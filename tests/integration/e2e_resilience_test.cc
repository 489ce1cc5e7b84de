// Size: one scenario family (a service or store failing) sharing one stack fixture.
// Failure end to end (issue 5): every service as a separate process, real
// PostgreSQL and Redis, the fake provider in this process.
//
//   - PostgreSQL stopped: the proxy keeps serving from the edge's snapshot and
//     caches, the admin API answers 503 (promptly), and writes work again once
//     PostgreSQL is back. This test runs its OWN PostgreSQL cluster (initdb in
//     a temporary directory): the shared one serves tests running in parallel.
//   - tg-balancer, tg-adapter, tg-config, then tg-keyauth stopped for a few
//     seconds under traffic and started again (same port) while the edge
//     keeps running: meanwhile prompt 5xx answers (or snapshot service), then
//     the edge reconnects within about a second and carries on; after
//     tg-config's restart an admin write is visible to the very next proxied
//     request.
//   - SIGTERM to tg-edge mid-stream: the stream (and a whole answer) in flight
//     are delivered complete, the edge exits 0 as soon as its clients are
//     done, and a new connection after the SIGTERM is REFUSED (the listener
//     closes at once; nothing is accepted and left unanswered).
#include <gtest/gtest.h>
#include <pwd.h>
#include <rapidjson/document.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <memory>
#include <sstream>
#include <thread>

#include "fake_provider.h"
#include "process.h"
#include "stack.h"
#include "test_db.h"

namespace tg::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using Clock = std::chrono::steady_clock;

long Ms(Clock::duration d) {
  return static_cast<long>(std::chrono::duration_cast<milliseconds>(d).count());
}

const char* Env(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? v : nullptr;
}

std::string Quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// ---------------------------------------------------------------- own PostgreSQL

// A PostgreSQL cluster of this test's own, so that it can be stopped without
// touching the one other tests share. Runs as the postgres user when we are
// root (PostgreSQL refuses to run as root).
class OwnPostgres {
 public:
  static const char* BinDir() { return Env("TG_TEST_PG_BIN_DIR"); }

  ~OwnPostgres() {
    if (dir_.empty()) return;
    if (running_) Run(Pg("pg_ctl") + " stop -D " + Quote(data()) + " -m immediate -w -t 20");
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  bool Init(std::string* error) {
    std::string tmpl = (std::filesystem::temp_directory_path() / "tg-resil-pg-XXXXXX").string();
    if (mkdtemp(tmpl.data()) == nullptr) {
      *error = "mkdtemp failed";
      return false;
    }
    dir_ = tmpl;
    if (geteuid() == 0) {
      const passwd* pw = getpwnam("postgres");
      if (pw == nullptr) {
        *error = "no postgres user";
        return false;
      }
      if (chown(dir_.c_str(), pw->pw_uid, pw->pw_gid) != 0) {
        *error = "cannot chown " + dir_;
        return false;
      }
    }
    chmod(dir_.c_str(), 0755);
    port_ = FreePort();
    int rc = Run(Pg("initdb") + " -D " + Quote(data()) +
                 " --auth=trust -U postgres -E UTF8 --no-locale > " + Quote(dir_ + "/initdb.log") +
                 " 2>&1");
    if (rc != 0) {
      *error = "initdb failed (see " + dir_ + "/initdb.log)";
      return false;
    }
    return true;
  }

  bool Start() {
    std::string opts = "-c listen_addresses=127.0.0.1 -p " + std::to_string(port_) + " -k " + dir_ +
                       " -c fsync=off -c max_connections=60";
    int rc = Run(Pg("pg_ctl") + " start -D " + Quote(data()) + " -l " +
                 Quote(dir_ + "/postgres.log") + " -w -t 60 -o " + Quote(opts) + " > /dev/null");
    running_ = rc == 0;
    if (!running_) ADD_FAILURE() << "pg_ctl start failed:\n" << LogTail();
    return running_;
  }

  bool Stop() {
    int rc = Run(Pg("pg_ctl") + " stop -D " + Quote(data()) + " -m fast -w -t 30 > /dev/null");
    if (rc == 0) running_ = false;
    return rc == 0;
  }

  std::string admin_dsn() const {
    return "host=127.0.0.1 port=" + std::to_string(port_) + " user=postgres dbname=postgres";
  }

  std::string LogTail() const {
    std::ifstream in(dir_ + "/postgres.log");
    std::stringstream ss;
    ss << in.rdbuf();
    std::string s = ss.str();
    return s.size() > 4000 ? s.substr(s.size() - 4000) : s;
  }

 private:
  std::string data() const { return dir_ + "/data"; }
  static std::string Pg(const std::string& tool) {
    return Quote(std::string(BinDir()) + "/" + tool);
  }
  // Runs a shell command, as postgres when we are root.
  static int Run(const std::string& cmd) {
    std::string full = geteuid() == 0 ? "cd / && runuser -u postgres -- " + cmd : cmd;
    int rc = std::system(full.c_str());
    return rc == -1 ? -1 : WEXITSTATUS(rc);
  }

  std::string dir_;
  int port_ = 0;
  bool running_ = false;
};

// ---------------------------------------------------------------- helpers

// The body of a chunked HTTP/1.1 answer as read from a raw socket; false when
// it is not complete (no terminating zero-length chunk).
bool DecodeChunked(const std::string& raw, std::string* head, std::string* body) {
  auto end = raw.find("\r\n\r\n");
  if (end == std::string::npos) return false;
  *head = raw.substr(0, end);
  size_t pos = end + 4;
  body->clear();
  for (;;) {
    auto eol = raw.find("\r\n", pos);
    if (eol == std::string::npos) return false;
    size_t size = std::stoul(raw.substr(pos, eol - pos), nullptr, 16);
    pos = eol + 2;
    if (size == 0) return raw.compare(pos, 2, "\r\n") == 0;
    if (raw.size() < pos + size + 2) return false;
    body->append(raw, pos, size);
    pos += size + 2;
  }
}

// How long a restarted service stays away: long enough for gRPC's default
// reconnect backoff (1 s growing by 1.6×) to leave a returning service unused
// for seconds; the services' channels bound it to 1 s.
constexpr milliseconds kDowntime{5000};

const char kBody[] = R"({"model": "gpt-4", "messages": [{"role": "user", "content": "Hello"}]})";
const char kStreamBody[] =
    R"({"model": "gpt-4", "stream": true, "messages": [{"role": "user", "content": "Hello"}]})";

class ResilienceE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    if (Env("TG_TEST_REDIS_ADDR") == nullptr) GTEST_SKIP() << "TG_TEST_REDIS_ADDR not set";
    fake_ = std::make_unique<fakes::FakeProvider>();
    std::string error;
    ASSERT_TRUE(fake_->Start(&error)) << error;
  }

  // The whole stack on the PostgreSQL `pg_admin_dsn` names ("" = the shared one).
  bool StartStack(const std::string& prefix, const std::string& pg_admin_dsn = "") {
    StackOptions o;
    o.balancer = true;
    o.adapter = true;
    o.redis_addr = Env("TG_TEST_REDIS_ADDR");
    o.pg_admin_dsn = pg_admin_dsn;
    stack_ = std::make_unique<Stack>(prefix, o);
    return stack_->StartAll();
  }

  // A gateway with an upstream (one OpenAI target on the fake), a service, a
  // rule at `path` and a key; returns the service id.
  std::string Configure(const std::string& path) {
    gateway_ = stack_->MustCreate("/api/v1/gateways", R"({"name": "acme", "subdomain": "acme"})");
    std::string up =
        stack_->MustCreate("/api/v1/gateways/" + gateway_ + "/upstreams",
                           R"({"name": "u", "targets": [)" + fake_->TargetJson("openai") + "]}");
    std::string svc =
        stack_->MustCreate("/api/v1/gateways/" + gateway_ + "/services",
                           R"({"name": "s", "type": "upstream", "upstream_id": ")" + up + "\"}");
    AddRule(path, svc);
    key_ = stack_->MustCreateKey(gateway_);
    return svc;
  }
  HttpResponse AddRuleRequest(const std::string& path, const std::string& svc) {
    return stack_->Admin("POST", "/api/v1/gateways/" + gateway_ + "/rules",
                         R"({"path": ")" + path + R"(", "service_id": ")" + svc +
                             R"(", "methods": ["POST"], "strip_path": true})");
  }
  void AddRule(const std::string& path, const std::string& svc) {
    auto r = AddRuleRequest(path, svc);
    EXPECT_EQ(r.status, 201) << r.body;
  }

  HttpResponse Chat(const std::string& path, const std::string& body = kBody,
                    std::string key = "") {
    return Http("POST", stack_->ProxyUrl(path + "/v1/chat/completions"), body,
                {"X-Api-Key: " + (key.empty() ? key_ : key), "Content-Type: application/json"});
  }

  // Polls a proxied request until it answers 200; the time it took, or -1.
  long WaitProxyOk(const std::string& path, std::vector<std::string>* seen) {
    auto t0 = Clock::now();
    bool ok = WaitFor(
        [&] {
          auto r = Chat(path);
          if (r.status != 200) seen->push_back(std::to_string(r.status) + " " + r.body + r.error);
          return r.status == 200;
        },
        seconds(15));
    return ok ? Ms(Clock::now() - t0) : -1;
  }

  std::unique_ptr<OwnPostgres> pg_;  // destroyed after the stack that uses it
  std::unique_ptr<fakes::FakeProvider> fake_;
  std::unique_ptr<Stack> stack_;
  std::string gateway_, key_;
};

// ---------------------------------------------------------------- PostgreSQL down

TEST_F(ResilienceE2E, PostgresStoppedWhileRequestsKeepSucceeding) {
  if (OwnPostgres::BinDir() == nullptr) GTEST_SKIP() << "TG_TEST_PG_BIN_DIR not set";
  pg_ = std::make_unique<OwnPostgres>();
  std::string error;
  ASSERT_TRUE(pg_->Init(&error)) << error;
  ASSERT_TRUE(pg_->Start());
  ASSERT_TRUE(StartStack("e2e_resil_pg", pg_->admin_dsn()));
  std::string svc = Configure("/chat");
  // A second key, verified for the first time only while PostgreSQL is down:
  // tg-keyauth verifies from memory, so it works as well as a cached one.
  std::string unused_key = stack_->MustCreateKey(gateway_);
  for (int i = 0; i < 5; ++i) ASSERT_EQ(Chat("/chat").status, 200);
  ASSERT_EQ(Chat("/chat", kStreamBody).status, 200);

  ASSERT_TRUE(pg_->Stop()) << pg_->LogTail();
  auto stopped_at = Clock::now();

  // The proxy keeps serving: the edge routes from its snapshot, keys from its
  // cache (or tg-keyauth's memory), the balancer and adapter from theirs.
  // For longer than tg-config's watch heartbeat (5 s), so that the watches
  // are seen to stay up without PostgreSQL.
  int sent = 0, ok = 0;
  while (sent < 100 || Clock::now() - stopped_at < seconds(6)) {
    auto r = Chat("/chat");
    EXPECT_EQ(r.status, 200) << "request " << sent << ": " << r.body << r.error;
    ++sent;
    ok += r.status == 200;
    if (sent >= 100) std::this_thread::sleep_for(milliseconds(20));
  }
  EXPECT_EQ(ok, sent);
  auto streamed = Chat("/chat", kStreamBody);
  EXPECT_EQ(streamed.status, 200) << streamed.body;
  EXPECT_NE(streamed.body.find("data: [DONE]"), std::string::npos) << streamed.body;
  EXPECT_EQ(Chat("/chat", kBody, unused_key).status, 200) << "a key first seen during the outage";
  EXPECT_EQ(Chat("/chat", kBody, "tg_not_a_key").status, 401);
  EXPECT_EQ(Http("GET", stack_->AdminUrl("/healthz")).status, 200)
      << "the edge can serve, so it stays healthy";

  // The admin API: 503 for writes and reads, promptly (never 500, never a hang).
  auto timed = [&](const std::string& method, const std::string& path,
                   const std::string& body = "") {
    auto t0 = Clock::now();
    auto r = stack_->Admin(method, path, body);
    long ms = Ms(Clock::now() - t0);
    EXPECT_LT(ms, 4000) << method << " " << path << " took " << ms << " ms";
    return r;
  };
  auto r = timed("POST", "/api/v1/gateways", R"({"name": "new", "subdomain": "new"})");
  EXPECT_EQ(r.status, 503) << r.body;
  r = timed("POST", "/api/v1/gateways/" + gateway_ + "/rules",
            R"({"path": "/during", "service_id": ")" + svc + R"(", "methods": ["POST"]})");
  EXPECT_EQ(r.status, 503) << r.body;
  r = timed("PUT", "/api/v1/gateways/" + gateway_, R"({"name": "acme2", "subdomain": "acme"})");
  EXPECT_EQ(r.status, 503) << r.body;
  r = timed("POST", "/api/v1/gateways/" + gateway_ + "/keys", R"({"name": "during"})");
  EXPECT_EQ(r.status, 503) << "a new key cannot be created: " << r.body;
  r = timed("GET", "/api/v1/gateways");
  EXPECT_EQ(r.status, 503) << r.body;
  r = timed("GET", "/api/v1/gateways/" + gateway_);
  EXPECT_EQ(r.status, 503) << r.body;
  r = timed("GET", "/api/v1/gateways/" + gateway_ + "/keys");
  EXPECT_EQ(r.status, 503) << r.body;
  EXPECT_EQ(Chat("/chat").status, 200) << "and the proxy still serves";
  std::printf(
      "[ info ] PostgreSQL down for %ld ms: %d/%d proxied requests OK, admin answered 503\n",
      Ms(Clock::now() - stopped_at), ok, sent);

  // PostgreSQL back: writes work again within seconds (the pools reconnect).
  ASSERT_TRUE(pg_->Start());
  auto back_at = Clock::now();
  HttpResponse write;
  bool written = WaitFor(
      [&] {
        write = AddRuleRequest("/after", svc);
        return write.status == 201;
      },
      seconds(10));
  ASSERT_TRUE(written) << write.status << " " << write.body;
  long back_ms = Ms(Clock::now() - back_at);
  std::printf("[ info ] first admin write after PostgreSQL's restart succeeded after %ld ms\n",
              back_ms);
  EXPECT_LT(back_ms, 5000);
  EXPECT_EQ(Chat("/after").status, 200) << "the write is visible to the next proxied request";
  std::string new_key;
  ASSERT_TRUE(WaitFor(
      [&] {
        auto k =
            stack_->Admin("POST", "/api/v1/gateways/" + gateway_ + "/keys", R"({"name": "n"})");
        if (k.status != 201) return false;
        new_key = Json(k.body)["key"].GetString();
        return true;
      },
      seconds(10)));
  EXPECT_EQ(Chat("/after", kBody, new_key).status, 200);
  EXPECT_EQ(stack_->Admin("GET", "/api/v1/gateways").status, 200);
}

// ---------------------------------------------------------------- restarts

TEST_F(ResilienceE2E, ServicesRestartedUnderARunningEdge) {
  if (!TestDatabase::Available()) GTEST_SKIP() << "TG_TEST_PG_DSN not set";
  ASSERT_TRUE(StartStack("e2e_resil_restart"));
  std::string svc = Configure("/chat");
  ASSERT_EQ(Chat("/chat").status, 200);
  Process* edge = stack_->Find("tg-edge");
  ASSERT_NE(edge, nullptr);

  for (std::string name : {"tg-balancer", "tg-adapter", "tg-config", "tg-keyauth"}) {
    // Down for a while under traffic, as in a crash and a redeploy: the edge's
    // calls fail meanwhile, promptly and with a 5xx (or succeed: from the
    // snapshot while tg-config is away, from the key cache for the first
    // second of tg-keyauth's absence), and recover once the service is back.
    std::map<long, int> while_down;
    long slowest = 0;
    ASSERT_TRUE(stack_->Restart(name, [&] {
      auto until = Clock::now() + kDowntime;
      while (Clock::now() < until) {
        auto t0 = Clock::now();
        auto r = Chat("/chat");
        slowest = std::max(slowest, Ms(Clock::now() - t0));
        ++while_down[r.status];
        std::this_thread::sleep_for(milliseconds(100));
      }
    }));
    std::vector<std::string> failures;
    long ms = WaitProxyOk("/chat", &failures);
    std::string statuses;
    for (auto [status, n] : while_down)
      statuses += " " + std::to_string(status) + "x" + std::to_string(n);
    std::printf(
        "[ info ] %s down %ld ms (answers:%s; slowest %ld ms); proxy OK %ld ms after it was "
        "healthy again (%zu failed tries%s%s)\n",
        name.c_str(), Ms(kDowntime), statuses.c_str(), slowest, ms, failures.size(),
        failures.empty() ? "" : ", first: ", failures.empty() ? "" : failures.front().c_str());
    ASSERT_GE(ms, 0) << "no successful proxied request after restarting " << name
                     << "; last: " << (failures.empty() ? "" : failures.back());
    EXPECT_LT(ms, 2500) << name << " was back, the edge did not use it";
    EXPECT_LT(slowest, 3000) << "requests while " << name << " was down must not hang";
    for (auto [status, n] : while_down) {
      EXPECT_TRUE(status == 200 || status == 502 || status == 503)
          << n << " answers " << status << " while " << name << " was down";
    }
    if (name == "tg-config") {
      int total = 0;
      for (auto [status, n] : while_down) total += n;
      EXPECT_EQ(while_down[200], total) << "tg-config away: the proxy serves from its snapshot";
    }
    for (int i = 0; i < 20; ++i) {
      auto r = Chat("/chat");
      ASSERT_EQ(r.status, 200) << "after restarting " << name << ": " << r.body << r.error;
    }
    ASSERT_TRUE(edge->running()) << "the edge kept running";
    if (name != "tg-config") continue;

    // Right after tg-config's restart (no waiting for the edge's watch): an
    // admin write through the edge is in the very next proxied request. The
    // edge answers a write once its own watch holds it, so this needs the
    // watch back within the admin API's revision wait (2 s).
    auto t0 = Clock::now();
    auto r = AddRuleRequest("/new-rule", svc);
    ASSERT_EQ(r.status, 201) << r.body;
    std::string new_key = stack_->MustCreateKey(gateway_);
    ASSERT_FALSE(new_key.empty());
    r = Chat("/new-rule", kBody, new_key);
    EXPECT_EQ(r.status, 200) << "the new rule and key are live at once: " << r.body;
    std::printf("[ info ] admin write + new key after tg-config's restart took %ld ms\n",
                Ms(Clock::now() - t0));
    EXPECT_EQ(Http("GET", stack_->AdminUrl("/healthz")).status, 200) << "the edge's watch is back";
    // A new upstream reaches the restarted balancer and adapter too (Pick and
    // Invoke wait for the edge's revision: their watches are back as well).
    auto up =
        stack_->MustCreate("/api/v1/gateways/" + gateway_ + "/upstreams",
                           R"({"name": "u2", "targets": [)" + fake_->TargetJson("openai") + "]}");
    auto svc2 =
        stack_->MustCreate("/api/v1/gateways/" + gateway_ + "/services",
                           R"({"name": "s2", "type": "upstream", "upstream_id": ")" + up + "\"}");
    AddRule("/second", svc2);
    r = Chat("/second");
    EXPECT_EQ(r.status, 200) << "a new upstream after the restarts: " << r.body;
  }
  // tg-keyauth back: keys can be created and are accepted again.
  std::string last_key = stack_->MustCreateKey(gateway_);
  EXPECT_EQ(Chat("/chat", kBody, last_key).status, 200);
}

// ---------------------------------------------------------------- SIGTERM

TEST_F(ResilienceE2E, SigtermDrainsInFlightStreams) {
  if (!TestDatabase::Available()) GTEST_SKIP() << "TG_TEST_PG_DSN not set";
  ASSERT_TRUE(StartStack("e2e_resil_sigterm"));
  Configure("/slow");
  fakes::FakeAnswer slow;
  std::string text;
  for (int i = 0; i < 20; ++i) text += (i == 0 ? "w" : " w") + std::to_string(i);
  slow.text = text;
  slow.event_interval = milliseconds(100);
  fake_->SetAnswer(slow);
  ASSERT_EQ(Chat("/slow").status, 200);  // warm: key cached, channels connected
  fake_->ClearRequests();

  // A streamed answer (~2 s) and, alongside, a whole answer held by the fake
  // for a second: both in flight when the SIGTERM arrives.
  auto stream_client = std::make_unique<RawClient>(stack_->proxy_port());
  RawClient& stream = *stream_client;
  ASSERT_TRUE(stream.connected());
  std::string body = kStreamBody;
  ASSERT_TRUE(stream.Send("POST /slow/v1/chat/completions HTTP/1.1\r\nHost: x\r\nX-Api-Key: " +
                          key_ + "\r\nContent-Type: application/json\r\nContent-Length: " +
                          std::to_string(body.size()) + "\r\n\r\n" + body));
  ASSERT_TRUE(stream.ReadUntil("data: ", milliseconds(5000))) << stream.received();
  fakes::FakeFault held;
  held.path_prefix = "/v1/chat/completions";
  held.delay = milliseconds(1000);
  held.count = 1;
  fake_->AddFault(held);
  auto whole = std::async(std::launch::async, [&] { return Chat("/slow"); });
  ASSERT_TRUE(fake_->WaitFor([](const auto& r) { return r.size() == 2; }, seconds(5)));

  Process* edge = stack_->Find("tg-edge");
  ASSERT_NE(edge, nullptr);
  auto sigterm_at = Clock::now();
  ASSERT_TRUE(edge->Signal(SIGTERM));

  // New connections: the listener closes at once, so they are refused (not
  // accepted and left hanging) while the edge drains.
  bool refused = WaitFor([&] { return !RawClient(stack_->proxy_port()).connected(); }, seconds(3));
  EXPECT_TRUE(refused) << "a new connection after SIGTERM is refused";
  std::printf("[ info ] new connections refused %ld ms after SIGTERM\n",
              Ms(Clock::now() - sigterm_at));

  // The stream in flight arrives whole, ends properly, then the edge closes.
  EXPECT_TRUE(stream.ReadUntilClosed(seconds(15))) << stream.received();
  std::string head, sse;
  ASSERT_TRUE(DecodeChunked(stream.received(), &head, &sse)) << "incomplete:\n"
                                                             << stream.received();
  EXPECT_NE(head.find("HTTP/1.1 200"), std::string::npos) << head;
  size_t at = 0;
  for (int i = 0; i < 20; ++i) {
    at = sse.find("w" + std::to_string(i) + "\"", at);
    ASSERT_NE(at, std::string::npos) << "word " << i << " missing:\n" << sse;
  }
  ASSERT_GE(sse.size(), 14u);
  EXPECT_EQ(sse.substr(sse.size() - 14), "data: [DONE]\n\n") << sse;
  std::printf("[ info ] stream complete %ld ms after SIGTERM\n", Ms(Clock::now() - sigterm_at));
  stream_client.reset();  // the client hangs up too, as clients do
  auto hung_up_at = Clock::now();
  auto w = whole.get();
  EXPECT_EQ(w.status, 200) << "the whole answer in flight too: " << w.body << w.error;
  EXPECT_EQ(w.headers["connection"], "close") << "answers during the drain close their connection";

  auto status = edge->Wait(seconds(15));
  ASSERT_TRUE(status.has_value()) << "tg-edge still running after draining:\n" << edge->LogTail();
  EXPECT_EQ(*status, 0) << edge->LogTail();
  long exit_ms = Ms(Clock::now() - hung_up_at);
  std::printf("[ info ] tg-edge exited %d, %ld ms after SIGTERM, %ld ms after the client hung up\n",
              *status, Ms(Clock::now() - sigterm_at), exit_ms);
  // Nothing is left to drain once the client is gone: no waiting out the
  // lingering close (2 s) of a connection whose peer already closed it.
  EXPECT_LT(exit_ms, 1500);
  auto requests = fake_->Requests();
  for (const auto& q : requests) {
    EXPECT_TRUE(q.finished) << q.path;
    EXPECT_FALSE(q.client_disconnected) << q.path;
  }
}

}  // namespace
}  // namespace tg::testing
