// Size: the HTTP connection loop and its two writers (whole answers, chunked streams).
#include "tg/common/http_server.h"

#include <algorithm>
#include <atomic>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>

#include "tg/common/http_headers.h"
#include "tg/common/json_util.h"
#include "tg/common/log.h"

namespace tg::web {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

namespace {

// After an answer that closes the connection the client may still be sending
// (an oversized body, pipelined requests). Closing a socket with unread input
// makes the kernel send RST, which can destroy our answer in the client's
// receive buffer; so we half-close and read for a bounded time first.
constexpr std::chrono::seconds kLingerTime{2};
constexpr size_t kLingerMaxBytes = 4 * 1024 * 1024;

}  // namespace

std::string_view HttpRequest::Header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (http_headers::NameEquals(k, name)) return v;
  }
  return {};
}

HttpResponse JsonResponse(int status, std::string json) {
  HttpResponse r;
  r.status = status;
  r.headers.emplace_back("Content-Type", "application/json");
  r.body = std::move(json);
  return r;
}

bool IsOriginForm(std::string_view target) {
  if (target.empty() || target.front() != '/') return false;
  for (char ch : target) {
    auto c = static_cast<unsigned char>(ch);
    if (c <= 0x20 || c >= 0x7f || c == '#') return false;
  }
  return true;
}

HttpResponse JsonError(int status, std::string_view message) {
  std::string body = "{\"error\":";
  json::AppendQuoted(body, message);
  body += '}';
  return JsonResponse(status, std::move(body));
}

// ---------------------------------------------------------------- responder

struct HttpResponder::State {
  State(std::function<void(HttpResponse)> s, StreamStarter st)
      : send(std::move(s)), start_stream(std::move(st)) {}
  ~State() {
    if (sent.exchange(true)) return;
    try {
      log::Error("http handler dropped a request without answering");
      send(JsonError(500, "internal error"));
    } catch (...) {
      // Nothing more can be done from a destructor; the connection's idle
      // handling or Stop() closes it.
    }
  }
  void Cancel() {
    std::function<void()> fn;
    {
      std::lock_guard lock(mu);
      if (cancelled) return;
      cancelled = true;
      fn = std::move(on_cancel);
    }
    if (fn) fn();
  }

  std::function<void(HttpResponse)> send;
  StreamStarter start_stream;
  std::atomic<bool> sent{false};
  std::mutex mu;
  bool cancelled = false;
  std::function<void()> on_cancel;
};

HttpResponder::HttpResponder(std::function<void(HttpResponse)> send)
    : HttpResponder(std::move(send), nullptr) {}

HttpResponder::HttpResponder(std::function<void(HttpResponse)> send, StreamStarter start_stream)
    : state_(std::make_shared<State>(std::move(send), std::move(start_stream))) {}

void HttpResponder::operator()(HttpResponse response) const {
  if (state_->sent.exchange(true)) {
    log::Error("http handler answered a request twice; second answer dropped");
    return;
  }
  state_->send(std::move(response));
}

namespace {

// The stream a responder without streaming support (tests) hands out: every
// write fails, so producers stop at once.
class DeadStream final : public HttpBodyStream {
 public:
  void Write(std::string, std::function<void(bool)> sent) override {
    if (sent) sent(false);
  }
  void Finish() override {}
  void Abort() override {}
  size_t pending_bytes() const override { return 0; }
};

}  // namespace

std::shared_ptr<HttpBodyStream> HttpResponder::Stream(HttpResponse head) const {
  if (state_->sent.exchange(true) || !state_->start_stream) {
    log::Error("http handler answered a request twice or cannot stream; stream dropped");
    return std::make_shared<DeadStream>();
  }
  return state_->start_stream(std::move(head));
}

bool HttpResponder::answered() const { return state_->sent.load(); }

void HttpResponder::OnCancel(std::function<void()> fn) const {
  {
    std::lock_guard lock(state_->mu);
    if (!state_->cancelled) {
      state_->on_cancel = std::move(fn);
      return;
    }
  }
  fn();
}

bool HttpResponder::cancelled() const {
  std::lock_guard lock(state_->mu);
  return state_->cancelled;
}

std::function<void()> HttpResponder::CancelHook() const {
  std::weak_ptr<State> weak = state_;
  return [weak] {
    if (auto s = weak.lock()) s->Cancel();
  };
}

bool ParseListenAddress(const std::string& listen, std::string* host, std::string* port,
                        std::string* error) {
  size_t colon;
  if (!listen.empty() && listen[0] == '[') {
    const size_t close = listen.find(']');
    if (close == std::string::npos || close + 1 >= listen.size() || listen[close + 1] != ':') {
      *error = "listen address \"" + listen + "\": expected [v6]:port";
      return false;
    }
    *host = listen.substr(1, close - 1);
    colon = close + 1;
  } else {
    colon = listen.rfind(':');
    if (colon == std::string::npos) {
      *error = "listen address \"" + listen + "\": expected host:port";
      return false;
    }
    *host = listen.substr(0, colon);
  }
  *port = listen.substr(colon + 1);
  if (port->empty() || port->size() > 5 ||
      !std::all_of(port->begin(), port->end(), [](char c) { return c >= '0' && c <= '9'; }) ||
      std::stoi(*port) > 65535) {
    *error = "listen address \"" + listen + "\": bad port";
    return false;
  }
  if (host->empty() || *host == "*") *host = "0.0.0.0";
  return true;
}

std::string ValidateHttpServerOptions(const HttpServerOptions& o) {
  std::string host, port, error;
  if (!ParseListenAddress(o.listen, &host, &port, &error)) return error;
  if (o.io_threads < 1 || o.io_threads > 256) return "io_threads must be in 1..256";
  if (o.body_limit == 0) return "body_limit must be > 0";
  if (o.header_limit < 1024) return "header_limit must be >= 1024";
  if (o.idle_timeout.count() <= 0) return "idle_timeout must be > 0";
  if (o.write_timeout.count() <= 0) return "write_timeout must be > 0";
  return "";
}

// ---------------------------------------------------------------- server state

class Session;

class HttpServer::Impl {
 public:
  Impl(HttpServerOptions o, HttpHandler* h) : options(std::move(o)), handler(h) {}

  void Accept();
  void OnAccept(beast::error_code ec, tcp::socket socket);
  void Unregister(uint64_t id);
  void Stop();

  const HttpServerOptions options;
  HttpHandler* const handler;
  std::atomic<bool> stopping{false};
  bool stopped = false;  // Stop() ran; touched by the owning thread only
  int port = 0;

  // Sessions unregister themselves from their destructors, which can run while
  // the io_context below is being destroyed: these members must outlive it,
  // hence they are declared first.
  std::mutex mu;
  std::condition_variable cv;
  std::unordered_map<uint64_t, std::weak_ptr<Session>> sessions;
  uint64_t next_session_id = 0;

  net::io_context ioc;
  std::optional<net::executor_work_guard<net::io_context::executor_type>> work;
  tcp::acceptor acceptor{net::make_strand(ioc)};
  net::steady_timer accept_retry{acceptor.get_executor()};
  std::vector<std::thread> threads;
};

// ---------------------------------------------------------------- session

// The body of a streamed answer: the handler's side queues pieces, the
// session's strand takes them one at a time (one write in flight).
class SessionStream final : public HttpBodyStream {
 public:
  struct Piece {
    std::string data;
    std::function<void(bool)> sent;
  };
  enum class Next { kNone, kPiece, kFinish, kAbort };

  // Holds the session weakly and no executor of its own: a body stream the
  // handler keeps past the server's end must not keep the session's strand
  // alive, whose destructor would then touch the destroyed io_context.
  explicit SessionStream(std::weak_ptr<Session> session) : session_(std::move(session)) {}

  void Write(std::string data, std::function<void(bool ok)> sent) override {
    {
      std::lock_guard lock(mu_);
      if (!dead_ && !finish_ && !abort_) {
        pending_ += data.size();
        queue_.push_back({std::move(data), std::move(sent)});
        sent = nullptr;
      }
    }
    if (sent) {
      sent(false);
      return;
    }
    Kick();
  }
  void Finish() override {
    {
      std::lock_guard lock(mu_);
      finish_ = true;
    }
    Kick();
  }
  void Abort() override {
    {
      std::lock_guard lock(mu_);
      abort_ = true;
    }
    Kick();
  }
  size_t pending_bytes() const override {
    std::lock_guard lock(mu_);
    return pending_;
  }

  // The session's strand only.
  Next Take(Piece* out) {
    std::lock_guard lock(mu_);
    if (abort_) return Next::kAbort;
    if (!queue_.empty()) {
      *out = std::move(queue_.front());
      queue_.pop_front();
      return Next::kPiece;
    }
    return finish_ ? Next::kFinish : Next::kNone;
  }
  void Sent(size_t n) {
    std::lock_guard lock(mu_);
    pending_ -= std::min(pending_, n);
  }
  // The connection is gone: fail what is queued and everything after.
  void Kill() {
    std::deque<Piece> q;
    {
      std::lock_guard lock(mu_);
      dead_ = true;
      q.swap(queue_);
      pending_ = 0;
    }
    for (auto& p : q) {
      if (p.sent) p.sent(false);
    }
  }

 private:
  void Kick();

  const std::weak_ptr<Session> session_;
  mutable std::mutex mu_;
  std::deque<Piece> queue_;
  size_t pending_ = 0;
  bool finish_ = false;
  bool abort_ = false;
  bool dead_ = false;
};

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket&& socket, HttpServer::Impl* server, uint64_t id)
      : stream_(std::move(socket)), server_(server), id_(id) {
    beast::error_code ec;
    auto ep = stream_.socket().remote_endpoint(ec);
    if (!ec) remote_ = ep.address().to_string() + ":" + std::to_string(ep.port());
  }
  ~Session() { server_->Unregister(id_); }

  void Start() {
    net::dispatch(stream_.get_executor(), [self = shared_from_this()] {
      self->Guarded("start", [&] { self->ReadHeader(); });
    });
  }

  // The server is stopping: an idle keep-alive connection closes now; one
  // with a request in flight finishes it (the answer then closes).
  void OnServerStop() {
    if (state_ == State::kReading && (!parser_ || !parser_->got_some()) && buffer_.size() == 0) {
      Close();
    }
  }

  void ForceClose() { Close(); }

  net::any_io_executor executor() { return stream_.get_executor(); }

  void Deliver(HttpResponse response, uint64_t seq) {
    Guarded("deliver", [&] {
      if (state_ != State::kHandling || seq != seq_) return;  // closed meanwhile
      Write(std::move(response), false);
    });
  }

  // Writes the head of a streamed answer (chunked), then pumps its pieces.
  void DeliverStream(HttpResponse head, uint64_t seq, std::shared_ptr<SessionStream> body) {
    Guarded("deliver stream", [&] {
      if (state_ != State::kHandling || seq != seq_) {
        body->Kill();
        return;
      }
      self_.reset();  // pending operations keep the session alive from here on
      stream_close_ = head.close || !keep_alive_ || server_->stopping.load();
      auto res = std::make_shared<http::response<http::empty_body>>();
      res->version(version_ >= 11 ? version_ : 11);
      res->result(static_cast<unsigned>(head.status));
      for (auto& [k, v] : head.headers) res->insert(k, v);
      res->keep_alive(!stream_close_);
      res->chunked(true);
      LogAccess(head.status);
      state_ = State::kStreaming;
      body_ = std::move(body);
      stream_head_written_ = false;
      auto sr = std::make_shared<http::response_serializer<http::empty_body>>(*res);
      stream_.expires_after(server_->options.write_timeout);
      http::async_write_header(stream_, *sr,
                               [self = shared_from_this(), res, sr](beast::error_code ec, size_t) {
                                 self->Guarded("write stream head", [&] {
                                   if (ec) return self->Close();
                                   self->stream_head_written_ = true;
                                   self->PumpStream();
                                 });
                               });
    });
  }

  void PumpStream() {
    Guarded("pump stream", [&] {
      if (state_ != State::kStreaming || !stream_head_written_ || stream_writing_ || !body_) return;
      SessionStream::Piece piece;
      switch (body_->Take(&piece)) {
        case SessionStream::Next::kNone:
          // Waiting for the producer: a stream may be quiet for long (a slow
          // model), so no deadline while nothing is being written.
          stream_.expires_never();
          return;
        case SessionStream::Next::kAbort:
          return Close();
        case SessionStream::Next::kPiece: {
          if (piece.data.empty()) {  // an empty chunk would end the body
            if (piece.sent) piece.sent(true);
            return PumpStream();
          }
          stream_writing_ = true;
          auto buf = std::make_shared<std::string>(std::move(piece.data));
          auto sent = std::move(piece.sent);
          stream_.expires_after(server_->options.write_timeout);
          net::async_write(stream_, http::make_chunk(net::buffer(*buf)),
                           [self = shared_from_this(), buf, sent](beast::error_code ec, size_t) {
                             self->Guarded("write chunk", [&] {
                               self->stream_writing_ = false;
                               if (self->body_) self->body_->Sent(buf->size());
                               if (sent) sent(!ec);
                               if (ec) return self->Close();
                               self->PumpStream();
                             });
                           });
          return;
        }
        case SessionStream::Next::kFinish:
          stream_writing_ = true;
          stream_.expires_after(server_->options.write_timeout);
          net::async_write(stream_, http::make_chunk_last(),
                           [self = shared_from_this()](beast::error_code ec, size_t) {
                             self->Guarded("write last chunk", [&] {
                               self->stream_writing_ = false;
                               self->body_.reset();
                               if (!ec) self->request_open_ = false;
                               self->state_ = State::kWriting;
                               self->OnWrite(ec, self->stream_close_);
                             });
                           });
          return;
      }
    });
  }

 private:
  enum class State { kReading, kHandling, kWriting, kStreaming, kClosed };

  // While a request is in flight the client sends nothing more (HTTP/1.1), so
  // the peer closing the connection is the only thing to read: the handler is
  // told (OnCancel) and stops its upstream work. A one-byte MSG_PEEK receive
  // proves it: it completes only with data or end-of-stream and consumes
  // nothing, so a pipelined next request stays for the parser. (A wait_read
  // would not do: Asio completes waits speculatively after a read that never
  // hit EAGAIN, which looks like a readable socket with no bytes.)
  void WatchPeer() {
    stream_.socket().async_receive(net::buffer(peek_byte_), tcp::socket::message_peek,
                                   [self = shared_from_this()](beast::error_code ec, size_t n) {
                                     self->Guarded("watch peer", [&] {
                                       if (ec == net::error::operation_aborted) return;
                                       // End of stream or reset: the client left. With a request
                                       // open that cancels it. Without one it ends the wait for the
                                       // next request or the lingering close just the same, and
                                       // must: on end-of-stream Asio completes this receive as
                                       // "exhausted" and does not run the read queued behind it
                                       // (nor will edge-triggered epoll report the socket again),
                                       // so that read would wait for its timer (idle timeout,
                                       // linger time), keeping the session and its descriptor for
                                       // up to a minute after the client left.
                                       if (ec || n == 0) return self->Close();
                                       // Bytes arrived: a pipelined request, read once this one is
                                       // done.
                                     });
                                   });
  }

  void LogAccess(int status) {
    if (!server_->options.access_log) return;
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                  std::chrono::steady_clock::now() - started_)
                  .count();
    log::Info("http request", {{"listener", server_->options.name},
                               {"method", method_},
                               {"path", path_},
                               {"status", std::to_string(status)},
                               {"duration_ms", std::to_string(ms)},
                               {"remote", remote_}});
  }

  // No exception may leave an Asio handler: it would unwind through
  // io_context::run. What we cannot answer any more, we close.
  template <typename F>
  void Guarded(const char* where, F&& f) {
    try {
      f();
    } catch (const std::exception& e) {
      log::Error("exception in http connection", {{"where", where}, {"what", e.what()}});
      Close();
    } catch (...) {
      log::Error("exception in http connection", {{"where", where}, {"what", "unknown"}});
      Close();
    }
  }

  void ReadHeader() {
    if (server_->stopping.load()) return Close();
    state_ = State::kReading;
    parser_.emplace();
    parser_->header_limit(server_->options.header_limit);
    parser_->body_limit(server_->options.body_limit);
    method_ = "-";
    path_ = "-";
    head_ = false;
    stream_.expires_after(server_->options.idle_timeout);
    http::async_read_header(stream_, buffer_, *parser_,
                            [self = shared_from_this()](beast::error_code ec, size_t) {
                              self->Guarded("read header", [&] { self->OnHeader(ec); });
                            });
  }

  void OnHeader(beast::error_code ec) {
    if (ec) return FailRead(ec);
    auto& req = parser_->get();
    started_ = std::chrono::steady_clock::now();
    method_ = std::string(req.method_string());
    auto target = std::string_view(req.target().data(), req.target().size());
    if (!IsOriginForm(target)) {
      // Answered before the body is read; the connection closes after it.
      path_ = "-";
      version_ = req.version();
      return WriteError(400, "request target must be an absolute path (origin-form)");
    }
    path_ = std::string(target.substr(0, target.find('?')));
    // curl and others wait (up to a second) for this before sending a body.
    if (req.version() >= 11 && beast::iequals(req[http::field::expect], "100-continue")) {
      auto cont = std::make_shared<http::response<http::empty_body>>(http::status::continue_, 11);
      http::async_write(stream_, *cont,
                        [self = shared_from_this(), cont](beast::error_code wec, size_t) {
                          self->Guarded("write 100", [&] {
                            if (wec) return self->Close();
                            self->ReadBody();
                          });
                        });
      return;
    }
    ReadBody();
  }

  void ReadBody() {
    http::async_read(stream_, buffer_, *parser_,
                     [self = shared_from_this()](beast::error_code ec, size_t) {
                       self->Guarded("read body", [&] { self->OnBody(ec); });
                     });
  }

  void OnBody(beast::error_code ec) {
    if (ec) return FailRead(ec);
    stream_.expires_never();
    Dispatch();
  }

  void FailRead(beast::error_code ec) {
    // The start line may be parsed even when the head as a whole failed.
    if (parser_ && parser_->got_some() && !parser_->get().method_string().empty()) {
      auto& req = parser_->get();
      method_ = std::string(req.method_string());
      auto target = std::string_view(req.target().data(), req.target().size());
      path_ = std::string(target.substr(0, target.find('?')));
      version_ = req.version();
    }
    started_ = std::chrono::steady_clock::now();
    if (ec == http::error::body_limit) {
      return WriteError(413, "request body too large (limit " +
                                 std::to_string(server_->options.body_limit) + " bytes)");
    }
    if (ec == http::error::header_limit) return WriteError(431, "request header too large");
    // The peer went away or idled out (or Stop closed us): nobody to answer.
    bool gone = ec == http::error::end_of_stream || ec == http::error::partial_message ||
                ec == http::error::short_read;
    if (!gone && ec.category() == http::make_error_code(http::error::bad_method).category()) {
      return WriteError(400, "malformed HTTP request");
    }
    Close();
  }

  void WriteError(int status, std::string message) {
    state_ = State::kHandling;  // Write expects a request in hand
    Write(JsonError(status, message), true);
  }

  void Dispatch() {
    auto req = parser_->release();
    parser_.reset();
    keep_alive_ = req.keep_alive();
    version_ = req.version();
    head_ = req.method() == http::verb::head;

    HttpRequest r;
    r.method = method_;
    r.target = std::string(req.target());
    r.path = path_;
    if (auto q = r.target.find('?'); q != std::string::npos) r.query = r.target.substr(q + 1);
    r.headers.reserve(16);
    for (const auto& f : req) {
      r.headers.emplace_back(std::string(f.name_string()), std::string(f.value()));
    }
    r.body = std::move(req.body());
    r.remote = remote_;

    state_ = State::kHandling;
    self_ = shared_from_this();
    uint64_t seq = ++seq_;
    std::weak_ptr<Session> weak = self_;
    // Neither callback captures the session's executor: a responder copy may
    // outlive the server (and its io_context), and a strand executor it held
    // would be destroyed after the strand service it points into.
    HttpResponder respond(
        [weak, seq](HttpResponse response) {
          auto s = weak.lock();
          if (!s) return;  // the connection is gone (closed by Stop)
          // The session moves into the posted handler: this (foreign) thread
          // must never hold its last reference, or the session would be
          // destroyed here, possibly after its io_context.
          auto ex = s->executor();
          net::post(ex, [s = std::move(s), seq, response = std::move(response)]() mutable {
            s->Deliver(std::move(response), seq);
          });
        },
        [weak, seq](HttpResponse head) -> std::shared_ptr<HttpBodyStream> {
          auto body = std::make_shared<SessionStream>(weak);
          auto s = weak.lock();
          if (!s) {
            body->Kill();
            return body;
          }
          auto ex = s->executor();
          net::post(ex, [s = std::move(s), seq, head = std::move(head), body]() mutable {
            s->DeliverStream(std::move(head), seq, body);
          });
          return body;
        });
    request_open_ = true;
    cancel_ = respond.CancelHook();
    WatchPeer();
    try {
      server_->handler->Handle(std::move(r), respond);
    } catch (const std::exception& e) {
      log::Error("http handler threw", {{"listener", server_->options.name}, {"what", e.what()}});
      respond(JsonError(500, "internal error"));
    } catch (...) {
      log::Error("http handler threw", {{"listener", server_->options.name}, {"what", "unknown"}});
      respond(JsonError(500, "internal error"));
    }
  }

  void Write(HttpResponse response, bool force_close) {
    self_.reset();  // the pending write keeps the session alive from here on
    bool close = force_close || response.close || !keep_alive_ || server_->stopping.load();
    auto res = std::make_shared<http::response<http::string_body>>();
    res->version(version_ >= 10 ? version_ : 11);
    res->result(static_cast<unsigned>(response.status));
    for (auto& [k, v] : response.headers) res->insert(k, v);
    res->keep_alive(!close);
    int s = response.status;
    if (s < 200 || s == 204 || s == 304) {
      // Such answers have no body and must not announce one (RFC 9110 8.6).
      res->erase(http::field::content_length);
    } else if (head_) {
      res->content_length(response.body.size());  // the length a GET would have had
    } else {
      res->body() = std::move(response.body);
      res->prepare_payload();
    }
    LogAccess(s);
    state_ = State::kWriting;
    stream_.expires_after(server_->options.write_timeout);
    http::async_write(stream_, *res,
                      [self = shared_from_this(), res, close](beast::error_code ec, size_t) {
                        self->Guarded("write", [&] { self->OnWrite(ec, close); });
                      });
  }

  void OnWrite(beast::error_code ec, bool close) {
    if (ec) return Close();
    request_open_ = false;
    cancel_ = nullptr;
    if (close || server_->stopping.load()) return LingeringClose();
    ReadHeader();
  }

  void LingeringClose() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    if (ec) return Close();
    state_ = State::kClosed;
    stream_.expires_after(kLingerTime);
    Drain();
  }

  void Drain() {
    stream_.async_read_some(net::buffer(drain_),
                            [self = shared_from_this()](beast::error_code ec, size_t n) {
                              self->Guarded("drain", [&] {
                                self->drained_ += n;
                                if (ec || self->drained_ > kLingerMaxBytes) return self->Close();
                                self->Drain();
                              });
                            });
  }

  void Close() {
    if (body_) {
      body_->Kill();
      body_.reset();
    }
    if (request_open_ && cancel_) {
      request_open_ = false;
      auto cancel = std::move(cancel_);
      cancel();
    }
    state_ = State::kClosed;
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
    stream_.close();
    self_.reset();
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  HttpServer::Impl* const server_;
  const uint64_t id_;
  std::string remote_;
  State state_ = State::kReading;
  bool keep_alive_ = false;
  bool head_ = false;
  unsigned version_ = 11;
  uint64_t seq_ = 0;  // numbers requests, so a late answer never reaches the next one
  std::string method_ = "-";
  std::string path_ = "-";
  std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
  // Held while the handler works, when no Asio operation owns the session.
  std::shared_ptr<Session> self_;
  std::array<char, 16 * 1024> drain_{};
  std::array<char, 1> peek_byte_{};
  size_t drained_ = 0;
  // The request being answered: its cancellation hook, and its streamed body.
  bool request_open_ = false;
  std::function<void()> cancel_;
  std::shared_ptr<SessionStream> body_;
  bool stream_head_written_ = false;
  bool stream_writing_ = false;
  bool stream_close_ = false;
};

void SessionStream::Kick() {
  auto s = session_.lock();
  if (!s) {
    Kill();
    return;
  }
  auto ex = s->executor();
  net::post(ex, [s = std::move(s)] { s->PumpStream(); });  // never the last reference here
}

// ---------------------------------------------------------------- server

void HttpServer::Impl::Accept() {
  acceptor.async_accept(net::make_strand(ioc), [this](beast::error_code ec, tcp::socket socket) {
    try {
      OnAccept(ec, std::move(socket));
    } catch (const std::exception& e) {
      log::Error("exception accepting a connection", {{"what", e.what()}});
      if (acceptor.is_open()) Accept();
    }
  });
}

void HttpServer::Impl::OnAccept(beast::error_code ec, tcp::socket socket) {
  if (stopping.load() || !acceptor.is_open()) return;
  if (ec) {
    // E.g. EMFILE: retry shortly rather than spin.
    log::Warn("accept failed", {{"listener", options.name}, {"error", ec.message()}});
    accept_retry.expires_after(std::chrono::milliseconds(100));
    accept_retry.async_wait([this](beast::error_code) {
      if (!stopping.load() && acceptor.is_open()) Accept();
    });
    return;
  }
  beast::error_code ignored;
  socket.set_option(tcp::no_delay(true), ignored);
  std::shared_ptr<Session> session;
  {
    std::lock_guard lock(mu);
    uint64_t id = ++next_session_id;
    session = std::make_shared<Session>(std::move(socket), this, id);
    sessions.emplace(id, session);
  }
  session->Start();
  Accept();
}

void HttpServer::Impl::Unregister(uint64_t id) {
  std::lock_guard lock(mu);
  sessions.erase(id);
  if (sessions.empty()) cv.notify_all();
}

void HttpServer::Impl::Stop() {
  if (stopped) return;
  stopped = true;
  stopping.store(true);
  net::post(acceptor.get_executor(), [this] {
    beast::error_code ec;
    acceptor.close(ec);
    accept_retry.cancel();
  });

  auto post_to_all = [this](void (Session::*fn)()) {
    std::vector<std::weak_ptr<Session>> all;
    {
      std::lock_guard lock(mu);
      for (auto& [id, w] : sessions) all.push_back(w);
    }
    for (auto& w : all) {
      if (auto s = w.lock()) net::post(s->executor(), [s, fn] { ((*s).*fn)(); });
    }
  };
  auto wait_empty = [this](std::chrono::milliseconds d) {
    std::unique_lock lock(mu);
    return cv.wait_for(lock, d, [this] { return sessions.empty(); });
  };

  post_to_all(&Session::OnServerStop);
  if (!wait_empty(options.shutdown_grace)) {
    size_t left;
    {
      std::lock_guard lock(mu);
      left = sessions.size();
    }
    log::Warn("closing connections still busy after the shutdown grace",
              {{"listener", options.name}, {"connections", std::to_string(left)}});
    post_to_all(&Session::ForceClose);
    wait_empty(std::chrono::milliseconds(1000));
  }
  work.reset();
  ioc.stop();
  for (auto& t : threads) t.join();
  threads.clear();
}

HttpServer::HttpServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

HttpServer::~HttpServer() { Stop(); }

int HttpServer::port() const { return impl_->port; }

void HttpServer::Stop() { impl_->Stop(); }

std::unique_ptr<HttpServer> HttpServer::Start(const HttpServerOptions& options,
                                              HttpHandler* handler, std::string* error) {
  if (auto e = ValidateHttpServerOptions(options); !e.empty()) {
    *error = e;
    return nullptr;
  }
  auto impl = std::make_unique<Impl>(options, handler);
  std::string host, port, ignored;
  ParseListenAddress(options.listen, &host, &port, &ignored);
  beast::error_code ec;
  tcp::resolver resolver(impl->ioc);
  auto results = resolver.resolve(host, port, tcp::resolver::passive, ec);
  if (ec || results.empty()) {
    *error = "cannot resolve " + options.listen + ": " + ec.message();
    return nullptr;
  }
  tcp::endpoint ep = results.begin()->endpoint();
  auto& a = impl->acceptor;
  a.open(ep.protocol(), ec);
  if (!ec) a.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) a.bind(ep, ec);
  if (!ec) a.listen(net::socket_base::max_listen_connections, ec);
  if (ec) {
    *error = "cannot listen on " + options.listen + ": " + ec.message();
    return nullptr;
  }
  impl->port = a.local_endpoint(ec).port();
  impl->work.emplace(impl->ioc.get_executor());
  impl->Accept();
  Impl* raw = impl.get();
  for (int i = 0; i < options.io_threads; ++i) {
    raw->threads.emplace_back([raw] {
      // Handlers catch their own exceptions; this is the last line of defence
      // so that one bug does not take an io thread down with it.
      for (;;) {
        try {
          raw->ioc.run();
          return;
        } catch (const std::exception& e) {
          log::Error("exception escaped to the io loop", {{"what", e.what()}});
        } catch (...) {
          log::Error("exception escaped to the io loop", {{"what", "unknown"}});
        }
      }
    });
  }
  log::Info("http listening", {{"listener", options.name},
                               {"address", options.listen},
                               {"port", std::to_string(raw->port)}});
  return std::unique_ptr<HttpServer>(new HttpServer(std::move(impl)));
}

}  // namespace tg::web
