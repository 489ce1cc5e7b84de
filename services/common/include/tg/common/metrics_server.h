#pragma once

// The Prometheus listener: GET (or HEAD) /metrics and /healthz, one answer
// per connection (Connection: close), on the shared HTTP server
// (tg/common/http_server.h) with one io thread. A connection that has not
// sent its request within read_timeout_ms is closed; rendering happens on the
// io thread (a scrape is microseconds to a few milliseconds of formatting).

#include <atomic>
#include <memory>
#include <string>

#include "tg/common/http_server.h"
#include "tg/common/metrics.h"

namespace tg::metrics {

struct MetricsServerOptions {
  // host:port, [v6]:port or :port (all IPv4 interfaces); port 0 picks a free
  // one. "" or "off" disables the server.
  std::string listen = "0.0.0.0:9090";
  // A connection not done (request read and response written) by then is closed.
  int read_timeout_ms = 5000;
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
  class Handler;
  MetricsServer() = default;

  std::unique_ptr<Handler> handler_;
  std::unique_ptr<web::HttpServer> server_;
  int port_ = 0;
};

}  // namespace tg::metrics
