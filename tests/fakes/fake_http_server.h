#pragma once

// What every fake HTTP server of the tests shares and is not the fake: a
// listener on Beast coroutines, keep-alive sessions with a header and body
// limit (and `Expect: 100-continue`), a stop that cuts every open connection,
// and the small reply helpers. A fake gives it a handler per request.
//
// Threads: `threads` single-threaded io_contexts, sessions spread over them
// round-robin. (Boost 1.74's awaitables are not safe when one coroutine's
// completions can run on two threads: a frame is freed while its initiator
// still reads it, even on a strand: chriskohlhoff/asio#835.)

#include "asio_coroutines.h"  // before any Asio header

// Boost 1.74's awaitable.hpp uses std::exchange without including <utility>.
#include <utility>
// clang-format off: the order above matters.
#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>
// clang-format on

namespace tg::fakes {

struct FakeHttpServerOptions {
  std::string name = "fake server";  // in errors and logs
  std::string host = "127.0.0.1";
  uint16_t port = 0;  // 0: any free port
  int threads = 1;
  size_t max_body_bytes = 1 << 20;
  // The JSON answered (413) to a body over max_body_bytes before closing.
  std::string body_too_large_json = R"({"error":"body too large"})";
};

class FakeHttpServer {
 public:
  using Request = boost::beast::http::request<boost::beast::http::string_body>;
  using Socket = boost::asio::ip::tcp::socket;
  // Answers one request; returns whether the connection may serve another.
  using Handler = std::function<boost::asio::awaitable<bool>(Socket&, const Request&)>;

  FakeHttpServer(FakeHttpServerOptions options, Handler handler);
  // Stops, then destroys the io_contexts (and with them any abandoned
  // session) before anything else of the fake goes: declare the server as
  // its owner's last member.
  ~FakeHttpServer();
  FakeHttpServer(const FakeHttpServer&) = delete;
  FakeHttpServer& operator=(const FakeHttpServer&) = delete;

  bool Start(std::string* error);
  // Closes the listener and shuts every open connection down, then joins
  // the threads. Idempotent.
  void Stop();

  uint16_t port() const { return port_; }
  bool stopped() const { return stopped_; }
  size_t open_connections() const;

  // The reason phrase of the statuses the fakes answer ("Status" otherwise).
  static std::string_view Reason(int status);
  // Writes `data`; false when the connection failed.
  static boost::asio::awaitable<bool> Write(Socket& socket, std::string_view data);
  // A whole JSON answer; returns whether the connection may go on.
  static boost::asio::awaitable<bool> ReplyJson(Socket& socket, int status, std::string_view json,
                                                bool keep_alive);
  // The client closed its end (EOF) or the connection broke. Data waiting to
  // be read (a pipelined request) counts as alive.
  static bool PeerGone(const Socket& socket);

  // Waits `duration` (forever when negative), checking every 20 ms that the
  // client is still there and the server is not stopping; false when either
  // ended the wait.
  boost::asio::awaitable<bool> Wait(Socket& socket, std::chrono::milliseconds duration);

 private:
  boost::asio::awaitable<void> Accept();
  boost::asio::awaitable<void> Session(Socket socket);

  const FakeHttpServerOptions options_;
  const Handler handler_;
  std::vector<std::unique_ptr<boost::asio::io_context>> ios_;
  std::vector<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work_;
  size_t next_io_ = 0;  // the accept loop's only
  std::unique_ptr<boost::asio::ip::tcp::acceptor> acceptor_;
  std::vector<std::thread> threads_;
  uint16_t port_ = 0;
  bool started_ = false;
  std::atomic<bool> stopped_{false};
  mutable std::mutex mu_;
  std::set<int> open_fds_;
};

}  // namespace tg::fakes
