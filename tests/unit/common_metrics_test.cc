// Size: one component's tests (tg::metrics and its listener) in one place.
// tg::metrics: counter/gauge/histogram semantics, the text format, the
// cardinality cap, concurrency, and the /metrics HTTP server over loopback.

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <limits>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tg/common/metrics.h"
#include "tg/common/metrics_server.h"

namespace tg::metrics {
namespace {

using namespace std::chrono_literals;

bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

// ---------------------------------------------------------------------------
// Semantics

TEST(Counter, IncrementsAndIgnoresNegativeZeroAndNaN) {
  Counter c;
  EXPECT_EQ(c.Value(), 0);
  c.Inc();
  c.Inc(41);
  c.Inc(0.5);
  c.Inc(-3);
  c.Inc(0);
  c.Inc(std::numeric_limits<double>::quiet_NaN());
  EXPECT_DOUBLE_EQ(c.Value(), 42.5);
}

TEST(Gauge, SetsAndAdds) {
  Gauge g;
  g.Set(10);
  g.Add(2.5);
  g.Add(-5);
  EXPECT_DOUBLE_EQ(g.Value(), 7.5);
  g.Set(-1);
  EXPECT_DOUBLE_EQ(g.Value(), -1);
}

TEST(Histogram, BucketsAreCumulativeWithSumAndCount) {
  Histogram h(std::make_shared<const std::vector<double>>(std::vector<double>{0.1, 1, 10}));
  for (double v : {0.05, 0.1, 0.5, 1.0, 5.0, 100.0}) h.Observe(v);
  h.Observe(std::numeric_limits<double>::quiet_NaN());  // dropped
  // le=0.1: 0.05, 0.1 (bounds are inclusive); le=1: +0.5, 1; le=10: +5; +Inf: +100.
  EXPECT_EQ(h.CumulativeCounts(), (std::vector<uint64_t>{2, 4, 5, 6}));
  EXPECT_EQ(h.Count(), 6u);
  EXPECT_DOUBLE_EQ(h.Sum(), 106.65);
}

TEST(Histogram, NormalizeBucketsSortsDedupsAndDropsNonFinite) {
  EXPECT_EQ(NormalizeBuckets({5, 1, std::numeric_limits<double>::infinity(), 1,
                              std::numeric_limits<double>::quiet_NaN(), 0.5}),
            (std::vector<double>{0.5, 1, 5}));
  auto lb = LatencyBuckets();
  EXPECT_EQ(lb.size(), 16u);
  EXPECT_EQ(lb.front(), 0.0005);
  EXPECT_EQ(lb.back(), 60);
  EXPECT_EQ(NormalizeBuckets(lb), lb);
}

TEST(Names, Validation) {
  EXPECT_TRUE(ValidMetricName("tg_requests_total"));
  EXPECT_TRUE(ValidMetricName("a:b_c9"));
  EXPECT_FALSE(ValidMetricName("9abc"));
  EXPECT_FALSE(ValidMetricName("a-b"));
  EXPECT_FALSE(ValidMetricName(""));
  EXPECT_TRUE(ValidLabelName("provider"));
  EXPECT_TRUE(ValidLabelName("_x"));
  EXPECT_FALSE(ValidLabelName("__reserved"));
  EXPECT_FALSE(ValidLabelName("a:b"));
}

// ---------------------------------------------------------------------------
// Text format

TEST(Render, ExactTextForASmallRegistry) {
  Registry r;
  auto& req =
      r.AddCounter("tg_requests_total", "Requests by provider and status.", {"provider", "status"});
  req.With({"openai", "200"}).Inc(3);
  req.With({"anthropic", "200"}).Inc();
  req.With({"anthropic", "500"}).Inc(2);
  r.AddGauge("tg_in_flight", "Requests in flight.", {}).With({}).Set(7);
  auto& lat = r.AddHistogram("tg_latency_seconds", "Total latency.", {"gateway"}, {0.5, 0.1, 1});
  lat.With({"gw1"}).Observe(0.05);
  lat.With({"gw1"}).Observe(0.7);
  lat.With({"gw1"}).Observe(3);
  r.AddCallbackGauge("tg_queue_size", "Queue size.", [] { return 1.25; });

  EXPECT_EQ(r.Render(),
            "# HELP tg_in_flight Requests in flight.\n"
            "# TYPE tg_in_flight gauge\n"
            "tg_in_flight 7\n"
            "# HELP tg_latency_seconds Total latency.\n"
            "# TYPE tg_latency_seconds histogram\n"
            "tg_latency_seconds_bucket{gateway=\"gw1\",le=\"0.1\"} 1\n"
            "tg_latency_seconds_bucket{gateway=\"gw1\",le=\"0.5\"} 1\n"
            "tg_latency_seconds_bucket{gateway=\"gw1\",le=\"1\"} 2\n"
            "tg_latency_seconds_bucket{gateway=\"gw1\",le=\"+Inf\"} 3\n"
            "tg_latency_seconds_sum{gateway=\"gw1\"} 3.75\n"
            "tg_latency_seconds_count{gateway=\"gw1\"} 3\n"
            "# HELP tg_queue_size Queue size.\n"
            "# TYPE tg_queue_size gauge\n"
            "tg_queue_size 1.25\n"
            "# HELP tg_requests_total Requests by provider and status.\n"
            "# TYPE tg_requests_total counter\n"
            "tg_requests_total{provider=\"anthropic\",status=\"200\"} 1\n"
            "tg_requests_total{provider=\"anthropic\",status=\"500\"} 2\n"
            "tg_requests_total{provider=\"openai\",status=\"200\"} 3\n");
}

TEST(Render, LabelFreeHistogramAndEmptyFamily) {
  Registry r;
  r.AddHistogram("h", "H.", {}, {1});
  r.AddCounter("c_total", "Nothing yet.", {"provider"});
  EXPECT_EQ(r.Render(),
            "# HELP c_total Nothing yet.\n"
            "# TYPE c_total counter\n"
            "# HELP h H.\n"
            "# TYPE h histogram\n"
            "h_bucket{le=\"1\"} 0\n"
            "h_bucket{le=\"+Inf\"} 0\n"
            "h_sum 0\n"
            "h_count 0\n");
}

TEST(Render, EscapesLabelValuesAndHelp) {
  Registry r;
  r.AddCounter("esc_total", "Line one\nback\\slash \"quoted\".", {"v"}).With({"a\"b\\c\nd"}).Inc();
  EXPECT_EQ(r.Render(),
            "# HELP esc_total Line one\\nback\\\\slash \"quoted\".\n"
            "# TYPE esc_total counter\n"
            "esc_total{v=\"a\\\"b\\\\c\\nd\"} 1\n");
}

TEST(Render, NumberFormats) {
  Registry r;
  r.AddGauge("g_big", "", {}).With({}).Set(123456789012.0);
  r.AddGauge("g_frac", "", {}).With({}).Set(0.0005);
  r.AddGauge("g_huge", "", {}).With({}).Set(1.5e20);
  r.AddGauge("g_inf", "", {}).With({}).Set(std::numeric_limits<double>::infinity());
  r.AddGauge("g_nan", "", {}).With({}).Set(std::numeric_limits<double>::quiet_NaN());
  r.AddGauge("g_neg", "", {}).With({}).Set(-2.5);
  r.AddGauge("g_third", "", {}).With({}).Set(1.0 / 3);
  std::string text = r.Render();
  EXPECT_TRUE(Contains(text, "\ng_big 123456789012\n")) << text;
  EXPECT_TRUE(Contains(text, "\ng_frac 0.0005\n")) << text;
  EXPECT_TRUE(Contains(text, "\ng_huge 1.5e+20\n")) << text;
  EXPECT_TRUE(Contains(text, "\ng_inf +Inf\n")) << text;
  EXPECT_TRUE(Contains(text, "\ng_nan NaN\n")) << text;
  EXPECT_TRUE(Contains(text, "\ng_neg -2.5\n")) << text;
  EXPECT_TRUE(Contains(text, "\ng_third 0.3333333333333333\n")) << text;
}

TEST(Render, LatencyBucketLabels) {
  Registry r;
  r.AddHistogram("lat_seconds", "", {}, LatencyBuckets());
  std::string text = r.Render();
  for (const char* le : {"0.0005", "0.001", "0.0025", "0.25", "2.5", "30", "60", "+Inf"}) {
    EXPECT_TRUE(Contains(text, std::string("lat_seconds_bucket{le=\"") + le + "\"} 0\n"))
        << le << "\n"
        << text;
  }
}

TEST(Registry, SameNameReturnsTheSameFamily) {
  Registry r;
  auto& a = r.AddCounter("shared_total", "Shared.", {"x"});
  auto& b = r.AddCounter("shared_total", "Shared again.", {"x"});
  EXPECT_EQ(&a, &b);
  a.With({"1"}).Inc();
  b.With({"1"}).Inc();
  EXPECT_EQ(a.With({"1"}).Value(), 2);
}

TEST(Registry, CallbackReplacedAndRemoved) {
  Registry r;
  int calls = 0;
  r.AddCallbackCounter("cb_total", "CB.", [&] { return ++calls; });
  r.AddCallbackCounter("cb_total", "CB.", [] { return 99; });
  EXPECT_TRUE(Contains(r.Render(), "# TYPE cb_total counter\ncb_total 99\n"));
  EXPECT_EQ(calls, 0);
  r.RemoveCallback("cb_total");
  EXPECT_EQ(r.Render(), "");
  r.AddCallbackGauge("cb_throws", "", []() -> double { throw std::runtime_error("x"); });
  EXPECT_TRUE(Contains(r.Render(), "cb_throws NaN\n"));
}

TEST(Registry, ScrapeHooksSetLabelledGaugesBeforeEachRenderUntilRemoved) {
  Registry r;
  auto& healthy = r.AddGauge("target_healthy", "Up.", {"target"});
  int state = 1;
  r.AddScrapeHook("target_healthy", [&] { healthy.With({"a"}).Set(state); });
  EXPECT_TRUE(Contains(r.Render(), "target_healthy{target=\"a\"} 1\n"));
  state = 0;
  EXPECT_TRUE(Contains(r.Render(), "target_healthy{target=\"a\"} 0\n"));
  r.RemoveCallback("target_healthy");
  state = 1;
  EXPECT_TRUE(Contains(r.Render(), "target_healthy{target=\"a\"} 0\n"));  // no longer run
}

TEST(Registry, HiddenChildrenAreNotRenderedUntilNamedAgain) {
  Registry r;
  auto& healthy = r.AddGauge("target_healthy", "Up.", {"target"});
  std::vector<std::string> targets = {"a", "b"};
  r.AddScrapeHook("target_healthy", [&] {
    healthy.HideAll();
    for (const auto& t : targets) healthy.With({t}).Set(1);
  });
  std::string text = r.Render();
  EXPECT_TRUE(Contains(text, "target_healthy{target=\"a\"} 1\n"));
  EXPECT_TRUE(Contains(text, "target_healthy{target=\"b\"} 1\n"));
  targets = {"b"};  // "a" was deleted
  text = r.Render();
  EXPECT_FALSE(Contains(text, "target=\"a\"")) << text;
  EXPECT_TRUE(Contains(text, "target_healthy{target=\"b\"} 1\n"));
  targets = {"a", "b"};  // and came back
  EXPECT_TRUE(Contains(r.Render(), "target_healthy{target=\"a\"} 1\n"));
  r.RemoveCallback("target_healthy");
}

TEST(Registry, DefaultHasProcessMetrics) {
  std::string text = Registry::Default().Render();
  for (const char* name : {"process_resident_memory_bytes", "process_cpu_seconds_total",
                           "process_open_fds", "process_start_time_seconds"}) {
    EXPECT_TRUE(Contains(text, std::string("\n") + name + " ")) << name << "\n" << text;
  }
  EXPECT_FALSE(Contains(text, " NaN\n")) << text;
  EXPECT_EQ(&Registry::Default(), &Registry::Default());
}

// ---------------------------------------------------------------------------
// Families

TEST(Family, WrongNumberOfValuesMapsToEmptyLabels) {
  Registry r;
  auto& f = r.AddCounter("wrong_total", "", {"a", "b"});
  f.With({"only-one"}).Inc();
  f.With({"x", "y", "z"}).Inc();
  EXPECT_EQ(&f.With({"", ""}), &f.With({}));
  EXPECT_EQ(f.With({"", ""}).Value(), 2);
  EXPECT_EQ(f.size(), 1u);
}

TEST(Family, CardinalityCapSendsNewLabelSetsToOther) {
  Registry r;
  auto& f = r.AddCounter("capped_total", "", {"model", "provider"}, 3);
  for (int i = 0; i < 10; ++i) f.With({"m" + std::to_string(i), "p"}).Inc();
  EXPECT_EQ(f.size(), 4u);
  EXPECT_EQ(f.With({"m0", "p"}).Value(), 1);  // the first three keep their own child
  EXPECT_EQ(f.With({"m2", "p"}).Value(), 1);
  EXPECT_EQ(f.With({"_other", "_other"}).Value(), 7);
  EXPECT_EQ(&f.With({"m9", "p"}), &f.With({"_other", "_other"}));
  EXPECT_TRUE(Contains(r.Render(), "capped_total{model=\"_other\",provider=\"_other\"} 7\n"));
  EXPECT_EQ(f.size(), 4u);
}

TEST(Family, ReferencesStayValidAsChildrenAreAdded) {
  Registry r;
  auto& f = r.AddHistogram("many_seconds", "", {"k"}, {1, 2});
  Histogram* first = &f.With({"k0"});
  for (int i = 1; i < 500; ++i) f.With({"k" + std::to_string(i)}).Observe(1);
  first->Observe(0.5);
  EXPECT_EQ(first, &f.With({"k0"}));
  EXPECT_EQ(first->Count(), 1u);
}

// ---------------------------------------------------------------------------
// Concurrency

TEST(Concurrency, CounterIncFromFourThreadsIsExact) {
  Registry r;
  Counter& c = r.AddCounter("conc_total", "", {"x"}).With({"shared"});
  Gauge& g = r.AddGauge("conc_gauge", "", {}).With({});
  Histogram& h = r.AddHistogram("conc_seconds", "", {}, {0.5}).With({});
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 100000; ++i) {
        c.Inc();
        g.Add(1);
        h.Observe(i % 2 ? 1.0 : 0.25);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(c.Value(), 400000);
  EXPECT_EQ(g.Value(), 400000);
  EXPECT_EQ(h.Count(), 400000u);
  EXPECT_EQ(h.CumulativeCounts(), (std::vector<uint64_t>{200000, 400000}));
  EXPECT_DOUBLE_EQ(h.Sum(), 4 * (50000 * 1.0 + 50000 * 0.25));
}

TEST(Concurrency, WithFromManyThreadsReturnsOneChild) {
  Registry r;
  auto& f = r.AddCounter("race_total", "", {"provider", "model"});
  constexpr int kThreads = 8;
  std::vector<Counter*> seen(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 1000; ++i) {
        Counter& c = f.With({"openai", "gpt-" + std::to_string(i % 50)});
        c.Inc();
        if (i == 0) seen[t] = &c;
      }
    });
  }
  for (auto& t : threads) t.join();
  for (Counter* c : seen) EXPECT_EQ(c, seen[0]);
  EXPECT_EQ(f.size(), 50u);
  EXPECT_EQ(f.With({"openai", "gpt-0"}).Value(), kThreads * 20);
}

TEST(Concurrency, RenderWhileAddingChildren) {
  Registry r;
  auto& f = r.AddCounter("grow_total", "", {"k"}, 100000);
  std::atomic<bool> done{false};
  std::thread writer([&] {
    for (int i = 0; i < 20000; ++i) f.With({std::to_string(i)}).Inc();
    done = true;
  });
  size_t renders = 0;
  bool well_formed = true;
  while (!done) {
    std::string text = r.Render();
    well_formed =
        well_formed && text.starts_with("# TYPE grow_total counter\n") && text.ends_with("\n");
    ++renders;
  }
  writer.join();
  EXPECT_TRUE(well_formed);
  EXPECT_GT(renders, 0u);
  EXPECT_EQ(f.size(), 20000u);
}

// ---------------------------------------------------------------------------
// MetricsServer over loopback

int Connect(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close(fd);
    return -1;
  }
  timeval tv{5, 0};  // a hung server fails the test instead of hanging it
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  return fd;
}

// Everything until the server closes (or the 5 s receive timeout).
std::string ReadAll(int fd) {
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = recv(fd, buf, sizeof buf, 0)) > 0) out.append(buf, static_cast<size_t>(n));
  return out;
}

std::string Exchange(int port, const std::string& request) {
  int fd = Connect(port);
  if (fd < 0) return "connect failed";
  send(fd, request.data(), request.size(), MSG_NOSIGNAL);
  std::string response = ReadAll(fd);
  close(fd);
  return response;
}

std::string Get(int port, const std::string& path) {
  return Exchange(port, "GET " + path + " HTTP/1.1\r\nHost: localhost\r\nUser-Agent: test\r\n\r\n");
}

std::string Body(const std::string& response) {
  size_t p = response.find("\r\n\r\n");
  return p == std::string::npos ? "" : response.substr(p + 4);
}

class MetricsServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    registry_.AddCounter("tg_test_requests_total", "Test requests.", {"provider"})
        .With({"openai"})
        .Inc(5);
    MetricsServerOptions options;
    options.listen = "127.0.0.1:0";
    options.read_timeout_ms = 1500;
    std::string error;
    server_ = MetricsServer::Start(options, &error, &registry_);
    ASSERT_NE(server_, nullptr) << error;
    ASSERT_GT(server_->port(), 0);
  }

  Registry registry_;
  std::unique_ptr<MetricsServer> server_;
};

TEST_F(MetricsServerTest, ServesMetrics) {
  std::string r = Get(server_->port(), "/metrics");
  EXPECT_TRUE(r.starts_with("HTTP/1.1 200 OK\r\n")) << r;
  EXPECT_TRUE(Contains(r, "Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n")) << r;
  std::string body = Body(r);
  EXPECT_TRUE(Contains(r, "Content-Length: " + std::to_string(body.size()) + "\r\n")) << r;
  EXPECT_TRUE(Contains(body, "tg_test_requests_total{provider=\"openai\"} 5\n")) << body;
  EXPECT_EQ(body, registry_.Render());

  // Query strings are ignored; the value is live.
  registry_.AddCounter("tg_test_requests_total", "", {"provider"}).With({"openai"}).Inc();
  EXPECT_TRUE(Contains(Get(server_->port(), "/metrics?x=1"),
                       "tg_test_requests_total{provider=\"openai\"} 6\n"));
}

TEST_F(MetricsServerTest, HealthzNotFoundMethodAndMalformed) {
  std::string r = Get(server_->port(), "/healthz");
  EXPECT_TRUE(r.starts_with("HTTP/1.1 200 OK\r\n")) << r;
  EXPECT_EQ(Body(r), "ok");

  EXPECT_TRUE(Get(server_->port(), "/nope").starts_with("HTTP/1.1 404 ")) << r;

  r = Exchange(server_->port(),
               "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc");
  EXPECT_TRUE(r.starts_with("HTTP/1.1 405 ")) << r;
  EXPECT_TRUE(Contains(r, "Allow: GET, HEAD\r\n")) << r;

  r = Exchange(server_->port(), "HEAD /metrics HTTP/1.1\r\n\r\n");
  EXPECT_TRUE(r.starts_with("HTTP/1.1 200 ")) << r;
  EXPECT_EQ(Body(r), "");

  EXPECT_TRUE(Exchange(server_->port(), "garbage\r\n\r\n").starts_with("HTTP/1.1 400 "));
  EXPECT_TRUE(
      Exchange(server_->port(), "GET /metrics SMTP/2\r\n\r\n").starts_with("HTTP/1.1 400 "));
}

TEST_F(MetricsServerTest, OversizedHeadersAreRejected) {
  std::string request = "GET /metrics HTTP/1.1\r\nX-Big: " + std::string(10000, 'a') + "\r\n\r\n";
  std::string r = Exchange(server_->port(), request);
  EXPECT_TRUE(r.starts_with("HTTP/1.1 431 ")) << r.substr(0, 100);
}

TEST_F(MetricsServerTest, IdleClientDoesNotBlockOthersAndIsClosedAtTheDeadline) {
  int idle = Connect(server_->port());
  ASSERT_GE(idle, 0);
  int half = Connect(server_->port());  // a request that never finishes
  ASSERT_GE(half, 0);
  send(half, "GET /metr", 9, MSG_NOSIGNAL);

  auto start = std::chrono::steady_clock::now();
  std::string r = Get(server_->port(), "/metrics");
  EXPECT_TRUE(r.starts_with("HTTP/1.1 200 OK\r\n")) << r;
  EXPECT_LT(std::chrono::steady_clock::now() - start, 500ms);

  // The server gives up on both at read_timeout_ms (1.5 s): EOF, no response.
  pollfd pfd{idle, POLLIN, 0};
  ASSERT_EQ(poll(&pfd, 1, 4000), 1);
  EXPECT_EQ(ReadAll(idle), "");
  EXPECT_EQ(ReadAll(half), "");
  EXPECT_LT(std::chrono::steady_clock::now() - start, 3500ms);
  close(idle);
  close(half);
}

TEST_F(MetricsServerTest, ManyConnectionsAtOnce) {
  std::vector<std::thread> clients;
  std::atomic<int> ok{0};
  for (int i = 0; i < 16; ++i) {
    clients.emplace_back([&] {
      for (int j = 0; j < 10; ++j) {
        if (Get(server_->port(), "/metrics").starts_with("HTTP/1.1 200 OK")) ++ok;
      }
    });
  }
  for (auto& t : clients) t.join();
  EXPECT_EQ(ok.load(), 160);
}

TEST_F(MetricsServerTest, StopIsPromptAndIdempotentWithAnIdleClient) {
  int idle = Connect(server_->port());
  ASSERT_GE(idle, 0);
  std::this_thread::sleep_for(50ms);  // let the server accept it
  auto start = std::chrono::steady_clock::now();
  server_->Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 500ms);
  server_->Stop();
  EXPECT_EQ(ReadAll(idle), "");  // closed by Stop
  close(idle);
  EXPECT_EQ(Connect(server_->port()), -1);  // nothing listens any more
}

// Kubelet's HTTP probes cannot do the gRPC health check over mutual TLS, so
// /healthz carries the gRPC server's serving state.
TEST_F(MetricsServerTest, HealthzFollowsTheServingState) {
  auto serving = std::make_shared<std::atomic<bool>>(false);
  server_->SetServingState(serving);
  std::string r = Get(server_->port(), "/healthz");
  EXPECT_TRUE(r.starts_with("HTTP/1.1 503 ")) << r;
  EXPECT_EQ(Body(r), "not serving");
  serving->store(true);
  r = Get(server_->port(), "/healthz");
  EXPECT_TRUE(r.starts_with("HTTP/1.1 200 OK\r\n")) << r;
  EXPECT_EQ(Body(r), "ok");
  serving->store(false);  // draining
  EXPECT_TRUE(Get(server_->port(), "/healthz").starts_with("HTTP/1.1 503 "));
  server_->SetServingState(nullptr);
  EXPECT_TRUE(Get(server_->port(), "/healthz").starts_with("HTTP/1.1 200 "));
}

TEST_F(MetricsServerTest, PortInUseIsAClearError) {
  MetricsServerOptions options;
  options.listen = "127.0.0.1:" + std::to_string(server_->port());
  std::string error;
  auto second = MetricsServer::Start(options, &error, &registry_);
  EXPECT_EQ(second, nullptr);
  EXPECT_TRUE(Contains(error, "Address already in use")) << error;
  EXPECT_TRUE(Contains(error, options.listen)) << error;
}

TEST(MetricsServer, DisabledAndBadAddresses) {
  std::string error = "x";
  EXPECT_EQ(MetricsServer::Start({.listen = "off"}, &error), nullptr);
  EXPECT_EQ(error, "");
  EXPECT_EQ(MetricsServer::Start({.listen = ""}, &error), nullptr);
  EXPECT_EQ(error, "");
  EXPECT_EQ(MetricsServer::Start({.listen = "9090"}, &error), nullptr);
  EXPECT_TRUE(Contains(error, "host:port")) << error;
  EXPECT_EQ(MetricsServer::Start({.listen = "127.0.0.1:99999"}, &error), nullptr);
  EXPECT_TRUE(Contains(error, "bad port")) << error;
}

TEST(MetricsServer, DefaultRegistryAndIpv6Loopback) {
  Registry::Default().AddCounter("tg_test_default_total", "Default.", {}).With({}).Inc();
  std::string error;
  auto server = MetricsServer::Start({.listen = "127.0.0.1:0"}, &error);
  ASSERT_NE(server, nullptr) << error;
  std::string body = Body(Get(server->port(), "/metrics"));
  EXPECT_TRUE(Contains(body, "\ntg_test_default_total ")) << body;  // the process-wide registry
  EXPECT_TRUE(Contains(body, "\nprocess_open_fds ")) << body;

  auto v6 = MetricsServer::Start({.listen = "[::1]:0"}, &error);
  if (v6 == nullptr) GTEST_SKIP() << "no IPv6 loopback: " << error;
  EXPECT_GT(v6->port(), 0);
}

}  // namespace
}  // namespace tg::metrics
