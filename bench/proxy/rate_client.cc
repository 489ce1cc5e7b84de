// tg-rate-client: an open-loop HTTP/1.1 load generator for latency at a fixed
// request rate (what wrk cannot do): request i is due at start + i/rate, and
// its latency is measured from that due time, so a stall that delays later
// requests is counted in full (no coordinated omission).
//
//   tg-rate-client --port=8081 --path=/v1/chat/completions --rate=1000
//       --seconds=10 --connections=16 --header="X-TG-API-Key: …" --body='{…}'
//
// Prints one line: requests, errors, achieved rate and p50/p90/p99/p99.9/max
// in microseconds. Keep-alive connections on 127.0.0.1; answers must carry a
// Content-Length (the proxy's and the fake provider's whole answers do).
// Boost 1.74's asio/awaitable.hpp uses std::exchange without including
// <utility>: it must come first.
// clang-format off
#include <utility>
// clang-format on

#include <algorithm>
#include <boost/asio.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace {

namespace asio = boost::asio;
using asio::ip::tcp;
using Clock = std::chrono::steady_clock;

struct Options {
  int port = 0;
  std::string path = "/";
  std::vector<std::string> headers;
  std::string body;
  double rate = 1000;
  double seconds = 10;
  int connections = 16;
  double warmup_seconds = 1;
};

struct Stats {
  std::vector<int64_t> latencies_us;  // after the warm-up
  int64_t errors = 0;
  int64_t sent = 0;
};

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(asio::io_context& io, const Options& o, Stats& stats, std::string request,
             std::function<void(Connection*)> on_idle)
      : socket_(io),
        o_(o),
        stats_(stats),
        request_(std::move(request)),
        on_idle_(std::move(on_idle)) {}

  bool Connect() {
    boost::system::error_code ec;
    socket_.connect(
        tcp::endpoint(asio::ip::make_address("127.0.0.1"), static_cast<uint16_t>(o_.port)), ec);
    if (ec) return false;
    socket_.set_option(tcp::no_delay(true));
    return true;
  }

  // Sends one request that was due at `due`; `measured` false during warm-up.
  void Send(Clock::time_point due, bool measured) {
    due_ = due;
    measured_ = measured;
    ++stats_.sent;
    auto self = shared_from_this();
    asio::async_write(socket_, asio::buffer(request_),
                      [self](boost::system::error_code ec, size_t) {
                        if (ec) return self->Fail();
                        self->ReadHead();
                      });
  }

 private:
  void ReadHead() {
    auto self = shared_from_this();
    asio::async_read_until(socket_, asio::dynamic_buffer(in_), "\r\n\r\n",
                           [self](boost::system::error_code ec, size_t n) {
                             if (ec) return self->Fail();
                             self->OnHead(n);
                           });
  }

  void OnHead(size_t head_len) {
    std::string_view head(in_.data(), head_len);
    status_ = head.size() > 12 ? std::atoi(std::string(head.substr(9, 3)).c_str()) : 0;
    size_t length = 0;
    bool found = false;
    for (size_t at = 0; (at = head.find("\r\n", at)) != std::string_view::npos;) {
      at += 2;
      constexpr std::string_view kName = "content-length:";
      if (head.size() - at < kName.size()) break;
      bool match = true;
      for (size_t i = 0; i < kName.size(); ++i) {
        if (std::tolower(static_cast<unsigned char>(head[at + i])) != kName[i]) match = false;
      }
      if (match) {
        length = std::strtoull(head.data() + at + kName.size(), nullptr, 10);
        found = true;
      }
    }
    if (!found) return Fail();
    in_.erase(0, head_len);
    body_left_ = length;
    ReadBody();
  }

  void ReadBody() {
    if (in_.size() >= body_left_) {
      in_.erase(0, body_left_);
      return Done();
    }
    auto self = shared_from_this();
    asio::async_read(socket_, asio::dynamic_buffer(in_), asio::transfer_at_least(1),
                     [self](boost::system::error_code ec, size_t) {
                       if (ec) return self->Fail();
                       self->ReadBody();
                     });
  }

  void Done() {
    if (status_ != 200) ++stats_.errors;
    if (measured_) {
      stats_.latencies_us.push_back(
          std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - due_).count());
    }
    on_idle_(this);
  }

  void Fail() {
    ++stats_.errors;
    boost::system::error_code ignored;
    socket_.close(ignored);
    in_.clear();
    if (Connect()) on_idle_(this);  // a fresh connection takes its place
  }

  tcp::socket socket_;
  const Options& o_;
  Stats& stats_;
  const std::string request_;
  std::function<void(Connection*)> on_idle_;
  std::string in_;
  Clock::time_point due_;
  bool measured_ = false;
  int status_ = 0;
  size_t body_left_ = 0;
};

bool ParseFlag(const char* arg, const char* name, std::string* out) {
  std::string prefix = std::string("--") + name + "=";
  if (std::string_view(arg).substr(0, prefix.size()) != prefix) return false;
  *out = arg + prefix.size();
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string v;
    if (ParseFlag(argv[i], "port", &v))
      o.port = std::atoi(v.c_str());
    else if (ParseFlag(argv[i], "path", &v))
      o.path = v;
    else if (ParseFlag(argv[i], "header", &v))
      o.headers.push_back(v);
    else if (ParseFlag(argv[i], "body", &v))
      o.body = v;
    else if (ParseFlag(argv[i], "rate", &v))
      o.rate = std::atof(v.c_str());
    else if (ParseFlag(argv[i], "seconds", &v))
      o.seconds = std::atof(v.c_str());
    else if (ParseFlag(argv[i], "connections", &v))
      o.connections = std::atoi(v.c_str());
    else if (ParseFlag(argv[i], "warmup", &v))
      o.warmup_seconds = std::atof(v.c_str());
    else {
      std::fprintf(stderr, "unknown argument %s\n", argv[i]);
      return 2;
    }
  }
  if (o.port <= 0 || o.rate <= 0 || o.seconds <= 0 || o.connections <= 0) {
    std::fprintf(stderr,
                 "usage: tg-rate-client --port=N [--path=P] [--rate=R] [--seconds=S] "
                 "[--connections=C] [--header=H]... [--body=B]\n");
    return 2;
  }
  std::string request = "POST " + o.path + " HTTP/1.1\r\nHost: 127.0.0.1\r\n";
  for (const auto& h : o.headers) request += h + "\r\n";
  request += "Content-Type: application/json\r\nContent-Length: " + std::to_string(o.body.size()) +
             "\r\n\r\n" + o.body;

  asio::io_context io;
  Stats stats;
  stats.latencies_us.reserve(static_cast<size_t>(o.rate * o.seconds) + 16);
  std::deque<Connection*> idle;
  std::deque<std::pair<Clock::time_point, bool>> backlog;  // due, no connection free
  std::vector<std::shared_ptr<Connection>> conns;
  std::function<void(Connection*)> on_idle = [&](Connection* c) {
    if (!backlog.empty()) {
      auto [due, measured] = backlog.front();
      backlog.pop_front();
      c->Send(due, measured);
      return;
    }
    idle.push_back(c);
  };
  for (int i = 0; i < o.connections; ++i) {
    conns.push_back(std::make_shared<Connection>(io, o, stats, request, on_idle));
    if (!conns.back()->Connect()) {
      std::fprintf(stderr, "cannot connect to 127.0.0.1:%d\n", o.port);
      return 1;
    }
    idle.push_back(conns.back().get());
  }

  const auto start = Clock::now() + std::chrono::milliseconds(10);
  const auto interval = std::chrono::duration<double>(1.0 / o.rate);
  const int64_t warmup = static_cast<int64_t>(o.rate * o.warmup_seconds);
  const int64_t total = warmup + static_cast<int64_t>(o.rate * o.seconds);
  int64_t next = 0;
  asio::steady_timer timer(io);
  std::function<void()> tick = [&] {
    const auto now = Clock::now();
    for (; next < total; ++next) {
      auto due =
          start + std::chrono::duration_cast<Clock::duration>(interval * static_cast<double>(next));
      if (due > now) break;
      bool measured = next >= warmup;
      if (!idle.empty()) {
        Connection* c = idle.front();
        idle.pop_front();
        c->Send(due, measured);
      } else {
        backlog.emplace_back(due, measured);
      }
    }
    if (next < total) {
      timer.expires_at(start + std::chrono::duration_cast<Clock::duration>(
                                   interval * static_cast<double>(next)));
      timer.async_wait([&](boost::system::error_code) { tick(); });
    }
  };
  timer.expires_at(start);
  timer.async_wait([&](boost::system::error_code) { tick(); });
  // Runs until every request is answered (the last ones drain the backlog).
  io.run_for(std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::duration<double>(o.warmup_seconds + o.seconds + 30)));

  auto& l = stats.latencies_us;
  std::sort(l.begin(), l.end());
  auto pct = [&](double p) -> long long {
    if (l.empty()) return 0;
    size_t i = static_cast<size_t>(p / 100.0 * static_cast<double>(l.size() - 1));
    return static_cast<long long>(l[i]);
  };
  const auto elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  std::printf(
      "requests %zu  errors %lld  rate %.0f/s  p50 %lldus  p90 %lldus  p99 %lldus  "
      "p99.9 %lldus  max %lldus\n",
      l.size(), static_cast<long long>(stats.errors),
      static_cast<double>(stats.sent) / std::max(elapsed, 1e-9), pct(50), pct(90), pct(99),
      pct(99.9), l.empty() ? 0LL : static_cast<long long>(l.back()));
  return stats.errors == 0 && static_cast<int64_t>(l.size()) == total - warmup ? 0 : 1;
}
