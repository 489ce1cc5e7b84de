#include "fake_http_server.h"

#include <sys/socket.h>

#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <cerrno>
#include <exception>
#include <future>

#include "tg/common/log.h"

namespace tg::fakes {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using net::ip::tcp;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

constexpr auto kAwaitable = net::use_awaitable;
constexpr milliseconds kPollStep{20};

// Completion of a detached coroutine: an exception is logged, never rethrown into Asio.
auto Done(std::string name, const char* what) {
  return [name = std::move(name), what](std::exception_ptr e) {
    if (!e) return;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      log::Error("fake server task failed",
                 {{"server", name}, {"task", what}, {"error", ex.what()}});
    }
  };
}

}  // namespace

FakeHttpServer::FakeHttpServer(FakeHttpServerOptions options, Handler handler)
    : options_(std::move(options)), handler_(std::move(handler)) {}

FakeHttpServer::~FakeHttpServer() {
  Stop();
  // Abandoned sessions (coroutine frames) die with their io_context and
  // touch this object's members on the way out, so the contexts go first.
  acceptor_.reset();
  work_.clear();
  ios_.clear();
}

bool FakeHttpServer::Start(std::string* error) {
  if (started_) {
    if (error != nullptr) *error = options_.name + " already started";
    return false;
  }
  for (int i = 0; i < std::max(1, options_.threads); ++i) {
    ios_.push_back(std::make_unique<net::io_context>(1));
    work_.emplace_back(ios_.back()->get_executor());
  }
  acceptor_ = std::make_unique<tcp::acceptor>(*ios_[0]);
  beast::error_code ec;
  auto address = net::ip::make_address(options_.host, ec);
  tcp::endpoint endpoint(address, options_.port);
  if (!ec) acceptor_->open(endpoint.protocol(), ec);
  if (!ec) acceptor_->set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_->bind(endpoint, ec);
  if (!ec) acceptor_->listen(net::socket_base::max_listen_connections, ec);
  if (ec) {
    if (error != nullptr) *error = options_.name + " cannot listen: " + ec.message();
    return false;
  }
  port_ = acceptor_->local_endpoint().port();
  net::co_spawn(*ios_[0], Accept(), Done(options_.name, "accept"));
  for (auto& io : ios_) threads_.emplace_back([io = io.get()] { io->run(); });
  started_ = true;
  return true;
}

void FakeHttpServer::Stop() {
  if (!started_ || stopped_.exchange(true)) return;
  // Shared: if the loop were wedged past the wait, the task must not
  // outlive its promise.
  auto closed = std::make_shared<std::promise<void>>();
  std::future<void> done = closed->get_future();
  net::post(*ios_[0], [this, closed] {
    beast::error_code ec;
    acceptor_->close(ec);
    std::lock_guard lock(mu_);
    for (int fd : open_fds_) ::shutdown(fd, SHUT_RDWR);
    closed->set_value();
  });
  done.wait_for(std::chrono::seconds(5));
  for (auto& io : ios_) io->stop();
  for (auto& t : threads_) t.join();
  threads_.clear();
}

size_t FakeHttpServer::open_connections() const {
  std::lock_guard lock(mu_);
  return open_fds_.size();
}

net::awaitable<void> FakeHttpServer::Accept() {
  for (;;) {
    beast::error_code ec;
    net::io_context& io = *ios_[next_io_++ % ios_.size()];
    tcp::socket socket = co_await acceptor_->async_accept(net::any_io_executor(io.get_executor()),
                                                          net::redirect_error(kAwaitable, ec));
    if (ec) {
      if (stopped_ || !acceptor_->is_open()) co_return;
      continue;
    }
    socket.set_option(tcp::no_delay(true), ec);
    auto executor = socket.get_executor();
    net::co_spawn(executor, Session(std::move(socket)), Done(options_.name, "session"));
  }
}

net::awaitable<void> FakeHttpServer::Session(Socket socket) {
  // open_fds_ (shut down by Stop) follows the session's socket.
  struct FdGuard {
    FakeHttpServer* server;
    int fd;
    FdGuard(FakeHttpServer* s, int f) : server(s), fd(f) {
      std::lock_guard lock(server->mu_);
      server->open_fds_.insert(fd);
    }
    ~FdGuard() {
      std::lock_guard lock(server->mu_);
      server->open_fds_.erase(fd);
    }
    FdGuard(const FdGuard&) = delete;
    FdGuard& operator=(const FdGuard&) = delete;
  } guard(this, socket.native_handle());
  beast::flat_buffer buffer;
  for (;;) {
    http::request_parser<http::string_body> parser;
    parser.header_limit(64 * 1024);
    parser.body_limit(options_.max_body_bytes);
    beast::error_code ec;
    co_await http::async_read_header(socket, buffer, parser, net::redirect_error(kAwaitable, ec));
    if (ec) break;
    if (beast::iequals(parser.get()[http::field::expect], "100-continue")) {
      static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
      co_await net::async_write(socket, net::buffer(kContinue),
                                net::redirect_error(kAwaitable, ec));
      if (ec) break;
    }
    co_await http::async_read(socket, buffer, parser, net::redirect_error(kAwaitable, ec));
    if (ec) {
      if (ec == http::error::body_limit) {
        co_await ReplyJson(socket, 413, options_.body_too_large_json, false);
      }
      break;
    }
    Request request = parser.release();
    const bool keep_alive = co_await handler_(socket, request);
    if (!keep_alive || stopped_) break;
  }
  beast::error_code ignored;
  socket.shutdown(tcp::socket::shutdown_send, ignored);
  socket.close(ignored);
}

net::awaitable<bool> FakeHttpServer::Wait(Socket& socket, milliseconds duration) {
  net::steady_timer timer(socket.get_executor());
  const bool forever = duration.count() < 0;
  const auto deadline = Clock::now() + duration;
  for (;;) {
    if (stopped_ || PeerGone(socket)) co_return false;
    auto now = Clock::now();
    if (!forever && now >= deadline) co_return true;
    auto step = forever ? kPollStep
                        : std::min<milliseconds>(
                              kPollStep, std::chrono::duration_cast<milliseconds>(deadline - now) +
                                             milliseconds(1));
    timer.expires_after(step);
    beast::error_code ec;
    co_await timer.async_wait(net::redirect_error(kAwaitable, ec));
  }
}

net::awaitable<bool> FakeHttpServer::Write(Socket& socket, std::string_view data) {
  beast::error_code ec;
  co_await net::async_write(socket, net::buffer(data.data(), data.size()),
                            net::redirect_error(kAwaitable, ec));
  co_return !ec;
}

net::awaitable<bool> FakeHttpServer::ReplyJson(Socket& socket, int status, std::string_view json,
                                               bool keep_alive) {
  std::string out =
      "HTTP/1.1 " + std::to_string(status) + " " + std::string(Reason(status)) +
      "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(json.size()) +
      "\r\nConnection: " + (keep_alive ? "keep-alive" : "close") + "\r\n\r\n";
  out.append(json);
  const bool ok = co_await Write(socket, out);
  co_return ok&& keep_alive;
}

bool FakeHttpServer::PeerGone(const Socket& socket) {
  char c;
  ssize_t n = ::recv(const_cast<Socket&>(socket).native_handle(), &c, 1, MSG_PEEK | MSG_DONTWAIT);
  if (n == 0) return true;
  if (n < 0) return errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR;
  return false;
}

std::string_view FakeHttpServer::Reason(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 413:
      return "Payload Too Large";
    case 415:
      return "Unsupported Media Type";
    case 424:
      return "Failed Dependency";
    case 429:
      return "Too Many Requests";
    case 500:
      return "Internal Server Error";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    case 529:
      return "Site Overloaded";
    default:
      return "Status";
  }
}

}  // namespace tg::fakes
