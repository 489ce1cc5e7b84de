// adapter_streams_bench: N concurrent slow streams through one tg-adapter,
// with the adapter's memory per stream measured and bounded.
//
// The adapter (the Invoke service with a fake tg-config feed, the libcurl
// client and its worker pool, exactly as tg-adapter's main wires them) runs
// in a forked child, so that its RSS is the adapter's alone; this process
// holds the fake provider and the N gRPC callback clients. The fake answers
// every call with a stream of --events events, --interval-ms apart.
//
//   adapter_streams_bench [--streams=1000] [--events=40] [--interval-ms=50]
//                         [--provider=openai] [--rounds=2] [--max-kib-per-stream=64]
//
// Prints, per round of N streams, the time until every stream had its head
// and until every one ended, and the adapter's RSS (/proc/<pid>/status) at
// peak and after; then the first round's peak RSS delta per stream. Exits 1
// when a stream did not end with End{ok}, or when the per-stream figure
// exceeds --max-kib-per-stream.
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "fake_config.h"
#include "fake_provider.h"
#include "tg/adapter/http/curl_http_client.h"
#include "tg/adapter/service/adapter_service.h"
#include "tg/common/cert_authority.h"
#include "tg/common/config_watcher.h"
#include "tg/common/flags.h"
#include "tg/common/grpc_channel.h"
#include "tg/common/grpc_server.h"
#include "tg/common/memory_trim.h"
#include "tg/common/worker_pool.h"
#include "tg/v1/adapter.grpc.pb.h"
#include "tg/v1/config.grpc.pb.h"

namespace {

// Internal gRPC as deployed (mutual TLS), from an in-memory CA made on first
// use: main() calls it before forking, so both processes share the CA.
const tg::InternalTls& BenchTls(std::string_view identity) {
  static const auto* all = [] {
    auto* out = new std::map<std::string, tg::InternalTls, std::less<>>();
    std::string error;
    auto ca = tg::certs::CertAuthority::Create("bench-ca", 1, &error);
    for (std::string_view id : {tg::kConfigIdentity, tg::kAdapterIdentity, tg::kEdgeIdentity}) {
      auto issued = ca ? ca->Issue(id, 1, &error) : std::nullopt;
      if (!issued) {
        std::fprintf(stderr, "bench certificates: %s\n", error.c_str());
        std::abort();
      }
      tg::InternalTls tls;
      tls.ca_pem = ca->pem().cert;
      tls.cert_pem = issued->cert;
      tls.key_pem = issued->key;
      tls.identity = std::string(id);
      out->emplace(std::string(id), std::move(tls));
    }
    return out;
  }();
  return all->find(identity)->second;
}

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

// A field of /proc/<pid>/status in KiB ("VmRSS", "VmHWM").
long StatusKib(pid_t pid, const std::string& field) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field + ":", 0) == 0) return std::stol(line.substr(field.size() + 1));
  }
  return -1;
}

void RaiseFileLimit() {
  rlimit r{};
  getrlimit(RLIMIT_NOFILE, &r);
  r.rlim_cur = r.rlim_max;
  setrlimit(RLIMIT_NOFILE, &r);
}

bool ReadAll(int fd, void* buf, size_t n) {
  auto* p = static_cast<char*>(buf);
  while (n > 0) {
    ssize_t got = ::read(fd, p, n);
    if (got <= 0) return false;
    p += got;
    n -= static_cast<size_t>(got);
  }
  return true;
}

tg::v1::Target MakeTarget(const std::string& provider, int fake_port) {
  tg::fakes::FakeCredentials c;
  tg::v1::Target t;
  t.set_id("t1");
  t.set_provider(provider);
  auto* cr = t.mutable_credentials();
  std::string base = "http://127.0.0.1:" + std::to_string(fake_port);
  if (provider == "azure") {
    cr->set_api_key(c.azure_key);
    cr->set_azure_endpoint(base);
    return t;
  }
  t.set_host("127.0.0.1");
  t.set_port(fake_port);
  t.set_protocol("http");
  if (provider == "openai") cr->set_api_key(c.openai_key);
  if (provider == "anthropic") cr->set_api_key(c.anthropic_key);
  if (provider == "gemini") cr->set_api_key(c.gemini_key);
  if (provider == "bedrock") {
    cr->set_aws_access_key_id(c.aws.access_key_id);
    cr->set_aws_secret_access_key(c.aws.secret_access_key);
    cr->set_aws_region(c.aws_region);
  }
  return t;
}

// The child: tg-adapter as its main() builds it. Reads the fake's port from
// `in`, writes the adapter's port to `out`, serves until `in` closes.
[[noreturn]] void RunAdapter(int in, int out, const std::string& provider) {
  int fake_port = 0;
  if (!ReadAll(in, &fake_port, sizeof(fake_port))) _exit(2);
  // As tg-adapter's main has it (ServiceMain), unless TG_BENCH_NO_TRIM is set.
  std::unique_ptr<tg::MemoryTrimmer> trimmer;
  if (std::getenv("TG_BENCH_NO_TRIM") == nullptr) {
    trimmer = std::make_unique<tg::MemoryTrimmer>(tg::kMemoryTrimInterval, tg::kMemoryTrimMinFree);
  }
  tg::v1::ConfigSnapshot snapshot;
  auto* up = snapshot.add_upstreams();
  up->set_id("u1");
  up->set_name("ai");
  *up->add_targets() = MakeTarget(provider, fake_port);
  tg::fakes::FakeConfigService config(snapshot, 1);
  std::string error;
  auto config_server = tg::GrpcServer::Start(
      {.listen = "127.0.0.1:0", .health_names = {}, .tls = BenchTls(tg::kConfigIdentity)},
      {&config}, &error);
  if (!config_server) _exit(3);
  tg::ConfigWatcherOptions wo;
  wo.include_credentials = true;
  tg::ConfigWatcher watcher(tg::DialInternal("127.0.0.1:" + std::to_string(config_server->port()),
                                             tg::kConfigIdentity, BenchTls(tg::kAdapterIdentity)),
                            wo);
  watcher.Start();
  while (watcher.revision() < 1) std::this_thread::sleep_for(milliseconds(5));

  tg::adapter::http::CurlHttpClientOptions http_options;
  http_options.egress.allow_private = true;  // the fake provider listens on loopback
  tg::adapter::http::CurlHttpClient client(http_options);
  tg::adapter::EntraTokenSource entra(client, {});
  tg::WorkerPool workers(2);
  tg::adapter::AdapterServiceImpl service(watcher, client, &entra, workers, {});
  auto server = tg::GrpcServer::Start({.listen = "127.0.0.1:0",
                                       .health_names = {},
                                       .shutdown_grace = std::chrono::seconds(1),
                                       .tls = BenchTls(tg::kAdapterIdentity)},
                                      {&service}, &error);
  if (!server) _exit(4);
  int port = server->port();
  if (::write(out, &port, sizeof(port)) != sizeof(port)) _exit(5);
  char c;
  while (::read(in, &c, 1) > 0) {
  }
  server->Shutdown();
  watcher.Stop();
  config_server->Shutdown();
  _exit(0);
}

struct Tracker {
  std::atomic<int> heads{0};
  std::atomic<int> done{0};
  std::atomic<int> ok{0};
};

// One Invoke, read to its end with the callback API.
class Stream final : public grpc::ClientReadReactor<tg::v1::InvokeEvent> {
 public:
  Stream(tg::v1::ProviderAdapterService::Stub* stub, tg::v1::InvokeRequest req, Tracker* t)
      : req_(std::move(req)), t_(t) {
    stub->async()->Invoke(&ctx_, &req_, this);
    StartRead(&event_);
    StartCall();
  }
  void OnReadDone(bool ok) override {
    if (!ok) return;  // OnDone follows
    if (event_.has_head()) t_->heads.fetch_add(1);
    if (event_.has_end()) end_ok_ = event_.end().ok();
    StartRead(&event_);
  }
  void OnDone(const grpc::Status& s) override {
    if (s.ok() && end_ok_) t_->ok.fetch_add(1);
    t_->done.fetch_add(1);
  }

 private:
  grpc::ClientContext ctx_;
  tg::v1::InvokeRequest req_;
  tg::v1::InvokeEvent event_;
  Tracker* t_;
  bool end_ok_ = false;
};

tg::v1::InvokeRequest MakeRequest(int i, const std::string& provider, int fake_port) {
  tg::v1::InvokeRequest req;
  req.set_request_id("bench-" + std::to_string(i));
  req.set_upstream_id("u1");
  req.set_target_id(MakeTarget(provider, fake_port).id());
  req.set_effective_model(provider == "bedrock"  ? "anthropic.claude-3-haiku-20240307-v1:0"
                          : provider == "gemini" ? "gemini-1.5-flash"
                                                 : "gpt-4o");
  req.set_client_format(tg::v1::CLIENT_FORMAT_OPENAI_CHAT);
  req.set_stream(true);
  req.set_body(R"({"model":"gpt-4","messages":[{"role":"user","content":"Tell me a story."}],)"
               R"("stream":true,"stream_options":{"include_usage":true}})");
  return req;
}

struct RoundResult {
  bool ok = false;     // every stream ended with End{ok}
  double open_s = 0;   // until every stream had its head
  double total_s = 0;  // until every stream had ended
  long peak_kib = 0;   // the adapter's highest RSS seen during the round
};

// Runs `n` streams at once, sampling the adapter's RSS as they run.
RoundResult RunStreams(tg::v1::ProviderAdapterService::Stub* stub, int n,
                       const std::string& provider, int fake_port, pid_t adapter) {
  RoundResult r;
  Tracker t;
  auto started = Clock::now();
  std::vector<std::unique_ptr<Stream>> streams;
  streams.reserve(n);
  for (int i = 0; i < n; ++i) {
    streams.push_back(std::make_unique<Stream>(stub, MakeRequest(i, provider, fake_port), &t));
  }
  auto seconds = [&] { return std::chrono::duration<double>(Clock::now() - started).count(); };
  for (int tick = 0; t.done.load() < n; ++tick) {
    if (r.open_s == 0 && t.heads.load() >= n) r.open_s = seconds();
    if (tick % 4 == 0) r.peak_kib = std::max(r.peak_kib, StatusKib(adapter, "VmRSS"));
    std::this_thread::sleep_for(milliseconds(5));
  }
  r.total_s = seconds();
  r.ok = t.ok.load() == n;
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  BenchTls(tg::kEdgeIdentity);  // before any fork
  tg::Flags flags(argc, argv);
  const int n = static_cast<int>(flags.Int("streams", 1000));
  const int events = static_cast<int>(flags.Int("events", 40));
  const auto interval = milliseconds(flags.Int("interval-ms", 50));
  const std::string provider = flags.String("provider", "openai");
  const long max_kib = flags.Int("max-kib-per-stream", 64);
  const int rounds = static_cast<int>(flags.Int("rounds", 2));
  RaiseFileLimit();

  // Fork before any thread exists.
  int to_child[2], from_child[2];
  if (::pipe(to_child) != 0 || ::pipe(from_child) != 0) return 1;
  pid_t child = ::fork();
  if (child < 0) return 1;
  if (child == 0) {
    ::close(to_child[1]);
    ::close(from_child[0]);
    RunAdapter(to_child[0], from_child[1], provider);
  }
  ::close(to_child[0]);
  ::close(from_child[1]);

  tg::fakes::FakeProviderOptions fo;
  fo.record = false;
  tg::fakes::FakeProvider fake(fo);
  std::string error;
  if (!fake.Start(&error)) {
    std::fprintf(stderr, "fake provider: %s\n", error.c_str());
    return 1;
  }
  // The provider's stream: one event per word, plus its start/finish/usage
  // framing (for openai: role, finish and usage chunks and [DONE]).
  tg::fakes::FakeAnswer answer;
  answer.text.clear();
  for (int i = 0; i < std::max(1, events - 4); ++i)
    answer.text += (i ? " w" : "w") + std::to_string(i);
  answer.event_interval = interval;
  fake.SetAnswer(answer);

  int fake_port = fake.port(), adapter_port = 0;
  if (::write(to_child[1], &fake_port, sizeof(fake_port)) != sizeof(fake_port) ||
      !ReadAll(from_child[0], &adapter_port, sizeof(adapter_port))) {
    std::fprintf(stderr, "the adapter did not start\n");
    return 1;
  }
  auto channel = tg::DialInternal("127.0.0.1:" + std::to_string(adapter_port), tg::kAdapterIdentity,
                                  BenchTls(tg::kEdgeIdentity));
  auto stub = tg::v1::ProviderAdapterService::NewStub(channel);

  // Warm up (connections, pools, first allocations), then measure. Later
  // rounds show whether the memory is bounded (reused) or grows per round.
  bool ok = RunStreams(stub.get(), 20, provider, fake_port, child).ok;
  std::this_thread::sleep_for(milliseconds(300));
  const long before = StatusKib(child, "VmRSS");
  std::printf(
      "adapter_streams_bench: provider=%s streams=%d events/stream=%d interval=%lldms "
      "(ideal stream time %.2f s)\n",
      provider.c_str(), n, events, static_cast<long long>(interval.count()),
      interval.count() * (events - 1) / 1000.0);
  std::printf("  adapter RSS before: %ld KiB\n", before);
  double per_stream = 0;
  for (int round = 1; round <= rounds; ++round) {
    RoundResult r = RunStreams(stub.get(), n, provider, fake_port, child);
    ok = ok && r.ok;
    r.peak_kib = std::max(r.peak_kib, StatusKib(child, "VmHWM"));
    std::this_thread::sleep_for(milliseconds(500));
    const long after = StatusKib(child, "VmRSS");
    if (round == 1) per_stream = static_cast<double>(r.peak_kib - before) / n;
    std::printf(
        "  round %d: %s, all heads after %.2f s, all ended after %.2f s; "
        "RSS peak %ld KiB (+%ld), after %ld KiB\n",
        round, r.ok ? "every stream End{ok}" : "SOME STREAMS FAILED", r.open_s, r.total_s,
        r.peak_kib, r.peak_kib - before, after);
  }
  std::printf("  RSS per stream: %.1f KiB (bound %ld KiB)\n", per_stream, max_kib);
  std::this_thread::sleep_for(std::chrono::seconds(3));
  const long settled = StatusKib(child, "VmRSS");
  std::printf("  RSS 3 s after the last round: %ld KiB (%+.0f %% of before)\n", settled,
              100.0 * static_cast<double>(settled - before) / static_cast<double>(before));

  ::close(to_child[1]);  // the child shuts down
  int status = 0;
  ::waitpid(child, &status, 0);
  if (!ok) return 1;
  if (per_stream > static_cast<double>(max_kib)) {
    std::fprintf(stderr, "memory per stream above the bound\n");
    return 1;
  }
  return 0;
}
