#pragma once

#include <string>
#include <utility>
#include <variant>

namespace tg::adapter::translate {

// Mirrors tg.v1.ProviderError.Kind for the cases translation can produce, plus
// kInvalidRequest for a client body that cannot be understood at all.
enum class ErrorKind {
  kHttp,            // the provider answered an error status
  kProtocol,        // the provider answered something unparseable
  kStreamBroken,    // the stream ended without its terminator
  kInvalidRequest,  // the client's body (or its combination with a target) is unusable
};

// Every failure of this layer is a value of this type (no exceptions).
struct AdapterError {
  ErrorKind kind = ErrorKind::kHttp;
  int http_status = 0;  // the provider's status; 502 for protocol/stream errors
  bool retryable = false;
  std::string type;     // the provider's error type or code when given ("rate_limit_error")
  std::string message;  // what the provider said; never credentials
  // The prompt does not fit the model's context (a 400/413 that a model with
  // a larger context may serve: the edge fails over to another model only).
  bool context_length = false;
};

// Connect, timeout, 5xx (529 included) and 429 are worth another target.
inline bool IsRetryableStatus(int status) { return status == 429 || status >= 500; }

inline AdapterError InvalidRequest(std::string message) {
  return AdapterError{ErrorKind::kInvalidRequest, 400, false, "invalid_request_error",
                      std::move(message)};
}

inline AdapterError ProtocolError(std::string message) {
  return AdapterError{ErrorKind::kProtocol, 502, true, "bad_response", std::move(message)};
}

// A value or an AdapterError.
template <typename T>
class Result {
 public:
  Result(T value) : v_(std::move(value)) {}             // NOLINT(google-explicit-constructor)
  Result(AdapterError error) : v_(std::move(error)) {}  // NOLINT(google-explicit-constructor)

  bool ok() const { return v_.index() == 0; }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  const AdapterError& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, AdapterError> v_;
};

}  // namespace tg::adapter::translate
