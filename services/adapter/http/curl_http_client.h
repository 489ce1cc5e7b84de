#pragma once

#include <memory>
#include <string>

#include "tg/adapter/http/http_client.h"
#include "tg/common/egress.h"

namespace tg::adapter::http {

struct CurlHttpClientOptions {
  HttpTimeouts timeouts;  // defaults for requests that bring none
  // Offer HTTP/2 over TLS (ALPN); plain http:// stays HTTP/1.1. Concurrent
  // streams to one provider then share one connection.
  bool http2 = true;
  long max_connections_per_host = 0;  // 0: unlimited
  // Idle keep-alive connections kept for reuse across all hosts; 0: libcurl's
  // default, 4 x the number of transfers running, which shrinks whenever
  // concurrency dips and so closes connections a moment before they are
  // needed again (measured: about one provider request in ten opened a new
  // connection under steady load).
  long max_idle_connections = 256;
  std::string ca_file;  // "" uses the system trust store; TLS is always verified
  std::string user_agent = "tg-adapter";
  // Where transfers may connect, checked on every address a connection is
  // opened to (after DNS: a name resolving to a refused address is refused,
  // so DNS rebinding gains nothing). Link-local and metadata addresses are
  // refused whatever this says (HttpRequest::metadata_call aside); loopback
  // and private ranges only when allow_private.
  egress::Policy egress;
};

// HttpClient on libcurl's multi interface, driven by its own event loop
// thread (epoll + curl_multi_socket_action): thousands of concurrent streams
// cost one thread. Connections are kept alive and reused per host (and
// multiplexed with HTTP/2). Proxies come from libcurl's standard environment
// variables (https_proxy, http_proxy, no_proxy), nothing else (with a proxy,
// the egress check sees the proxy's address). Only http and https, never a
// redirect; a URL with user info or a fragment is refused before any I/O.
//
// Thread-safety: Start and every HttpTransfer method may be called from any
// thread; they are marshalled onto the loop thread.
class CurlHttpClient final : public HttpClient {
 public:
  explicit CurlHttpClient(CurlHttpClientOptions options = {});
  // Cancels every transfer still running (each gets OnDone(kCancelled)) and
  // joins the loop thread. Must not be called from a handler.
  ~CurlHttpClient() override;
  CurlHttpClient(const CurlHttpClient&) = delete;
  CurlHttpClient& operator=(const CurlHttpClient&) = delete;

  std::shared_ptr<HttpTransfer> Start(HttpRequest request,
                                      std::shared_ptr<HttpStreamHandler> handler) override;

  // Transfers started and not yet done (for tests and metrics).
  size_t active_transfers() const;

  class Loop;  // internal; public only so that the implementation file can name it

 private:
  std::shared_ptr<Loop> loop_;
};

}  // namespace tg::adapter::http
