// Size: five provider APIs' routing, credential checks (SigV4 included) and fault injection.
// clang-format off: the coroutine switch goes before any Asio header.
#include "asio_coroutines.h"
// clang-format on
#include "fake_provider.h"

// Boost 1.74's awaitable.hpp uses std::exchange without including <utility>:
// fake_provider.h brings it in first.
#include <rapidjson/document.h>
#include <strings.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cctype>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <mutex>
#include <optional>
#include <utility>

#include "fake_http_server.h"
#include "tg/common/bounded_json.h"
#include "tg/common/json_util.h"
#include "tg/common/log.h"
#include "tg/common/percent.h"

namespace tg::fakes {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using net::ip::tcp;
using std::chrono::milliseconds;

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Value of query parameter `name` (decoded); nullopt when absent.
std::optional<std::string> QueryParam(std::string_view query, std::string_view name) {
  size_t pos = 0;
  while (pos <= query.size()) {
    size_t amp = query.find('&', pos);
    if (amp == std::string_view::npos) amp = query.size();
    std::string_view item = query.substr(pos, amp - pos);
    size_t eq = item.find('=');
    if (percent::Decode(item.substr(0, eq), true) == name) {
      return eq == std::string_view::npos ? std::string()
                                          : percent::Decode(item.substr(eq + 1), true);
    }
    pos = amp + 1;
  }
  return std::nullopt;
}

int64_t QueryInt(std::string_view query, std::string_view name, int64_t fallback) {
  auto v = QueryParam(query, name);
  if (!v || v->empty()) return fallback;
  char* end = nullptr;
  long long n = std::strtoll(v->c_str(), &end, 10);
  return end != nullptr && *end == '\0' ? n : fallback;
}

bool IsSecretHeader(std::string_view lower) {
  return lower == "authorization" || lower == "x-api-key" || lower == "api-key" ||
         lower == "x-goog-api-key" || lower == "x-amz-security-token" ||
         lower == "x-identity-header";
}

struct Route {
  Api api = Api::kUnknown;
  std::string model;    // from the path (Gemini, Bedrock, Azure deployments)
  bool stream = false;  // decided by the path (Gemini, Bedrock)
  bool gemini_sse = false;
  bool gemini_batch = false;  // :batchEmbedContents
  bool azure_deployment = false;
  bool method_ok = true;
  bool model_list = false;  // GET of the provider's model list (active health probes)
};

// `anthropic_auth`: the request carries x-api-key or anthropic-version, which
// tells Anthropic's GET /v1/models from OpenAI's.
Route RouteFor(std::string_view method, std::string_view path, std::string_view query,
               bool anthropic_auth) {
  Route r;
  const bool post = method == "POST";
  if (method == "GET") {
    r.model_list = true;
    if (path == "/v1/models") {
      r.api = anthropic_auth ? Api::kAnthropic : Api::kOpenAiChat;
      return r;
    }
    if (path == "/v1beta/models") {
      r.api = Api::kGemini;
      return r;
    }
    if (path == "/foundation-models") {
      r.api = Api::kBedrock;
      return r;
    }
    if (path == "/openai/models") {
      r.api = Api::kAzure;
      return r;
    }
    r.model_list = false;
  }
  if (path == "/v1/chat/completions") {
    r.api = Api::kOpenAiChat;
  } else if (path == "/v1/responses") {
    r.api = Api::kOpenAiResponses;
  } else if (path == "/v1/messages") {
    r.api = Api::kAnthropic;
  } else if (path == "/v1/embeddings") {
    r.api = Api::kOpenAiEmbeddings;
  } else if (path.starts_with("/v1beta/models/") || path.starts_with("/v1/models/")) {
    std::string_view rest = path.substr(path.find("/models/") + 8);
    size_t colon = rest.rfind(':');
    if (colon == std::string_view::npos) return r;
    std::string_view verb = rest.substr(colon + 1);
    if (verb == "generateContent" || verb == "streamGenerateContent") {
      r.api = Api::kGemini;
      r.stream = verb == "streamGenerateContent";
      r.gemini_sse = r.stream && QueryParam(query, "alt") == std::optional<std::string>("sse");
    } else if (verb == "embedContent" || verb == "batchEmbedContents") {
      r.api = Api::kGeminiEmbeddings;
      r.gemini_batch = verb == "batchEmbedContents";
    } else {
      return r;
    }
    r.model = percent::Decode(rest.substr(0, colon));
  } else if (path.starts_with("/model/")) {
    std::string_view rest = path.substr(7);
    size_t slash = rest.rfind('/');
    if (slash == std::string_view::npos) return r;
    std::string_view op = rest.substr(slash + 1);
    if (op == "converse" || op == "converse-stream") {
      r.api = Api::kBedrock;
      r.stream = op == "converse-stream";
    } else if (op == "invoke") {
      r.api = Api::kBedrockInvoke;
    } else {
      return r;
    }
    r.model = percent::Decode(rest.substr(0, slash));
  } else if (path.starts_with("/openai/deployments/")) {
    std::string_view rest = path.substr(20);
    size_t slash = rest.find('/');
    if (slash == std::string_view::npos) return r;
    std::string_view op = rest.substr(slash);
    if (op == "/chat/completions") {
      r.api = Api::kAzure;
    } else if (op == "/embeddings") {
      r.api = Api::kAzureEmbeddings;
    } else {
      return r;
    }
    r.model = percent::Decode(rest.substr(0, slash));
    r.azure_deployment = true;
  } else if (path == "/openai/v1/chat/completions") {
    r.api = Api::kAzure;
  } else if (path == "/openai/v1/embeddings") {
    r.api = Api::kAzureEmbeddings;
  } else if (path == "/metadata/identity/oauth2/token") {
    r.api = Api::kImds;
    r.method_ok = method == "GET";
    return r;
  } else if (path == "/_fake/stream") {
    r.api = Api::kRaw;
    r.method_ok = method == "GET" || post;
    return r;
  }
  r.method_ok = post;
  return r;
}

// Member `name` of a JSON object; nullptr when absent.
const rapidjson::Value* Field(const rapidjson::Value& object, const char* name) {
  return object.IsObject() && object.HasMember(name) ? &object[name] : nullptr;
}

std::string JsonString(std::string_view s) {
  std::string out;
  json::AppendQuoted(out, s);
  return out;
}

}  // namespace

std::string RecordedRequest::Header(std::string_view name) const {
  std::string lower = Lower(name);
  for (const auto& [k, v] : headers) {
    if (Lower(k) == lower) return v;
  }
  return "";
}

class FakeProvider::Impl {
 public:
  explicit Impl(FakeProviderOptions options) : options_(std::move(options)) {}

  bool Start(std::string* error) {
    if (server_) {
      if (error != nullptr) *error = "fake provider already started";
      return false;
    }
    server_ = std::make_unique<FakeHttpServer>(
        FakeHttpServerOptions{.name = "fake provider",
                              .host = options_.host,
                              .port = options_.port,
                              .threads = options_.threads,
                              .max_body_bytes = options_.max_body_bytes},
        [this](tcp::socket& socket, const Request& req) { return Handle(socket, req); });
    return server_->Start(error);
  }

  void Stop() {
    if (!server_) return;
    server_->Stop();
    cv_.notify_all();
  }

  uint16_t port() const { return server_ ? server_->port() : 0; }
  const FakeProviderOptions& options() const { return options_; }

  void SetAnswer(FakeAnswer a) {
    std::lock_guard<std::mutex> lock(mu_);
    answer_ = std::move(a);
  }
  FakeAnswer answer() const {
    std::lock_guard<std::mutex> lock(mu_);
    return answer_;
  }
  void AddFault(FakeFault f) {
    std::lock_guard<std::mutex> lock(mu_);
    faults_.push_back(std::move(f));
  }
  void ClearFaults() {
    std::lock_guard<std::mutex> lock(mu_);
    faults_.clear();
  }
  std::vector<RecordedRequest> Requests() const {
    std::lock_guard<std::mutex> lock(mu_);
    return SnapshotLocked();
  }
  void ClearRequests() {
    std::lock_guard<std::mutex> lock(mu_);
    records_.clear();
  }
  bool WaitFor(const std::function<bool(const std::vector<RecordedRequest>&)>& predicate,
               milliseconds timeout) const {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return predicate(SnapshotLocked()); });
  }
  size_t open_connections() const { return server_ ? server_->open_connections() : 0; }

 private:
  using Record = std::shared_ptr<RecordedRequest>;
  using Request = http::request<http::string_body>;

  std::vector<RecordedRequest> SnapshotLocked() const {
    std::vector<RecordedRequest> out;
    out.reserve(records_.size());
    for (const auto& r : records_) out.push_back(*r);
    return out;
  }

  // Applies `fn` to the record under the lock and wakes WaitFor.
  template <typename Fn>
  void Update(const Record& record, Fn fn) {
    if (!record) return;
    {
      std::lock_guard<std::mutex> lock(mu_);
      fn(*record);
    }
    cv_.notify_all();
  }

  // Returns whether the connection may serve another request.
  net::awaitable<bool> Handle(tcp::socket& socket, const Request& req) {
    std::string_view target(req.target().data(), req.target().size());
    size_t qmark = target.find('?');
    std::string path(target.substr(0, qmark));
    std::string query(qmark == std::string_view::npos ? std::string_view()
                                                      : target.substr(qmark + 1));
    std::string method(req.method_string());

    if (path.starts_with("/_fake/") && path != "/_fake/stream") {
      std::string reply;
      int status = Control(method, path, req.body(), &reply);
      co_return co_await FakeHttpServer::ReplyJson(socket, status, reply, req.keep_alive());
    }

    Route route =
        RouteFor(method, path, query,
                 req.find("x-api-key") != req.end() || req.find("anthropic-version") != req.end());
    const uint64_t seq = ++seq_;
    Record record;
    if (options_.record) {
      record = std::make_shared<RecordedRequest>();
      record->id = seq;
      record->api = route.api;
      record->method = method;
      record->path = path;
      record->query = query;
      for (const auto& field : req) {
        record->headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
      }
      record->body = req.body();
      {
        std::lock_guard<std::mutex> lock(mu_);
        records_.push_back(record);
      }
      cv_.notify_all();
    }

    std::optional<FakeFault> fault = TakeFault(path, route.api);
    if (fault && fault->delay.count() > 0) {
      if (!co_await server_->Wait(socket, fault->delay)) {
        Update(record, [](RecordedRequest& r) { r.client_disconnected = true; });
        co_return false;
      }
    }
    if (fault && fault->close_before_head) co_return false;  // the session closes the socket
    if (fault && fault->hang) {
      co_await server_->Wait(socket, milliseconds(-1));
      Update(record, [this](RecordedRequest& r) { r.client_disconnected = !server_->stopped(); });
      co_return false;
    }

    FakeAnswer answer = this->answer();
    WireReply reply;
    if (route.api == Api::kUnknown) {
      reply = BuildError(Api::kUnknown, 404, "no such fake endpoint: " + path);
    } else if (!route.method_ok) {
      reply =
          BuildError(route.api == Api::kImds || route.api == Api::kRaw ? Api::kUnknown : route.api,
                     405, "method not allowed");
    } else if (fault && !fault->malformed.empty()) {
      reply = MalformedReply(*fault);
    } else if (fault && fault->status > 0) {
      reply = BuildError(route.api, fault->status, "", fault->error_type);
      for (const auto& h : fault->headers) {  // replacing the answer's own of that name
        std::erase_if(reply.headers, [&](const auto& have) {
          return strcasecmp(have.first.c_str(), h.first.c_str()) == 0;
        });
        reply.headers.push_back(h);
      }
    } else if (auto denied = CheckCredentials(route, req, path, query)) {
      reply = std::move(*denied);
    } else if (route.api == Api::kImds) {
      reply = ImdsToken(query);
    } else if (route.api == Api::kRaw) {
      reply = RawStream(query);
    } else if (route.model_list) {
      reply = BuildModelList(route.api, ReplyIds{seq, static_cast<int64_t>(std::time(nullptr))});
    } else {
      RequestFacts facts;
      facts.model = route.model;
      facts.stream = route.stream;
      facts.gemini_sse = route.gemini_sse;
      facts.gemini_batch = route.gemini_batch;
      const ReplyIds ids{seq, static_cast<int64_t>(std::time(nullptr))};
      if (route.api == Api::kOpenAiEmbeddings || route.api == Api::kAzureEmbeddings ||
          route.api == Api::kGeminiEmbeddings || route.api == Api::kBedrockInvoke) {
        reply = BuildEmbeddings(route.api, facts, req.body(), ids);
      } else if (!ParseRequestFacts(route.api, req.body(), &facts)) {
        reply = BuildUnparsableBody(route.api);
      } else if (fault && fault->reject_prefill && !facts.prefill.empty()) {
        reply = BuildError(route.api, 400,
                           "This model does not support assistant message prefill. The "
                           "conversation must end with a user message.");
      } else {
        reply = BuildAnswer(route.api, facts, answer, ids);
      }
    }
    if (fault && reply.streamed) ReshapeStream(*fault, &reply);
    milliseconds interval = reply.status == 200 ? answer.event_interval : milliseconds(0);
    if (route.api == Api::kRaw) interval = milliseconds(QueryInt(query, "interval_ms", 0));
    co_return co_await Send(socket, route.api, reply, fault, record, req.keep_alive(), interval);
  }

  // The stream faults that change the events rather than their delivery.
  static void ReshapeStream(const FakeFault& f, WireReply* reply) {
    auto& events = reply->events;
    if (f.omit_done && !events.empty() && events.back() == "data: [DONE]\n\n") events.pop_back();
    if (f.garbage_before_event >= 0) {
      const auto at = static_cast<size_t>(
          std::min<int64_t>(f.garbage_before_event, static_cast<int64_t>(events.size())));
      for (int i = 0; i < std::max(1, f.garbage_events); ++i) {
        events.insert(events.begin() + static_cast<std::ptrdiff_t>(at),
                      "data: {\"choices\": [{\"delta\": \n\n");
      }
    }
  }

  // The first matching fault, its count consumed.
  std::optional<FakeFault> TakeFault(std::string_view path, Api api) {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto it = faults_.begin(); it != faults_.end(); ++it) {
      if (!path.starts_with(it->path_prefix)) continue;
      if (!it->api.empty() && it->api != ApiName(api)) continue;
      FakeFault f = *it;
      if (it->count > 0 && --it->count == 0) faults_.erase(it);
      return f;
    }
    return std::nullopt;
  }

  net::awaitable<bool> Send(tcp::socket& socket, Api api, const WireReply& reply,
                            const std::optional<FakeFault>& fault, const Record& record,
                            bool keep_alive, milliseconds interval) {
    const int64_t drop_bytes = fault ? fault->drop_after_bytes : -1;
    const int64_t drop_events = fault ? fault->drop_after_events : -1;
    const int64_t error_events = fault ? fault->error_after_events : -1;
    std::string head = "HTTP/1.1 " + std::to_string(reply.status) + " " +
                       std::string(FakeHttpServer::Reason(reply.status)) + "\r\n";
    for (const auto& [k, v] : reply.headers) head += k + ": " + v + "\r\n";
    head += reply.streamed ? std::string("Transfer-Encoding: chunked\r\n")
                           : "Content-Length: " + std::to_string(reply.body.size()) + "\r\n";
    head += std::string("Connection: ") + (keep_alive ? "keep-alive" : "close") + "\r\n\r\n";
    Update(record, [&](RecordedRequest& r) { r.status = reply.status; });

    auto disconnected = [&] {
      Update(record, [](RecordedRequest& r) { r.client_disconnected = true; });
      return false;
    };

    if (!reply.streamed) {
      if (drop_bytes >= 0 && static_cast<size_t>(drop_bytes) < reply.body.size()) {
        bool ok = co_await FakeHttpServer::Write(socket, head + reply.body.substr(0, drop_bytes));
        Update(record, [&](RecordedRequest& r) { r.body_bytes_sent = ok ? drop_bytes : 0; });
        co_return false;  // the connection closes short of Content-Length
      }
      if (!co_await FakeHttpServer::Write(socket, head + reply.body)) co_return disconnected();
      Update(record, [&](RecordedRequest& r) {
        r.body_bytes_sent = reply.body.size();
        r.finished = true;
      });
      co_return keep_alive;
    }

    if (!co_await FakeHttpServer::Write(socket, head)) co_return disconnected();
    uint64_t sent = 0;
    for (size_t i = 0; i < reply.events.size(); ++i) {
      if (drop_events >= 0 && static_cast<int64_t>(i) == drop_events) co_return false;
      if (error_events >= 0 && static_cast<int64_t>(i) == error_events) {
        std::string error = BuildStreamError(api, fault->stream_error_type, static_cast<int>(i));
        std::string chunk = ChunkHeader(error.size()) + error + "\r\n0\r\n\r\n";
        if (!co_await FakeHttpServer::Write(socket, chunk)) co_return disconnected();
        Update(record, [&](RecordedRequest& r) {
          r.body_bytes_sent += error.size();
          r.events_sent += 1;
          r.finished = true;
        });
        co_return keep_alive;
      }
      if (i > 0 && interval.count() > 0 && !co_await server_->Wait(socket, interval)) {
        co_return disconnected();
      }
      if (fault && fault->delay_before_event == static_cast<int64_t>(i) &&
          !co_await server_->Wait(socket, fault->event_delay)) {
        co_return disconnected();
      }
      const std::string& event = reply.events[i];
      if (drop_bytes >= 0 && sent + event.size() > static_cast<uint64_t>(drop_bytes)) {
        size_t part = static_cast<size_t>(drop_bytes - static_cast<int64_t>(sent));
        co_await FakeHttpServer::Write(socket, ChunkHeader(event.size()) + event.substr(0, part));
        Update(record, [&](RecordedRequest& r) { r.body_bytes_sent += part; });
        co_return false;
      }
      if (!co_await FakeHttpServer::Write(socket, ChunkHeader(event.size()) + event + "\r\n")) {
        co_return disconnected();
      }
      sent += event.size();
      Update(record, [&](RecordedRequest& r) {
        r.body_bytes_sent += event.size();
        r.events_sent += 1;
      });
    }
    if (drop_events >= 0 && static_cast<size_t>(drop_events) == reply.events.size()) {
      co_return false;  // every event, but not the end of the chunked body
    }
    if (!co_await FakeHttpServer::Write(socket, "0\r\n\r\n")) co_return disconnected();
    Update(record, [](RecordedRequest& r) { r.finished = true; });
    co_return keep_alive;
  }

  static std::string ChunkHeader(size_t size) {
    char buf[24];
    std::snprintf(buf, sizeof(buf), "%zx\r\n", size);
    return buf;
  }

  // nullopt when the request carries the right credentials for its API.
  std::optional<WireReply> CheckCredentials(const Route& route, const Request& req,
                                            const std::string& path, const std::string& query) {
    const FakeCredentials& c = options_.credentials;
    auto header = [&req](http::field f) { return std::string(req[f]); };
    auto named = [&req](std::string_view name) {
      return std::string(req[beast::string_view(name.data(), name.size())]);
    };
    const std::string authorization = header(http::field::authorization);
    auto bearer_is = [&](const std::string& token) {
      return !token.empty() && authorization == "Bearer " + token;
    };
    // Each provider's other APIs take the credentials of its chat API.
    switch (route.api) {
      case Api::kOpenAiChat:
      case Api::kOpenAiResponses:
      case Api::kOpenAiEmbeddings:
        if (authorization.empty()) {
          return BuildError(route.api, 401,
                            "You didn't provide an API key. You need to provide your API key in "
                            "an Authorization header using Bearer auth (i.e. Authorization: "
                            "Bearer YOUR_KEY).",
                            "invalid_request_error");
        }
        if (!bearer_is(c.openai_key)) return BuildError(route.api, 401);
        return std::nullopt;
      case Api::kAnthropic: {
        const std::string key = named("x-api-key");
        if (key.empty() && authorization.empty()) {
          return BuildError(route.api, 401, "x-api-key header is required");
        }
        if (key != c.anthropic_key && !bearer_is(c.anthropic_key)) {
          return BuildError(route.api, 401, "invalid x-api-key");
        }
        if (named("anthropic-version").empty()) {
          return BuildError(route.api, 400, "anthropic-version: header is required");
        }
        return std::nullopt;
      }
      case Api::kGemini:
      case Api::kGeminiEmbeddings: {
        std::string key = named("x-goog-api-key");
        if (key.empty()) key = QueryParam(query, "key").value_or("");
        if (key.empty()) {
          return BuildError(route.api, 403,
                            "Method doesn't allow unregistered callers (callers without "
                            "established identity). Please use API Key or other form of API "
                            "consumer identity to call this API.");
        }
        if (key != c.gemini_key) {
          WireReply r =
              BuildError(route.api, 400, "API key not valid. Please pass a valid API key.");
          // The real answer names the reason in details[].
          r.body.insert(r.body.size() - 2,
                        R"(,"details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo",)"
                        R"("reason":"API_KEY_INVALID","domain":"googleapis.com",)"
                        R"("metadata":{"service":"generativelanguage.googleapis.com"}}])");
          return r;
        }
        return std::nullopt;
      }
      case Api::kBedrock:
      case Api::kBedrockInvoke: {
        adapter::aws::SigningRequest signing;
        signing.method = std::string(req.method_string());
        signing.path = path;
        signing.query = query;
        for (const auto& field : req) {
          signing.headers.emplace_back(std::string(field.name_string()),
                                       std::string(field.value()));
        }
        signing.body = req.body();
        adapter::aws::SigV4Options sig;
        sig.region = c.aws_region;
        sig.service = "bedrock";
        auto now = std::chrono::system_clock::now();
        adapter::aws::SigV4Verification v = adapter::aws::VerifySigV4(
            signing, c.aws, sig, c.aws_max_skew.count() > 0 ? &now : nullptr, c.aws_max_skew);
        if (v.ok) return std::nullopt;
        return BuildError(route.api, 403, v.message, v.error_type);
      }
      case Api::kAzure:
      case Api::kAzureEmbeddings: {
        if (named("api-key") != c.azure_key && !bearer_is(c.azure_entra_token)) {
          return BuildError(route.api, 401);
        }
        if (route.azure_deployment && !QueryParam(query, "api-version")) {
          return BuildError(route.api, 404, "Resource not found");
        }
        return std::nullopt;
      }
      case Api::kImds:
        if (!beast::iequals(named("metadata"), "true")) {
          WireReply r;
          r.status = 400;
          r.headers.emplace_back("Content-Type", "application/json; charset=utf-8");
          r.body = R"({"error":"invalid_request",)"
                   R"("error_description":"Required metadata header not specified"})";
          return r;
        }
        return std::nullopt;
      default:
        return std::nullopt;
    }
  }

  WireReply ImdsToken(const std::string& query) const {
    const int64_t now = std::time(nullptr);
    WireReply r;
    r.headers.emplace_back("Content-Type", "application/json; charset=utf-8");
    std::string resource = QueryParam(query, "resource").value_or("");
    r.body = R"({"access_token":)" + JsonString(options_.credentials.azure_entra_token) +
             R"(,"client_id":"00000000-0000-0000-0000-00000000fa4e","expires_in":"3599",)"
             R"("expires_on":")" +
             std::to_string(now + 3599) +
             R"(","ext_expires_in":"3599",)"
             R"("not_before":")" +
             std::to_string(now) + R"(","resource":)" + JsonString(resource) +
             R"(,"token_type":"Bearer"})";
    return r;
  }

  // `chunks` chunks of `size` bytes ('a'..'z' by chunk), for the HTTP client's tests.
  static WireReply MalformedReply(const FakeFault& f) {
    WireReply r;
    const auto n = static_cast<size_t>(std::clamp<int64_t>(f.malformed_size, 1, 1LL << 30));
    if (f.malformed == "deep_json") {
      r.headers.emplace_back("Content-Type", "application/json");
      r.body = std::string(n, '[') + std::string(n, ']');
    } else if (f.malformed == "sse_without_blank_lines") {
      r.headers.emplace_back("Content-Type", "text/event-stream");
      r.streamed = true;
      // 64 KiB pieces of `data:` lines; a blank line never comes.
      std::string line = "data: " + std::string(1018, 'x') + "\n";
      std::string piece;
      while (piece.size() + line.size() <= 64 * 1024) piece += line;
      for (size_t sent = 0; sent < n; sent += piece.size()) r.events.push_back(piece);
    } else {
      r.status = f.status > 0 ? f.status : 500;
      r.headers.emplace_back("Content-Type", "text/plain");
      r.headers.emplace_back("X-Fake-Bytes", "bad \xff\xfe bytes");
      r.body = "upstream failure \xff\xfe\xc3( end";
    }
    return r;
  }

  static WireReply RawStream(const std::string& query) {
    WireReply r;
    r.headers.emplace_back("Content-Type", "application/octet-stream");
    r.streamed = true;
    int64_t chunks = std::clamp<int64_t>(QueryInt(query, "chunks", 3), 0, 1 << 20);
    int64_t size = std::clamp<int64_t>(QueryInt(query, "size", 16), 1, 16 << 20);
    for (int64_t i = 0; i < chunks; ++i) {
      r.events.emplace_back(static_cast<size_t>(size), static_cast<char>('a' + i % 26));
    }
    return r;
  }

  int Control(const std::string& method, const std::string& path, const std::string& body,
              std::string* reply) {
    *reply = R"({"ok":true})";
    if (path == "/_fake/health") {
      *reply = R"({"status":"ok","port":)" + std::to_string(port()) + "}";
      return 200;
    }
    if (path == "/_fake/requests") {
      if (method == "DELETE") {
        ClearRequests();
        return 200;
      }
      *reply = RecordJson();
      return 200;
    }
    if (path == "/_fake/reset" && method == "POST") {
      std::lock_guard<std::mutex> lock(mu_);
      records_.clear();
      faults_.clear();
      answer_ = FakeAnswer();
      return 200;
    }
    rapidjson::Document doc;
    if (method == "POST") {
      if (!tg::json::Parse(body, &doc).ok() || !doc.IsObject()) {
        *reply = R"({"error":"the body must be a JSON object"})";
        return 400;
      }
    }
    auto str = [&doc](const char* name, std::string fallback) {
      const rapidjson::Value* v = Field(doc, name);
      return v != nullptr && v->IsString() ? std::string(v->GetString()) : fallback;
    };
    auto num = [&doc](const char* name, int64_t fallback) {
      const rapidjson::Value* v = Field(doc, name);
      return v != nullptr && v->IsInt64() ? v->GetInt64() : fallback;
    };
    if (path == "/_fake/faults") {
      if (method == "DELETE") {
        ClearFaults();
        return 200;
      }
      if (method != "POST") return 405;
      FakeFault f;
      f.path_prefix = str("path", "");
      f.api = str("api", "");
      f.status = static_cast<int>(num("status", 0));
      f.error_type = str("error_type", "");
      if (std::string after = str("retry_after", ""); !after.empty()) {
        f.headers.emplace_back("Retry-After", after);
      }
      f.delay = milliseconds(num("delay_ms", 0));
      const rapidjson::Value* hang = Field(doc, "hang");
      f.hang = hang != nullptr && hang->IsBool() && hang->GetBool();
      const rapidjson::Value* close = Field(doc, "close_before_head");
      f.close_before_head = close != nullptr && close->IsBool() && close->GetBool();
      f.drop_after_bytes = num("drop_after_bytes", -1);
      f.drop_after_events = num("drop_after_events", -1);
      f.error_after_events = num("error_after_events", -1);
      f.stream_error_type = str("stream_error_type", "");
      f.malformed = str("malformed", "");
      f.malformed_size = num("malformed_size", f.malformed_size);
      const rapidjson::Value* omit_done = Field(doc, "omit_done");
      f.omit_done = omit_done != nullptr && omit_done->IsBool() && omit_done->GetBool();
      const rapidjson::Value* reject_prefill = Field(doc, "reject_prefill");
      f.reject_prefill =
          reject_prefill != nullptr && reject_prefill->IsBool() && reject_prefill->GetBool();
      f.garbage_before_event = num("garbage_before_event", -1);
      f.delay_before_event = num("delay_before_event", -1);
      f.event_delay = milliseconds(num("event_delay_ms", 0));
      f.garbage_events = static_cast<int>(num("garbage_events", 1));
      f.count = static_cast<int>(num("count", -1));
      AddFault(std::move(f));
      return 200;
    }
    if (path == "/_fake/answer" && method == "POST") {
      FakeAnswer a;
      a.text = str("text", a.text);
      a.finish = str("finish", a.finish);
      a.auto_tool_arguments = str("auto_tool_arguments", a.auto_tool_arguments);
      a.input_tokens = num("input_tokens", a.input_tokens);
      a.output_tokens = num("output_tokens", a.output_tokens);
      a.cached_tokens = num("cached_tokens", a.cached_tokens);
      a.event_interval = milliseconds(num("event_interval_ms", 0));
      const rapidjson::Value* calls = Field(doc, "tool_calls");
      if (calls != nullptr && calls->IsArray()) {
        for (const auto& c : calls->GetArray()) {
          if (!c.IsObject()) continue;
          FakeToolCall call;
          auto get = [&c](const char* name) {
            const rapidjson::Value* v = Field(c, name);
            return v != nullptr && v->IsString() ? std::string(v->GetString()) : std::string();
          };
          call.id = get("id");
          call.name = get("name");
          call.arguments_json = get("arguments");
          a.tool_calls.push_back(std::move(call));
        }
      }
      SetAnswer(std::move(a));
      return 200;
    }
    *reply = R"({"error":"no such control endpoint"})";
    return 404;
  }

  std::string RecordJson() const {
    std::vector<RecordedRequest> records = Requests();
    std::string out = "[";
    for (size_t i = 0; i < records.size(); ++i) {
      const RecordedRequest& r = records[i];
      if (i > 0) out += ",";
      out += R"({"id":)" + std::to_string(r.id) + R"(,"api":)" + JsonString(ApiName(r.api)) +
             R"(,"method":)" + JsonString(r.method) + R"(,"path":)" + JsonString(r.path);
      // Credentials never leave the process, even a fake's.
      std::string query = r.query;
      if (QueryParam(query, "key")) query = "<redacted: contains key=>";
      out += R"(,"query":)" + JsonString(query) + R"(,"headers":{)";
      for (size_t h = 0; h < r.headers.size(); ++h) {
        if (h > 0) out += ",";
        const std::string lower = Lower(r.headers[h].first);
        out += JsonString(lower) + ":" +
               JsonString(IsSecretHeader(lower) ? "<redacted>" : r.headers[h].second);
      }
      out += R"(},"body":)" + JsonString(r.body) + R"(,"status":)" + std::to_string(r.status) +
             R"(,"finished":)" + (r.finished ? "true" : "false") + R"(,"client_disconnected":)" +
             (r.client_disconnected ? "true" : "false") + R"(,"body_bytes_sent":)" +
             std::to_string(r.body_bytes_sent) + R"(,"events_sent":)" +
             std::to_string(r.events_sent) + "}";
    }
    return out + "]";
  }

  const FakeProviderOptions options_;
  std::atomic<uint64_t> seq_{0};

  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  FakeAnswer answer_;
  std::vector<FakeFault> faults_;
  std::vector<Record> records_;
  // Last: destroyed first, with the sessions that use the members above.
  std::unique_ptr<FakeHttpServer> server_;
};

FakeProvider::FakeProvider(FakeProviderOptions options)
    : impl_(std::make_unique<Impl>(std::move(options))) {}
FakeProvider::~FakeProvider() = default;

bool FakeProvider::Start(std::string* error) { return impl_->Start(error); }
void FakeProvider::Stop() { impl_->Stop(); }
uint16_t FakeProvider::port() const { return impl_->port(); }
std::string FakeProvider::base_url() const {
  return "http://" + impl_->options().host + ":" + std::to_string(impl_->port());
}
const FakeCredentials& FakeProvider::credentials() const { return impl_->options().credentials; }
void FakeProvider::SetAnswer(FakeAnswer answer) { impl_->SetAnswer(std::move(answer)); }
FakeAnswer FakeProvider::answer() const { return impl_->answer(); }
void FakeProvider::AddFault(FakeFault fault) { impl_->AddFault(std::move(fault)); }
void FakeProvider::ClearFaults() { impl_->ClearFaults(); }
std::vector<RecordedRequest> FakeProvider::Requests() const { return impl_->Requests(); }
void FakeProvider::ClearRequests() { impl_->ClearRequests(); }
bool FakeProvider::WaitFor(
    const std::function<bool(const std::vector<RecordedRequest>&)>& predicate,
    milliseconds timeout) const {
  return impl_->WaitFor(predicate, timeout);
}

std::string FakeProvider::TargetJson(const std::string& provider, const std::string& extra) const {
  const FakeCredentials& c = credentials();
  std::string creds;
  if (provider == "openai") creds = R"("api_key": ")" + c.openai_key + "\"";
  if (provider == "anthropic") creds = R"("api_key": ")" + c.anthropic_key + "\"";
  if (provider == "gemini") creds = R"("api_key": ")" + c.gemini_key + "\"";
  if (provider == "azure") {
    creds = R"("api_key": ")" + c.azure_key + R"(", "azure_endpoint": ")" + base_url() + "\"";
  }
  if (provider == "bedrock") {
    creds = R"("aws_access_key_id": ")" + c.aws.access_key_id + R"(", "aws_secret_access_key": ")" +
            c.aws.secret_access_key + R"(", "aws_region": ")" + c.aws_region + "\"";
  }
  const std::string host = provider == "azure"
                               ? ""
                               : R"("host": "127.0.0.1", "port": )" + std::to_string(port()) +
                                     R"(, "protocol": "http", )";
  return R"({"provider": ")" + provider + R"(", )" + host + extra + R"("credentials": {)" + creds +
         "}}";
}
size_t FakeProvider::open_connections() const { return impl_->open_connections(); }

}  // namespace tg::fakes
