#include "tg/adapter/http/http_client.h"

#include <cctype>
#include <mutex>

namespace tg::adapter::http {
namespace {

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

// Collects one response for Fetch.
class BufferingHandler final : public HttpStreamHandler {
 public:
  explicit BufferingHandler(size_t max_body_bytes) : max_body_bytes_(max_body_bytes) {}

  std::future<HttpResponse> future() { return promise_.get_future(); }

  // Start returns the handle after the loop may already have called us.
  void SetTransfer(const std::shared_ptr<HttpTransfer>& transfer) {
    std::lock_guard<std::mutex> lock(mu_);
    transfer_ = transfer;
    if (overflow_) transfer->Cancel();
  }

  void OnHead(const HttpResponseHead& head) override { response_.head = head; }

  void OnBody(std::string_view chunk) override {
    if (overflow_) return;
    if (response_.body.size() + chunk.size() > max_body_bytes_) {
      std::lock_guard<std::mutex> lock(mu_);
      overflow_ = true;
      if (auto t = transfer_.lock()) t->Cancel();
      return;
    }
    response_.body.append(chunk);
  }

  void OnDone(const HttpResult& result) override {
    response_.result = result;
    if (overflow_) {
      response_.result.error = HttpErrorKind::kProtocol;
      response_.result.message =
          "response body larger than " + std::to_string(max_body_bytes_) + " bytes";
    }
    promise_.set_value(std::move(response_));
  }

 private:
  const size_t max_body_bytes_;
  std::promise<HttpResponse> promise_;
  HttpResponse response_;
  std::mutex mu_;
  std::weak_ptr<HttpTransfer> transfer_;
  bool overflow_ = false;  // written on the loop thread, read under mu_ by SetTransfer
};

}  // namespace

std::string HttpResponseHead::Header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (EqualsIgnoreCase(k, name)) return v;
  }
  return "";
}

std::string_view HttpErrorKindName(HttpErrorKind kind) {
  switch (kind) {
    case HttpErrorKind::kNone:
      return "none";
    case HttpErrorKind::kConnect:
      return "connect";
    case HttpErrorKind::kTimeout:
      return "timeout";
    case HttpErrorKind::kCancelled:
      return "cancelled";
    case HttpErrorKind::kProtocol:
      return "protocol";
    case HttpErrorKind::kRefused:
      return "refused by the egress policy";
  }
  return "unknown";
}

std::string_view TimeoutPhaseName(TimeoutPhase phase) {
  switch (phase) {
    case TimeoutPhase::kNone:
      return "none";
    case TimeoutPhase::kConnect:
      return "connect";
    case TimeoutPhase::kFirstByte:
      return "first_byte";
    case TimeoutPhase::kIdle:
      return "idle";
    case TimeoutPhase::kTotal:
      return "total";
  }
  return "unknown";
}

std::future<HttpResponse> Fetch(HttpClient& client, HttpRequest request, size_t max_body_bytes) {
  auto handler = std::make_shared<BufferingHandler>(max_body_bytes);
  std::future<HttpResponse> future = handler->future();
  handler->SetTransfer(client.Start(std::move(request), handler));
  return future;
}

}  // namespace tg::adapter::http
