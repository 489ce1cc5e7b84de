#include "tg/common/metrics_server.h"

#include <exception>

#include "tg/common/log.h"

namespace tg::metrics {

class MetricsServer::Handler final : public web::HttpHandler {
 public:
  explicit Handler(Registry* registry) : registry_(registry) {}

  void Handle(web::HttpRequest request, web::HttpResponder respond) override {
    // The server leaves the body out of a HEAD answer.
    if (request.method != "GET" && request.method != "HEAD") {
      web::HttpResponse r = Plain(405, "method not allowed\n");
      r.headers.emplace_back("Allow", "GET, HEAD");
      return respond(std::move(r));
    }
    if (request.path == "/metrics") {
      web::HttpResponse r;
      try {
        r.body = registry_->Render();
      } catch (const std::exception& e) {
        log::Error("metrics render failed", {{"error", e.what()}});
        return respond(Plain(500, "render failed\n"));
      }
      r.headers.emplace_back("Content-Type", "text/plain; version=0.0.4; charset=utf-8");
      r.close = true;
      return respond(std::move(r));
    }
    if (request.path == "/healthz") {
      return respond(Serving() ? Plain(200, "ok") : Plain(503, "not serving"));
    }
    respond(Plain(404, "not found\n"));
  }

  void SetServingState(std::shared_ptr<const std::atomic<bool>> serving) {
    serving_.store(std::move(serving));
  }

 private:
  static web::HttpResponse Plain(int status, std::string body) {
    web::HttpResponse r;
    r.status = status;
    r.headers.emplace_back("Content-Type", "text/plain; charset=utf-8");
    r.body = std::move(body);
    r.close = true;  // scrapers and probes connect per request
    return r;
  }

  bool Serving() const {
    auto s = serving_.load();
    return s == nullptr || s->load();
  }

  Registry* const registry_;
  std::atomic<std::shared_ptr<const std::atomic<bool>>> serving_;
};

std::unique_ptr<MetricsServer> MetricsServer::Start(const MetricsServerOptions& options,
                                                    std::string* error, Registry* registry) {
  error->clear();
  if (options.listen.empty() || options.listen == "off") return nullptr;
  web::HttpServerOptions http;
  http.name = "metrics";
  http.listen = options.listen;
  http.io_threads = 1;
  http.body_limit = 4096;  // GET and HEAD only: a body is refused, not read
  http.header_limit = 8 * 1024;
  http.idle_timeout = std::chrono::milliseconds(options.read_timeout_ms);
  http.write_timeout = std::chrono::milliseconds(options.read_timeout_ms);
  http.shutdown_grace = std::chrono::milliseconds(200);
  http.access_log = false;
  std::unique_ptr<MetricsServer> server(new MetricsServer());
  server->handler_ = std::make_unique<Handler>(registry);
  server->server_ = web::HttpServer::Start(http, server->handler_.get(), error);
  if (!server->server_) {
    *error = "metrics: " + *error;
    return nullptr;
  }
  server->port_ = server->server_->port();
  return server;
}

MetricsServer::~MetricsServer() { Stop(); }

void MetricsServer::Stop() {
  if (server_) server_->Stop();
}

void MetricsServer::SetServingState(std::shared_ptr<const std::atomic<bool>> serving) {
  handler_->SetServingState(std::move(serving));
}

}  // namespace tg::metrics
