// AttemptVerdict: which failed Invoke attempts fail over to another target.
// Local errors must never fail over (each failover calls, and bills, another
// provider for the same request).
#include <gtest/gtest.h>

#include "tg/edge/attempt_verdict.h"

namespace tg::edge {
namespace {

using grpc::Status;
using grpc::StatusCode;

TEST(AttemptVerdict, AdapterUnreachableBeforeAnythingArrivedFailsOver) {
  auto v = ClassifyInvokeStatus(Status(StatusCode::UNAVAILABLE, "connection refused"), false);
  EXPECT_TRUE(v.fail_over);
  EXPECT_EQ(v.http_status, 502);
  EXPECT_EQ(v.message, "adapter unavailable");
  EXPECT_EQ(v.outcome, tg::v1::OUTCOME_CANCELLED) << "not the target's fault";
}

TEST(AttemptVerdict, AdapterLostAfterAnEventAnswersOnce) {
  auto v = ClassifyInvokeStatus(Status(StatusCode::UNAVAILABLE, "socket closed"), true);
  EXPECT_FALSE(v.fail_over);
  EXPECT_EQ(v.http_status, 502);
}

TEST(AttemptVerdict, MessageTooLargeIsALocalErrorNeverAFailover) {
  for (bool received : {false, true}) {
    auto v = ClassifyInvokeStatus(
        Status(StatusCode::RESOURCE_EXHAUSTED, "Received message larger than max"), received);
    EXPECT_FALSE(v.fail_over);
    EXPECT_EQ(v.http_status, 502);
    EXPECT_EQ(v.message, "provider answer too large");
    EXPECT_EQ(v.reason, "too_large");
  }
}

TEST(AttemptVerdict, SerializationFailuresAnswerOnceWithoutTheAdaptersWords) {
  for (auto code : {StatusCode::INTERNAL, StatusCode::UNKNOWN, StatusCode::DATA_LOSS}) {
    auto v = ClassifyInvokeStatus(Status(code, "Failed to parse at 10.0.0.7:50054"), false);
    EXPECT_FALSE(v.fail_over) << v.message;
    EXPECT_EQ(v.http_status, 502);
    EXPECT_EQ(v.message.find("10.0.0.7"), std::string::npos) << v.message;
  }
  EXPECT_EQ(ClassifyInvokeStatus(Status(StatusCode::INTERNAL, "x"), false).message,
            "adapter error (INTERNAL)");
}

TEST(AttemptVerdict, RefusedCallsAreTheGatewaysOwnFault) {
  for (auto code :
       {StatusCode::INVALID_ARGUMENT, StatusCode::UNIMPLEMENTED, StatusCode::PERMISSION_DENIED,
        StatusCode::UNAUTHENTICATED, StatusCode::FAILED_PRECONDITION, StatusCode::NOT_FOUND}) {
    auto v = ClassifyInvokeStatus(Status(code, "no"), false);
    EXPECT_FALSE(v.fail_over) << v.message;
    EXPECT_EQ(v.http_status, 500) << v.message;
  }
  EXPECT_EQ(ClassifyInvokeStatus(Status(StatusCode::INVALID_ARGUMENT, "no"), false).message,
            "gateway internal error (adapter: INVALID_ARGUMENT)");
}

TEST(AttemptVerdict, DeadlineIsATimeoutAnsweredOnce) {
  auto v = ClassifyInvokeStatus(Status(StatusCode::DEADLINE_EXCEEDED, ""), false);
  EXPECT_FALSE(v.fail_over);
  EXPECT_EQ(v.http_status, 504);
  EXPECT_EQ(v.outcome, tg::v1::OUTCOME_TIMEOUT);
}

TEST(AttemptVerdict, AdapterCancellingOrEndingWithoutAnEndAnswersOnce) {
  EXPECT_FALSE(ClassifyInvokeStatus(Status(StatusCode::CANCELLED, ""), false).fail_over);
  EXPECT_FALSE(ClassifyInvokeStatus(Status::OK, true).fail_over);
  EXPECT_EQ(ClassifyInvokeStatus(Status::OK, true).http_status, 502);
}

tg::v1::ProviderError Error(tg::v1::ProviderError::Kind kind, int status, bool retryable) {
  tg::v1::ProviderError e;
  e.set_kind(kind);
  e.set_http_status(status);
  e.set_retryable(retryable);
  return e;
}

TEST(AttemptVerdict, ProviderFailuresFailOverWhenTheAdapterSaysRetryable) {
  using K = tg::v1::ProviderError;
  EXPECT_TRUE(MayFailOver(Error(K::KIND_HTTP, 503, true), false, false));
  EXPECT_TRUE(MayFailOver(Error(K::KIND_HTTP, 429, true), false, false));
  EXPECT_TRUE(MayFailOver(Error(K::KIND_CONNECT, 502, true), false, false));
  EXPECT_FALSE(MayFailOver(Error(K::KIND_HTTP, 400, false), false, false));
  EXPECT_FALSE(MayFailOver(Error(K::KIND_HTTP, 503, true), true, false)) << "bytes were sent";
  // The adapter's "provider answer too large" is not retryable.
  EXPECT_FALSE(MayFailOver(Error(K::KIND_TOO_LARGE, 502, false), false, false));
}

TEST(AttemptVerdict, APlainReverseProxyFailsOverOnlyWithoutAnAnswer) {
  using K = tg::v1::ProviderError;
  EXPECT_TRUE(MayFailOver(Error(K::KIND_CONNECT, 502, true), false, true));
  EXPECT_TRUE(MayFailOver(Error(K::KIND_TIMEOUT, 504, true), false, true));
  EXPECT_FALSE(MayFailOver(Error(K::KIND_HTTP, 503, true), false, true));
}

}  // namespace
}  // namespace tg::edge
