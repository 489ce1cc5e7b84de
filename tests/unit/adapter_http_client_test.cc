// Size: one component's tests (CurlHttpClient) in one place.
// CurlHttpClient against the in-process fake provider over plain HTTP:
// streaming, the four timeouts, connect failures, cancellation the server
// observes, pause/resume backpressure, keep-alive reuse, many transfers on one
// loop.

#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "fake_provider.h"
#include "tg/adapter/http/curl_http_client.h"

namespace tg::adapter::http {
namespace {

using fakes::FakeFault;
using fakes::FakeProvider;
using fakes::RecordedRequest;
using std::chrono::milliseconds;

// The fakes listen on loopback, which the egress policy refuses by default.
CurlHttpClientOptions LoopbackAllowed() {
  CurlHttpClientOptions o;
  o.egress.allow_private = true;
  return o;
}

// Records what the client delivers; optional hooks run on the loop thread.
class Collector final : public HttpStreamHandler {
 public:
  std::function<void(Collector&, std::string_view)> on_body;
  std::function<void(Collector&)> on_head;

  void OnHead(const HttpResponseHead& head) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      head_ = head;
      heads_++;
    }
    if (on_head) on_head(*this);
    cv_.notify_all();
  }
  void OnBody(std::string_view chunk) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (done_) after_done_ = true;
      body_.append(chunk);
      chunks_++;
    }
    if (on_body) on_body(*this, chunk);
    cv_.notify_all();
  }
  void OnDone(const HttpResult& result) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (done_) done_twice_ = true;
      result_ = result;
      done_ = true;
    }
    cv_.notify_all();
  }

  bool WaitDone(milliseconds timeout = milliseconds(10000)) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return done_; });
  }
  bool WaitBytes(size_t n, milliseconds timeout = milliseconds(10000)) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return body_.size() >= n || done_; });
  }
  size_t bytes() {
    std::lock_guard<std::mutex> lock(mu_);
    return body_.size();
  }
  std::string body() {
    std::lock_guard<std::mutex> lock(mu_);
    return body_;
  }
  int chunks() {
    std::lock_guard<std::mutex> lock(mu_);
    return chunks_;
  }
  HttpResponseHead head() {
    std::lock_guard<std::mutex> lock(mu_);
    return head_;
  }
  HttpResult result() {
    std::lock_guard<std::mutex> lock(mu_);
    return result_;
  }
  bool protocol_respected() {
    std::lock_guard<std::mutex> lock(mu_);
    return !after_done_ && !done_twice_ && heads_ <= 1;
  }

  std::shared_ptr<HttpTransfer> transfer;  // set by the test right after Start

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  HttpResponseHead head_;
  std::string body_;
  int chunks_ = 0;
  int heads_ = 0;
  HttpResult result_;
  bool done_ = false;
  bool after_done_ = false;
  bool done_twice_ = false;
};

// A loopback port that was free a moment ago.
int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

bool Connectable(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  bool ok = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  close(fd);
  return ok;
}

class HttpClientTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(fake_.Start()); }

  std::string Url(const std::string& path) { return fake_.base_url() + path; }

  HttpRequest Get(const std::string& path, HttpTimeouts timeouts = {}) {
    HttpRequest r;
    r.method = "GET";
    r.url = Url(path);
    r.timeouts = timeouts;
    return r;
  }

  std::shared_ptr<Collector> Run(HttpRequest request) {
    auto c = std::make_shared<Collector>();
    c->transfer = client_.Start(std::move(request), c);
    return c;
  }

  RecordedRequest LastRecord() {
    auto records = fake_.Requests();
    return records.empty() ? RecordedRequest() : records.back();
  }

  static std::string Expected(int chunks, int size) {
    std::string s;
    for (int i = 0; i < chunks; ++i) s.append(size, static_cast<char>('a' + i % 26));
    return s;
  }

  FakeProvider fake_;
  CurlHttpClient client_{LoopbackAllowed()};
};

TEST_F(HttpClientTest, PostsExactlyWhatItIsGivenAndReadsTheAnswer) {
  HttpRequest r;
  r.url = Url("/v1/chat/completions");
  r.headers = {{"Authorization", "Bearer sk-fake-openai"},
               {"Content-Type", "application/json"},
               {"X-Custom", "v"}};
  r.body = R"({"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]})";
  HttpResponse response = Fetch(client_, r).get();
  ASSERT_TRUE(response.result.ok()) << response.result.message;
  EXPECT_EQ(response.head.status, 200);
  EXPECT_EQ(response.head.version, "1.1");
  EXPECT_EQ(response.head.Header("content-type"), "application/json");
  EXPECT_EQ(response.head.Header("X-REQUEST-ID"), "req_fake1");
  EXPECT_NE(response.body.find(R"("object":"chat.completion")"), std::string::npos);
  EXPECT_TRUE(response.result.head_received);
  EXPECT_EQ(response.result.body_bytes, response.body.size());

  RecordedRequest rec = LastRecord();
  EXPECT_EQ(rec.method, "POST");
  EXPECT_EQ(rec.body, r.body);
  EXPECT_EQ(rec.Header("x-custom"), "v");
  EXPECT_EQ(rec.Header("content-type"), "application/json");
  EXPECT_EQ(rec.Header("expect"), "");
  EXPECT_EQ(rec.Header("user-agent"), "tg-adapter");
}

// ---- egress policy -----------------------------------------------------------

// `x.localhost` is a name (not an IP literal) that libcurl resolves to
// loopback itself, without /etc/hosts or DNS: the address is only known at
// connect time, as with DNS rebinding.
TEST_F(HttpClientTest, ResolvedAddressesAreCheckedAtConnectTime) {
  const std::string path = ":" + std::to_string(fake_.port()) + "/v1/chat/completions";
  const size_t before = fake_.Requests().size();
  CurlHttpClient strict;  // production default: loopback and private refused
  for (const std::string& url :
       std::vector<std::string>{"http://rebind.localhost" + path, "http://127.0.0.1" + path,
                                "http://[::ffff:127.0.0.1]" + path}) {
    HttpRequest r;
    r.url = url;
    r.body = "{}";
    HttpResponse response = Fetch(strict, r).get();
    EXPECT_EQ(response.result.error, HttpErrorKind::kRefused) << url;
    EXPECT_NE(response.result.message.find("loopback"), std::string::npos)
        << url << ": " << response.result.message;
    EXPECT_FALSE(response.result.head_received);
  }
  EXPECT_EQ(fake_.Requests().size(), before) << "a refused call reached the fake";

  // The same name with private addresses allowed: connected and answered.
  HttpRequest r;
  r.url = "http://rebind.localhost" + path;
  r.body = R"({"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]})";
  r.headers = {{"Authorization", "Bearer sk-fake-openai"}, {"Content-Type", "application/json"}};
  HttpResponse allowed = Fetch(client_, r).get();
  ASSERT_TRUE(allowed.result.ok()) << allowed.result.message;
  EXPECT_EQ(allowed.head.status, 200);
}

TEST_F(HttpClientTest, LinkLocalMetadataAndOtherSchemesAreRefusedWhateverThePolicy) {
  const std::string port = std::to_string(fake_.port());
  for (const std::string& url : std::vector<std::string>{
           "http://169.254.169.254/latest/meta-data/", "http://[fe80::1]:80/",
           "http://[::ffff:169.254.169.254]/", "http://100.100.100.200/",
           "http://0.0.0.0:" + port + "/", "file:///etc/passwd",
           "gopher://127.0.0.1:" + port + "/_x", "dict://127.0.0.1:" + port + "/x",
           "http://user:pw@127.0.0.1:" + port + "/"}) {
    HttpRequest r;
    r.method = "GET";
    r.url = url;
    HttpResponse response = Fetch(client_, r).get();  // private allowed: still refused
    EXPECT_EQ(response.result.error, HttpErrorKind::kRefused) << url;
    EXPECT_EQ(response.body, "") << url;
  }
  // The IMDS exception covers link-local and metadata, not loopback.
  CurlHttpClient strict;
  HttpRequest imds = Get("/metadata/identity/oauth2/token");
  imds.metadata_call = true;
  EXPECT_EQ(Fetch(strict, imds).get().result.error, HttpErrorKind::kRefused);
}

// A peer that answers something other than HTTP (a file, a Redis banner):
// none of its bytes is delivered.
TEST_F(HttpClientTest, BytesWithoutAnHttpHeadAreNeverDelivered) {
  int listener = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(listener, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(listen(listener, 4), 0);
  socklen_t len = sizeof(addr);
  getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len);
  std::thread peer([listener] {
    int c = accept(listener, nullptr, nullptr);
    if (c < 0) return;
    char buf[1024];
    ssize_t ignored = read(c, buf, sizeof(buf));
    (void)ignored;
    constexpr char kFile[] = "root:x:0:0:root:/root:/bin/bash\n";
    ignored = write(c, kFile, sizeof(kFile) - 1);
    close(c);
  });
  HttpRequest r;
  r.method = "GET";
  r.url = "http://127.0.0.1:" + std::to_string(ntohs(addr.sin_port)) + "/";
  HttpResponse response = Fetch(client_, r).get();
  peer.join();
  close(listener);
  EXPECT_EQ(response.result.error, HttpErrorKind::kProtocol);
  EXPECT_EQ(response.body, "");
  EXPECT_EQ(response.result.body_bytes, 0u);
  EXPECT_EQ(response.result.message.find("root:"), std::string::npos);
}

TEST_F(HttpClientTest, NoContentTypeIsInventedForABody) {
  HttpRequest r;
  r.method = "POST";
  r.url = Url("/_fake/stream?chunks=1");
  r.body = "x=1";
  ASSERT_TRUE(Fetch(client_, r).get().result.ok());
  EXPECT_EQ(LastRecord().Header("content-type"), "");
}

TEST_F(HttpClientTest, ErrorStatusesAreAnswersNotTransportErrors) {
  FakeFault f;
  f.status = 429;
  fake_.AddFault(f);
  HttpRequest r;
  r.url = Url("/v1/chat/completions");
  HttpResponse response = Fetch(client_, r).get();
  EXPECT_TRUE(response.result.ok());
  EXPECT_EQ(response.head.status, 429);
  EXPECT_EQ(response.head.Header("retry-after"), "1");
  EXPECT_NE(response.body.find("rate_limit_exceeded"), std::string::npos);
}

TEST_F(HttpClientTest, StreamsChunksAsTheyArrive) {
  auto c = Run(Get("/_fake/stream?chunks=5&size=1000&interval_ms=30"));
  ASSERT_TRUE(c->WaitDone());
  EXPECT_TRUE(c->result().ok()) << c->result().message;
  EXPECT_EQ(c->body(), Expected(5, 1000));
  EXPECT_GE(c->chunks(), 5);  // 30 ms apart: never coalesced
  EXPECT_EQ(c->head().status, 200);
  EXPECT_EQ(c->head().Header("transfer-encoding"), "chunked");
  EXPECT_TRUE(c->protocol_respected());
}

TEST_F(HttpClientTest, FirstByteTimeout) {
  FakeFault f;
  f.delay = milliseconds(3000);
  fake_.AddFault(f);
  HttpTimeouts t;
  t.first_byte = milliseconds(250);
  auto start = std::chrono::steady_clock::now();
  auto c = Run(Get("/_fake/stream", t));
  ASSERT_TRUE(c->WaitDone());
  auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(c->result().error, HttpErrorKind::kTimeout);
  EXPECT_EQ(c->result().timeout, TimeoutPhase::kFirstByte);
  EXPECT_FALSE(c->result().head_received);
  EXPECT_GE(elapsed, milliseconds(240));
  EXPECT_LT(elapsed, milliseconds(1500));
  // The connection was closed: the fake sees its client leave during the delay.
  EXPECT_TRUE(
      fake_.WaitFor([](const auto& r) { return !r.empty() && r.back().client_disconnected; },
                    milliseconds(3000)));
}

TEST_F(HttpClientTest, IdleTimeoutAfterTheHead) {
  HttpTimeouts t;
  t.idle = milliseconds(250);
  auto c = Run(Get("/_fake/stream?chunks=3&size=10&interval_ms=2000", t));
  ASSERT_TRUE(c->WaitDone());
  EXPECT_EQ(c->result().error, HttpErrorKind::kTimeout);
  EXPECT_EQ(c->result().timeout, TimeoutPhase::kIdle);
  EXPECT_TRUE(c->result().head_received);
  EXPECT_EQ(c->body(), std::string(10, 'a'));
}

TEST_F(HttpClientTest, TotalTimeout) {
  HttpTimeouts t;
  t.total = milliseconds(300);
  auto c = Run(Get("/_fake/stream?chunks=100&size=10&interval_ms=50", t));
  ASSERT_TRUE(c->WaitDone());
  EXPECT_EQ(c->result().error, HttpErrorKind::kTimeout);
  EXPECT_EQ(c->result().timeout, TimeoutPhase::kTotal);
  EXPECT_GT(c->bytes(), 0u);
  EXPECT_LT(c->bytes(), 1000u);
}

TEST_F(HttpClientTest, ConnectRefused) {
  HttpRequest r;
  r.method = "GET";
  r.url = "http://127.0.0.1:" + std::to_string(FreePort()) + "/";
  HttpResponse response = Fetch(client_, r).get();
  EXPECT_EQ(response.result.error, HttpErrorKind::kConnect);
  EXPECT_FALSE(response.result.head_received);
  EXPECT_FALSE(response.result.message.empty());
}

TEST_F(HttpClientTest, ConnectTimeout) {
  // A listener whose accept queue is full: Linux drops further SYNs, so the
  // handshake never completes.
  int listener = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(listen(listener, 0), 0);
  socklen_t len = sizeof(addr);
  getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len);
  std::vector<int> fillers;
  for (int i = 0; i < 3; ++i) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
    fillers.push_back(fd);
  }
  std::this_thread::sleep_for(milliseconds(100));
  HttpTimeouts t;
  t.connect = milliseconds(300);
  HttpRequest r;
  r.method = "GET";
  r.url = "http://127.0.0.1:" + std::to_string(ntohs(addr.sin_port)) + "/";
  r.timeouts = t;
  auto start = std::chrono::steady_clock::now();
  HttpResponse response = Fetch(client_, r).get();
  EXPECT_EQ(response.result.error, HttpErrorKind::kTimeout) << response.result.message;
  EXPECT_EQ(response.result.timeout, TimeoutPhase::kConnect);
  EXPECT_LT(std::chrono::steady_clock::now() - start, milliseconds(2000));
  for (int fd : fillers) close(fd);
  close(listener);
}

// Proxies come from libcurl's standard environment variables only.
TEST_F(HttpClientTest, ProxyFromTheEnvironment) {
  const char* saved_no_proxy = std::getenv("no_proxy");
  const char* saved_no_proxy_upper = std::getenv("NO_PROXY");
  std::string keep_lower = saved_no_proxy ? saved_no_proxy : "";
  std::string keep_upper = saved_no_proxy_upper ? saved_no_proxy_upper : "";
  unsetenv("no_proxy");
  unsetenv("NO_PROXY");
  setenv("http_proxy", fake_.base_url().c_str(), 1);
  HttpRequest proxied;
  proxied.method = "GET";
  proxied.url = "http://example.invalid/_fake/stream";
  HttpResponse response = Fetch(client_, proxied).get();
  unsetenv("http_proxy");
  if (saved_no_proxy) setenv("no_proxy", keep_lower.c_str(), 1);
  if (saved_no_proxy_upper) setenv("NO_PROXY", keep_upper.c_str(), 1);
  ASSERT_TRUE(response.result.ok()) << response.result.message;
  // The fake received the request in proxy form: the absolute URL as target.
  RecordedRequest rec = LastRecord();
  EXPECT_EQ(rec.path, "http://example.invalid/_fake/stream");
  EXPECT_EQ(rec.Header("host"), "example.invalid");
}

// TLS is always verified: a self-signed server is refused unless its
// certificate is the configured CA. `openssl s_server` plays the server.
TEST(HttpClientTlsTest, VerifiesCertificates) {
  if (!std::filesystem::exists("/usr/bin/openssl")) GTEST_SKIP() << "no openssl binary";
  const std::string dir = ::testing::TempDir() + "/tg_http_tls_" + std::to_string(getpid());
  std::filesystem::create_directories(dir);
  const std::string cert = dir + "/cert.pem", key = dir + "/key.pem";
  const std::string gen =
      "/usr/bin/openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "
      "/CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 -keyout " +
      key + " -out " + cert + " >/dev/null 2>&1";
  ASSERT_EQ(std::system(gen.c_str()), 0);
  const int port = FreePort();
  const std::string accept = "127.0.0.1:" + std::to_string(port);
  std::vector<std::string> args = {"/usr/bin/openssl",
                                   "s_server",
                                   "-accept",
                                   accept,
                                   "-cert",
                                   cert,
                                   "-key",
                                   key,
                                   "-www",
                                   "-quiet"};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
  pid_t pid = -1;
  ASSERT_EQ(posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ), 0);
  posix_spawn_file_actions_destroy(&actions);
  for (int i = 0; i < 100 && !Connectable(port); ++i) std::this_thread::sleep_for(milliseconds(50));

  HttpRequest r;
  r.method = "GET";
  r.url = "https://127.0.0.1:" + std::to_string(port) + "/";
  {
    // The system trust store does not know this certificate.
    CurlHttpClient strict(LoopbackAllowed());
    HttpResponse response = Fetch(strict, r).get();
    EXPECT_EQ(response.result.error, HttpErrorKind::kConnect);
    EXPECT_FALSE(response.result.head_received);
  }
  {
    CurlHttpClientOptions o = LoopbackAllowed();
    o.ca_file = cert;
    CurlHttpClient trusting(o);
    HttpResponse response = Fetch(trusting, r).get();
    EXPECT_TRUE(response.result.ok()) << response.result.message;
    EXPECT_EQ(response.head.status, 200);
    EXPECT_NE(response.head.version, "2");  // h2 offered by ALPN, not taken: HTTP/1.x
  }
  kill(pid, SIGTERM);
  waitpid(pid, nullptr, 0);
  std::filesystem::remove_all(dir);
}

// Nothing is sent for a URL libcurl cannot parse or a scheme other than
// http/https: refused before any I/O (was kConnect before the egress policy).
TEST_F(HttpClientTest, MalformedUrlIsRefused) {
  HttpRequest r;
  r.url = "notascheme://x";
  EXPECT_EQ(Fetch(client_, r).get().result.error, HttpErrorKind::kRefused);
}

TEST_F(HttpClientTest, DroppedStreamIsAProtocolError) {
  FakeFault f;
  f.drop_after_events = 2;
  fake_.AddFault(f);
  auto c = Run(Get("/_fake/stream?chunks=5&size=100"));
  ASSERT_TRUE(c->WaitDone());
  EXPECT_EQ(c->result().error, HttpErrorKind::kProtocol);
  EXPECT_TRUE(c->result().head_received);
  EXPECT_EQ(c->bytes(), 200u);
}

TEST_F(HttpClientTest, CancelMidStreamStopsTheServersWrites) {
  auto c = Run(Get("/_fake/stream?chunks=1000&size=100&interval_ms=10"));
  ASSERT_TRUE(c->WaitBytes(300));
  c->transfer->Cancel();  // from the test thread
  ASSERT_TRUE(c->WaitDone());
  EXPECT_EQ(c->result().error, HttpErrorKind::kCancelled);
  ASSERT_TRUE(
      fake_.WaitFor([](const auto& r) { return !r.empty() && r.back().client_disconnected; },
                    milliseconds(3000)));
  RecordedRequest rec = LastRecord();
  EXPECT_FALSE(rec.finished);
  EXPECT_LT(rec.events_sent, 1000u);
  // Writes stop for good.
  std::this_thread::sleep_for(milliseconds(100));
  EXPECT_EQ(LastRecord().events_sent, rec.events_sent);
  EXPECT_TRUE(c->protocol_respected());
  c->transfer->Cancel();  // idempotent, after the end
  c->transfer->Resume();
  EXPECT_EQ(client_.active_transfers(), 0u);
}

TEST_F(HttpClientTest, CancelFromInsideOnBody) {
  auto c = std::make_shared<Collector>();
  std::atomic<int> calls{0};
  c->on_body = [&calls](Collector& self, std::string_view) {
    if (++calls == 2) self.transfer->Cancel();
  };
  // The handle must be in place before the first OnBody: the stream waits 200 ms.
  FakeFault f;
  f.delay = milliseconds(200);
  fake_.AddFault(f);
  c->transfer = client_.Start(Get("/_fake/stream?chunks=100&size=10&interval_ms=5"), c);
  ASSERT_TRUE(c->WaitDone());
  EXPECT_EQ(c->result().error, HttpErrorKind::kCancelled);
  EXPECT_EQ(calls.load(), 2);  // nothing after the cancelling call
  EXPECT_TRUE(c->protocol_respected());
}

TEST_F(HttpClientTest, PauseStallsTheServerAndResumeDeliversEverything) {
  // 48 MiB with no delay: far more than loopback socket buffers hold, so a
  // paused reader must stall the writer.
  constexpr int kChunks = 768, kSize = 64 * 1024;
  HttpTimeouts t;
  t.idle = milliseconds(200);  // a pause is not idleness
  auto c = std::make_shared<Collector>();
  std::atomic<bool> paused_once{false};
  c->on_body = [&paused_once](Collector& self, std::string_view) {
    if (!paused_once.exchange(true)) self.transfer->Pause();  // inside OnBody: immediate
  };
  FakeFault f;
  f.delay = milliseconds(100);  // the handle is stored before the first OnBody
  fake_.AddFault(f);
  c->transfer = client_.Start(
      Get("/_fake/stream?chunks=" + std::to_string(kChunks) + "&size=" + std::to_string(kSize), t),
      c);
  ASSERT_TRUE(c->WaitBytes(1));
  std::this_thread::sleep_for(milliseconds(500));
  const size_t delivered = c->bytes();
  const uint64_t sent1 = LastRecord().body_bytes_sent;
  std::this_thread::sleep_for(milliseconds(400));
  EXPECT_EQ(c->bytes(), delivered);  // nothing delivered while paused
  EXPECT_LE(delivered, static_cast<size_t>(kSize));
  const uint64_t sent2 = LastRecord().body_bytes_sent;
  EXPECT_EQ(sent1, sent2);  // the server's writes stalled
  EXPECT_LT(sent2, static_cast<uint64_t>(kChunks) * kSize / 2);
  EXPECT_FALSE(c->WaitDone(milliseconds(1)));  // no idle timeout while paused

  c->transfer->Resume();  // from the test thread
  ASSERT_TRUE(c->WaitDone(milliseconds(20000)));
  EXPECT_TRUE(c->result().ok()) << c->result().message;
  EXPECT_EQ(c->bytes(), static_cast<size_t>(kChunks) * kSize);
  EXPECT_TRUE(c->body() == Expected(kChunks, kSize));
}

TEST_F(HttpClientTest, PauseAndResumeFromAnotherThread) {
  auto c = Run(Get("/_fake/stream?chunks=60&size=10&interval_ms=10"));
  ASSERT_TRUE(c->WaitBytes(50));
  c->transfer->Pause();
  std::this_thread::sleep_for(milliseconds(100));  // the pause has reached the loop
  const size_t at_pause = c->bytes();
  std::this_thread::sleep_for(milliseconds(300));
  // At most what was already in flight when the command ran.
  EXPECT_LE(c->bytes(), at_pause + 10);
  EXPECT_FALSE(c->WaitDone(milliseconds(1)));
  c->transfer->Resume();
  ASSERT_TRUE(c->WaitDone());
  EXPECT_TRUE(c->result().ok());
  EXPECT_EQ(c->body(), Expected(60, 10));
}

TEST_F(HttpClientTest, KeepAliveReusesTheConnection) {
  HttpResponse first = Fetch(client_, Get("/_fake/stream?chunks=2")).get();
  ASSERT_TRUE(first.result.ok());
  EXPECT_EQ(first.result.new_connections, 1);
  for (int i = 0; i < 3; ++i) {
    HttpResponse again = Fetch(client_, Get("/_fake/stream?chunks=2")).get();
    ASSERT_TRUE(again.result.ok());
    EXPECT_EQ(again.result.new_connections, 0);
  }
  EXPECT_EQ(fake_.open_connections(), 1u);
}

// Issue 12: when a reused connection dies after the request went out and
// before any answer byte, libcurl would send the request again on a new
// connection by itself (a second call the provider may bill). It does not:
// the transfer fails, the provider saw the request once, and the caller
// decides whether to try again.
TEST_F(HttpClientTest, ARequestIsNeverSentTwiceBehindTheCallersBack) {
  HttpRequest post;
  post.method = "POST";
  post.url = Url("/v1/chat/completions");
  post.headers = {{"Authorization", "Bearer sk-fake-openai"}, {"Content-Type", "application/json"}};
  post.body = R"({"model": "gpt-4", "messages": [{"role": "user", "content": "Hi"}]})";
  HttpResponse first = Fetch(client_, post).get();
  ASSERT_TRUE(first.result.ok()) << first.result.message;
  ASSERT_EQ(first.result.new_connections, 1);
  FakeFault close;
  close.close_before_head = true;
  close.count = 1;  // a re-sent request would find the provider answering again
  fake_.AddFault(close);
  HttpResponse second = Fetch(client_, post).get();
  EXPECT_EQ(second.result.error, HttpErrorKind::kProtocol) << second.result.message;
  EXPECT_NE(second.result.message.find("not sent again"), std::string::npos)
      << second.result.message;
  EXPECT_EQ(fake_.Requests().size(), 2u) << "one call each: nothing re-sent";
  // The client goes on with a fresh connection.
  HttpResponse third = Fetch(client_, post).get();
  EXPECT_TRUE(third.result.ok()) << third.result.message;
}

// Load that rises and falls: the connections of a burst stay open through a
// quiet spell and serve the next burst (libcurl's own cache size follows the
// number of running transfers and closed most of them).
TEST_F(HttpClientTest, ABurstsConnectionsSurviveAQuietSpellForTheNextBurst) {
  constexpr int kBurst = 16;
  auto burst = [&] {
    std::vector<std::shared_ptr<Collector>> all;
    for (int i = 0; i < kBurst; ++i) {
      all.push_back(Run(Get("/_fake/stream?chunks=2&size=10&interval_ms=50")));
    }
    int opened = 0;
    for (auto& c : all) {
      EXPECT_TRUE(c->WaitDone(milliseconds(10000)));
      EXPECT_TRUE(c->result().ok()) << c->result().message;
      opened += c->result().new_connections;
    }
    return opened;
  };
  EXPECT_EQ(burst(), kBurst);
  for (int i = 0; i < 5; ++i) {  // the quiet spell: one transfer at a time
    HttpResponse r = Fetch(client_, Get("/_fake/stream?chunks=1")).get();
    ASSERT_TRUE(r.result.ok());
    EXPECT_EQ(r.result.new_connections, 0);
  }
  EXPECT_EQ(burst(), 0) << "the second burst reuses the first one's connections";
  EXPECT_EQ(fake_.open_connections(), static_cast<size_t>(kBurst));
}

TEST_F(HttpClientTest, ManyConcurrentTransfersOnOneLoop) {
  constexpr int kTransfers = 200;
  std::vector<std::shared_ptr<Collector>> all;
  for (int i = 0; i < kTransfers; ++i) {
    all.push_back(Run(Get("/_fake/stream?chunks=5&size=100&interval_ms=20")));
  }
  for (auto& c : all) {
    ASSERT_TRUE(c->WaitDone(milliseconds(30000)));
    EXPECT_TRUE(c->result().ok()) << c->result().message;
    EXPECT_EQ(c->body(), Expected(5, 100));
  }
  EXPECT_EQ(client_.active_transfers(), 0u);
  EXPECT_EQ(fake_.Requests().size(), static_cast<size_t>(kTransfers));
}

TEST_F(HttpClientTest, FetchBoundsTheBody) {
  HttpResponse r = Fetch(client_, Get("/_fake/stream?chunks=10&size=1000"), 2500).get();
  EXPECT_EQ(r.result.error, HttpErrorKind::kProtocol);
  EXPECT_LE(r.body.size(), 2500u);
}

TEST(HttpClientShutdownTest, DestructorCancelsRunningTransfers) {
  FakeProvider fake;
  ASSERT_TRUE(fake.Start());
  FakeFault f;
  f.hang = true;
  fake.AddFault(f);
  auto c = std::make_shared<Collector>();
  std::shared_ptr<HttpTransfer> handle;
  {
    CurlHttpClient client(LoopbackAllowed());
    HttpRequest r;
    r.method = "GET";
    r.url = fake.base_url() + "/_fake/stream";
    handle = client.Start(r, c);
    ASSERT_TRUE(fake.WaitFor([](const auto& r) { return !r.empty(); }, milliseconds(5000)));
  }
  ASSERT_TRUE(c->WaitDone(milliseconds(1)));
  EXPECT_EQ(c->result().error, HttpErrorKind::kCancelled);
  handle->Cancel();  // the client is gone: a no-op
  handle->Pause();
  EXPECT_TRUE(fake.WaitFor([](const auto& r) { return !r.empty() && r.back().client_disconnected; },
                           milliseconds(3000)));
}

}  // namespace
}  // namespace tg::adapter::http
