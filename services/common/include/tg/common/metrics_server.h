#pragma once

// A minimal HTTP/1.1 server for Prometheus scrapes: GET /metrics and
// GET /healthz, one response per connection (Connection: close).
//
// One thread runs a poll loop over the listening socket and every open
// connection, all non-blocking, so an idle or slow client never holds up
// another; each connection has a deadline (read_timeout_ms) after which it is
// closed. Rendering happens on that thread (a scrape is microseconds to a few
// milliseconds of formatting).

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "tg/common/metrics.h"

namespace tg::metrics {

struct MetricsServerOptions {
  // host:port, [v6]:port or :port (all IPv4 interfaces); port 0 picks a free
  // one. "" or "off" disables the server.
  std::string listen = "0.0.0.0:9090";
  // A connection not done (request read and response written) by then is closed.
  int read_timeout_ms = 5000;
  // Connections served at once; more wait in the kernel's accept queue.
  int max_connections = 64;
};

class MetricsServer {
 public:
  // Binds synchronously, then serves on its own thread. Returns nullptr with
  // `*error` set on failure (bad address, port in use), and nullptr with
  // `*error` empty when options.listen is "" or "off".
  static std::unique_ptr<MetricsServer> Start(const MetricsServerOptions& options,
                                              std::string* error,
                                              Registry* registry = &Registry::Default());
  ~MetricsServer();  // Stop()
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  // The bound port (the real one when listen asked for port 0).
  int port() const { return port_; }

  // Closes the listener and every connection and joins the thread; idempotent.
  void Stop();

  // From now on /healthz answers 200 "ok" while *serving is true and 503 "not
  // serving" otherwise (a service's gRPC server: GrpcServer::serving_state()),
  // so that HTTP probes, which cannot do the gRPC health check over mutual
  // TLS, see the same state. Without it /healthz is always 200.
  void SetServingState(std::shared_ptr<const std::atomic<bool>> serving);

 private:
  MetricsServer(int listen_fd, int wake_fd, int port, Registry* registry,
                const MetricsServerOptions& options);
  void Run();
  bool Serving() const;

  int listen_fd_;
  int wake_fd_;  // eventfd: Stop() wakes the poll loop
  const int port_;
  Registry* const registry_;
  const MetricsServerOptions options_;
  std::mutex stop_mu_;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
  std::atomic<std::shared_ptr<const std::atomic<bool>>> serving_;
};

}  // namespace tg::metrics
