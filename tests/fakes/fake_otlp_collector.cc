// clang-format off: the coroutine switch goes before any Asio header.
#include "asio_coroutines.h"
// clang-format on
#include <rapidjson/document.h>

#include <atomic>
#include <boost/asio/redirect_error.hpp>
#include <boost/beast/core.hpp>
#include <cctype>
#include <charconv>
#include <condition_variable>
#include <map>
#include <mutex>
#include <string_view>
#include <utility>

#include "fake_http_server.h"
#include "fake_otlp_collector.h"
#include "tg/common/json_util.h"
#include "tg/common/log.h"

namespace tg::fakes {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using net::ip::tcp;
using std::chrono::milliseconds;

constexpr size_t kMaxBody = 64 * 1024 * 1024;

// ---------------------------------------------------------------------------
// OTLP/HTTP JSON, checked against what the exporter promises.

using Value = rapidjson::Value;

const Value* Member(const Value& object, const char* name) {
  if (!object.IsObject()) return nullptr;
  auto it = object.FindMember(name);
  return it == object.MemberEnd() ? nullptr : &it->value;
}

bool IsLowerHex(std::string_view s, size_t length) {
  if (s.size() != length) return false;
  bool non_zero = false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
    non_zero |= c != '0';
  }
  return non_zero;
}

// A 64-bit integer in the protobuf JSON mapping as TrustGate writes it: a
// decimal string.
bool ParseUint64String(const Value* v, uint64_t* out) {
  if (v == nullptr || !v->IsString()) return false;
  std::string_view s(v->GetString(), v->GetStringLength());
  if (s.empty()) return false;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && end == s.data() + s.size();
}

bool ParseInt64String(const Value* v, int64_t* out) {
  if (v == nullptr || !v->IsString()) return false;
  std::string_view s(v->GetString(), v->GetStringLength());
  if (s.empty()) return false;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && end == s.data() + s.size();
}

std::string RenderDouble(double d) {
  char buf[32];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, d);
  return ec == std::errc() ? std::string(buf, end) : std::string("?");
}

// One AnyValue rendered as a string; false when it is not a scalar we write.
bool RenderAnyValue(const Value& value, std::string* out) {
  if (!value.IsObject() || value.MemberCount() != 1) return false;
  if (const Value* s = Member(value, "stringValue")) {
    if (!s->IsString()) return false;
    out->assign(s->GetString(), s->GetStringLength());
    return true;
  }
  if (const Value* i = Member(value, "intValue")) {
    int64_t n = 0;
    if (!ParseInt64String(i, &n)) return false;
    *out = std::to_string(n);
    return true;
  }
  if (const Value* d = Member(value, "doubleValue")) {
    if (d->IsNumber()) {
      *out = RenderDouble(d->GetDouble());
      return true;
    }
    if (d->IsString()) {
      std::string_view s(d->GetString(), d->GetStringLength());
      if (s != "NaN" && s != "Infinity" && s != "-Infinity") return false;
      *out = std::string(s);
      return true;
    }
    return false;
  }
  if (const Value* b = Member(value, "boolValue")) {
    if (!b->IsBool()) return false;
    *out = b->GetBool() ? "true" : "false";
    return true;
  }
  return false;
}

// `attributes` (absent is empty) into `out`; false on anything malformed.
bool ParseAttributes(const Value* attributes, std::map<std::string, std::string>* out) {
  if (attributes == nullptr) return true;
  if (!attributes->IsArray()) return false;
  for (const Value& kv : attributes->GetArray()) {
    const Value* key = Member(kv, "key");
    const Value* value = Member(kv, "value");
    if (key == nullptr || !key->IsString() || value == nullptr) return false;
    std::string rendered;
    if (!RenderAnyValue(*value, &rendered)) return false;
    (*out)[std::string(key->GetString(), key->GetStringLength())] = std::move(rendered);
  }
  return true;
}

bool ParseSpan(const Value& span, const std::string& service, CollectedSpan* out,
               std::string* error) {
  auto str = [&span](const char* name) -> const Value* {
    const Value* v = Member(span, name);
    return v != nullptr && v->IsString() ? v : nullptr;
  };
  const Value* trace_id = str("traceId");
  const Value* span_id = str("spanId");
  const Value* name = str("name");
  if (trace_id == nullptr || !IsLowerHex(trace_id->GetString(), 32)) {
    *error = "traceId must be 32 lowercase hex digits, not all zero";
    return false;
  }
  if (span_id == nullptr || !IsLowerHex(span_id->GetString(), 16)) {
    *error = "spanId must be 16 lowercase hex digits, not all zero";
    return false;
  }
  if (const Value* parent = Member(span, "parentSpanId")) {
    if (!parent->IsString() ||
        (parent->GetStringLength() != 0 && !IsLowerHex(parent->GetString(), 16))) {
      *error = "parentSpanId must be 16 lowercase hex digits";
      return false;
    }
    out->parent_span_id = parent->GetString();
  }
  if (name == nullptr) {
    *error = "name must be a string";
    return false;
  }
  out->service = service;
  out->trace_id = trace_id->GetString();
  out->span_id = span_id->GetString();
  out->name.assign(name->GetString(), name->GetStringLength());
  if (const Value* kind = Member(span, "kind")) {
    if (!kind->IsInt() || kind->GetInt() < 0 || kind->GetInt() > 5) {
      *error = "kind must be an integer 0..5";
      return false;
    }
    out->kind = kind->GetInt();
  }
  if (!ParseUint64String(Member(span, "startTimeUnixNano"), &out->start_ns) ||
      !ParseUint64String(Member(span, "endTimeUnixNano"), &out->end_ns)) {
    *error = "startTimeUnixNano and endTimeUnixNano must be decimal strings";
    return false;
  }
  if (!ParseAttributes(Member(span, "attributes"), &out->attributes)) {
    *error = "malformed span attributes";
    return false;
  }
  if (const Value* events = Member(span, "events")) {
    if (!events->IsArray()) {
      *error = "events must be an array";
      return false;
    }
    for (const Value& e : events->GetArray()) {
      const Value* event_name = Member(e, "name");
      uint64_t time = 0;
      std::map<std::string, std::string> ignored;
      if (event_name == nullptr || !event_name->IsString() ||
          !ParseUint64String(Member(e, "timeUnixNano"), &time) ||
          !ParseAttributes(Member(e, "attributes"), &ignored)) {
        *error = "malformed event";
        return false;
      }
      out->event_names.emplace_back(event_name->GetString(), event_name->GetStringLength());
    }
  }
  if (const Value* status = Member(span, "status")) {
    if (!status->IsObject()) {
      *error = "status must be an object";
      return false;
    }
    if (const Value* code = Member(*status, "code")) {
      if (!code->IsInt() || code->GetInt() < 0 || code->GetInt() > 2) {
        *error = "status.code must be 0, 1 or 2";
        return false;
      }
      out->status_code = code->GetInt();
    }
    const Value* message = Member(*status, "message");
    if (message != nullptr && !message->IsString()) {
      *error = "status.message must be a string";
      return false;
    }
  }
  return true;
}

bool ParseExport(std::string_view body, std::vector<CollectedSpan>* out, std::string* error) {
  rapidjson::Document doc;
  doc.Parse<rapidjson::kParseValidateEncodingFlag>(body.data(), body.size());
  if (doc.HasParseError() || !doc.IsObject()) {
    *error = "the body is not a JSON object";
    return false;
  }
  const Value* resource_spans = Member(doc, "resourceSpans");
  if (resource_spans == nullptr || !resource_spans->IsArray()) {
    *error = "resourceSpans must be an array";
    return false;
  }
  for (const Value& rs : resource_spans->GetArray()) {
    std::map<std::string, std::string> resource;
    const Value* res = Member(rs, "resource");
    if (res != nullptr && !ParseAttributes(Member(*res, "attributes"), &resource)) {
      *error = "malformed resource attributes";
      return false;
    }
    const std::string service = resource.count("service.name") ? resource["service.name"] : "";
    const Value* scope_spans = Member(rs, "scopeSpans");
    if (scope_spans == nullptr) continue;
    if (!scope_spans->IsArray()) {
      *error = "scopeSpans must be an array";
      return false;
    }
    for (const Value& ss : scope_spans->GetArray()) {
      const Value* spans = Member(ss, "spans");
      if (spans == nullptr) continue;
      if (!spans->IsArray()) {
        *error = "spans must be an array";
        return false;
      }
      for (const Value& span : spans->GetArray()) {
        CollectedSpan collected;
        if (!ParseSpan(span, service, &collected, error)) return false;
        out->push_back(std::move(collected));
      }
    }
  }
  return true;
}

}  // namespace

class FakeOtlpCollector::Impl {
 public:
  explicit Impl(uint16_t port) : requested_port_(port) {}

  bool Start(std::string* error) {
    if (server_) {
      if (error != nullptr) *error = "fake collector already started";
      return false;
    }
    server_ = std::make_unique<FakeHttpServer>(
        FakeHttpServerOptions{.name = "fake collector",
                              .port = requested_port_,
                              .max_body_bytes = kMaxBody,
                              .body_too_large_json = R"({"code":3,"message":"body too large"})"},
        [this](tcp::socket& socket, const FakeHttpServer::Request& req) {
          return Handle(socket, req);
        });
    return server_->Start(error);
  }

  void Stop() {
    if (!server_) return;
    server_->Stop();
    stopped_ = true;
    cv_.notify_all();
  }

  uint16_t port() const { return server_ ? server_->port() : 0; }

  std::vector<CollectedSpan> Spans() const {
    std::lock_guard lock(mu_);
    return spans_;
  }

  std::vector<CollectedSpan> WaitForSpans(
      const std::function<bool(const std::vector<CollectedSpan>&)>& done,
      milliseconds timeout) const {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, timeout, [&] { return stopped_ || done(spans_); });
    return spans_;
  }

  void Clear() {
    std::lock_guard lock(mu_);
    spans_.clear();
    bodies_.clear();
    headers_.clear();
    requests_ = 0;
    bad_requests_ = 0;
  }

  size_t requests() const {
    std::lock_guard lock(mu_);
    return requests_;
  }
  size_t bad_requests() const {
    std::lock_guard lock(mu_);
    return bad_requests_;
  }
  std::vector<std::string> RawBodies() const {
    std::lock_guard lock(mu_);
    return bodies_;
  }
  std::vector<std::string> HeaderValues(const std::string& name) const {
    std::lock_guard lock(mu_);
    std::vector<std::string> values;
    for (const auto& headers : headers_) {
      auto it = headers.find(name);
      values.push_back(it == headers.end() ? "" : it->second);
    }
    return values;
  }
  void SetResponseDelay(milliseconds delay) {
    std::lock_guard lock(mu_);
    delay_ = delay;
  }
  void SetStatus(int status) {
    std::lock_guard lock(mu_);
    status_ = status;
  }

 private:
  // Returns whether the connection may serve another request.
  net::awaitable<bool> Handle(tcp::socket& socket, const http::request<http::string_body>& req) {
    std::string_view target(req.target().data(), req.target().size());
    std::string_view path = target.substr(0, target.find('?'));
    const bool keep_alive = req.keep_alive();
    if (path != "/v1/traces") {
      co_return co_await FakeHttpServer::ReplyJson(
          socket, 404, R"({"code":5,"message":"not found"})", keep_alive);
    }
    if (req.method() != http::verb::post) {
      co_return co_await FakeHttpServer::ReplyJson(
          socket, 405, R"({"code":12,"message":"POST only"})", keep_alive);
    }
    milliseconds delay{0};
    int status = 200;
    {
      std::lock_guard lock(mu_);
      ++requests_;
      bodies_.push_back(req.body());
      auto& headers = headers_.emplace_back();
      for (const auto& field : req) {
        std::string name(field.name_string());
        for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        headers[name] = std::string(field.value());
      }
      delay = delay_;
      status = status_;
    }
    cv_.notify_all();
    if (delay.count() > 0 && !co_await server_->Wait(socket, delay)) co_return false;
    if (status != 200) {
      co_return co_await FakeHttpServer::ReplyJson(
          socket, status, R"({"code":14,"message":"fake fault"})", keep_alive);
    }
    std::string_view content_type(req[http::field::content_type].data(),
                                  req[http::field::content_type].size());
    std::string error;
    std::vector<CollectedSpan> spans;
    int answer = 200;
    if (!content_type.starts_with("application/json")) {
      answer = 415;
      error = "Content-Type must be application/json";
    } else if (!ParseExport(req.body(), &spans, &error)) {
      answer = 400;
    }
    {
      std::lock_guard lock(mu_);
      if (answer == 200) {
        for (auto& s : spans) spans_.push_back(std::move(s));
      } else {
        ++bad_requests_;
      }
    }
    cv_.notify_all();
    if (answer == 200)
      co_return co_await FakeHttpServer::ReplyJson(socket, 200, R"({"partialSuccess":{}})",
                                                   keep_alive);
    std::string body = R"({"code":3,"message":)";
    json::AppendQuoted(body, error);
    body += "}";
    co_return co_await FakeHttpServer::ReplyJson(socket, answer, body, keep_alive);
  }

  const uint16_t requested_port_;
  std::atomic<bool> stopped_{false};

  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  std::vector<CollectedSpan> spans_;
  std::vector<std::string> bodies_;
  std::vector<std::map<std::string, std::string>> headers_;  // lower-case names
  size_t requests_ = 0;
  size_t bad_requests_ = 0;
  milliseconds delay_{0};
  int status_ = 200;
  // Last: destroyed first, with the sessions that use the members above.
  std::unique_ptr<FakeHttpServer> server_;
};

FakeOtlpCollector::FakeOtlpCollector(uint16_t port) : impl_(std::make_unique<Impl>(port)) {}
FakeOtlpCollector::~FakeOtlpCollector() = default;

bool FakeOtlpCollector::Start(std::string* error) { return impl_->Start(error); }
void FakeOtlpCollector::Stop() { impl_->Stop(); }
uint16_t FakeOtlpCollector::port() const { return impl_->port(); }
std::string FakeOtlpCollector::endpoint() const {
  return "http://127.0.0.1:" + std::to_string(impl_->port()) + "/v1/traces";
}
std::vector<CollectedSpan> FakeOtlpCollector::Spans() const { return impl_->Spans(); }
std::vector<CollectedSpan> FakeOtlpCollector::WaitForSpans(
    std::function<bool(const std::vector<CollectedSpan>&)> done, milliseconds timeout) const {
  return impl_->WaitForSpans(done, timeout);
}
void FakeOtlpCollector::Clear() { impl_->Clear(); }
size_t FakeOtlpCollector::requests() const { return impl_->requests(); }
size_t FakeOtlpCollector::bad_requests() const { return impl_->bad_requests(); }
std::vector<std::string> FakeOtlpCollector::RawBodies() const { return impl_->RawBodies(); }
std::vector<std::string> FakeOtlpCollector::HeaderValues(const std::string& name) const {
  return impl_->HeaderValues(name);
}
void FakeOtlpCollector::SetResponseDelay(milliseconds delay) { impl_->SetResponseDelay(delay); }
void FakeOtlpCollector::SetStatus(int status) { impl_->SetStatus(status); }

}  // namespace tg::fakes
