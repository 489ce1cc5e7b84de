#pragma once

#include <grpcpp/grpcpp.h>

#include <string>

#include "tg/v1/adapter.pb.h"
#include "tg/v1/balancer.pb.h"

namespace tg::edge {

// What the proxy does with an Invoke attempt that did not end in an answer
// from the adapter: fail over to another target, or answer the client now.
//
// The rule: only a failure that cannot have cost a provider call (the
// adapter unreachable before anything arrived) or that the adapter itself
// classified as the provider's (an End with a retryable error, nothing sent)
// fails over. Local errors (a message over the size limit, a message that
// does not (de)serialize, a request the adapter refuses, an adapter that ends
// the call half way) answer the client once: trying the next target would
// only call, and bill, another provider for the same failure.
struct AttemptVerdict {
  bool fail_over = false;
  int http_status = 0;  // the answer when not failing over (or when no target is left)
  std::string message;  // its message; never the adapter's own words (they may name hosts)
  // For the balancer; CANCELLED: neither the target's success nor its failure.
  tg::v1::Outcome outcome = tg::v1::OUTCOME_CANCELLED;
  std::string reason;  // bounded label for metrics, span events and logs
};

// The adapter ended the call with a gRPC status and no End event.
// `received_event`: some event of this attempt arrived before the status
// (the adapter had the request, so a provider may have been called).
AttemptVerdict ClassifyInvokeStatus(const grpc::Status& status, bool received_event);

// The adapter's End carried an error (its verdict on the provider). Fails
// over when the adapter marked it retryable and nothing reached the client;
// for a plain reverse proxy (no provider) only when no answer came at all
// (connect error, timeout).
bool MayFailOver(const tg::v1::ProviderError& error, bool body_started, bool passthrough);

}  // namespace tg::edge
