#include <string>

#include "tg/common/trace.h"
#include "trace_internal.h"

// W3C traceparent, the thread's current context, and its propagation in gRPC
// metadata.

namespace tg::trace {

using detail::AllZero;
using detail::AppendHex;
using detail::LowerHexValue;
using detail::ParseHexId;

// ---------------------------------------------------------------------------
// TraceContext and traceparent

bool TraceContext::valid() const { return !AllZero(trace_id) && !AllZero(span_id); }

std::string TraceContext::TraceIdHex() const {
  std::string out;
  out.reserve(32);
  AppendHex(out, trace_id);
  return out;
}

std::string TraceContext::SpanIdHex() const {
  std::string out;
  out.reserve(16);
  AppendHex(out, span_id);
  return out;
}

std::optional<TraceContext> ParseTraceparent(std::string_view header) {
  while (!header.empty() && (header.front() == ' ' || header.front() == '\t')) {
    header.remove_prefix(1);
  }
  while (!header.empty() && (header.back() == ' ' || header.back() == '\t')) {
    header.remove_suffix(1);
  }
  // version "-" trace-id "-" parent-id "-" flags: 2 + 1 + 32 + 1 + 16 + 1 + 2.
  constexpr size_t kLength = 55;
  if (header.size() < kLength) return std::nullopt;
  int v_hi = LowerHexValue(header[0]);
  int v_lo = LowerHexValue(header[1]);
  if (v_hi < 0 || v_lo < 0) return std::nullopt;
  const int version = v_hi << 4 | v_lo;
  if (version == 0xff) return std::nullopt;
  if (version == 0 && header.size() != kLength) return std::nullopt;
  // A future version keeps the version-00 prefix and may add "-" fields.
  if (header.size() > kLength && header[kLength] != '-') return std::nullopt;
  if (header[2] != '-' || header[35] != '-' || header[52] != '-') return std::nullopt;
  TraceContext ctx;
  if (!ParseHexId(header.substr(3, 32), &ctx.trace_id)) return std::nullopt;
  if (!ParseHexId(header.substr(36, 16), &ctx.span_id)) return std::nullopt;
  std::array<uint8_t, 1> flags{};
  if (!ParseHexId(header.substr(53, 2), &flags)) return std::nullopt;
  if (!ctx.valid()) return std::nullopt;
  ctx.sampled = (flags[0] & 0x01) != 0;
  return ctx;
}

std::string FormatTraceparent(const TraceContext& ctx) {
  std::string out;
  out.reserve(55);
  out += "00-";
  AppendHex(out, ctx.trace_id);
  out += '-';
  AppendHex(out, ctx.span_id);
  out += ctx.sampled ? "-01" : "-00";
  return out;
}

// ---------------------------------------------------------------------------
// gRPC propagation

namespace {
constexpr char kTraceparentKey[] = "traceparent";
}  // namespace

namespace {
thread_local std::optional<TraceContext> t_current;
}  // namespace

std::optional<TraceContext> CurrentContext() { return t_current; }

ScopedContext::ScopedContext(const std::optional<TraceContext>& ctx) : previous_(t_current) {
  t_current = ctx;
}

ScopedContext::~ScopedContext() { t_current = previous_; }

void Inject(const TraceContext& ctx, grpc::ClientContext* client) {
  if (client == nullptr || !ctx.valid()) return;
  client->AddMetadata(kTraceparentKey, FormatTraceparent(ctx));
}

std::optional<TraceContext> Extract(
    const std::multimap<grpc::string_ref, grpc::string_ref>& metadata) {
  auto it = metadata.find(grpc::string_ref(kTraceparentKey));
  if (it == metadata.end()) return std::nullopt;
  return ParseTraceparent(std::string_view(it->second.data(), it->second.size()));
}

std::optional<TraceContext> Extract(const grpc::ServerContextBase* server) {
  if (server == nullptr) return std::nullopt;
  return Extract(server->client_metadata());
}

}  // namespace tg::trace
