// Streamed answers (chunked) and client-disconnect cancellation of the edge's
// HTTP server.
#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <thread>

#include "edge_test_http.h"
#include "tg/edge/http_server.h"

namespace tg::edge {
namespace {

using testing::HttpCall;
using testing::RawConnection;

using std::chrono::milliseconds;

// /stream: three SSE events, each written once the previous one was sent.
// /abort:  one event, then Abort (no terminating chunk).
// /hang:   never answers; records the cancellation.
class StreamingHandler : public HttpHandler {
 public:
  ~StreamingHandler() override {
    for (auto& t : threads_) t.join();
  }

  void Handle(HttpRequest r, HttpResponder respond) override {
    if (r.path == "/hang") {
      respond.OnCancel([this] { cancelled = true; });
      held_.push_back(respond);  // keep it unanswered
      return;
    }
    HttpResponse head;
    head.headers.emplace_back("Content-Type", "text/event-stream");
    head.headers.emplace_back("X-Selected-Provider", "openai");
    auto body = respond.Stream(std::move(head));
    if (r.path == "/abort") {
      body->Write("data: {\"n\":0}\n\n");
      body->Abort();
      return;
    }
    std::lock_guard lock(mu_);
    threads_.emplace_back([this, body] {
      for (int i = 0; i < 3; ++i) {
        std::promise<bool> sent;
        body->Write("data: {\"n\":" + std::to_string(i) + "}\n\n",
                    [&sent](bool ok) { sent.set_value(ok); });
        if (!sent.get_future().get()) return;
        ++acknowledged;
      }
      body->Write("data: [DONE]\n\n");
      body->Finish();
    });
  }

  std::atomic<bool> cancelled{false};
  std::atomic<int> acknowledged{0};

 private:
  std::mutex mu_;
  std::vector<std::thread> threads_;
  std::vector<HttpResponder> held_;
};

class EdgeHttpStreamTest : public ::testing::Test {
 protected:
  void SetUp() override {
    HttpServerOptions o;
    o.access_log = false;
    o.shutdown_grace = milliseconds(500);
    std::string error;
    server_ = HttpServer::Start(o, &handler_, &error);
    ASSERT_NE(server_, nullptr) << error;
  }
  void TearDown() override { server_->Stop(); }

  StreamingHandler handler_;
  std::unique_ptr<HttpServer> server_;
};

TEST_F(EdgeHttpStreamTest, StreamsChunkedPiecesInOrderAndEndsCleanly) {
  auto r = HttpCall(server_->port(), "POST", "/stream", "{}");
  ASSERT_EQ(r.status, 200) << r.error;
  EXPECT_EQ(r.headers["transfer-encoding"], "chunked");
  EXPECT_EQ(r.headers["x-selected-provider"], "openai");
  EXPECT_EQ(r.body, "data: {\"n\":0}\n\ndata: {\"n\":1}\n\ndata: {\"n\":2}\n\ndata: [DONE]\n\n");
  EXPECT_EQ(handler_.acknowledged.load(), 3) << "every piece's sent callback reported success";

  // The connection stays usable for the next request (keep-alive after a stream).
  RawConnection c(server_->port());
  ASSERT_TRUE(c.ok());
  std::string req = "POST /stream HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n";
  ASSERT_TRUE(c.Send(req + req));
  auto raw = c.ReadUntil(
      [](const std::string& s) {
        size_t n = 0, pos = 0;
        while ((pos = s.find("0\r\n\r\n", pos)) != std::string::npos) ++n, pos += 5;
        return n >= 2;
      },
      milliseconds(5000));
  size_t first = raw.find("data: [DONE]");
  ASSERT_NE(first, std::string::npos) << raw;
  EXPECT_NE(raw.find("data: [DONE]", first + 1), std::string::npos) << raw;
}

TEST_F(EdgeHttpStreamTest, AbortLeavesTheBodyVisiblyTruncated) {
  auto r = HttpCall(server_->port(), "POST", "/abort", "{}");
  EXPECT_NE(r.error, "") << "curl must see a broken chunked body, not a clean end";
  EXPECT_EQ(r.body.find("[DONE]"), std::string::npos);
}

TEST_F(EdgeHttpStreamTest, ClientDisconnectCancelsTheRequestInFlight) {
  {
    RawConnection c(server_->port());
    ASSERT_TRUE(c.ok());
    ASSERT_TRUE(c.Send("POST /hang HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}"));
    std::this_thread::sleep_for(milliseconds(100));
    EXPECT_FALSE(handler_.cancelled.load()) << "nothing happened yet";
  }  // the client closes
  auto deadline = std::chrono::steady_clock::now() + milliseconds(2000);
  while (!handler_.cancelled.load() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(10));
  }
  EXPECT_TRUE(handler_.cancelled.load());
}

TEST(EdgeHttpResponderStream, WithoutStreamSupportWritesFailAtOnce) {
  HttpResponder r([](HttpResponse) {});
  auto body = r.Stream(HttpResponse{});
  bool result = true;
  body->Write("x", [&](bool ok) { result = ok; });
  EXPECT_FALSE(result);
}

}  // namespace
}  // namespace tg::edge
