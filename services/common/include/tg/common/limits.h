#pragma once

#include <cstddef>

// The size policy of the gateway, in one place: what each hop accepts and
// why each limit covers the one before it. docs/OPERATIONS.md ("Limits")
// lists the same figures for operators.
//
//   client --HTTP body <= kMaxProxyBodyBytes--> tg-edge
//   tg-edge --InvokeRequest (body + headers + target)--> tg-adapter
//   provider --non-streamed answer <= kMaxProviderAnswerBytes--> tg-adapter
//   tg-adapter --InvokeEvent (answer in the client's format)--> tg-edge
//   tg-config --WatchEvent (a snapshot part or one change)--> every service
//
// Every gRPC channel and server receives and sends messages up to
// kMaxGrpcMessageBytes: the largest body or answer plus room for what travels
// with it. gRPC's own default receive limit (4 MiB) is what made a 5 MiB
// answer look like a failed adapter.
namespace tg::limits {

inline constexpr size_t kMiB = 1024 * 1024;

// The largest non-streamed provider answer tg-adapter reads. A larger one is
// refused while it arrives (the transfer is cancelled, nothing more is read)
// with 502 "provider answer too large", and never retried on another target:
// the same request would produce the same answer, billed again. The answer
// translated to the client's format is held to the same bound.
inline constexpr size_t kMaxProviderAnswerBytes = 32 * kMiB;

// The upper bound of tg-edge's --proxy-body-limit (default 10 MiB): a client
// body larger than this could not travel to tg-adapter in one InvokeRequest.
inline constexpr size_t kMaxProxyBodyBytes = 32 * kMiB;

// What a message carries besides the body or answer: the forwarded headers,
// the target, the response head, usage and end.
inline constexpr size_t kGrpcMessageOverheadBytes = 1 * kMiB;

// Every channel's and server's receive (and send) limit.
inline constexpr size_t kMaxGrpcMessageBytes =
    (kMaxProviderAnswerBytes > kMaxProxyBodyBytes ? kMaxProviderAnswerBytes : kMaxProxyBodyBytes) +
    kGrpcMessageOverheadBytes;

// tg-config's Watch sends a snapshot whose encoding is larger than this as
// several `snapshot_part` messages of about this size (whole entities each),
// so a configuration of any size loads. Below gRPC's default 4 MiB, so even
// a peer with default channel arguments reads every part.
inline constexpr size_t kWatchPartBytes = 1 * kMiB;

// tg-config's admin writes carry one entity; tg-edge's admin listener takes
// bodies up to 1 MiB. An entity this size still fits in one Watch message.
inline constexpr size_t kMaxConfigEntityBytes = 8 * kMiB;

static_assert(kMaxProxyBodyBytes + kGrpcMessageOverheadBytes <= kMaxGrpcMessageBytes);
static_assert(kMaxProviderAnswerBytes + kGrpcMessageOverheadBytes <= kMaxGrpcMessageBytes);
static_assert(kMaxConfigEntityBytes + kGrpcMessageOverheadBytes <= kMaxGrpcMessageBytes);
static_assert(kWatchPartBytes < 4 * kMiB);
static_assert(kMaxGrpcMessageBytes < 2048 * kMiB, "gRPC takes an int");

}  // namespace tg::limits
