// Hostile input end to end (issue 11, items 1, 6, 8 and 11): every service as
// a separate process on real PostgreSQL and Redis, the fake providers in this
// process. Each test is one of the issue's reproductions:
//
//   - 200,000 nested JSON arrays to the proxy and to the admin API: 400, and
//     tg-edge is still running (it used to die of SIGSEGV);
//   - the same nesting as a provider's answer: 502, tg-adapter still running;
//   - an SSE stream whose data lines never end an event: the stream fails at
//     once with a clear error and tg-adapter's memory stays flat (it used to
//     grow by the whole stream);
//   - invalid UTF-8 in `model`, in the body or in a forwarded header: 400 (it
//     used to be 503 "balancer unavailable" / 502 "adapter unavailable");
//     provider bytes that are not UTF-8 reach the client, not a failed RPC;
//   - a request target with control characters and invalid bytes: every
//     access-log line is still valid JSON and valid UTF-8.
#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <thread>

#include "e2e_suite.h"
#include "fake_provider.h"
#include "process.h"
#include "stack.h"
#include "test_db.h"
#include "tg/common/bounded_json.h"
#include "tg/common/utf8.h"

namespace tg::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

std::string Nested(size_t depth) { return std::string(depth, '[') + std::string(depth, ']'); }

// A field of /proc/<pid>/status in KiB ("VmRSS", "VmHWM"); -1 when unreadable.
long StatusKib(pid_t pid, const std::string& field) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field + ":", 0) == 0) return std::stol(line.substr(field.size() + 1));
  }
  return -1;
}

const char kChat[] = R"({"model": "gpt-4", "messages": [{"role": "user", "content": "Hi"}]})";

class HostileInputE2E : public E2eSuite<HostileInputE2E> {
 protected:
  static void SetUpTestSuite() {
    if (!StartSuite("e2e_hostile", {}, /*proxy=*/true)) return;
    gateway_ = stack_->MustCreate("/api/v1/gateways", R"({"name": "acme", "subdomain": "acme"})");
    key_ = stack_->MustCreateKey(gateway_, "2099-01-01T00:00:00Z");
    const auto& c = fake_->credentials();
    const std::string at_fake = R"("host": "127.0.0.1", "port": )" + std::to_string(fake_->port()) +
                                R"(, "protocol": "http")";
    stack_->MustRoute(gateway_, "/ai",
                      R"({"name": "u", "targets": [{"provider": "openai", )" + at_fake +
                          R"(, "default_model": "gpt-4", "credentials": {"api_key": ")" +
                          c.openai_key + R"("}}]})");
    stack_->MustRoute(
        gateway_, "/raw",
        R"({"name": "r", "targets": [{)" + at_fake +
            R"(, "credentials": {"header_name": "Authorization", "header_value": "Bearer )" +
            c.openai_key + R"("}}]})");
  }
  HttpResponse Post(const std::string& path, const std::string& body,
                    std::vector<std::string> headers = {}) {
    headers.push_back("X-TG-API-Key: " + key_);
    headers.push_back("Content-Type: application/json");
    return Http("POST", stack_->ProxyUrl(path), body, headers);
  }

  static fakes::FakeFault Malformed(const std::string& kind, int64_t size = 200000) {
    fakes::FakeFault f;
    f.malformed = kind;
    f.malformed_size = size;
    return f;
  }

  void ExpectAlive(const std::string& name) {
    Process* p = stack_->Find(name);
    ASSERT_NE(p, nullptr);
    EXPECT_TRUE(p->running()) << name << " died:\n" << p->LogTail();
  }

  // The proxy still serves a plain request.
  void ExpectServing() {
    auto r = Post("/ai/v1/chat/completions", kChat);
    EXPECT_EQ(r.status, 200) << r.body;
  }

  static inline std::string gateway_, key_;
};

TEST_F(HostileInputE2E, DeeplyNestedProxyBodyIs400InTheClientsFormat) {
  auto r = Post("/ai/v1/chat/completions", Nested(200000));
  EXPECT_EQ(r.status, 400) << r.body;
  auto d = Json(r.body);
  ASSERT_TRUE(d.IsObject()) << r.body;
  EXPECT_STREQ(d["error"]["type"].GetString(), "invalid_request_error");
  EXPECT_NE(std::string(d["error"]["message"].GetString()).find("nested deeper than 128 levels"),
            std::string::npos)
      << r.body;
  // Anthropic's clients get Anthropic's error shape.
  r = Post("/ai/v1/messages", "{\"model\": " + Nested(200000) + "}");
  EXPECT_EQ(r.status, 400) << r.body;
  d = Json(r.body);
  ASSERT_TRUE(d.IsObject()) << r.body;
  EXPECT_STREQ(d["type"].GetString(), "error") << r.body;
  // 128 levels are still JSON the edge reads (the adapter then judges the body).
  r = Post("/ai/v1/chat/completions",
           R"({"model": "gpt-4", "messages": [{"role": "user", "content": "Hi"}], "x": )" +
               Nested(127) + "}");
  EXPECT_NE(r.status, 0) << r.error;
  ExpectAlive("tg-edge");
  ExpectAlive("tg-adapter");
  ExpectServing();
  for (const auto& q : fake_->Requests()) {
    EXPECT_LT(q.body.size(), 100000u) << "a refused body reached the provider";
  }
}

TEST_F(HostileInputE2E, DeeplyNestedAdminBodyIs400) {
  auto r = stack_->Admin("POST", "/api/v1/gateways", "{\"name\": " + Nested(200000) + "}");
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_NE(r.body.find("nested deeper than 128 levels"), std::string::npos) << r.body;
  r = stack_->Admin("POST", "/api/v1/gateways", Nested(200000));
  EXPECT_EQ(r.status, 400) << r.body;
  ExpectAlive("tg-edge");
  EXPECT_EQ(stack_->Admin("GET", "/api/v1/gateways/" + gateway_).status, 200);
}

TEST_F(HostileInputE2E, DeeplyNestedProviderAnswerIs502AndTheAdapterLives) {
  fake_->AddFault(Malformed("deep_json"));
  auto r = Post("/ai/v1/chat/completions", kChat);
  EXPECT_EQ(r.status, 502) << r.body;
  auto d = Json(r.body);
  ASSERT_TRUE(d.IsObject()) << r.body;
  EXPECT_NE(std::string(d["error"]["message"].GetString()).find("nested deeper than 128 levels"),
            std::string::npos)
      << r.body;
  ExpectAlive("tg-adapter");
  fake_->ClearFaults();
  ExpectServing();
}

TEST_F(HostileInputE2E, SseEventThatNeverEndsFailsAtOnceWithBoundedMemory) {
  Process* adapter = stack_->Find("tg-adapter");
  ASSERT_NE(adapter, nullptr);
  ExpectServing();  // warm: connections, pools
  const long rss_before = StatusKib(adapter->pid(), "VmRSS");
  const long hwm_before = StatusKib(adapter->pid(), "VmHWM");
  ASSERT_GT(rss_before, 0);
  // 96 MiB of `data:` lines without the blank line that would end the event.
  fake_->AddFault(Malformed("sse_without_blank_lines", 96LL << 20));
  auto started = std::chrono::steady_clock::now();
  auto r = Post(
      "/ai/v1/chat/completions",
      R"({"model": "gpt-4", "stream": true, "messages": [{"role": "user", "content": "Hi"}]})");
  auto took = std::chrono::steady_clock::now() - started;
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_NE(r.body.find("provider stream event larger than 1048576 bytes"), std::string::npos)
      << r.body.substr(0, 2000);
  EXPECT_LT(took, seconds(10));
  const long rss_after = StatusKib(adapter->pid(), "VmRSS");
  const long hwm_after = StatusKib(adapter->pid(), "VmHWM");
  std::cout << "tg-adapter VmRSS " << rss_before << " -> " << rss_after << " KiB, VmHWM "
            << hwm_before << " -> " << hwm_after << " KiB\n";
  EXPECT_LT(rss_after - rss_before, 24 * 1024) << "VmRSS grew with the stream";
  EXPECT_LT(hwm_after - hwm_before, 24 * 1024) << "the peak grew with the stream";
  // The transfer was cancelled: the fake did not get to send the 96 MiB.
  auto requests = fake_->Requests();
  ASSERT_FALSE(requests.empty());
  EXPECT_TRUE(WaitFor(
      [&] {
        return fake_->Requests().back().finished || fake_->Requests().back().client_disconnected;
      },
      seconds(5)));
  EXPECT_LT(fake_->Requests().back().body_bytes_sent, 32ull << 20);
  ExpectAlive("tg-adapter");
  fake_->ClearFaults();
  ExpectServing();
}

TEST_F(HostileInputE2E, InvalidUtf8IsA400NotAnUnavailableService) {
  auto r =
      Post("/ai/v1/chat/completions",
           "{\"model\": \"gpt\xff\", \"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}]}");
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_NE(r.body.find("not valid UTF-8"), std::string::npos) << r.body;
  // An escaped lone surrogate decodes to bytes that are not UTF-8 either.
  r = Post("/ai/v1/chat/completions",
           R"({"model": "gpt\udc00", "messages": [{"role": "user", "content": "Hi"}]})");
  EXPECT_EQ(r.status, 400) << r.body;
  r = Post("/ai/v1/chat/completions", kChat, {"X-Custom: caf\xe9"});
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_NE(r.body.find("header X-Custom is not valid UTF-8"), std::string::npos) << r.body;
  // A plain reverse proxy forwards headers too.
  r = Post("/raw/v1/chat/completions", kChat, {"X-Custom: caf\xe9"});
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_TRUE(fake_->Requests().empty());
  ExpectServing();
}

TEST_F(HostileInputE2E, ProviderBytesThatAreNotUtf8ReachTheClient) {
  // A provider's error body and a passed-through header with invalid bytes:
  // the client gets the provider's status, not "adapter unavailable".
  fake_->AddFault(Malformed("invalid_utf8_error"));
  auto r = Post("/ai/v1/chat/completions", kChat);
  EXPECT_EQ(r.status, 500) << r.body;
  EXPECT_NE(r.body.find("upstream failure"), std::string::npos) << r.body;
  EXPECT_TRUE(utf8::IsValid(r.body)) << r.body;
  r = Post("/raw/v1/chat/completions", kChat);
  EXPECT_EQ(r.status, 500) << r.body;
  EXPECT_TRUE(utf8::IsValid(r.headers["x-fake-bytes"])) << r.headers["x-fake-bytes"];
  ExpectAlive("tg-adapter");
}

TEST_F(HostileInputE2E, AccessLogLinesStayValidJsonForHostileTargets) {
  Process* edge = stack_->Find("tg-edge");
  ASSERT_NE(edge, nullptr);
  const std::string marker = "hostile" + std::to_string(getpid());
  // Raw control and non-UTF-8 bytes in a request target are refused at the
  // request line (origin-form, 400) before anything is logged; what still
  // reaches the access log is quotes, backslashes and escapes in the target,
  // and control characters (valid UTF-8) in the model.
  const std::string targets[] = {
      "/ai/" + marker + "/raw\xff\xfe",  // logged raw before: a line that is not UTF-8
      "/ai/" + marker + "/q\"uo\\te%00%22%ff",
      "/ai/" + marker + "/v1/chat/completions",
  };
  const std::string body = R"({"model":"m\u0001\u001f\"\\x)" + marker +
                           R"(","messages":[{"role":"user","content":"hi"}]})";
  for (const auto& target : targets) {
    RawClient c(stack_->proxy_port());
    ASSERT_TRUE(c.connected());
    ASSERT_TRUE(c.Send("POST " + target + " HTTP/1.1\r\nHost: x\r\nX-TG-API-Key: " + key_ +
                       "\r\nContent-Length: " + std::to_string(body.size()) +
                       "\r\nConnection: close\r\n\r\n" + body));
    c.ReadUntilClosed(seconds(5));
  }
  // The log writer is asynchronous: wait for the first line to show.
  ASSERT_TRUE(
      WaitFor([&] { return edge->LogTail(1 << 20).find(marker) != std::string::npos; }, seconds(5)))
      << edge->LogTail();
  std::this_thread::sleep_for(milliseconds(300));
  std::istringstream lines(edge->LogTail(1 << 20));
  std::string line;
  int with_marker = 0;
  bool first = true;
  while (std::getline(lines, line)) {
    if (first) {  // the tail may start mid-line
      first = false;
      continue;
    }
    if (line.empty() || line[0] != '{') continue;
    rapidjson::Document d;
    auto parsed = json::Parse(line, &d);  // validates UTF-8 too
    EXPECT_TRUE(parsed.ok()) << parsed.message << ": " << line;
    if (line.find(marker) != std::string::npos) ++with_marker;
  }
  EXPECT_GE(with_marker, 1);
}

}  // namespace
}  // namespace tg::testing
