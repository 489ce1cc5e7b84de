#include "tg/common/metrics_server.h"

#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <string_view>
#include <vector>

#include "tg/common/log.h"

namespace tg::metrics {
namespace {

using Clock = std::chrono::steady_clock;

constexpr size_t kMaxHeaderBytes = 8 * 1024;
// After the response, wait this long at most for the client's FIN so that
// closing with unread bytes does not reset the connection under the response.
constexpr auto kLinger = std::chrono::seconds(1);

std::string ErrnoText(int err) { return std::strerror(err); }

// "host:port", "[v6]:port", ":port" → host ("0.0.0.0" when empty) and port.
bool SplitListen(const std::string& listen, std::string* host, std::string* port,
                 std::string* error) {
  size_t colon;
  if (!listen.empty() && listen[0] == '[') {
    size_t close = listen.find(']');
    if (close == std::string::npos || close + 1 >= listen.size() || listen[close + 1] != ':') {
      *error = "metrics listen address \"" + listen + "\": expected [v6]:port";
      return false;
    }
    *host = listen.substr(1, close - 1);
    colon = close + 1;
  } else {
    colon = listen.rfind(':');
    if (colon == std::string::npos) {
      *error = "metrics listen address \"" + listen + "\": expected host:port";
      return false;
    }
    *host = listen.substr(0, colon);
  }
  *port = listen.substr(colon + 1);
  if (port->empty() || port->size() > 5 ||
      !std::all_of(port->begin(), port->end(), [](char c) { return c >= '0' && c <= '9'; }) ||
      std::stoi(*port) > 65535) {
    *error = "metrics listen address \"" + listen + "\": bad port";
    return false;
  }
  if (host->empty()) *host = "0.0.0.0";
  return true;
}

// Returns the listening socket or -1 with `*error` set.
int Listen(const std::string& listen, int* bound_port, std::string* error) {
  std::string host, port;
  if (!SplitListen(listen, &host, &port, error)) return -1;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* res = nullptr;
  int rc = getaddrinfo(host.c_str(), port.c_str(), &hints, &res);
  if (rc != 0) {
    *error = "metrics listen address \"" + listen + "\": " + gai_strerror(rc);
    return -1;
  }
  int fd = -1;
  for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
    fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) {
      *error = "metrics: socket: " + ErrnoText(errno);
      continue;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);  // restart over TIME_WAIT
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
      *error = "metrics: bind " + listen + ": " + ErrnoText(errno);
      close(fd);
      fd = -1;
      continue;
    }
    if (::listen(fd, 128) != 0) {
      *error = "metrics: listen " + listen + ": " + ErrnoText(errno);
      close(fd);
      fd = -1;
      continue;
    }
    break;
  }
  freeaddrinfo(res);
  if (fd < 0) return -1;
  sockaddr_storage addr{};
  socklen_t len = sizeof addr;
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  *bound_port = addr.ss_family == AF_INET6
                    ? ntohs(reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port)
                    : ntohs(reinterpret_cast<sockaddr_in*>(&addr)->sin_port);
  error->clear();
  return fd;
}

std::string Response(int code, std::string_view reason, std::string_view content_type,
                     std::string_view body, bool head, std::string_view extra_headers = {}) {
  std::string r;
  r.reserve(160 + (head ? 0 : body.size()));
  r += "HTTP/1.1 ";
  r += std::to_string(code);
  r += ' ';
  r += reason;
  r += "\r\nContent-Type: ";
  r += content_type;
  r += "\r\nContent-Length: ";
  r += std::to_string(body.size());
  r += "\r\nConnection: close\r\n";
  r += extra_headers;
  r += "\r\n";
  if (!head) r += body;
  return r;
}

std::string Plain(int code, std::string_view reason, std::string_view body, bool head = false,
                  std::string_view extra_headers = {}) {
  return Response(code, reason, "text/plain; charset=utf-8", body, head, extra_headers);
}

// The answer to one request head (everything up to the blank line).
// `serving`: what /healthz reports (the gRPC server's state, when the process
// has one; see MetricsServer::SetServingState).
std::string Handle(std::string_view head, Registry* registry, bool serving) {
  size_t eol = head.find('\n');
  std::string_view line = head.substr(0, eol);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  size_t sp1 = line.find(' ');
  size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || line.find(' ', sp2 + 1) != std::string_view::npos) {
    return Plain(400, "Bad Request", "bad request\n");
  }
  std::string_view method = line.substr(0, sp1);
  std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  std::string_view version = line.substr(sp2 + 1);
  if (method.empty() || target.empty() || version.substr(0, 7) != "HTTP/1.") {
    return Plain(400, "Bad Request", "bad request\n");
  }
  bool is_head = method == "HEAD";
  if (method != "GET" && !is_head) {
    return Plain(405, "Method Not Allowed", "method not allowed\n", false, "Allow: GET, HEAD\r\n");
  }
  std::string_view path = target.substr(0, target.find('?'));
  if (path == "/metrics") {
    std::string body;
    try {
      body = registry->Render();
    } catch (const std::exception& e) {
      log::Error("metrics render failed", {{"error", e.what()}});
      return Plain(500, "Internal Server Error", "render failed\n", is_head);
    }
    return Response(200, "OK", "text/plain; version=0.0.4; charset=utf-8", body, is_head);
  }
  if (path == "/healthz") {
    if (!serving) return Plain(503, "Service Unavailable", "not serving", is_head);
    return Plain(200, "OK", "ok", is_head);
  }
  return Plain(404, "Not Found", "not found\n", is_head);
}

// Where the request head ends (just past the blank line), or npos.
size_t HeadEnd(const std::string& in) {
  size_t crlf = in.find("\r\n\r\n");
  size_t lf = in.find("\n\n");
  if (crlf == std::string::npos && lf == std::string::npos) return std::string::npos;
  if (crlf != std::string::npos && (lf == std::string::npos || crlf < lf)) return crlf + 4;
  return lf + 2;
}

struct Conn {
  enum class State { kReading, kWriting, kDraining };
  int fd = -1;
  State state = State::kReading;
  std::string in;
  std::string out;
  size_t sent = 0;
  Clock::time_point deadline;
};

// Reads what is available; returns false when the connection is to be closed.
bool ReadRequest(Conn& c, Registry* registry, bool serving) {
  char buf[4096];
  for (;;) {
    ssize_t n = recv(c.fd, buf, sizeof buf, 0);
    if (n == 0) return false;  // closed before a whole request
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno == EAGAIN || errno == EWOULDBLOCK;
    }
    c.in.append(buf, static_cast<size_t>(n));
    size_t end = HeadEnd(c.in);
    if (end != std::string::npos && end <= kMaxHeaderBytes) {
      c.out = Handle(std::string_view(c.in).substr(0, end), registry, serving);
    } else if (c.in.size() > kMaxHeaderBytes) {
      c.out = Plain(431, "Request Header Fields Too Large", "request header too large\n");
    } else {
      continue;
    }
    c.in.clear();
    c.in.shrink_to_fit();
    c.state = Conn::State::kWriting;
    return true;
  }
}

// Writes what the socket takes; returns false when the connection is to be closed.
bool WriteResponse(Conn& c) {
  while (c.sent < c.out.size()) {
    ssize_t n = send(c.fd, c.out.data() + c.sent, c.out.size() - c.sent, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno == EAGAIN || errno == EWOULDBLOCK;
    }
    c.sent += static_cast<size_t>(n);
  }
  shutdown(c.fd, SHUT_WR);
  c.out.clear();
  c.out.shrink_to_fit();
  c.state = Conn::State::kDraining;
  c.deadline = std::min(c.deadline, Clock::now() + kLinger);
  return true;
}

// Discards what the client still sends until it closes.
bool Drain(Conn& c) {
  char buf[4096];
  for (;;) {
    ssize_t n = recv(c.fd, buf, sizeof buf, 0);
    if (n == 0) return false;
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno == EAGAIN || errno == EWOULDBLOCK;
    }
  }
}

}  // namespace

std::unique_ptr<MetricsServer> MetricsServer::Start(const MetricsServerOptions& options,
                                                    std::string* error, Registry* registry) {
  error->clear();
  if (options.listen.empty() || options.listen == "off") return nullptr;
  if (registry == nullptr) {
    *error = "metrics: no registry";
    return nullptr;
  }
  int port = 0;
  int listen_fd = Listen(options.listen, &port, error);
  if (listen_fd < 0) return nullptr;
  int wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd < 0) {
    *error = "metrics: eventfd: " + ErrnoText(errno);
    close(listen_fd);
    return nullptr;
  }
  std::unique_ptr<MetricsServer> server(
      new MetricsServer(listen_fd, wake_fd, port, registry, options));
  server->thread_ = std::thread([s = server.get()] { s->Run(); });
  log::Info("metrics server listening",
            {{"listen", options.listen}, {"port", std::to_string(port)}});
  return server;
}

MetricsServer::MetricsServer(int listen_fd, int wake_fd, int port, Registry* registry,
                             const MetricsServerOptions& options)
    : listen_fd_(listen_fd),
      wake_fd_(wake_fd),
      port_(port),
      registry_(registry),
      options_(options) {}

MetricsServer::~MetricsServer() { Stop(); }

void MetricsServer::Stop() {
  std::lock_guard lock(stop_mu_);
  if (thread_.joinable()) {
    stopping_.store(true);
    uint64_t one = 1;
    while (write(wake_fd_, &one, sizeof one) < 0 && errno == EINTR) {
    }
    thread_.join();
  }
  // The port is free again once Stop() returns.
  if (listen_fd_ >= 0) close(listen_fd_);
  if (wake_fd_ >= 0) close(wake_fd_);
  listen_fd_ = wake_fd_ = -1;
}

void MetricsServer::Run() {
  const auto timeout = std::chrono::milliseconds(std::max(1, options_.read_timeout_ms));
  const size_t max_conns = static_cast<size_t>(std::max(1, options_.max_connections));
  std::vector<Conn> conns;
  std::vector<pollfd> fds;
  // Out of descriptors, accept fails while the listener stays readable; pause
  // accepting briefly instead of spinning.
  auto accept_paused_until = Clock::time_point::min();
  bool accept_warned = false;
  while (!stopping_.load()) {
    auto now = Clock::now();
    fds.clear();
    fds.push_back({wake_fd_, POLLIN, 0});
    const bool accepting = conns.size() < max_conns && now >= accept_paused_until;
    if (accepting) fds.push_back({listen_fd_, POLLIN, 0});
    const size_t first_conn = fds.size();
    auto next_deadline = now < accept_paused_until ? accept_paused_until : Clock::time_point::max();
    for (const Conn& c : conns) {
      fds.push_back(
          {c.fd, static_cast<short>(c.state == Conn::State::kWriting ? POLLOUT : POLLIN), 0});
      next_deadline = std::min(next_deadline, c.deadline);
    }
    int wait_ms = -1;
    if (next_deadline != Clock::time_point::max()) {
      auto ms = std::chrono::ceil<std::chrono::milliseconds>(next_deadline - now).count();
      wait_ms = static_cast<int>(std::clamp<int64_t>(ms, 0, 60'000));
    }
    int n = poll(fds.data(), fds.size(), wait_ms);
    if (n < 0) {
      if (errno == EINTR) continue;
      log::Error("metrics server poll failed; stopping", {{"error", ErrnoText(errno)}});
      break;
    }
    if (fds[0].revents != 0) break;  // Stop()

    now = Clock::now();
    for (size_t i = 0; i < conns.size(); ++i) {
      Conn& c = conns[i];
      short ev = fds[first_conn + i].revents;
      bool keep = true;
      if (ev & POLLNVAL) {
        keep = false;
      } else if (ev != 0) {
        switch (c.state) {
          case Conn::State::kReading:
            keep = ReadRequest(c, registry_, Serving());
            if (keep && c.state == Conn::State::kWriting) keep = WriteResponse(c);
            break;
          case Conn::State::kWriting:
            keep = (ev & POLLERR) == 0 && WriteResponse(c);
            break;
          case Conn::State::kDraining:
            keep = Drain(c);
            break;
        }
      }
      if (keep && now >= c.deadline) keep = false;  // too slow: give up on it
      if (!keep) {
        close(c.fd);
        c.fd = -1;
      }
    }
    std::erase_if(conns, [](const Conn& c) { return c.fd < 0; });

    if (accepting && (fds[1].revents & POLLIN)) {
      while (conns.size() < max_conns) {
        int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
          if (errno == EINTR || errno == ECONNABORTED) continue;
          if (errno != EAGAIN && errno != EWOULDBLOCK) {
            if (!accept_warned) {
              log::Warn("metrics server accept failed", {{"error", ErrnoText(errno)}});
            }
            accept_warned = true;
            accept_paused_until = now + std::chrono::milliseconds(100);
          }
          break;
        }
        accept_warned = false;
        Conn c;
        c.fd = fd;
        c.deadline = now + timeout;
        conns.push_back(std::move(c));
      }
    }
  }
  for (Conn& c : conns) close(c.fd);
}

void MetricsServer::SetServingState(std::shared_ptr<const std::atomic<bool>> serving) {
  serving_.store(std::move(serving));
}

bool MetricsServer::Serving() const {
  auto serving = serving_.load();
  return !serving || serving->load(std::memory_order_relaxed);
}

}  // namespace tg::metrics
