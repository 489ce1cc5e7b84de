// Size: one component's tests (tracing: context, sampling, export) in one place.
#include <grpcpp/test/client_context_test_peer.h>
#include <grpcpp/test/server_context_test_spouse.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "fake_otlp_collector.h"
#include "tg/common/trace.h"

namespace tg::trace {
namespace {

using fakes::CollectedSpan;
using fakes::FakeOtlpCollector;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

constexpr char kExample[] = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

const CollectedSpan* FindSpan(const std::vector<CollectedSpan>& spans, const std::string& name) {
  for (const auto& s : spans) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

// A loopback port nothing listens on: bound, then closed.
uint16_t ClosedPort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

// ---------------------------------------------------------------------------
// traceparent

TEST(CurrentContextTest, ScopedContextSetsRestoresAndStaysOnItsThread) {
  EXPECT_FALSE(CurrentContext().has_value());
  auto outer = ParseTraceparent("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
  auto inner = ParseTraceparent("00-0af7651916cd43dd8448eb211c80319c-00f067aa0ba902b7-01");
  ASSERT_TRUE(outer && inner);
  {
    ScopedContext a(outer);
    EXPECT_EQ(CurrentContext()->SpanIdHex(), "b7ad6b7169203331");
    {
      ScopedContext b(inner);
      EXPECT_EQ(CurrentContext()->SpanIdHex(), "00f067aa0ba902b7");
      std::optional<TraceContext> seen_elsewhere = outer;
      std::thread([&] { seen_elsewhere = CurrentContext(); }).join();
      EXPECT_FALSE(seen_elsewhere.has_value());
    }
    EXPECT_EQ(CurrentContext()->SpanIdHex(), "b7ad6b7169203331");
  }
  EXPECT_FALSE(CurrentContext().has_value());
}

TEST(TraceparentTest, ParsesAndFormatsRoundTrip) {
  auto ctx = ParseTraceparent(kExample);
  ASSERT_TRUE(ctx.has_value());
  EXPECT_TRUE(ctx->valid());
  EXPECT_TRUE(ctx->sampled);
  EXPECT_EQ(ctx->TraceIdHex(), "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(ctx->SpanIdHex(), "00f067aa0ba902b7");
  EXPECT_EQ(ctx->trace_id[0], 0x4b);
  EXPECT_EQ(ctx->span_id[7], 0xb7);
  EXPECT_EQ(FormatTraceparent(*ctx), kExample);
}

TEST(TraceparentTest, UnsampledFlag) {
  auto ctx = ParseTraceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00");
  ASSERT_TRUE(ctx.has_value());
  EXPECT_FALSE(ctx->sampled);
  EXPECT_EQ(FormatTraceparent(*ctx), "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00");
  // Only bit 0 means sampled; other flags are not propagated.
  auto other = ParseTraceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03");
  ASSERT_TRUE(other.has_value());
  EXPECT_TRUE(other->sampled);
  EXPECT_TRUE(
      ParseTraceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-02").has_value());
  EXPECT_FALSE(
      ParseTraceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-02")->sampled);
}

TEST(TraceparentTest, IgnoresSurroundingWhitespace) {
  auto ctx = ParseTraceparent(std::string(" \t") + kExample + " ");
  ASSERT_TRUE(ctx.has_value());
  EXPECT_EQ(FormatTraceparent(*ctx), kExample);
}

TEST(TraceparentTest, RejectsMalformed) {
  const char* bad[] = {
      "",
      "00",
      "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",   // version ff
      "00-00000000000000000000000000000000-00f067aa0ba902b7-01",   // zero trace id
      "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",   // zero span id
      "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",   // uppercase trace id
      "00-4bf92f3577b34da6a3ce929d0e0e4736-00F067AA0BA902B7-01",   // uppercase span id
      "0A-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",   // uppercase version
      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0A",   // uppercase flags
      "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",    // trace id too short
      "00-4bf92f3577b34da6a3ce929d0e0e47366-00f067aa0ba902b7-01",  // trace id too long
      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b-01",    // span id too short
      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",    // flags too short
      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-",  // extra for version 00
      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",
      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7_01",  // wrong separator
      "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
      "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",  // not hex
      "0g-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-zz",
      "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",  // future, no '-' after flags
  };
  for (const char* h : bad) {
    EXPECT_FALSE(ParseTraceparent(h).has_value()) << h;
  }
}

TEST(TraceparentTest, AcceptsFutureVersions) {
  auto exact = ParseTraceparent("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
  ASSERT_TRUE(exact.has_value());
  EXPECT_TRUE(exact->sampled);
  auto longer = ParseTraceparent(
      "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00-what-the-future-will-be-like");
  ASSERT_TRUE(longer.has_value());
  EXPECT_FALSE(longer->sampled);
  EXPECT_EQ(longer->TraceIdHex(), "4bf92f3577b34da6a3ce929d0e0e4736");
  // Always re-emitted as version 00.
  EXPECT_EQ(FormatTraceparent(*longer), "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00");
}

TEST(TraceparentTest, DefaultContextIsInvalid) {
  TraceContext ctx;
  EXPECT_FALSE(ctx.valid());
  EXPECT_EQ(ctx.TraceIdHex(), std::string(32, '0'));
  EXPECT_EQ(ctx.SpanIdHex(), std::string(16, '0'));
}

// ---------------------------------------------------------------------------
// gRPC propagation

TEST(PropagationTest, InjectThenExtractThroughMetadata) {
  auto parent = ParseTraceparent(kExample);
  ASSERT_TRUE(parent.has_value());
  grpc::ClientContext client;
  Inject(*parent, &client);
  grpc::testing::ClientContextTestPeer peer(&client);
  std::multimap<std::string, std::string> sent = peer.GetSendInitialMetadata();
  ASSERT_EQ(sent.count("traceparent"), 1u);
  EXPECT_EQ(sent.find("traceparent")->second, kExample);

  std::multimap<grpc::string_ref, grpc::string_ref> received;
  for (const auto& [k, v] : sent) received.emplace(grpc::string_ref(k), grpc::string_ref(v));
  received.emplace("x-other", "value");
  auto extracted = Extract(received);
  ASSERT_TRUE(extracted.has_value());
  EXPECT_EQ(extracted->trace_id, parent->trace_id);
  EXPECT_EQ(extracted->span_id, parent->span_id);
  EXPECT_TRUE(extracted->sampled);
}

TEST(PropagationTest, ExtractFromServerContext) {
  grpc::ServerContext server;
  EXPECT_FALSE(Extract(&server).has_value());
  grpc::testing::ServerContextTestSpouse spouse(&server);
  spouse.AddClientMetadata("traceparent", kExample);
  auto extracted = Extract(&server);
  ASSERT_TRUE(extracted.has_value());
  EXPECT_EQ(FormatTraceparent(*extracted), kExample);
  EXPECT_FALSE(Extract(static_cast<const grpc::ServerContextBase*>(nullptr)).has_value());
  grpc::CallbackServerContext callback;  // what the services' reactors get
  EXPECT_FALSE(Extract(&callback).has_value());
}

TEST(PropagationTest, ExtractRejectsBadOrMissingValues) {
  std::multimap<grpc::string_ref, grpc::string_ref> none;
  EXPECT_FALSE(Extract(none).has_value());
  std::multimap<grpc::string_ref, grpc::string_ref> bad;
  bad.emplace("traceparent", "00-zz");
  EXPECT_FALSE(Extract(bad).has_value());
}

TEST(PropagationTest, InjectSkipsInvalidContext) {
  grpc::ClientContext client;
  Inject(TraceContext{}, &client);
  grpc::testing::ClientContextTestPeer peer(&client);
  EXPECT_EQ(peer.GetSendInitialMetadata().count("traceparent"), 0u);
}

// ---------------------------------------------------------------------------
// Spans and sampling, against a running fake collector.

class TraceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string error;
    ASSERT_TRUE(collector_.Start(&error)) << error;
  }
  void TearDown() override { Shutdown(); }

  TracerOptions Options() {
    TracerOptions o;
    o.service_name = "tg-test";
    o.endpoint = collector_.endpoint();
    o.flush_interval = milliseconds(50);
    return o;
  }

  FakeOtlpCollector collector_;
};

TEST_F(TraceTest, ShutdownWithoutInitIsSafe) {
  Shutdown();
  Shutdown();
  Span span;  // default: a no-op
  EXPECT_FALSE(span.recording());
  EXPECT_FALSE(span.context().valid());
  span.SetAttribute("k", "v");
  span.AddEvent("e");
  span.SetError("x");
  span.End();
}

TEST_F(TraceTest, TracingOffStillCreatesPropagatableContexts) {
  TracerOptions o = Options();
  o.endpoint.clear();
  Init(o);
  Span root = Span::Start("root", SpanKind::kServer, std::nullopt);
  EXPECT_FALSE(root.recording());
  EXPECT_TRUE(root.context().valid());
  EXPECT_TRUE(root.context().sampled);  // the sampler still decides, for services downstream
  Span child = Span::Start("child", SpanKind::kClient, root.context());
  EXPECT_EQ(child.context().trace_id, root.context().trace_id);
  EXPECT_NE(child.context().span_id, root.context().span_id);
  child.SetAttribute("k", 1);
  child.End();
  root.End();
  Shutdown();
  EXPECT_EQ(collector_.requests(), 0u);
  EXPECT_EQ(Stats().exported, 0u);
  EXPECT_EQ(Stats().dropped, 0u);
}

TEST_F(TraceTest, ChildKeepsTraceIdAndPointsAtParent) {
  Init(Options());
  auto remote = ParseTraceparent(kExample);
  Span child = Span::Start("child", SpanKind::kServer, remote);
  EXPECT_TRUE(child.recording());
  EXPECT_EQ(child.context().trace_id, remote->trace_id);
  EXPECT_NE(child.context().span_id, remote->span_id);
  EXPECT_TRUE(child.context().sampled);
  const std::string child_id = child.context().SpanIdHex();
  child.End();
  EXPECT_FALSE(child.recording());
  child.End();  // idempotent
  Shutdown();
  auto spans = collector_.Spans();
  ASSERT_EQ(spans.size(), 1u);
  EXPECT_EQ(spans[0].trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(spans[0].span_id, child_id);
  EXPECT_EQ(spans[0].parent_span_id, "00f067aa0ba902b7");
}

TEST_F(TraceTest, RootsGetFreshIds) {
  Init(Options());
  std::set<std::string> traces;
  std::set<std::string> spans;
  for (int i = 0; i < 1000; ++i) {
    Span s = Span::Start("root", SpanKind::kInternal, std::nullopt);
    ASSERT_TRUE(s.context().valid());
    traces.insert(s.context().TraceIdHex());
    spans.insert(s.context().SpanIdHex());
  }
  EXPECT_EQ(traces.size(), 1000u);
  EXPECT_EQ(spans.size(), 1000u);
  // An invalid parent starts a new trace too.
  Span s = Span::Start("root", SpanKind::kInternal, TraceContext{});
  EXPECT_TRUE(s.context().valid());
  EXPECT_EQ(traces.count(s.context().TraceIdHex()), 0u);
}

TEST_F(TraceTest, RatioZeroDoesNotRecordRootsButKeepsContexts) {
  TracerOptions o = Options();
  o.sample_ratio = 0.0;
  Init(o);
  Span root = Span::Start("root", SpanKind::kServer, std::nullopt);
  EXPECT_FALSE(root.recording());
  EXPECT_TRUE(root.context().valid());
  EXPECT_FALSE(root.context().sampled);
  // Its children follow it: not sampled either.
  Span child = Span::Start("child", SpanKind::kClient, root.context());
  EXPECT_FALSE(child.recording());
  EXPECT_FALSE(child.context().sampled);
  EXPECT_EQ(FormatTraceparent(child.context()).substr(53), "00");
  // Parent-based: a sampled remote parent is recorded whatever the ratio.
  Span sampled = Span::Start("sampled", SpanKind::kServer, ParseTraceparent(kExample));
  EXPECT_TRUE(sampled.recording());
  EXPECT_TRUE(sampled.context().sampled);
}

TEST_F(TraceTest, ParentBasedFollowsUnsampledParent) {
  Init(Options());  // ratio 1
  auto unsampled = ParseTraceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00");
  Span s = Span::Start("s", SpanKind::kServer, unsampled);
  EXPECT_FALSE(s.recording());
  EXPECT_FALSE(s.context().sampled);
  EXPECT_EQ(s.context().trace_id, unsampled->trace_id);
}

TEST_F(TraceTest, NotParentBasedIgnoresParentFlag) {
  TracerOptions o = Options();
  o.parent_based = false;  // always_on
  Init(o);
  auto unsampled = ParseTraceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00");
  EXPECT_TRUE(Span::Start("s", SpanKind::kServer, unsampled).recording());
  Shutdown();
  o.sample_ratio = 0.0;  // always_off
  Init(o);
  EXPECT_FALSE(Span::Start("s", SpanKind::kServer, ParseTraceparent(kExample)).recording());
}

TEST_F(TraceTest, RatioSamplesAboutThatFractionAndAgreesPerTrace) {
  TracerOptions o = Options();
  o.sample_ratio = 0.5;
  o.parent_based = false;  // traceidratio: every span decides from its trace id
  o.endpoint.clear();      // the decision does not depend on exporting
  Init(o);
  constexpr int kN = 10000;
  int sampled = 0;
  for (int i = 0; i < kN; ++i) {
    Span root = Span::Start("r", SpanKind::kInternal, std::nullopt);
    if (root.context().sampled) ++sampled;
    // Another service deciding on the same trace id agrees, whatever the flag says.
    TraceContext parent = root.context();
    parent.sampled = !parent.sampled;
    EXPECT_EQ(Span::Start("c", SpanKind::kInternal, parent).context().sampled,
              root.context().sampled);
  }
  // Binomial(10000, 0.5): standard deviation 50; ±600 is twelve of them.
  EXPECT_GT(sampled, kN / 2 - 600);
  EXPECT_LT(sampled, kN / 2 + 600);
}

TEST_F(TraceTest, IntegerAttributeTypesCompile) {
  Init(Options());
  Span s = Span::Start("types", SpanKind::kInternal, std::nullopt);
  s.SetAttribute("int", 1);
  s.SetAttribute("unsigned", 2u);
  s.SetAttribute("size", size_t{3});
  s.SetAttribute("long long", 4LL);
  s.SetAttribute("int64", int64_t{5});
  s.SetAttribute("float", 1.25f);
  s.SetAttribute("string", std::string("s"));
  s.SetAttribute("literal", "l");
  s.SetAttribute("bool", false);
  s.End();
  Shutdown();
  auto spans = collector_.Spans();
  ASSERT_EQ(spans.size(), 1u);
  const auto& a = spans[0].attributes;
  EXPECT_EQ(a.at("int"), "1");
  EXPECT_EQ(a.at("unsigned"), "2");
  EXPECT_EQ(a.at("size"), "3");
  EXPECT_EQ(a.at("long long"), "4");
  EXPECT_EQ(a.at("int64"), "5");
  EXPECT_EQ(a.at("float"), "1.25");
  EXPECT_EQ(a.at("string"), "s");
  EXPECT_EQ(a.at("literal"), "l");
  EXPECT_EQ(a.at("bool"), "false");
}

// ---------------------------------------------------------------------------
// Export

TEST(OtlpHeadersTest, ParsesTheOtelFormatAndSkipsWhatCannotBeAHeader) {
  auto h = ParseOtlpHeaders(
      " api-key = s%3Dcr%2Cet , x-tenant=acme,,bad name=1,novalue,"
      "x-split=a%0D%0AInjected: yes");
  ASSERT_EQ(h.size(), 2u);
  EXPECT_EQ(h[0], (std::pair<std::string, std::string>{"api-key", "s=cr,et"}));
  EXPECT_EQ(h[1], (std::pair<std::string, std::string>{"x-tenant", "acme"}));
  EXPECT_TRUE(ParseOtlpHeaders("").empty());
}

TEST_F(TraceTest, SendsTheConfiguredHeadersWithEveryExport) {
  TracerOptions o = Options();
  o.headers = {{"x-api-key", "collector-secret"}, {"x-tenant", "acme"}};
  Init(o);
  Span::Start("one", SpanKind::kInternal, std::nullopt).End();
  Shutdown();
  ASSERT_GE(collector_.requests(), 1u);
  for (const auto& v : collector_.HeaderValues("x-api-key")) EXPECT_EQ(v, "collector-secret");
  for (const auto& v : collector_.HeaderValues("x-tenant")) EXPECT_EQ(v, "acme");
  for (const auto& v : collector_.HeaderValues("content-type")) EXPECT_EQ(v, "application/json");
}

TEST_F(TraceTest, ExportsSpansAsOtlpJson) {
  Init(Options());
  Span server = Span::Start("POST /v1/chat/completions", SpanKind::kServer, std::nullopt);
  server.SetAttribute("http.method", "POST");
  server.SetAttribute("http.route", std::string_view("/v1/chat/completions"));
  server.SetAttribute("http.status_code", int64_t{502});
  server.SetAttribute("tg.attempts", 2);
  server.SetAttribute("tg.weight", 1.5);
  server.SetAttribute("tg.stream", true);
  server.SetAttribute("tg.overwritten", "first");
  server.SetAttribute("tg.overwritten", "second");
  server.SetAttribute("quote\"d", "line\nbreak \"and\" \\ tab\t");
  server.AddEvent("retry", {{"tg.target", "openai-1"}, {"tg.reason", "timeout"}});
  server.AddEvent("give up");
  server.SetError("all targets failed: \"HTTP 502\"");
  Span client = Span::Start("tg.v1.Adapter/Invoke", SpanKind::kClient, server.context());
  client.SetOk();
  const std::string trace = server.context().TraceIdHex();
  const std::string server_id = server.context().SpanIdHex();
  const std::string client_id = client.context().SpanIdHex();
  Span internal = Span::Start("unnamed", SpanKind::kInternal, server.context());
  internal.SetName("pick");
  internal.End();
  client.End();
  server.End();
  Shutdown();

  EXPECT_EQ(collector_.bad_requests(), 0u);
  auto spans = collector_.Spans();
  ASSERT_EQ(spans.size(), 3u);
  const CollectedSpan* s = FindSpan(spans, "POST /v1/chat/completions");
  const CollectedSpan* c = FindSpan(spans, "tg.v1.Adapter/Invoke");
  const CollectedSpan* p = FindSpan(spans, "pick");
  ASSERT_NE(s, nullptr);
  ASSERT_NE(c, nullptr);
  ASSERT_NE(p, nullptr);

  EXPECT_EQ(s->service, "tg-test");
  EXPECT_EQ(s->trace_id, trace);
  EXPECT_EQ(s->span_id, server_id);
  EXPECT_EQ(s->parent_span_id, "");
  EXPECT_EQ(s->kind, 2);
  EXPECT_EQ(s->status_code, 2);
  EXPECT_EQ(s->attributes.at("http.method"), "POST");
  EXPECT_EQ(s->attributes.at("http.route"), "/v1/chat/completions");
  EXPECT_EQ(s->attributes.at("http.status_code"), "502");
  EXPECT_EQ(s->attributes.at("tg.attempts"), "2");
  EXPECT_EQ(s->attributes.at("tg.weight"), "1.5");
  EXPECT_EQ(s->attributes.at("tg.stream"), "true");
  EXPECT_EQ(s->attributes.at("tg.overwritten"), "second");
  EXPECT_EQ(s->attributes.at("quote\"d"), "line\nbreak \"and\" \\ tab\t");
  EXPECT_EQ(s->attributes.size(), 8u);
  EXPECT_EQ(s->event_names, (std::vector<std::string>{"retry", "give up"}));
  EXPECT_GT(s->start_ns, 1600000000000000000ull);  // after 2020, in nanoseconds
  EXPECT_LE(s->start_ns, s->end_ns);

  EXPECT_EQ(c->service, "tg-test");
  EXPECT_EQ(c->trace_id, trace);
  EXPECT_EQ(c->span_id, client_id);
  EXPECT_EQ(c->parent_span_id, server_id);
  EXPECT_EQ(c->kind, 3);
  EXPECT_EQ(c->status_code, 1);
  EXPECT_GE(c->start_ns, s->start_ns);
  EXPECT_LE(c->end_ns, s->end_ns);
  EXPECT_EQ(p->kind, 1);
  EXPECT_EQ(p->status_code, 0);

  // The wire format itself: hex ids, decimal-string int64, integer kind, resource.
  std::string all;
  for (const auto& b : collector_.RawBodies()) all += b;
  EXPECT_NE(all.find(R"({"key":"service.name","value":{"stringValue":"tg-test"}})"),
            std::string::npos);
  EXPECT_NE(all.find(R"({"key":"service.namespace","value":{"stringValue":"trustgate"}})"),
            std::string::npos);
  EXPECT_NE(all.find(R"({"key":"telemetry.sdk.language","value":{"stringValue":"cpp"}})"),
            std::string::npos);
  EXPECT_NE(all.find(R"("scope":{"name":"trustgate","version":"1"})"), std::string::npos);
  EXPECT_NE(all.find(R"("traceId":")" + trace + "\""), std::string::npos);
  EXPECT_NE(all.find(R"({"key":"http.status_code","value":{"intValue":"502"}})"),
            std::string::npos);
  EXPECT_NE(all.find(R"({"key":"tg.weight","value":{"doubleValue":1.5}})"), std::string::npos);
  EXPECT_NE(all.find(R"("kind":2)"), std::string::npos);
  EXPECT_NE(all.find(R"("status":{"code":2,"message":"all targets failed: \"HTTP 502\""})"),
            std::string::npos);

  ExporterStats stats = Stats();
  EXPECT_EQ(stats.exported, 3u);
  EXPECT_EQ(stats.dropped, 0u);
  EXPECT_EQ(stats.failed_exports, 0u);
}

TEST_F(TraceTest, ExportsInBackgroundWithoutShutdown) {
  TracerOptions o = Options();
  o.flush_interval = milliseconds(20);
  Init(o);
  Span::Start("background", SpanKind::kInternal, std::nullopt).End();
  auto spans =
      collector_.WaitForSpans([](const auto& s) { return !s.empty(); }, std::chrono::seconds(10));
  ASSERT_EQ(spans.size(), 1u);
  EXPECT_EQ(spans[0].name, "background");
}

TEST_F(TraceTest, FullBatchIsSentBeforeTheInterval) {
  TracerOptions o = Options();
  o.max_batch = 10;
  o.flush_interval = std::chrono::hours(1);
  Init(o);
  for (int i = 0; i < 25; ++i) Span::Start("s", SpanKind::kInternal, std::nullopt).End();
  auto spans = collector_.WaitForSpans([](const auto& s) { return s.size() >= 20; },
                                       std::chrono::seconds(10));
  EXPECT_EQ(spans.size(), 20u);
  EXPECT_EQ(collector_.requests(), 2u);
  Shutdown();  // the remaining 5
  EXPECT_EQ(collector_.Spans().size(), 25u);
  EXPECT_EQ(collector_.requests(), 3u);
  EXPECT_EQ(Stats().exported, 25u);
}

TEST_F(TraceTest, InvalidUtf8AndHugeValuesStillExport) {
  Init(Options());
  Span s = Span::Start("bad \xff name", SpanKind::kInternal, std::nullopt);
  s.SetAttribute("bytes", std::string_view("ok \xc3\x28 \xe2\x82 \xf0\x9f\x98\x80 end"));
  s.SetAttribute("huge", std::string(100000, 'x'));
  s.AddEvent("ev\xc0\xaf", {{"k\xff", "v\xed\xa0\x80"}});
  for (int i = 0; i < 200; ++i) s.SetAttribute("a" + std::to_string(i), i);
  s.End();
  Shutdown();
  EXPECT_EQ(collector_.bad_requests(), 0u);
  auto spans = collector_.Spans();
  ASSERT_EQ(spans.size(), 1u);
  EXPECT_EQ(spans[0].name, "bad \xEF\xBF\xBD name");
  EXPECT_NE(spans[0].attributes.at("bytes").find("\xf0\x9f\x98\x80 end"), std::string::npos);
  EXPECT_EQ(spans[0].attributes.at("huge").size(), 4096u);
  EXPECT_EQ(spans[0].attributes.size(), 128u);
}

TEST_F(TraceTest, CanBeReinitialisedAfterShutdown) {
  for (int round = 0; round < 3; ++round) {
    TracerOptions o = Options();
    o.service_name = "tg-round-" + std::to_string(round);
    Init(o);
    Span::Start("r", SpanKind::kInternal, std::nullopt).End();
    Shutdown();
    EXPECT_EQ(Stats().exported, 1u) << round;  // counters restart at Init
  }
  auto spans = collector_.Spans();
  ASSERT_EQ(spans.size(), 3u);
  EXPECT_EQ(spans[2].service, "tg-round-2");
  // Init while running replaces the tracer.
  Init(Options());
  Init(Options());
  Span::Start("twice", SpanKind::kInternal, std::nullopt).End();
  Shutdown();
  EXPECT_EQ(collector_.Spans().size(), 4u);
}

TEST_F(TraceTest, SpanEndedAfterShutdownIsDropped) {
  Init(Options());
  Span s = Span::Start("late", SpanKind::kInternal, std::nullopt);
  ASSERT_TRUE(s.recording());
  Shutdown();
  s.End();
  EXPECT_EQ(Stats().dropped, 1u);
  EXPECT_TRUE(collector_.Spans().empty());
}

TEST_F(TraceTest, MoveKeepsOneRecordingSpan) {
  Init(Options());
  Span a = Span::Start("a", SpanKind::kInternal, std::nullopt);
  Span b = std::move(a);
  EXPECT_TRUE(b.recording());
  Span c = Span::Start("c", SpanKind::kInternal, std::nullopt);
  c = std::move(b);  // ends "c"
  EXPECT_TRUE(c.recording());
  c.End();
  Shutdown();
  auto spans = collector_.Spans();
  ASSERT_EQ(spans.size(), 2u);
  EXPECT_NE(FindSpan(spans, "a"), nullptr);
  EXPECT_NE(FindSpan(spans, "c"), nullptr);
}

TEST_F(TraceTest, CollectorErrorStatusCountsFailedExport) {
  collector_.SetStatus(503);
  Init(Options());
  for (int i = 0; i < 3; ++i) Span::Start("s", SpanKind::kInternal, std::nullopt).End();
  Shutdown();
  ExporterStats stats = Stats();
  EXPECT_EQ(stats.exported, 0u);
  EXPECT_GE(stats.failed_exports, 1u);
  EXPECT_EQ(stats.dropped, 3u);
  EXPECT_TRUE(collector_.Spans().empty());
  EXPECT_GE(collector_.requests(), 1u);
}

// The request path never waits for the collector: each End() is a push onto
// a bounded queue. A blocking End() would take at least export_timeout
// (500 ms here), so the bound below separates the two with a wide margin on
// a loaded machine.
void ExpectEndNeverBlocks(FakeOtlpCollector* collector, const std::string& endpoint) {
  TracerOptions o;
  o.service_name = "tg-test";
  o.endpoint = endpoint;
  o.max_queue = 10;
  o.max_batch = 5;
  o.flush_interval = milliseconds(5);
  o.export_timeout = milliseconds(500);
  Init(o);
  constexpr int kSpans = 10000;
  Clock::duration worst{0};
  const auto start = Clock::now();
  for (int i = 0; i < kSpans; ++i) {
    Span s = Span::Start("load", SpanKind::kServer, std::nullopt);
    s.SetAttribute("i", i);
    const auto before = Clock::now();
    s.End();
    worst = std::max(worst, Clock::now() - before);
  }
  const auto total = Clock::now() - start;
  EXPECT_LT(worst, milliseconds(100));
  EXPECT_LT(total, std::chrono::seconds(5));

  const auto shutdown_start = Clock::now();
  Shutdown();
  // export_timeout bounds the flush (the slow collector would answer after 3 s).
  EXPECT_LT(Clock::now() - shutdown_start, milliseconds(2500));

  ExporterStats stats = Stats();
  EXPECT_EQ(stats.exported, 0u);
  EXPECT_GT(stats.dropped, static_cast<uint64_t>(kSpans) - 1000);
  EXPECT_EQ(stats.exported + stats.dropped, static_cast<uint64_t>(kSpans));
  EXPECT_GE(stats.failed_exports, 1u);
  if (collector != nullptr) {
    EXPECT_TRUE(collector->Spans().empty());
  }
}

TEST_F(TraceTest, CollectorDownCostsTheRequestPathNothing) {
  ExpectEndNeverBlocks(nullptr, "http://127.0.0.1:" + std::to_string(ClosedPort()) + "/v1/traces");
}

TEST_F(TraceTest, SlowCollectorCostsTheRequestPathNothing) {
  collector_.SetResponseDelay(std::chrono::seconds(3));
  ExpectEndNeverBlocks(&collector_, collector_.endpoint());
  EXPECT_GE(collector_.requests(), 1u);
}

// ---------------------------------------------------------------------------
// Options from the environment

class EnvTest : public ::testing::Test {
 protected:
  static constexpr const char* kVars[] = {"OTEL_SDK_DISABLED",
                                          "OTEL_SERVICE_NAME",
                                          "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                                          "OTEL_EXPORTER_OTLP_ENDPOINT",
                                          "OTEL_TRACES_SAMPLER",
                                          "OTEL_TRACES_SAMPLER_ARG",
                                          "OTEL_BSP_MAX_QUEUE_SIZE",
                                          "OTEL_BSP_MAX_EXPORT_BATCH_SIZE",
                                          "OTEL_BSP_SCHEDULE_DELAY",
                                          "OTEL_BSP_EXPORT_TIMEOUT",
                                          "OTEL_EXPORTER_OTLP_HEADERS",
                                          "OTEL_EXPORTER_OTLP_TRACES_HEADERS"};
  void SetUp() override {
    for (const char* v : kVars) ::unsetenv(v);
  }
  void TearDown() override {
    for (const char* v : kVars) ::unsetenv(v);
  }
};

TEST_F(EnvTest, DefaultsAreOffWithServiceName) {
  TracerOptions o = OptionsFromEnv("tg-edge");
  EXPECT_EQ(o.service_name, "tg-edge");
  EXPECT_EQ(o.endpoint, "");
  EXPECT_EQ(o.sample_ratio, 1.0);
  EXPECT_TRUE(o.parent_based);
  EXPECT_EQ(o.max_queue, 4096u);
  EXPECT_EQ(o.max_batch, 512u);
}

TEST_F(EnvTest, HeadersTracesSpecificFirst) {
  EXPECT_TRUE(OptionsFromEnv("s").headers.empty());
  ::setenv("OTEL_EXPORTER_OTLP_HEADERS", "x-api-key=general", 1);
  ASSERT_EQ(OptionsFromEnv("s").headers.size(), 1u);
  EXPECT_EQ(OptionsFromEnv("s").headers[0].second, "general");
  ::setenv("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "x-api-key=traces", 1);
  EXPECT_EQ(OptionsFromEnv("s").headers[0].second, "traces");
}

TEST_F(EnvTest, Endpoints) {
  ::setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://jaeger:4318", 1);
  EXPECT_EQ(OptionsFromEnv("s").endpoint, "http://jaeger:4318/v1/traces");
  ::setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://jaeger:4318/", 1);
  EXPECT_EQ(OptionsFromEnv("s").endpoint, "http://jaeger:4318/v1/traces");
  ::setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://other:9999/custom", 1);
  EXPECT_EQ(OptionsFromEnv("s").endpoint, "http://other:9999/custom");
  ::setenv("OTEL_SDK_DISABLED", "TRUE", 1);
  EXPECT_EQ(OptionsFromEnv("s").endpoint, "");
  ::setenv("OTEL_SERVICE_NAME", "renamed", 1);
  EXPECT_EQ(OptionsFromEnv("s").service_name, "renamed");
}

TEST_F(EnvTest, Samplers) {
  ::setenv("OTEL_TRACES_SAMPLER_ARG", "0.25", 1);
  TracerOptions o = OptionsFromEnv("s");  // ARG alone: parentbased_traceidratio
  EXPECT_EQ(o.sample_ratio, 0.25);
  EXPECT_TRUE(o.parent_based);
  ::setenv("OTEL_TRACES_SAMPLER", "traceidratio", 1);
  o = OptionsFromEnv("s");
  EXPECT_EQ(o.sample_ratio, 0.25);
  EXPECT_FALSE(o.parent_based);
  ::setenv("OTEL_TRACES_SAMPLER", "always_off", 1);
  o = OptionsFromEnv("s");
  EXPECT_EQ(o.sample_ratio, 0.0);
  EXPECT_FALSE(o.parent_based);
  ::setenv("OTEL_TRACES_SAMPLER", "always_on", 1);
  o = OptionsFromEnv("s");
  EXPECT_EQ(o.sample_ratio, 1.0);
  EXPECT_FALSE(o.parent_based);
  ::setenv("OTEL_TRACES_SAMPLER", "parentbased_always_off", 1);
  o = OptionsFromEnv("s");
  EXPECT_EQ(o.sample_ratio, 0.0);
  EXPECT_TRUE(o.parent_based);
  ::setenv("OTEL_TRACES_SAMPLER", "parentbased_traceidratio", 1);
  ::setenv("OTEL_TRACES_SAMPLER_ARG", "1.5", 1);  // out of range: default ratio 1
  o = OptionsFromEnv("s");
  EXPECT_EQ(o.sample_ratio, 1.0);
  EXPECT_TRUE(o.parent_based);
  ::setenv("OTEL_TRACES_SAMPLER", "something_else", 1);
  o = OptionsFromEnv("s");
  EXPECT_EQ(o.sample_ratio, 1.0);
  EXPECT_TRUE(o.parent_based);
}

TEST_F(EnvTest, BatchSettings) {
  ::setenv("OTEL_BSP_MAX_QUEUE_SIZE", "100", 1);
  ::setenv("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "1000", 1);  // capped at the queue size
  ::setenv("OTEL_BSP_SCHEDULE_DELAY", "250", 1);
  ::setenv("OTEL_BSP_EXPORT_TIMEOUT", "-3", 1);  // invalid: default
  TracerOptions o = OptionsFromEnv("s");
  EXPECT_EQ(o.max_queue, 100u);
  EXPECT_EQ(o.max_batch, 100u);
  EXPECT_EQ(o.flush_interval, milliseconds(250));
  EXPECT_EQ(o.export_timeout, milliseconds(2000));
}

}  // namespace
}  // namespace tg::trace
