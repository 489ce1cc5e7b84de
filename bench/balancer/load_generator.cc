// Load generator: Pick + Report pairs over gRPC on loopback from concurrent
// callers against a real tg-balancer process, printing pairs per second,
// latency, and the balancer's CPU and memory (from /proc).
//
// It starts its own tg-config stand-in (a Watch feed with one upstream) and
// the tg-balancer executable, so nothing else needs to run:
//
//   build-balancer/bin/balancer_load_generator
//       [--balancer=build-balancer/bin/tg-balancer] [--callers=32] [--seconds=10]
//       [--warmup=2] [--targets=10] [--algorithm=weighted] [--channels=2] [--client-threads=1]
//       [--balancer-cpus=0] [--client-cpus=1]   (sched_setaffinity; "none" leaves it free)
//       [--client-poller=poll]   (this process's GRPC_POLL_STRATEGY only; "" for the
//                                 environment's; the balancer always gets the environment's)
//       [--redis-url=redis://127.0.0.1:26379]   (default: none, local health only)
//
// Each caller is one chain: Pick, then Report the pick as a success, then the
// next Pick; `callers` chains run at once, spread over `client-threads`
// threads and `channels` connections.
#include <absl/synchronization/mutex.h>
#include <arpa/inet.h>
#include <grpcpp/grpcpp.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "fake_config.h"
#include "tg/common/cert_authority.h"
#include "tg/common/grpc_channel.h"
#include "tg/common/grpc_server.h"
#include "tg/common/internal_tls.h"
#include "tg/v1/balancer.grpc.pb.h"
#include "tg/v1/config.grpc.pb.h"

namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

std::map<std::string, std::string> ParseArgs(int argc, char** argv) {
  std::map<std::string, std::string> args;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a.rfind("--", 0) != 0) continue;
    auto eq = a.find('=');
    if (eq == std::string::npos) {
      args[a.substr(2)] = "true";
    } else {
      args[a.substr(2, eq - 2)] = a.substr(eq + 1);
    }
  }
  return args;
}

int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  const int port = ntohs(addr.sin_port);
  close(fd);
  return port;
}

struct ProcStat {
  double cpu_seconds = 0;
  long rss_kb = 0;
  long hwm_kb = 0;
  int threads = 0;
};

ProcStat ReadProc(pid_t pid) {
  ProcStat s;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  std::getline(stat, line);
  auto close_paren = line.rfind(')');
  if (close_paren != std::string::npos) {
    std::istringstream rest(line.substr(close_paren + 2));
    std::vector<std::string> f;
    std::string x;
    while (rest >> x) f.push_back(x);
    // After "pid (comm) ", field 3 (state) is f[0]: utime is field 14, stime 15.
    if (f.size() > 13) {
      const double tck = static_cast<double>(sysconf(_SC_CLK_TCK));
      s.cpu_seconds = (std::stod(f[11]) + std::stod(f[12])) / tck;
    }
  }
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) s.rss_kb = std::stol(line.substr(6));
    if (line.rfind("VmHWM:", 0) == 0) s.hwm_kb = std::stol(line.substr(6));
    if (line.rfind("Threads:", 0) == 0) s.threads = std::stoi(line.substr(8));
  }
  return s;
}

double SelfCpuSeconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

// One caller: Pick, then Report the pick as a success, then the next Pick.
// Chains are driven by their client thread's completion queue (the async
// API): one thread runs many chains without handing work between threads,
// which on a 2-core machine leaves the cores to the balancer.
class Chain {
 public:
  Chain(tg::v1::BalancerService::Stub* stub, const std::atomic<bool>* measuring)
      : stub_(stub), measuring_(measuring) {
    pick_.set_upstream_id("bench-upstream");
    pick_.set_model("gpt-4o-mini");
    pick_.set_min_config_revision(1);
    report_.set_upstream_id("bench-upstream");
    report_.set_outcome(tg::v1::OUTCOME_SUCCESS);
    latencies_us_.reserve(1 << 18);
  }

  void StartPick(grpc::CompletionQueue* cq) {
    step_ = Step::kPick;
    started_ = Clock::now();
    NewContext();
    pick_resp_.Clear();
    pick_reader_ = stub_->AsyncPick(ctx_.get(), pick_, cq);
    pick_reader_->Finish(&pick_resp_, &status_, this);
  }

  // The completion of this chain's call in flight; false once the chain has
  // stopped (nothing of it is in flight any more).
  bool OnEvent(grpc::CompletionQueue* cq, bool stop) {
    if (step_ == Step::kPick) {
      if (status_.ok()) {
        step_ = Step::kReport;
        report_.set_pick_id(pick_resp_.pick_id());
        report_.set_target_id(pick_resp_.target().id());
        NewContext();
        report_reader_ = stub_->AsyncReport(ctx_.get(), report_, cq);
        report_reader_->Finish(&report_resp_, &status_, this);
        return true;
      }
      errors_.fetch_add(1, std::memory_order_relaxed);
    } else if (!status_.ok()) {
      errors_.fetch_add(1, std::memory_order_relaxed);
    } else {
      pairs_.fetch_add(1, std::memory_order_relaxed);
      if (measuring_->load(std::memory_order_relaxed)) {
        latencies_us_.push_back(static_cast<uint32_t>(
            std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - started_)
                .count()));
      }
    }
    if (stop) return false;
    StartPick(cq);
    return true;
  }

  uint64_t pairs() const { return pairs_.load(std::memory_order_relaxed); }
  uint64_t errors() const { return errors_.load(std::memory_order_relaxed); }
  const std::vector<uint32_t>& latencies_us() const { return latencies_us_; }

 private:
  enum class Step { kPick, kReport };

  void NewContext() {
    ctx_ = std::make_unique<grpc::ClientContext>();
    ctx_->set_deadline(std::chrono::system_clock::now() + 5s);
  }

  tg::v1::BalancerService::Stub* stub_;
  const std::atomic<bool>* measuring_;
  Step step_ = Step::kPick;
  std::unique_ptr<grpc::ClientContext> ctx_;
  tg::v1::PickRequest pick_;
  tg::v1::PickResponse pick_resp_;
  tg::v1::ReportRequest report_;
  tg::v1::ReportResponse report_resp_;
  std::unique_ptr<grpc::ClientAsyncResponseReader<tg::v1::PickResponse>> pick_reader_;
  std::unique_ptr<grpc::ClientAsyncResponseReader<tg::v1::ReportResponse>> report_reader_;
  grpc::Status status_;
  Clock::time_point started_;
  std::atomic<uint64_t> pairs_{0};
  std::atomic<uint64_t> errors_{0};
  std::vector<uint32_t> latencies_us_;
};

// Runs `chains` on one completion queue until `stop`.
void DriveChains(const std::vector<Chain*>& chains, const std::atomic<bool>* stop) {
  grpc::CompletionQueue cq;
  for (Chain* c : chains) c->StartPick(&cq);
  size_t active = chains.size();
  void* tag = nullptr;
  bool ok = false;
  while (active > 0 && cq.Next(&tag, &ok)) {
    if (!static_cast<Chain*>(tag)->OnEvent(&cq, stop->load())) --active;
  }
  cq.Shutdown();
  while (cq.Next(&tag, &ok)) {
  }
}

// "0" or "0,1": pins the calling process (and its future threads) to those
// CPUs. Empty: no pinning.
bool PinTo(const std::string& cpus) {
  if (cpus.empty()) return true;
  cpu_set_t set;
  CPU_ZERO(&set);
  std::istringstream in(cpus);
  std::string cpu;
  while (std::getline(in, cpu, ',')) CPU_SET(std::stoi(cpu), &set);
  return sched_setaffinity(0, sizeof set, &set) == 0;
}

std::string DefaultBalancerPath(const char* argv0) {
  std::string self = argv0;
  auto slash = self.rfind('/');
  return (slash == std::string::npos ? std::string(".") : self.substr(0, slash)) + "/tg-balancer";
}

}  // namespace

int main(int argc, char** argv) {
  auto args = ParseArgs(argc, argv);
  auto arg = [&](const std::string& k, const std::string& d) {
    auto it = args.find(k);
    return it == args.end() ? d : it->second;
  };
  const std::string balancer_path = arg("balancer", DefaultBalancerPath(argv[0]));
  const int callers = std::stoi(arg("callers", "32"));
  const int seconds = std::stoi(arg("seconds", "10"));
  const int warmup = std::stoi(arg("warmup", "2"));
  const int targets = std::stoi(arg("targets", "10"));
  const int channels = std::max(1, std::stoi(arg("channels", "2")));
  const int client_threads = std::max(1, std::stoi(arg("client-threads", "1")));
  const std::string algorithm = arg("algorithm", "weighted");
  const std::string redis_url = arg("redis-url", "");
  const std::string client_poller = arg("client-poller", "poll");
  // Pinned by default: the balancer on CPU 0, this client on CPU 1, so that
  // neither steals the other's core and the balancer's figures are its own
  // ("none" for either: let the scheduler place it).
  std::string balancer_cpus = arg("balancer-cpus", "0");
  std::string client_cpus = arg("client-cpus", "1");
  if (balancer_cpus == "none") balancer_cpus.clear();
  if (client_cpus == "none") client_cpus.clear();
  // The harness's own gRPC poller (GRPC_POLL_STRATEGY), set before gRPC
  // starts; the balancer keeps the environment's (gRPC's default, epoll1).
  // With "poll" this one-thread client needs about a third less CPU per pair,
  // and on a 2-core machine the client's CPU is what limits the measurement.
  const char* inherited_poller = std::getenv("GRPC_POLL_STRATEGY");
  const std::string balancer_poller = inherited_poller ? inherited_poller : "";
  if (!client_poller.empty()) setenv("GRPC_POLL_STRATEGY", client_poller.c_str(), 1);
  tg::BlockTerminationSignals();
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);  // as tg-balancer does

  // The upstream: `targets` openai targets, weights 1..targets, passive
  // health on (successes on healthy targets never reach Redis).
  tg::v1::ConfigSnapshot snapshot;
  auto* u = snapshot.add_upstreams();
  u->set_id("bench-upstream");
  u->set_gateway_id("bench-gateway");
  u->set_name("bench");
  u->set_algorithm(algorithm);
  u->mutable_health_checks()->set_passive(true);
  u->mutable_health_checks()->set_threshold(3);
  u->mutable_health_checks()->set_interval(60);
  for (int i = 0; i < targets; ++i) {
    auto* t = u->add_targets();
    t->set_id("bench-target-" + std::to_string(i));
    t->set_provider("openai");
    t->set_weight(1 + i % 100);
    t->set_default_model("gpt-4o-mini");
  }
  // tg-config: one snapshot, then a heartbeat a second.
  tg::fakes::FakeConfigService feed(snapshot, 1);
  feed.SetHeartbeat(std::chrono::seconds(1));
  std::string error;
  // Internal gRPC as deployed (mutual TLS): certificates in a temporary directory.
  std::string tls_dir = (std::filesystem::temp_directory_path() / "tg-bench-tls.XXXXXX").string();
  if (mkdtemp(tls_dir.data()) == nullptr ||
      !tg::certs::EnsureCertDir(
          {.dir = tls_dir, .identities = {"tg-config", "tg-balancer", "tg-edge"}, .days = 1},
          nullptr, &error)) {
    std::fprintf(stderr, "cannot make certificates: %s\n", error.c_str());
    return 1;
  }
  struct RemoveDir {
    std::string dir;
    ~RemoveDir() {
      std::error_code ec;
      std::filesystem::remove_all(dir, ec);
    }
  } remove_tls_dir{tls_dir};
  auto config_tls = tg::LoadInternalTlsDir(tls_dir, tg::kConfigIdentity, &error);
  auto edge_tls = tg::LoadInternalTlsDir(tls_dir, tg::kEdgeIdentity, &error);
  if (!config_tls || !edge_tls) {
    std::fprintf(stderr, "cannot load certificates: %s\n", error.c_str());
    return 1;
  }
  auto feed_server = tg::GrpcServer::Start(
      tg::GrpcServerOptions{
          .listen = "127.0.0.1:0", .health_names = {}, .shutdown_grace = 1s, .tls = *config_tls},
      {&feed}, &error);
  if (!feed_server) {
    std::fprintf(stderr, "cannot start the config feed: %s\n", error.c_str());
    return 1;
  }

  const int port = FreePort();
  const std::string listen = "127.0.0.1:" + std::to_string(port);
  const std::string config_addr = "127.0.0.1:" + std::to_string(feed_server->port());
  pid_t pid = fork();
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (!PinTo(balancer_cpus)) std::perror("sched_setaffinity");
    if (balancer_poller.empty()) {
      unsetenv("GRPC_POLL_STRATEGY");
    } else {
      setenv("GRPC_POLL_STRATEGY", balancer_poller.c_str(), 1);
    }
    sigset_t none;
    sigemptyset(&none);
    pthread_sigmask(SIG_SETMASK, &none, nullptr);
    const std::string a1 = "--balancer-listen=" + listen;
    const std::string a2 = "--config-addr=" + config_addr;
    const std::string a3 = "--redis-url=" + redis_url;
    const std::string a4 = "--grpc-tls-dir=" + tls_dir;
    execl(balancer_path.c_str(), "tg-balancer", a1.c_str(), a2.c_str(), a3.c_str(), a4.c_str(),
          "--log-level=warn", "--balancer-metrics-listen=off", static_cast<char*>(nullptr));
    std::perror("exec tg-balancer");
    _exit(127);
  }

  if (!PinTo(client_cpus)) std::perror("sched_setaffinity");
  std::vector<std::shared_ptr<grpc::Channel>> chans;
  std::vector<std::unique_ptr<tg::v1::BalancerService::Stub>> stubs;
  for (int c = 0; c < channels; ++c) {
    grpc::ChannelArguments ch_args;
    ch_args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);  // one connection per channel
    chans.push_back(tg::DialInternal(listen, tg::kBalancerIdentity, *edge_tls, ch_args));
    stubs.push_back(tg::v1::BalancerService::NewStub(chans.back()));
  }
  // Ready when a pick succeeds (the config has arrived).
  bool ready = false;
  std::string last_error;
  for (auto until = Clock::now() + 15s; Clock::now() < until && !ready;) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 1s);
    tg::v1::PickRequest req;
    req.set_upstream_id("bench-upstream");
    tg::v1::PickResponse resp;
    const grpc::Status status = stubs[0]->Pick(&ctx, req, &resp);
    ready = status.ok();
    if (!ready) {
      last_error = status.error_message();
      std::this_thread::sleep_for(50ms);
    }
  }
  if (!ready) {
    std::fprintf(stderr, "tg-balancer did not become ready: %s\n", last_error.c_str());
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
    return 1;
  }
  const ProcStat idle = ReadProc(pid);

  std::atomic<bool> stop{false}, measuring{false};
  std::vector<std::unique_ptr<Chain>> chains;
  std::vector<std::vector<Chain*>> per_thread(client_threads);
  for (int i = 0; i < callers; ++i) {
    chains.push_back(std::make_unique<Chain>(stubs[i % channels].get(), &measuring));
    per_thread[i % client_threads].push_back(chains.back().get());
  }
  std::vector<std::thread> drivers;
  for (const auto& group : per_thread) drivers.emplace_back(DriveChains, group, &stop);
  std::this_thread::sleep_for(std::chrono::seconds(warmup));

  auto total_pairs = [&] {
    uint64_t n = 0;
    for (auto& c : chains) n += c->pairs();
    return n;
  };
  const uint64_t pairs0 = total_pairs();
  const ProcStat proc0 = ReadProc(pid);
  const double self0 = SelfCpuSeconds();
  const auto t0 = Clock::now();
  measuring = true;
  std::this_thread::sleep_for(std::chrono::seconds(seconds));
  measuring = false;
  const auto t1 = Clock::now();
  const uint64_t pairs1 = total_pairs();
  const ProcStat proc1 = ReadProc(pid);
  const double self1 = SelfCpuSeconds();
  uint64_t errors = 0;
  for (auto& c : chains) errors += c->errors();

  // Graceful shutdown under load, timed: SIGTERM while the callers keep
  // going. In-flight calls drain; new ones fail fast from then on (not
  // counted: the window above is over).
  const auto term = Clock::now();
  kill(pid, SIGTERM);
  int status = 0;
  waitpid(pid, &status, 0);
  const double shutdown_ms = std::chrono::duration<double, std::milli>(Clock::now() - term).count();
  stop = true;
  for (auto& d : drivers) d.join();
  feed.Stop();
  feed_server->Shutdown();

  std::vector<uint32_t> lat;
  for (auto& c : chains) lat.insert(lat.end(), c->latencies_us().begin(), c->latencies_us().end());
  std::sort(lat.begin(), lat.end());
  auto pct = [&](double p) {
    return lat.empty() ? 0u : lat[std::min(lat.size() - 1, static_cast<size_t>(p * lat.size()))];
  };
  const double wall = std::chrono::duration<double>(t1 - t0).count();
  const double rate = static_cast<double>(pairs1 - pairs0) / wall;

  std::printf(
      "tg-balancer load: %d callers, %d client thread(s) (poller %s, CPUs %s), %d channel(s), "
      "balancer on CPUs %s, %d targets (%s), %d s measured%s\n",
      callers, client_threads, client_poller.empty() ? "default" : client_poller.c_str(),
      client_cpus.empty() ? "any" : client_cpus.c_str(), channels,
      balancer_cpus.empty() ? "any" : balancer_cpus.c_str(), targets, algorithm.c_str(), seconds,
      redis_url.empty() ? ", no Redis" : (", Redis " + redis_url).c_str());
  std::printf("  pairs/s            %.0f  (Pick + Report; %llu pairs, %llu errors)\n", rate,
              static_cast<unsigned long long>(pairs1 - pairs0),
              static_cast<unsigned long long>(errors));
  std::printf("  pair latency       p50 %u us, p99 %u us, max %u us\n", pct(0.5), pct(0.99),
              lat.empty() ? 0u : lat.back());
  std::printf("  balancer CPU       %.0f %% of one core  (%.1f us CPU per pair)\n",
              100.0 * (proc1.cpu_seconds - proc0.cpu_seconds) / wall,
              1e6 * (proc1.cpu_seconds - proc0.cpu_seconds) /
                  static_cast<double>(std::max<uint64_t>(pairs1 - pairs0, 1)));
  std::printf(
      "  balancer memory    RSS %ld KiB under load (idle %ld KiB, peak %ld KiB), %d threads\n",
      proc1.rss_kb, idle.rss_kb, proc1.hwm_kb, proc1.threads);
  std::printf("  load generator CPU %.0f %% of one core\n", 100.0 * (self1 - self0) / wall);
  std::printf("  SIGTERM to exit    %.0f ms under load (exit status %d)\n", shutdown_ms,
              WIFEXITED(status) ? WEXITSTATUS(status) : -1);
  return errors == 0 ? 0 : 1;
}
