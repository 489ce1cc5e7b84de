// The HTTP server on real loopback sockets (port 0) with a scripted handler.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <future>
#include <thread>

#include "edge_test_http.h"
#include "tg/edge/http_server.h"

namespace tg::edge {
namespace {

using testing::CountResponses;
using ::testing::HasSubstr;
using testing::HttpCall;
using testing::RawConnection;
using ::testing::StartsWith;

// Answers by path:
//   /echo      200 with the method, body and X-Test header
//   /later     200 after 100 ms, from another thread
//   /slow      200 after 400 ms, from another thread
//   /throw     throws
//   /drop      never answers (drops the responder)
//   /twice     answers twice
//   /empty     204
class ScriptedHandler : public HttpHandler {
 public:
  ~ScriptedHandler() override { JoinAll(); }

  // Waits for every answer sent from another thread. Called before the
  // server is destroyed: an answer racing the io_context's destruction
  // would post into a destroyed strand service.
  void JoinAll() {
    std::vector<std::thread> threads;
    {
      std::lock_guard lock(mu_);
      threads.swap(threads_);
    }
    for (auto& t : threads) t.join();
  }

  void Handle(HttpRequest r, HttpResponder respond) override {
    ++calls;
    if (r.path == "/echo") {
      HttpResponse resp;
      resp.headers.emplace_back("Content-Type", "text/plain");
      resp.body = r.method + "|" + r.body + "|" + std::string(r.Header("x-test")) + "|" + r.query;
      return respond(std::move(resp));
    }
    if (r.path == "/later" || r.path == "/slow") {
      auto delay = std::chrono::milliseconds(r.path == "/later" ? 100 : 400);
      std::lock_guard lock(mu_);
      threads_.emplace_back([respond, delay] {
        std::this_thread::sleep_for(delay);
        respond(JsonResponse(200, R"({"late":true})"));
      });
      return;
    }
    if (r.path == "/throw") throw std::runtime_error("boom: secret details");
    if (r.path == "/drop") return;
    if (r.path == "/twice") {
      respond(JsonResponse(200, R"({"n":1})"));
      respond(JsonResponse(200, R"({"n":2})"));
      return;
    }
    if (r.path == "/empty") {
      HttpResponse resp;
      resp.status = 204;
      return respond(resp);
    }
    respond(JsonError(404, "not found"));
  }

  std::atomic<int> calls{0};

 private:
  std::mutex mu_;
  std::vector<std::thread> threads_;
};

class EdgeHttpServerTest : public ::testing::Test {
 protected:
  void Start(HttpServerOptions o = {}) {
    o.access_log = false;
    std::string error;
    server_ = HttpServer::Start(o, &handler_, &error);
    ASSERT_NE(server_, nullptr) << error;
    port_ = server_->port();
  }
  void TearDown() override {
    handler_.JoinAll();
    if (server_) server_->Stop();
    server_.reset();
  }

  ScriptedHandler handler_;
  std::unique_ptr<HttpServer> server_;
  int port_ = 0;
};

bool HasResponses(const std::string& s, int n) { return CountResponses(s) >= n; }

TEST_F(EdgeHttpServerTest, ServesRequests) {
  Start();
  auto r = HttpCall(port_, "POST", "/echo?a=1", "hello", {"X-Test: yes"});
  EXPECT_EQ(r.status, 200) << r.error;
  EXPECT_EQ(r.body, "POST|hello|yes|a=1");
  EXPECT_EQ(r.headers["content-type"], "text/plain");
}

TEST_F(EdgeHttpServerTest, KeepAliveServesSeveralRequestsOnOneConnection) {
  Start();
  RawConnection c(port_);
  ASSERT_TRUE(c.ok());
  // Pipelined: both requests in one write.
  ASSERT_TRUE(
      c.Send("GET /echo HTTP/1.1\r\nHost: x\r\n\r\n"
             "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi"));
  auto got =
      c.ReadUntil([](const std::string& s) { return HasResponses(s, 2); }, std::chrono::seconds(5));
  EXPECT_EQ(CountResponses(got), 2) << got;
  EXPECT_THAT(got, HasSubstr("GET|||"));
  EXPECT_THAT(got, HasSubstr("POST|hi||"));
  // And the connection stays open for a third.
  ASSERT_TRUE(c.Send("GET /later HTTP/1.1\r\nHost: x\r\n\r\n"));
  got =
      c.ReadUntil([](const std::string& s) { return HasResponses(s, 1); }, std::chrono::seconds(5));
  EXPECT_THAT(got, HasSubstr(R"({"late":true})"));
}

TEST_F(EdgeHttpServerTest, Http10ClosesAfterAnswer) {
  Start();
  RawConnection c(port_);
  ASSERT_TRUE(c.Send("GET /echo HTTP/1.0\r\n\r\n"));
  bool closed = false;
  auto got = c.ReadAll(std::chrono::seconds(5), &closed);
  EXPECT_THAT(got, StartsWith("HTTP/1.0 200"));
  EXPECT_TRUE(closed);
}

TEST_F(EdgeHttpServerTest, AnswerFromAnotherThreadLater) {
  Start();
  auto r = HttpCall(port_, "GET", "/later");
  EXPECT_EQ(r.status, 200) << r.error;
  EXPECT_EQ(r.body, R"({"late":true})");
}

TEST_F(EdgeHttpServerTest, HandlerExceptionIs500WithoutDetails) {
  Start();
  auto r = HttpCall(port_, "GET", "/throw");
  EXPECT_EQ(r.status, 500);
  EXPECT_EQ(r.body, R"({"error":"internal error"})");
  // The server is still fine.
  EXPECT_EQ(HttpCall(port_, "GET", "/echo").status, 200);
}

TEST_F(EdgeHttpServerTest, DroppedResponderIs500) {
  Start();
  auto r = HttpCall(port_, "GET", "/drop");
  EXPECT_EQ(r.status, 500);
  EXPECT_EQ(r.body, R"({"error":"internal error"})");
}

TEST_F(EdgeHttpServerTest, SecondAnswerIsDropped) {
  Start();
  RawConnection c(port_);
  ASSERT_TRUE(
      c.Send("GET /twice HTTP/1.1\r\nHost: x\r\n\r\nGET /echo HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto got =
      c.ReadUntil([](const std::string& s) { return HasResponses(s, 2); }, std::chrono::seconds(5));
  EXPECT_EQ(CountResponses(got), 2) << got;
  EXPECT_THAT(got, HasSubstr(R"({"n":1})"));
  EXPECT_THAT(got, ::testing::Not(HasSubstr(R"({"n":2})")));
  EXPECT_THAT(got, HasSubstr("GET|||"));
}

TEST_F(EdgeHttpServerTest, NoContentHasNoBodyOrLength) {
  Start();
  RawConnection c(port_);
  ASSERT_TRUE(c.Send("DELETE /empty HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto got = c.ReadUntil([](const std::string& s) { return s.find("\r\n\r\n") != s.npos; },
                         std::chrono::seconds(5));
  EXPECT_THAT(got, StartsWith("HTTP/1.1 204"));
  EXPECT_THAT(got, ::testing::Not(HasSubstr("Content-Length")));
}

TEST_F(EdgeHttpServerTest, MalformedRequestIs400AndClose) {
  Start();
  for (const char* raw :
       {"GARBAGE\r\n\r\n", "GET / HTTP/9.9\r\n\r\n", "GET /echo HTTP/1.1\r\nBad Header\r\n\r\n",
        "POST /echo HTTP/1.1\r\nContent-Length: abc\r\n\r\n"}) {
    RawConnection c(port_);
    ASSERT_TRUE(c.Send(raw));
    bool closed = false;
    auto got = c.ReadAll(std::chrono::seconds(5), &closed);
    EXPECT_THAT(got, StartsWith("HTTP/1.1 400")) << raw;
    EXPECT_THAT(got, HasSubstr(R"({"error":"malformed HTTP request"})")) << raw;
    EXPECT_TRUE(closed) << raw;
  }
  EXPECT_EQ(handler_.calls.load(), 0);
}

// Before: any request target Beast parsed reached the handler, and the proxy
// appended it to "scheme://host:port", so "@other:port/p" made the other
// host the destination.
TEST_F(EdgeHttpServerTest, OnlyOriginFormTargetsReachTheHandler) {
  Start();
  for (const char* raw :
       {"POST @127.0.0.2:9199/steal HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}",
        "GET http://127.0.0.2:9199/steal HTTP/1.1\r\nHost: x\r\n\r\n",
        "CONNECT 127.0.0.2:9199 HTTP/1.1\r\nHost: x\r\n\r\n",
        "OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n", "GET echo HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET /echo#@evil HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET /caf\xc3\xa9 HTTP/1.1\r\nHost: x\r\n\r\n"}) {
    RawConnection c(port_);
    ASSERT_TRUE(c.Send(raw));
    bool closed = false;
    auto got = c.ReadAll(std::chrono::seconds(5), &closed);
    EXPECT_THAT(got, StartsWith("HTTP/1.1 400")) << raw;
    EXPECT_THAT(got, HasSubstr("origin-form")) << raw;
    EXPECT_TRUE(closed) << raw;
  }
  EXPECT_EQ(handler_.calls.load(), 0);
  EXPECT_TRUE(IsOriginForm("/v1/chat/completions?x=1&y=@z"));
  EXPECT_TRUE(IsOriginForm("/"));
  EXPECT_FALSE(IsOriginForm(""));
  EXPECT_FALSE(IsOriginForm("/a b"));
  EXPECT_FALSE(IsOriginForm(std::string_view("/a\0b", 4)));
  EXPECT_FALSE(IsOriginForm("/a\r\nb"));
}

TEST_F(EdgeHttpServerTest, BodyOverLimitIs413AndClose) {
  HttpServerOptions o;
  o.body_limit = 1000;
  Start(o);
  auto r = HttpCall(port_, "POST", "/echo", std::string(1001, 'x'));
  EXPECT_EQ(r.status, 413) << r.error;
  EXPECT_EQ(r.body, R"j({"error":"request body too large (limit 1000 bytes)"})j");
  EXPECT_EQ(r.headers["connection"], "close");
  EXPECT_EQ(HttpCall(port_, "POST", "/echo", std::string(1000, 'x')).status, 200);
}

TEST_F(EdgeHttpServerTest, ChunkedBodyOverLimitIs413) {
  HttpServerOptions o;
  o.body_limit = 1000;
  Start(o);
  RawConnection c(port_);
  std::string chunk(600, 'x');
  ASSERT_TRUE(
      c.Send("POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
             "258\r\n" +
             chunk + "\r\n258\r\n" + chunk + "\r\n0\r\n\r\n"));
  bool closed = false;
  auto got = c.ReadAll(std::chrono::seconds(5), &closed);
  EXPECT_THAT(got, StartsWith("HTTP/1.1 413")) << got;
  EXPECT_TRUE(closed);
  EXPECT_EQ(handler_.calls.load(), 0);
}

TEST_F(EdgeHttpServerTest, ExpectContinue) {
  HttpServerOptions o;
  o.body_limit = 1000;
  Start(o);
  RawConnection c(port_);
  ASSERT_TRUE(
      c.Send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
             "Expect: 100-continue\r\n\r\n"));
  auto got = c.ReadUntil([](const std::string& s) { return s.find("\r\n\r\n") != s.npos; },
                         std::chrono::seconds(5));
  EXPECT_THAT(got, StartsWith("HTTP/1.1 100 Continue"));
  ASSERT_TRUE(c.Send("hello"));
  got =
      c.ReadUntil([](const std::string& s) { return HasResponses(s, 1); }, std::chrono::seconds(5));
  EXPECT_THAT(got, StartsWith("HTTP/1.1 200"));
  EXPECT_THAT(got, HasSubstr("POST|hello||"));

  // Too large: refused before the body is sent, without a 100.
  RawConnection d(port_);
  ASSERT_TRUE(
      d.Send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n"
             "Expect: 100-continue\r\n\r\n"));
  got = d.ReadAll(std::chrono::seconds(5));
  EXPECT_THAT(got, StartsWith("HTTP/1.1 413"));
}

TEST_F(EdgeHttpServerTest, HeaderOverLimitIs431) {
  HttpServerOptions o;
  o.header_limit = 2048;
  Start(o);
  RawConnection c(port_);
  ASSERT_TRUE(
      c.Send("GET /echo HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(4096, 'a') + "\r\n\r\n"));
  bool closed = false;
  auto got = c.ReadAll(std::chrono::seconds(5), &closed);
  EXPECT_THAT(got, StartsWith("HTTP/1.1 431"));
  EXPECT_TRUE(closed);
}

TEST_F(EdgeHttpServerTest, IdleConnectionTimesOut) {
  HttpServerOptions o;
  o.idle_timeout = std::chrono::milliseconds(200);
  Start(o);
  RawConnection c(port_);
  ASSERT_TRUE(c.ok());
  bool closed = false;
  auto start = std::chrono::steady_clock::now();
  c.ReadAll(std::chrono::seconds(5), &closed);
  EXPECT_TRUE(closed);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(3));
}

// A client that leaves frees its connection at once, whatever the server was
// waiting for: the next request on a keep-alive connection (idle timeout a
// minute away) or the end of a lingering close (2 s).
TEST_F(EdgeHttpServerTest, ConnectionsAreReleasedWhenTheClientLeaves) {
  Start();
  auto open_fds = [] {
    return std::distance(std::filesystem::directory_iterator("/proc/self/fd"),
                         std::filesystem::directory_iterator());
  };
  auto before = open_fds();
  for (std::string connection : {"keep-alive", "close", "keep-alive", "close"}) {
    RawConnection c(port_);
    ASSERT_TRUE(c.ok());
    ASSERT_TRUE(c.Send("GET /echo HTTP/1.1\r\nHost: x\r\nConnection: " + connection + "\r\n\r\n"));
    auto raw = c.ReadUntil([](const std::string& r) { return CountResponses(r) == 1; },
                           std::chrono::seconds(5));
    ASSERT_EQ(CountResponses(raw), 1) << raw;
  }  // the client closes its end
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(1);
  while (open_fds() > before && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  // At most as many as before: an fd the process had open only for a moment
  // when `before` was counted (seen once under ASan: 13 before, 11 after)
  // is no leak.
  EXPECT_LE(open_fds(), before) << "the server still holds connections its clients closed";
  auto start = std::chrono::steady_clock::now();
  server_->Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(1000));
}

TEST_F(EdgeHttpServerTest, StopLetsInFlightRequestsFinish) {
  Start();
  auto in_flight =
      std::async(std::launch::async, [this] { return HttpCall(port_, "GET", "/slow"); });
  RawConnection idle(port_);  // an idle keep-alive connection: closed at once
  ASSERT_TRUE(idle.ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  auto start = std::chrono::steady_clock::now();
  server_->Stop();
  auto r = in_flight.get();
  EXPECT_EQ(r.status, 200) << r.error;
  EXPECT_EQ(r.body, R"({"late":true})");
  EXPECT_EQ(r.headers["connection"], "close");
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(3));
  bool closed = false;
  idle.ReadAll(std::chrono::seconds(1), &closed);
  EXPECT_TRUE(closed);
  // No longer accepting.
  RawConnection late(port_);
  EXPECT_FALSE(late.ok());
}

TEST_F(EdgeHttpServerTest, StopGraceClosesStuckRequests) {
  HttpServerOptions o;
  o.shutdown_grace = std::chrono::milliseconds(100);
  Start(o);
  auto in_flight =
      std::async(std::launch::async, [this] { return HttpCall(port_, "GET", "/slow"); });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  auto start = std::chrono::steady_clock::now();
  server_->Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(1500));
  auto r = in_flight.get();
  EXPECT_EQ(r.status, 0);  // cut off: no partial answer, no answer at all
}

TEST(EdgeHttpServerOptions, Validation) {
  HttpServerOptions o;
  EXPECT_EQ(ValidateHttpServerOptions(o), "");
  o.listen = "nonsense";
  EXPECT_NE(ValidateHttpServerOptions(o), "");
  o = {};
  o.io_threads = 0;
  EXPECT_NE(ValidateHttpServerOptions(o), "");
  o = {};
  o.body_limit = 0;
  EXPECT_NE(ValidateHttpServerOptions(o), "");
}

TEST(EdgeHttpServerStart, BusyPortIsAnError) {
  ScriptedHandler h;
  HttpServerOptions o;
  o.access_log = false;
  std::string error;
  auto a = HttpServer::Start(o, &h, &error);
  ASSERT_NE(a, nullptr);
  o.listen = "127.0.0.1:" + std::to_string(a->port());
  auto b = HttpServer::Start(o, &h, &error);
  EXPECT_EQ(b, nullptr);
  EXPECT_THAT(error, HasSubstr("cannot listen"));
}

TEST(EdgeHttpResponder, DestroyedWithoutAnswerSends500) {
  std::vector<int> sent;
  {
    HttpResponder r([&sent](HttpResponse resp) { sent.push_back(resp.status); });
    auto copy = r;
    EXPECT_FALSE(copy.answered());
  }
  EXPECT_EQ(sent, std::vector<int>{500});
}

}  // namespace
}  // namespace tg::edge
