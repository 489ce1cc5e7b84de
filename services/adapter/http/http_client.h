#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tg::adapter::http {

// Outbound HTTP for tg-adapter: one streaming call to a provider. The seam
// between the Invoke service and the network (CurlHttpClient in production,
// a fake in tests).

using HeaderList = std::vector<std::pair<std::string, std::string>>;

// Defaults suit LLM calls: a reasoning model may think for a minute before its
// first byte, and a long answer may stream for minutes.
struct HttpTimeouts {
  // TCP + TLS handshake with the provider.
  std::chrono::milliseconds connect{5000};
  // From the start of the transfer (connect included) until the response
  // head has arrived.
  std::chrono::milliseconds first_byte{60000};
  // Longest silence between two reads once the head has arrived. Time spent
  // paused by the caller (a slow client) is not silence and does not count.
  std::chrono::milliseconds idle{30000};
  // The whole transfer, pauses included.
  std::chrono::milliseconds total{600000};
};

struct HttpRequest {
  std::string method = "POST";
  std::string url;  // http:// or https://; credentials belong in headers, not here
  // Sent exactly as given (nothing is added but Host, Content-Length and
  // Accept, which SigV4 does not need signed): set Content-Type yourself.
  HeaderList headers;
  std::string body;
  std::optional<HttpTimeouts> timeouts;  // the client's defaults when unset
  // The one deliberate exception to the egress policy: the Azure IMDS token
  // request may connect to link-local and metadata addresses. Never set from
  // configuration.
  bool metadata_call = false;
};

struct HttpResponseHead {
  int status = 0;
  std::string version;  // "1.1" | "2"
  HeaderList headers;   // as received (HTTP/2 names are lower-case)

  // First value of `name`, case-insensitively; "" when absent.
  std::string Header(std::string_view name) const;
};

enum class HttpErrorKind {
  kNone = 0,
  kConnect,    // DNS, TCP or TLS (certificate included) failed: nothing was sent
  kTimeout,    // one of HttpTimeouts ran out; see TimeoutPhase
  kCancelled,  // Cancel(), or the client shut down
  kProtocol,   // the connection broke or the peer spoke something that is not HTTP
  kRefused,    // the egress policy refused the URL or the address it resolved to: nothing sent
};
std::string_view HttpErrorKindName(HttpErrorKind kind);

enum class TimeoutPhase { kNone = 0, kConnect, kFirstByte, kIdle, kTotal };
std::string_view TimeoutPhaseName(TimeoutPhase phase);

struct HttpResult {
  HttpErrorKind error = HttpErrorKind::kNone;
  TimeoutPhase timeout = TimeoutPhase::kNone;  // set with kTimeout
  std::string message;                         // libcurl's explanation; no headers, no credentials
  bool head_received = false;
  uint64_t body_bytes = 0;  // delivered to OnBody
  long new_connections =
      0;  // connections opened for this transfer (0: a kept-alive one was reused)

  bool ok() const { return error == HttpErrorKind::kNone; }
};

// Receives one response. All calls come from the client's event loop thread,
// in order: OnHead (at most once, for the final non-1xx head), OnBody (zero
// or more), then OnDone exactly once. They must be quick and must not block:
// hand work elsewhere, and Pause() when the consumer falls behind.
class HttpStreamHandler {
 public:
  virtual ~HttpStreamHandler() = default;
  virtual void OnHead(const HttpResponseHead& head) = 0;
  virtual void OnBody(std::string_view chunk) = 0;
  virtual void OnDone(const HttpResult& result) = 0;
};

// Control of one running transfer. Every method may be called from any
// thread, any number of times, even after the transfer ended (then a no-op).
class HttpTransfer {
 public:
  virtual ~HttpTransfer() = default;
  // Backpressure: no OnBody after the current one until Resume(). The
  // socket is no longer read, so the provider's writes stall in TCP instead
  // of piling up in memory (libcurl keeps at most what it already read; over
  // HTTP/2, up to its per-stream window). Called inside OnBody it takes
  // effect at once; from another thread, within one loop iteration.
  virtual void Pause() = 0;
  virtual void Resume() = 0;
  // Aborts the transfer and closes its connection (the provider sees the
  // disconnect); OnDone(kCancelled) follows unless the transfer had already
  // ended. An OnBody running at that moment on the loop thread still completes.
  virtual void Cancel() = 0;
};

class HttpClient {
 public:
  virtual ~HttpClient() = default;
  // Starts `request`; `handler` receives the response. The returned handle
  // may be dropped without affecting the transfer. When the request cannot
  // start (client shutting down, bad URL), OnDone may run before Start returns.
  virtual std::shared_ptr<HttpTransfer> Start(HttpRequest request,
                                              std::shared_ptr<HttpStreamHandler> handler) = 0;
};

// A whole response, for unary calls (non-streamed completions, IMDS tokens).
struct HttpResponse {
  HttpResponseHead head;
  std::string body;
  HttpResult result;
};

// Buffers the body, at most `max_body_bytes` (more cancels the transfer and
// ends it as kProtocol): a misbehaving provider must not exhaust memory.
std::future<HttpResponse> Fetch(HttpClient& client, HttpRequest request,
                                size_t max_body_bytes = 64 * 1024 * 1024);

}  // namespace tg::adapter::http
