#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

// The HTTP/1.1 server of tg-edge (admin API and proxy) and of every
// service's /metrics and /healthz listener.
namespace tg::web {

// A request as the handler sees it: fully read (headers and body), decoupled
// from Beast so handlers and their tests need none of it.
struct HttpRequest {
  std::string method;                                        // as sent, e.g. "GET"
  std::string target;                                        // path and query, as sent
  std::string path;                                          // target before '?'
  std::string query;                                         // target after '?', may be empty
  std::vector<std::pair<std::string, std::string>> headers;  // in arrival order
  std::string body;
  std::string remote;  // "ip:port" of the peer

  // The first header named `name` (case-insensitive), or "" when absent.
  std::string_view Header(std::string_view name) const;
};

struct HttpResponse {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  // Close the connection after this answer even if the client wants keep-alive.
  bool close = false;
};

// Whether `target` is an origin-form request target ("/path?query"), the
// only form the listeners accept: absolute-form ("http://h/p"),
// authority-form ("h:443"), "*" and anything not starting with '/' (such as
// "@host:port/p", which a URL built by concatenation would read as user
// info) are refused with 400, as are control bytes, spaces, a fragment and
// non-ASCII bytes, so none of them can reach an upstream.
bool IsOriginForm(std::string_view target);

// {"error":"<message>"} with Content-Type application/json.
HttpResponse JsonError(int status, std::string_view message);
// `json` as the body with Content-Type application/json.
HttpResponse JsonResponse(int status, std::string json);

// A response body produced piece by piece (SSE streams), sent with chunked
// transfer encoding as the handler writes it. Every method may be called from
// any thread.
class HttpBodyStream {
 public:
  virtual ~HttpBodyStream() = default;
  // Queues `data`; `sent(ok)` runs (on an io thread) once it has been written,
  // or with ok=false once it never will be (the client is gone). Producers
  // keep only a little unsent (see pending_bytes): that is the backpressure
  // that keeps a slow client from making the server buffer a whole answer.
  virtual void Write(std::string data, std::function<void(bool ok)> sent = nullptr) = 0;
  // Ends the body properly (the terminating zero-length chunk).
  virtual void Finish() = 0;
  // Ends the connection without the terminating chunk, so the client can tell
  // a broken answer from a complete one.
  virtual void Abort() = 0;
  virtual size_t pending_bytes() const = 0;
};

// How a handler answers: call it once, from any thread, now or later. Copies
// share one state: the first call wins and later calls are dropped (and
// logged). If every copy is destroyed without a call, the client still gets
// 500 {"error":"internal error"} rather than a connection hanging forever.
class HttpResponder {
 public:
  explicit HttpResponder(std::function<void(HttpResponse)> send);

  using StreamStarter = std::function<std::shared_ptr<HttpBodyStream>(HttpResponse head)>;
  HttpResponder(std::function<void(HttpResponse)> send, StreamStarter start_stream);

  void operator()(HttpResponse response) const;
  // Answers with `head` (status and headers; its body is ignored) and a body
  // streamed through the returned object. Counts as the one answer.
  std::shared_ptr<HttpBodyStream> Stream(HttpResponse head) const;
  bool answered() const;

  // `fn` runs once, on an io thread, if the client goes away before the answer
  // is complete (also mid-stream): the handler then stops its upstream work.
  // Runs at once if that already happened.
  void OnCancel(std::function<void()> fn) const;
  bool cancelled() const;
  // For the server: signals the cancellation. Holds no reference that would
  // keep the request from being reported as dropped.
  std::function<void()> CancelHook() const;

 private:
  struct State;
  std::shared_ptr<State> state_;
};

class HttpHandler {
 public:
  virtual ~HttpHandler() = default;
  // Runs on an io thread: must not block. May throw; the client then gets 500.
  virtual void Handle(HttpRequest request, HttpResponder respond) = 0;
};

struct HttpServerOptions {
  std::string name = "http";                        // names the listener in logs
  std::string listen = "127.0.0.1:0";               // host:port; port 0 picks a free one
  int io_threads = 2;                               // threads running the io_context
  uint64_t body_limit = 1024 * 1024;                // larger bodies get 413 and a close
  uint32_t header_limit = 16 * 1024;                // larger request heads get 431 and a close
  std::chrono::milliseconds idle_timeout{60000};    // keep-alive idle and whole-request read time
  std::chrono::milliseconds write_timeout{30000};   // one response write
  std::chrono::milliseconds shutdown_grace{10000};  // Stop lets in-flight requests finish this long
  bool access_log = true;                           // one log line per request
};

// Returns "" or what is wrong with the options.
std::string ValidateHttpServerOptions(const HttpServerOptions& options);

// "host:port", "[v6]:port" or ":port" (every IPv4 interface; "*" as host
// too) → host and port. false with *error ("listen address \"…\": expected
// host:port", "…: bad port") otherwise.
bool ParseListenAddress(const std::string& listen, std::string* host, std::string* port,
                        std::string* error);

// An HTTP/1.1 server on Boost.Beast: keep-alive, body/header limits, idle
// timeout, graceful stop. Every connection runs on its own strand; a
// response is always written whole, in one async_write, so a client never sees
// half an answer followed by another.
class HttpServer {
 public:
  // nullptr (and *error) when the options are invalid or the address cannot be
  // bound. `handler` must outlive Stop().
  static std::unique_ptr<HttpServer> Start(const HttpServerOptions& options, HttpHandler* handler,
                                           std::string* error);
  ~HttpServer();  // Stop()
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  int port() const;

  // Stops accepting, closes idle connections, lets requests in flight finish
  // (up to shutdown_grace; their answers carry Connection: close), then closes
  // what is left and joins the io threads. The handler is not called after
  // Stop returns. Idempotent.
  void Stop();

  class Impl;

 private:
  explicit HttpServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace tg::web
