// Size: one libcurl multi loop: transfers, timeouts, pause/resume, egress checks, connection reuse.
#include "tg/adapter/http/curl_http_client.h"

#include <curl/curl.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>

namespace tg::adapter::http {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// How often running transfers are checked against their first-byte and idle
// deadlines (libcurl has no such timeouts). The granularity of those timeouts.
constexpr milliseconds kDeadlineTick{20};

[[noreturn]] void Die(const char* what) {
  std::fprintf(stderr, "fatal: http client: %s (errno %d)\n", what, errno);
  std::abort();
}

void GlobalInit() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) Die("curl_global_init failed");
  });
}

std::string_view TrimLine(std::string_view s) {
  while (!s.empty() &&
         (s.back() == '\r' || s.back() == '\n' || s.back() == ' ' || s.back() == '\t')) {
    s.remove_suffix(1);
  }
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  return s;
}

}  // namespace

class CurlTransfer;

// The event loop: one thread, one epoll set, one CURLM. Everything that
// touches libcurl runs on this thread; other threads Post() commands.
class CurlHttpClient::Loop {
 public:
  explicit Loop(CurlHttpClientOptions options);
  ~Loop();

  void Run();       // the thread's body
  void Shutdown();  // from the owner: cancel everything, join

  // false when the loop is shutting down (the command is dropped).
  bool Post(std::function<void()> command);
  bool OnLoopThread() const { return std::this_thread::get_id() == thread_id_.load(); }
  void SetThread(std::thread t) {
    thread_id_ = t.get_id();
    thread_ = std::move(t);
  }

  void Add(std::shared_ptr<CurlTransfer> transfer);
  void Finish(CurlTransfer* transfer, HttpResult result);
  void Unpause(CurlTransfer* transfer);

  const CurlHttpClientOptions& options() const { return options_; }
  size_t active() const { return active_count_.load(); }
  // Start counts a transfer from the moment it is queued.
  void AddPending() { active_count_++; }
  void RemovePending() { active_count_--; }

 private:
  static int SocketCallback(CURL* easy, curl_socket_t s, int what, void* userp, void* socketp);
  static int TimerCallback(CURLM* multi, long timeout_ms, void* userp);

  void RunCommands();
  void ReadCompletions();
  void CheckDeadlines(Clock::time_point now);
  void Wake();

  const CurlHttpClientOptions options_;
  CURLM* multi_ = nullptr;
  int epoll_fd_ = -1;
  int wake_fd_ = -1;
  std::thread thread_;
  std::atomic<std::thread::id> thread_id_;
  std::optional<Clock::time_point> curl_deadline_;  // from CURLMOPT_TIMERFUNCTION
  std::unordered_map<CURL*, std::shared_ptr<CurlTransfer>> transfers_;
  std::atomic<size_t> active_count_{0};

  std::mutex mu_;
  std::deque<std::function<void()>> commands_;
  bool stopping_ = false;
};

// One request in flight. Fields below "loop thread only" are touched by the
// loop thread alone; the rest is immutable after construction or atomic.
class CurlTransfer final : public HttpTransfer, public std::enable_shared_from_this<CurlTransfer> {
 public:
  CurlTransfer(std::shared_ptr<CurlHttpClient::Loop> loop, HttpRequest request,
               std::shared_ptr<HttpStreamHandler> handler)
      : loop_(std::move(loop)),
        request_(std::move(request)),
        handler_(std::move(handler)),
        timeouts_(request_.timeouts.value_or(loop_->options().timeouts)) {}

  ~CurlTransfer() override { Cleanup(); }

  // Builds the easy handle; false (with *kind and *error) when the request
  // cannot start (libcurl refuses it, or the egress policy does).
  bool Setup(HttpErrorKind* kind, std::string* error);

  void Pause() override {
    if (loop_->OnLoopThread()) {
      paused_ = true;  // the next write callback returns CURL_WRITEFUNC_PAUSE
      return;
    }
    loop_->Post([self = shared_from_this()] { self->paused_ = true; });
  }

  void Resume() override {
    // Always queued: curl_easy_pause may deliver data at once, which must not
    // happen inside another transfer's callback.
    loop_->Post([self = shared_from_this()] { self->loop_->Unpause(self.get()); });
  }

  void Cancel() override {
    cancel_requested_ = true;  // stops OnBody at the next write callback
    loop_->Post([self = shared_from_this()] {
      if (!self->done_) {
        HttpResult r;
        r.error = HttpErrorKind::kCancelled;
        r.message = "cancelled";
        self->loop_->Finish(self.get(), std::move(r));
      }
    });
  }

  CURL* easy() const { return easy_; }

  // ---- loop thread only
  static size_t WriteCallback(char* data, size_t size, size_t nmemb, void* userdata);
  static size_t HeaderCallback(char* data, size_t size, size_t nitems, void* userdata);
  static curl_socket_t OpenSocket(void* clientp, curlsocktype purpose, curl_sockaddr* address);
  static int BeforeSend(void* clientp, char* primary_ip, char* local_ip, int primary_port,
                        int local_port);

  void DeliverHead();
  void Complete(HttpResult result);  // OnDone once, then drops the handler
  void Cleanup();

  Clock::time_point started_at;
  Clock::time_point last_activity;
  bool paused_ = false;
  bool done_ = false;
  bool head_delivered_ = false;
  std::atomic<bool> cancel_requested_{false};
  HttpResponseHead head_;
  uint64_t body_bytes_ = 0;
  char error_buffer_[CURL_ERROR_SIZE] = {0};
  // The class of the last address the egress policy refused, if any.
  std::optional<egress::AddressClass> refused_;
  bool body_without_head_ = false;
  int sends_ = 0;                // requests libcurl was about to send on a connection
  bool resend_refused_ = false;  // it was about to send this one a second time

  std::shared_ptr<CurlHttpClient::Loop> loop_;
  HttpRequest request_;
  std::shared_ptr<HttpStreamHandler> handler_;
  const HttpTimeouts timeouts_;

 private:
  CURL* easy_ = nullptr;
  CURLU* url_ = nullptr;
  curl_slist* header_list_ = nullptr;
};

// ------------------------------------------------------------------ CurlTransfer

// The URL as libcurl itself parses it (the handle then goes to the easy
// handle, so nothing parses it differently later): http or https, a host
// that is a plain name or IP literal, no user info, no fragment. An IP
// literal the policy refuses is refused here, before any I/O; every other
// address is checked in OpenSocket.
bool CheckUrl(CURLU* u, const egress::Policy& policy, bool metadata_call, std::string* error) {
  auto part = [u](CURLUPart what) {
    char* raw = nullptr;
    if (curl_url_get(u, what, &raw, 0) != CURLUE_OK || raw == nullptr) return std::string();
    std::string out(raw);
    curl_free(raw);
    return out;
  };
  std::string scheme = part(CURLUPART_SCHEME);
  if (scheme != "http" && scheme != "https") {
    *error = "only http and https URLs are allowed";
    return false;
  }
  if (!part(CURLUPART_USER).empty() || !part(CURLUPART_PASSWORD).empty() ||
      !part(CURLUPART_OPTIONS).empty() || !part(CURLUPART_FRAGMENT).empty()) {
    *error = "URL must not carry user info or a fragment";
    return false;
  }
  std::string host_error;
  auto host = egress::ParseHost(part(CURLUPART_HOST), &host_error);
  if (!host) {
    *error = "URL host " + host_error;
    return false;
  }
  if (auto c = egress::ClassifyLiteral(host->host);
      c && !egress::Allowed(*c, policy, metadata_call)) {
    *error = "connection to a " + std::string(egress::AddressClassName(*c)) + " address";
    return false;
  }
  return true;
}

bool CurlTransfer::Setup(HttpErrorKind* kind, std::string* error) {
  *kind = HttpErrorKind::kProtocol;
  easy_ = curl_easy_init();
  url_ = curl_url();
  if (easy_ == nullptr || url_ == nullptr) {
    *error = "curl_easy_init failed";
    return false;
  }
  const CurlHttpClientOptions& o = loop_->options();
  if (curl_url_set(url_, CURLUPART_URL, request_.url.c_str(), 0) != CURLUE_OK) {
    *kind = HttpErrorKind::kRefused;
    *error = "URL is not valid";
    return false;
  }
  if (!CheckUrl(url_, o.egress, request_.metadata_call, error)) {
    *kind = HttpErrorKind::kRefused;
    return false;
  }
  bool has_content_type = false, has_user_agent = false;
  for (const auto& [name, value] : request_.headers) {
    std::string line = name + ": " + value;
    if (value.empty()) line = name + ";";  // libcurl's spelling of "send it empty"
    header_list_ = curl_slist_append(header_list_, line.c_str());
    if (strcasecmp(name.c_str(), "content-type") == 0) has_content_type = true;
    if (strcasecmp(name.c_str(), "user-agent") == 0) has_user_agent = true;
  }
  // No "Expect: 100-continue" round trip, and no invented form Content-Type:
  // what the caller passed (and perhaps signed) is what goes out.
  header_list_ = curl_slist_append(header_list_, "Expect:");
  if (!has_content_type) header_list_ = curl_slist_append(header_list_, "Content-Type:");

  curl_easy_setopt(easy_, CURLOPT_CURLU, url_);
  // Egress: http and https only, also for redirects, which are never
  // followed anyway; every address connected to passes OpenSocket.
  curl_easy_setopt(easy_, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(easy_, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(easy_, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(easy_, CURLOPT_OPENSOCKETFUNCTION, &CurlTransfer::OpenSocket);
  curl_easy_setopt(easy_, CURLOPT_OPENSOCKETDATA, this);
  // libcurl re-sends a request by itself when the reused connection it went
  // out on dies before any answer byte: a call the provider may well have
  // received (and bill). BeforeSend refuses the second send; the failure is
  // then the caller's to retry, as a counted attempt. Connections idle for
  // long are not reused, so a provider closing them is rarely raced.
  curl_easy_setopt(easy_, CURLOPT_PREREQFUNCTION, &CurlTransfer::BeforeSend);
  curl_easy_setopt(easy_, CURLOPT_PREREQDATA, this);
  curl_easy_setopt(easy_, CURLOPT_MAXAGE_CONN, 30L);
  // A metadata connection is never handed to another transfer.
  if (request_.metadata_call) curl_easy_setopt(easy_, CURLOPT_FORBID_REUSE, 1L);
  curl_easy_setopt(easy_, CURLOPT_PRIVATE, this);
  curl_easy_setopt(easy_, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(easy_, CURLOPT_ERRORBUFFER, error_buffer_);
  curl_easy_setopt(easy_, CURLOPT_HTTPHEADER, header_list_);
  curl_easy_setopt(easy_, CURLOPT_WRITEFUNCTION, &CurlTransfer::WriteCallback);
  curl_easy_setopt(easy_, CURLOPT_WRITEDATA, this);
  curl_easy_setopt(easy_, CURLOPT_HEADERFUNCTION, &CurlTransfer::HeaderCallback);
  curl_easy_setopt(easy_, CURLOPT_HEADERDATA, this);
  curl_easy_setopt(easy_, CURLOPT_HTTP_VERSION,
                   o.http2 ? CURL_HTTP_VERSION_2TLS : CURL_HTTP_VERSION_1_1);
  // Over TLS, wait for a connection that may multiplex rather than open
  // another; plain http:// is HTTP/1.1 and never multiplexes.
  if (o.http2 && request_.url.starts_with("https://")) {
    curl_easy_setopt(easy_, CURLOPT_PIPEWAIT, 1L);
  }
  curl_easy_setopt(easy_, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(easy_, CURLOPT_SSL_VERIFYHOST, 2L);
  if (!o.ca_file.empty()) curl_easy_setopt(easy_, CURLOPT_CAINFO, o.ca_file.c_str());
  curl_easy_setopt(easy_, CURLOPT_SUPPRESS_CONNECT_HEADERS,
                   1L);                                // a proxy's CONNECT answer is not the head
  curl_easy_setopt(easy_, CURLOPT_TCP_KEEPALIVE, 1L);  // long silent streams behind NATs
  curl_easy_setopt(easy_, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(timeouts_.connect.count()));
  curl_easy_setopt(easy_, CURLOPT_TIMEOUT_MS, static_cast<long>(timeouts_.total.count()));
  if (!has_user_agent) curl_easy_setopt(easy_, CURLOPT_USERAGENT, o.user_agent.c_str());

  const std::string& m = request_.method;
  if (m == "GET") {
    curl_easy_setopt(easy_, CURLOPT_HTTPGET, 1L);
  } else if (m == "HEAD") {
    curl_easy_setopt(easy_, CURLOPT_NOBODY, 1L);
  } else {
    if (m != "POST") curl_easy_setopt(easy_, CURLOPT_CUSTOMREQUEST, m.c_str());
    curl_easy_setopt(easy_, CURLOPT_POSTFIELDSIZE_LARGE,
                     static_cast<curl_off_t>(request_.body.size()));
    curl_easy_setopt(easy_, CURLOPT_POSTFIELDS, request_.body.data());
  }
  return true;
}

curl_socket_t CurlTransfer::OpenSocket(void* clientp, curlsocktype purpose,
                                       curl_sockaddr* address) {
  auto* t = static_cast<CurlTransfer*>(clientp);
  if (purpose == CURLSOCKTYPE_IPCXN) {
    auto c = egress::Classify(&address->addr, address->addrlen);
    if (!c || !egress::Allowed(*c, t->loop_->options().egress, t->request_.metadata_call)) {
      t->refused_ = c.value_or(egress::AddressClass::kUnspecified);
      return CURL_SOCKET_BAD;  // libcurl tries the next address, or fails COULDNT_CONNECT
    }
  }
  return socket(address->family, address->socktype | SOCK_CLOEXEC, address->protocol);
}

int CurlTransfer::BeforeSend(void* clientp, char*, char*, int, int) {
  auto* t = static_cast<CurlTransfer*>(clientp);
  if (++t->sends_ > 1) {
    t->resend_refused_ = true;
    return CURL_PREREQFUNC_ABORT;
  }
  return CURL_PREREQFUNC_OK;
}

void CurlTransfer::Cleanup() {
  if (easy_ != nullptr) curl_easy_cleanup(easy_);
  easy_ = nullptr;
  if (url_ != nullptr) curl_url_cleanup(url_);
  url_ = nullptr;
  if (header_list_ != nullptr) curl_slist_free_all(header_list_);
  header_list_ = nullptr;
}

void CurlTransfer::DeliverHead() {
  if (head_delivered_ || head_.status < 200) return;
  head_delivered_ = true;
  last_activity = Clock::now();
  if (handler_) handler_->OnHead(head_);
}

void CurlTransfer::Complete(HttpResult result) {
  if (done_) return;
  done_ = true;
  if (result.ok()) DeliverHead();  // a response without a body still has a head
  result.head_received = head_delivered_;
  result.body_bytes = body_bytes_;
  if (easy_ != nullptr) {
    long connects = 0;
    curl_easy_getinfo(easy_, CURLINFO_NUM_CONNECTS, &connects);
    result.new_connections = connects;
  }
  auto handler = std::move(handler_);
  if (handler) handler->OnDone(result);
}

size_t CurlTransfer::HeaderCallback(char* data, size_t size, size_t nitems, void* userdata) {
  auto* t = static_cast<CurlTransfer*>(userdata);
  const size_t n = size * nitems;
  if (t->cancel_requested_) return 0;
  if (t->head_delivered_) return n;  // trailers
  std::string_view line = TrimLine(std::string_view(data, n));
  if (line.starts_with("HTTP/")) {
    // A new head: the first after a 1xx, or the only one.
    t->head_ = HttpResponseHead();
    size_t sp = line.find(' ');
    t->head_.version = std::string(line.substr(5, sp == std::string_view::npos ? 0 : sp - 5));
    if (sp != std::string_view::npos)
      t->head_.status = std::atoi(std::string(line.substr(sp + 1, 3)).c_str());
  } else if (line.empty()) {
    t->DeliverHead();  // ignored for 1xx heads
  } else {
    size_t colon = line.find(':');
    if (colon != std::string_view::npos) {
      t->head_.headers.emplace_back(std::string(TrimLine(line.substr(0, colon))),
                                    std::string(TrimLine(line.substr(colon + 1))));
    }
  }
  t->last_activity = Clock::now();
  return n;
}

size_t CurlTransfer::WriteCallback(char* data, size_t size, size_t nmemb, void* userdata) {
  auto* t = static_cast<CurlTransfer*>(userdata);
  const size_t n = size * nmemb;
  if (t->cancel_requested_ || t->done_) return 0;  // aborts: CURLE_WRITE_ERROR
  // libcurl keeps these bytes and offers them again after curl_easy_pause(CONT).
  if (t->paused_) return CURL_WRITEFUNC_PAUSE;
  if (t->head_.status == 0) {
    // Bytes without an HTTP status line are not an answer; never pass them on.
    t->body_without_head_ = true;
    return 0;
  }
  t->DeliverHead();
  t->last_activity = Clock::now();
  t->body_bytes_ += n;
  if (t->handler_) t->handler_->OnBody(std::string_view(data, n));
  return n;
}

// ------------------------------------------------------------------ Loop

CurlHttpClient::Loop::Loop(CurlHttpClientOptions options) : options_(std::move(options)) {
  GlobalInit();
  multi_ = curl_multi_init();
  if (multi_ == nullptr) Die("curl_multi_init failed");
  epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (epoll_fd_ < 0 || wake_fd_ < 0) Die("epoll/eventfd");
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = wake_fd_;
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &ev) != 0) Die("epoll_ctl(eventfd)");

  curl_multi_setopt(multi_, CURLMOPT_SOCKETFUNCTION, &Loop::SocketCallback);
  curl_multi_setopt(multi_, CURLMOPT_SOCKETDATA, this);
  curl_multi_setopt(multi_, CURLMOPT_TIMERFUNCTION, &Loop::TimerCallback);
  curl_multi_setopt(multi_, CURLMOPT_TIMERDATA, this);
  curl_multi_setopt(multi_, CURLMOPT_PIPELINING, static_cast<long>(CURLPIPE_MULTIPLEX));
  if (options_.max_connections_per_host > 0) {
    curl_multi_setopt(multi_, CURLMOPT_MAX_HOST_CONNECTIONS, options_.max_connections_per_host);
  }
  if (options_.max_idle_connections > 0) {
    curl_multi_setopt(multi_, CURLMOPT_MAXCONNECTS, options_.max_idle_connections);
  }
}

CurlHttpClient::Loop::~Loop() {
  // Transfers were finished (and their easy handles cleaned up) by Run.
  if (multi_ != nullptr) curl_multi_cleanup(multi_);
  if (epoll_fd_ >= 0) close(epoll_fd_);
  if (wake_fd_ >= 0) close(wake_fd_);
}

bool CurlHttpClient::Loop::Post(std::function<void()> command) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return false;
    commands_.push_back(std::move(command));
  }
  Wake();
  return true;
}

void CurlHttpClient::Loop::Wake() {
  uint64_t one = 1;
  ssize_t ignored = write(wake_fd_, &one, sizeof(one));
  (void)ignored;  // EAGAIN: the counter is already non-zero, the loop will wake anyway
}

void CurlHttpClient::Loop::Shutdown() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  Wake();
  if (thread_.joinable()) thread_.join();
}

int CurlHttpClient::Loop::SocketCallback(CURL*, curl_socket_t s, int what, void* userp, void*) {
  auto* loop = static_cast<Loop*>(userp);
  if (what == CURL_POLL_REMOVE) {
    epoll_ctl(loop->epoll_fd_, EPOLL_CTL_DEL, s, nullptr);  // may already be closed: fine
    return 0;
  }
  epoll_event ev{};
  ev.data.fd = s;
  if (what & CURL_POLL_IN) ev.events |= EPOLLIN;
  if (what & CURL_POLL_OUT) ev.events |= EPOLLOUT;
  if (epoll_ctl(loop->epoll_fd_, EPOLL_CTL_MOD, s, &ev) != 0 && errno == ENOENT) {
    epoll_ctl(loop->epoll_fd_, EPOLL_CTL_ADD, s, &ev);
  }
  return 0;
}

int CurlHttpClient::Loop::TimerCallback(CURLM*, long timeout_ms, void* userp) {
  auto* loop = static_cast<Loop*>(userp);
  if (timeout_ms < 0) {
    loop->curl_deadline_.reset();
  } else {
    loop->curl_deadline_ = Clock::now() + milliseconds(timeout_ms);
  }
  return 0;
}

void CurlHttpClient::Loop::Add(std::shared_ptr<CurlTransfer> transfer) {
  CurlTransfer* t = transfer.get();
  t->started_at = Clock::now();
  t->last_activity = t->started_at;
  CURLMcode rc = curl_multi_add_handle(multi_, t->easy());
  if (rc != CURLM_OK) {
    HttpResult r;
    r.error = HttpErrorKind::kProtocol;
    r.message = std::string("cannot start transfer: ") + curl_multi_strerror(rc);
    active_count_--;
    t->Complete(std::move(r));
    return;
  }
  transfers_.emplace(t->easy(), std::move(transfer));
}

void CurlHttpClient::Loop::Finish(CurlTransfer* t, HttpResult result) {
  auto it = transfers_.find(t->easy());
  if (it == transfers_.end()) return;  // already finished
  std::shared_ptr<CurlTransfer> keep = std::move(it->second);
  transfers_.erase(it);
  // Removing a running transfer closes its connection: the server sees the
  // disconnect. A finished one returns its connection to the cache.
  curl_multi_remove_handle(multi_, t->easy());
  active_count_--;  // before OnDone: whoever it wakes sees the count already down
  t->Complete(std::move(result));
  t->Cleanup();
}

void CurlHttpClient::Loop::Unpause(CurlTransfer* t) {
  if (t->done_ || !t->paused_) return;
  t->paused_ = false;
  t->last_activity = Clock::now();  // the idle clock restarts: the pause was ours
  if (t->easy() != nullptr) curl_easy_pause(t->easy(), CURLPAUSE_CONT);
}

void CurlHttpClient::Loop::RunCommands() {
  std::deque<std::function<void()>> batch;
  {
    std::lock_guard<std::mutex> lock(mu_);
    batch.swap(commands_);
  }
  for (auto& command : batch) command();
}

void CurlHttpClient::Loop::ReadCompletions() {
  int pending = 0;
  while (CURLMsg* msg = curl_multi_info_read(multi_, &pending)) {
    if (msg->msg != CURLMSG_DONE) continue;
    CURL* easy = msg->easy_handle;
    CURLcode code = msg->data.result;
    auto it = transfers_.find(easy);
    if (it == transfers_.end()) continue;
    CurlTransfer* t = it->second.get();
    HttpResult r;
    if (t->cancel_requested_) {
      r.error = HttpErrorKind::kCancelled;
      r.message = "cancelled";
    } else if (code != CURLE_OK) {
      std::string detail =
          t->error_buffer_[0] != '\0' ? t->error_buffer_ : curl_easy_strerror(code);
      r.message = detail;
      if (t->refused_ && code == CURLE_COULDNT_CONNECT) {
        r.error = HttpErrorKind::kRefused;
        r.message = "connection to a " + std::string(egress::AddressClassName(*t->refused_)) +
                    " address refused by the egress policy";
        Finish(t, std::move(r));
        continue;
      }
      if (t->resend_refused_) {
        r.error = HttpErrorKind::kProtocol;
        r.message =
            "the connection closed before an answer; the request was not sent again "
            "(the provider may have received it)";
        Finish(t, std::move(r));
        continue;
      }
      if (t->body_without_head_) code = CURLE_WEIRD_SERVER_REPLY;
      switch (code) {
        case CURLE_COULDNT_RESOLVE_PROXY:
        case CURLE_COULDNT_RESOLVE_HOST:
        case CURLE_COULDNT_CONNECT:
        case CURLE_SSL_CONNECT_ERROR:
        case CURLE_PEER_FAILED_VERIFICATION:
        case CURLE_SSL_CERTPROBLEM:
        case CURLE_SSL_CIPHER:
        case CURLE_SSL_CACERT_BADFILE:
          r.error = HttpErrorKind::kConnect;
          break;
        case CURLE_URL_MALFORMAT:
          r.error = HttpErrorKind::kRefused;
          break;
        // Schemes are checked before the transfer starts; at this point this
        // is an answer without a status line (HTTP/0.9, or no HTTP at all).
        case CURLE_UNSUPPORTED_PROTOCOL:
          r.error = HttpErrorKind::kProtocol;
          break;
        case CURLE_OPERATION_TIMEDOUT: {
          r.error = HttpErrorKind::kTimeout;
          curl_off_t connect_us = 0;
          curl_easy_getinfo(easy, CURLINFO_CONNECT_TIME_T, &connect_us);
          r.timeout = connect_us == 0 ? TimeoutPhase::kConnect : TimeoutPhase::kTotal;
          break;
        }
        default:
          r.error = HttpErrorKind::kProtocol;
      }
    }
    Finish(t, std::move(r));
  }
}

void CurlHttpClient::Loop::CheckDeadlines(Clock::time_point now) {
  std::vector<std::pair<CurlTransfer*, TimeoutPhase>> expired;
  for (const auto& [easy, t] : transfers_) {
    if (!t->head_delivered_) {
      if (now - t->started_at >= t->timeouts_.first_byte) {
        expired.emplace_back(t.get(), TimeoutPhase::kFirstByte);
      }
    } else if (!t->paused_ && now - t->last_activity >= t->timeouts_.idle) {
      expired.emplace_back(t.get(), TimeoutPhase::kIdle);
    }
  }
  for (auto [t, phase] : expired) {
    HttpResult r;
    r.error = HttpErrorKind::kTimeout;
    r.timeout = phase;
    r.message =
        phase == TimeoutPhase::kFirstByte
            ? "no response head within " + std::to_string(t->timeouts_.first_byte.count()) + " ms"
            : "no data for " + std::to_string(t->timeouts_.idle.count()) + " ms";
    Finish(t, std::move(r));
  }
}

void CurlHttpClient::Loop::Run() {
  epoll_event events[64];
  Clock::time_point next_deadline_check = Clock::now() + kDeadlineTick;
  int running = 0;
  for (;;) {
    RunCommands();
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_ && commands_.empty()) break;
    }
    Clock::time_point now = Clock::now();
    Clock::time_point wake_at = now + std::chrono::seconds(1);
    if (!transfers_.empty()) wake_at = std::min(wake_at, next_deadline_check);
    if (curl_deadline_) wake_at = std::min(wake_at, *curl_deadline_);
    int timeout_ms = static_cast<int>(
        std::max<int64_t>(0, std::chrono::ceil<milliseconds>(wake_at - now).count()));
    int n = epoll_wait(epoll_fd_, events, 64, timeout_ms);
    if (n < 0 && errno != EINTR) Die("epoll_wait");
    for (int i = 0; i < n; ++i) {
      int fd = events[i].data.fd;
      if (fd == wake_fd_) {
        uint64_t count;
        ssize_t ignored = read(wake_fd_, &count, sizeof(count));
        (void)ignored;
        continue;
      }
      int flags = 0;
      if (events[i].events & (EPOLLIN | EPOLLHUP)) flags |= CURL_CSELECT_IN;
      if (events[i].events & EPOLLOUT) flags |= CURL_CSELECT_OUT;
      if (events[i].events & EPOLLERR) flags |= CURL_CSELECT_ERR;
      curl_multi_socket_action(multi_, fd, flags, &running);
    }
    now = Clock::now();
    if (curl_deadline_ && now >= *curl_deadline_) {
      curl_deadline_.reset();  // the timer callback sets the next one
      curl_multi_socket_action(multi_, CURL_SOCKET_TIMEOUT, 0, &running);
    }
    ReadCompletions();
    now = Clock::now();
    if (now >= next_deadline_check) {
      CheckDeadlines(now);
      next_deadline_check = now + kDeadlineTick;
    }
  }
  // Shutting down: whatever still runs is cancelled.
  std::vector<CurlTransfer*> left;
  for (const auto& [easy, t] : transfers_) left.push_back(t.get());
  for (CurlTransfer* t : left) {
    HttpResult r;
    r.error = HttpErrorKind::kCancelled;
    r.message = "http client shut down";
    Finish(t, std::move(r));
  }
}

// ------------------------------------------------------------------ client

CurlHttpClient::CurlHttpClient(CurlHttpClientOptions options)
    : loop_(std::make_shared<Loop>(std::move(options))) {
  loop_->SetThread(std::thread([loop = loop_.get()] { loop->Run(); }));
}

CurlHttpClient::~CurlHttpClient() { loop_->Shutdown(); }

size_t CurlHttpClient::active_transfers() const { return loop_->active(); }

std::shared_ptr<HttpTransfer> CurlHttpClient::Start(HttpRequest request,
                                                    std::shared_ptr<HttpStreamHandler> handler) {
  auto transfer = std::make_shared<CurlTransfer>(loop_, std::move(request), std::move(handler));
  std::string error;
  HttpErrorKind setup_error = HttpErrorKind::kProtocol;
  auto fail = [&](HttpErrorKind kind, std::string message) {
    HttpResult r;
    r.error = kind;
    r.message = std::move(message);
    transfer->Complete(std::move(r));
    transfer->Cleanup();
    return transfer;
  };
  if (!transfer->Setup(&setup_error, &error)) {
    if (setup_error == HttpErrorKind::kRefused) error += " refused by the egress policy";
    return fail(setup_error, error);
  }
  loop_->AddPending();
  if (!loop_->Post([loop = loop_.get(), transfer] { loop->Add(transfer); })) {
    loop_->RemovePending();
    return fail(HttpErrorKind::kCancelled, "http client shut down");
  }
  return transfer;
}

}  // namespace tg::adapter::http
