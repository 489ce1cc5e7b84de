#include "tg/edge/attempt_verdict.h"

#include <utility>

namespace tg::edge {
namespace {

const char* CodeName(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK:
      return "OK";
    case grpc::StatusCode::CANCELLED:
      return "CANCELLED";
    case grpc::StatusCode::UNKNOWN:
      return "UNKNOWN";
    case grpc::StatusCode::INVALID_ARGUMENT:
      return "INVALID_ARGUMENT";
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return "DEADLINE_EXCEEDED";
    case grpc::StatusCode::NOT_FOUND:
      return "NOT_FOUND";
    case grpc::StatusCode::ALREADY_EXISTS:
      return "ALREADY_EXISTS";
    case grpc::StatusCode::PERMISSION_DENIED:
      return "PERMISSION_DENIED";
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return "RESOURCE_EXHAUSTED";
    case grpc::StatusCode::FAILED_PRECONDITION:
      return "FAILED_PRECONDITION";
    case grpc::StatusCode::ABORTED:
      return "ABORTED";
    case grpc::StatusCode::OUT_OF_RANGE:
      return "OUT_OF_RANGE";
    case grpc::StatusCode::UNIMPLEMENTED:
      return "UNIMPLEMENTED";
    case grpc::StatusCode::INTERNAL:
      return "INTERNAL";
    case grpc::StatusCode::UNAVAILABLE:
      return "UNAVAILABLE";
    case grpc::StatusCode::DATA_LOSS:
      return "DATA_LOSS";
    case grpc::StatusCode::UNAUTHENTICATED:
      return "UNAUTHENTICATED";
    default:
      return "UNKNOWN";
  }
}

AttemptVerdict Answer(int status, std::string message, tg::v1::Outcome outcome,
                      std::string reason) {
  return AttemptVerdict{false, status, std::move(message), outcome, std::move(reason)};
}

}  // namespace

AttemptVerdict ClassifyInvokeStatus(const grpc::Status& status, bool received_event) {
  switch (status.error_code()) {
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return Answer(504, "upstream timed out", tg::v1::OUTCOME_TIMEOUT, "timeout");
    case grpc::StatusCode::UNAVAILABLE:
      // Nothing arrived: the adapter (or the connection to it) was not there,
      // and another adapter replica may serve the next attempt. Something
      // arrived: the adapter had the request and the provider may have been
      // called; a second call is not ours to make.
      if (!received_event) {
        return AttemptVerdict{true, 502, "adapter unavailable", tg::v1::OUTCOME_CANCELLED,
                              "adapter"};
      }
      return Answer(502, "adapter connection lost during the answer", tg::v1::OUTCOME_CANCELLED,
                    "adapter");
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      // A message over limits::kMaxGrpcMessageBytes: in practice the answer.
      return Answer(502, "provider answer too large", tg::v1::OUTCOME_CANCELLED, "too_large");
    case grpc::StatusCode::CANCELLED:
      // Not ours (the caller's cancellation is handled before): the adapter
      // ended the call, e.g. shutting down past its grace period.
      return Answer(502, "adapter ended the call", tg::v1::OUTCOME_CANCELLED, "adapter");
    case grpc::StatusCode::OK:
      return Answer(502, "adapter ended without an answer", tg::v1::OUTCOME_CANCELLED, "adapter");
    case grpc::StatusCode::INTERNAL:
    case grpc::StatusCode::UNKNOWN:
    case grpc::StatusCode::DATA_LOSS:
      // Typically a message that did not (de)serialize on one side.
      return Answer(502, std::string("adapter error (") + CodeName(status.error_code()) + ")",
                    tg::v1::OUTCOME_CANCELLED, "adapter");
    default:
      // The adapter refused the call itself (INVALID_ARGUMENT, UNIMPLEMENTED,
      // PERMISSION_DENIED, …): the gateway's own fault, the same everywhere.
      return Answer(
          500,
          std::string("gateway internal error (adapter: ") + CodeName(status.error_code()) + ")",
          tg::v1::OUTCOME_CANCELLED, "internal");
  }
}

bool MayFailOver(const tg::v1::ProviderError& error, bool body_started, bool passthrough) {
  if (!error.retryable() || body_started) return false;
  if (!passthrough) return true;
  return error.kind() == tg::v1::ProviderError::KIND_CONNECT ||
         error.kind() == tg::v1::ProviderError::KIND_TIMEOUT;
}

}  // namespace tg::edge
