#pragma once

// The bounds on hostile input, in one place (docs/OPERATIONS.md, "Limits").
// Every parser of bytes that a client or a provider controls has a depth and
// a size bound, so no request can exhaust a stack or grow a process without
// limit.

#include <cstddef>

#include "tg/common/limits.h"

namespace tg::limits {

// JSON: nesting of arrays and objects. Deeper documents are refused before
// any recursive code (translators, writers, protobuf) sees them.
inline constexpr size_t kMaxJsonDepth = 128;
// JSON: the largest text any parser accepts: the largest proxy body or
// provider answer (limits.h).
inline constexpr size_t kMaxJsonBytes =
    kMaxProviderAnswerBytes > kMaxProxyBodyBytes ? kMaxProviderAnswerBytes : kMaxProxyBodyBytes;

// One Server-Sent Event (its lines together) from a provider. A provider's
// event is a few KiB; a stream whose event never ends is a protocol error.
inline constexpr size_t kMaxSseEventBytes = 1024 * 1024;
// One application/vnd.amazon.eventstream frame (the format allows 16 MiB;
// Bedrock's events are a few KiB) and its header section (the format's 128 KiB).
inline constexpr size_t kMaxEventStreamFrameBytes = 1024 * 1024;
inline constexpr size_t kMaxEventStreamHeaderBytes = 128 * 1024;

// A provider's error body read to report it to the client: the first 64 KiB,
// the rest is not read.
inline constexpr size_t kMaxErrorBodyBytes = 64 * 1024;
// What the edge holds of an attempt's answer while another target may still
// serve the request; beyond it the answer is committed and streams on. A
// whole answer (at most kMaxProviderAnswerBytes, translated to the same
// bound) is always held whole, so it gets a Content-Length.
inline constexpr size_t kMaxHeldAnswerBytes = kMaxProviderAnswerBytes;

}  // namespace tg::limits
