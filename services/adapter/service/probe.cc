#include "tg/adapter/service/probe.h"

#include <curl/curl.h>

#include <memory>
#include <mutex>
#include <utility>

#include "tg/adapter/service/target_info.h"
#include "tg/adapter/translate/client_codec.h"
#include "tg/adapter/translate/target_url.h"
#include "tg/common/egress.h"
#include "tg/common/http_headers.h"
#include "tg/common/json_util.h"
#include "tg/common/log.h"

namespace tg::adapter {
namespace {

using translate::AdapterError;
using translate::ConfigurationError;

// Scheme, host and port of an absolute URL the codecs built (parsed by
// libcurl, the parser that would act on it).
translate::Result<translate::UrlParts> OriginOf(const std::string& url) {
  std::unique_ptr<CURLU, void (*)(CURLU*)> u(curl_url(), curl_url_cleanup);
  if (!u || curl_url_set(u.get(), CURLUPART_URL, url.c_str(), 0) != CURLUE_OK) {
    return ConfigurationError("the target's URL cannot be parsed");
  }
  translate::UrlParts parts;
  parts.scheme = translate::UrlPart(u.get(), CURLUPART_SCHEME);
  parts.host = translate::UrlPart(u.get(), CURLUPART_HOST);
  if (parts.host.size() >= 2 && parts.host.front() == '[' && parts.host.back() == ']') {
    parts.host = parts.host.substr(1, parts.host.size() - 2);
  }
  const std::string port = translate::UrlPart(u.get(), CURLUPART_PORT);
  if (!port.empty()) parts.port = std::atoi(port.c_str());
  return parts;
}

// A target as an Invoke describes it, with a model for the codec to name
// (the probe's own path replaces whatever path the target has).
translate::TargetInfo InfoOf(const tg::v1::Target& t, const tg::v1::Credentials& c) {
  translate::TargetInfo info = TargetInfoOf(t, c);
  info.path.clear();
  info.model = !t.default_model().empty() ? t.default_model()
               : t.models_size() > 0      ? t.models(0)
                                          : "probe";
  return info;
}

// Headers that describe a request body: a probe has none.
bool IsBodyHeader(std::string_view name) {
  return http_headers::NameEquals(name, "content-type") ||
         http_headers::NameEquals(name, "content-length") ||
         http_headers::NameEquals(name, "accept");
}

void SetHeader(http::HeaderList* headers, const std::string& name, const std::string& value) {
  std::erase_if(*headers, [&](const auto& h) { return http_headers::NameEquals(h.first, name); });
  headers->emplace_back(name, value);
}

// Reads the probe's answer: the status decides, the body is discarded.
class ProbeHandler final : public http::HttpStreamHandler {
 public:
  ProbeHandler(size_t max_body_bytes, std::function<void(tg::v1::ProbeResponse)> done)
      : max_body_bytes_(max_body_bytes),
        started_(std::chrono::steady_clock::now()),
        done_(std::move(done)) {}

  // Start returns the handle after the loop may already have called us.
  void SetTransfer(const std::shared_ptr<http::HttpTransfer>& transfer) {
    std::lock_guard lock(mu_);
    transfer_ = transfer;
    if (cut_) transfer->Cancel();
  }

  void OnHead(const http::HttpResponseHead& head) override { status_ = head.status; }

  void OnBody(std::string_view chunk) override {
    body_bytes_ += chunk.size();
    if (body_bytes_ <= max_body_bytes_) return;
    std::lock_guard lock(mu_);
    if (cut_) return;
    cut_ = true;
    if (auto t = transfer_.lock()) t->Cancel();
  }

  void OnDone(const http::HttpResult& result) override {
    tg::v1::ProbeResponse r;
    r.set_latency_ms(std::chrono::duration_cast<std::chrono::milliseconds>(
                         std::chrono::steady_clock::now() - started_)
                         .count());
    if (status_ > 0) {
      // The head decides, even when the body was cut or broke afterwards.
      r.set_http_status(status_);
      r.set_healthy(status_ >= 200 && status_ < 300);
      if (!r.healthy()) r.set_error_class("http_" + std::to_string(status_));
    } else {
      switch (result.error) {
        case http::HttpErrorKind::kConnect:
          r.set_error_class("connect");
          break;
        case http::HttpErrorKind::kTimeout:
          r.set_error_class("timeout");
          break;
        case http::HttpErrorKind::kRefused:
          r.set_error_class("refused");
          break;
        case http::HttpErrorKind::kCancelled:
          r.set_error_class("cancelled");
          break;
        case http::HttpErrorKind::kProtocol:
        case http::HttpErrorKind::kNone:
          r.set_error_class("protocol");
          break;
      }
    }
    done_(std::move(r));
  }

 private:
  const size_t max_body_bytes_;
  const std::chrono::steady_clock::time_point started_;
  std::function<void(tg::v1::ProbeResponse)> done_;
  int status_ = 0;         // loop thread only
  size_t body_bytes_ = 0;  // loop thread only
  std::mutex mu_;
  std::weak_ptr<http::HttpTransfer> transfer_;
  bool cut_ = false;
};

tg::v1::ProbeResponse Failed(std::string error_class) {
  tg::v1::ProbeResponse r;
  r.set_error_class(std::move(error_class));
  return r;
}

}  // namespace

translate::Result<ProbeCall> BuildProbeCall(const tg::v1::Target& target,
                                            const tg::v1::Credentials& credentials,
                                            const std::string& path,
                                            const std::map<std::string, std::string>& headers,
                                            const ProbeOptions& options) {
  if (path.empty() || path.front() != '/') {
    return ConfigurationError("the probe path must start with '/'");
  }
  for (const auto& [name, value] : headers) {
    if (name.empty() || name.find_first_of(" \t\r\n:") != std::string::npos ||
        value.find_first_of("\r\n") != std::string::npos || value.find('\0') != std::string::npos) {
      return ConfigurationError("a probe header is not a valid header");
    }
  }
  ProbeCall call;
  translate::UrlParts origin;
  if (target.provider().empty()) {
    // A reverse-proxied host: its origin is its host, as a passthrough call's.
    std::string error;
    auto hp = egress::ParseHost(target.host(), &error);
    if (!hp) return ConfigurationError("target host " + error);
    origin.scheme = target.protocol();
    if (origin.scheme.empty()) {
      origin.scheme = target.has_port() && target.port() == 80 ? "http" : "https";
    }
    origin.host = hp->host;
    origin.port = hp->port != 0 ? hp->port : (target.has_port() ? target.port() : 0);
    for (const auto& [k, v] : target.headers()) call.request.headers.emplace_back(k, v);
    call.spec.auth = credentials.api_key().empty() ? translate::AuthScheme::kNone
                                                   : translate::AuthScheme::kBearer;
  } else {
    // The codec of the target's real calls tells where they go and how they
    // authenticate; the little request it builds is never sent.
    const translate::TargetInfo info = InfoOf(target, credentials);
    const translate::ProviderCodec* codec = translate::ProviderCodecFor(info);
    if (codec == nullptr) {
      return ConfigurationError("unknown provider \"" + target.provider() + "\"");
    }
    auto chat = translate::ClientCodecFor(translate::ClientFormat::kOpenAiChat)
                    .DecodeRequest(R"({"messages":[{"role":"user","content":"ping"}]})");
    if (!chat.ok()) return chat.error();
    auto spec = codec->BuildRequest(chat.value(), info);
    if (!spec.ok()) return spec.error();
    call.spec = std::move(spec.value());
    auto parsed = OriginOf(call.spec.url);
    if (!parsed.ok()) return parsed.error();
    origin = std::move(parsed.value());
    for (auto& [k, v] : call.spec.headers) {
      if (!IsBodyHeader(k)) call.request.headers.emplace_back(std::move(k), std::move(v));
    }
    call.spec.headers.clear();
    call.spec.url.clear();
    call.spec.body.clear();
  }
  origin.path = path;
  auto url = translate::BuildUrl(origin);
  if (!url.ok()) return url.error();
  call.request.method = "GET";
  call.request.url = std::move(url.value());
  for (const auto& [name, value] : headers) SetHeader(&call.request.headers, name, value);
  http::HttpTimeouts t;
  t.connect = options.connect_timeout;
  t.first_byte = options.total_timeout;
  t.idle = options.total_timeout;
  t.total = options.total_timeout;
  call.request.timeouts = t;
  return call;
}

bool AuthenticateProbe(const tg::v1::Credentials& credentials, const std::string& entra_token,
                       ProbeCall* call, std::string* error,
                       const std::map<std::string, std::string>& probe_headers) {
  const size_t before = call->request.headers.size();
  if (!ApplyAuth(call->spec, credentials, entra_token, &call->request, error)) return false;
  if (call->spec.auth == translate::AuthScheme::kAwsSigV4) return true;
  // A probe header named like the auth header replaces it (a health
  // endpoint with a token of its own).
  for (size_t i = call->request.headers.size(); i-- > before;) {
    const std::string& name = call->request.headers[i].first;
    for (const auto& [probe_name, value] : probe_headers) {
      if (http_headers::NameEquals(name, probe_name)) {
        call->request.headers.erase(call->request.headers.begin() + static_cast<std::ptrdiff_t>(i));
        break;
      }
    }
  }
  return true;
}

void RunProbe(http::HttpClient& client, EntraTokenSource* entra, WorkerPool& workers,
              const tg::v1::Target& target, const tg::v1::Credentials& credentials,
              const tg::v1::ProbeRequest& request, const ProbeOptions& options,
              std::function<void(tg::v1::ProbeResponse)> done) {
  std::map<std::string, std::string> headers(request.headers().begin(), request.headers().end());
  auto built = BuildProbeCall(target, credentials, request.path(), headers, options);
  if (!built.ok()) {
    log::Warn("probe not sent: the target cannot be called as configured",
              {{"upstream_id", request.upstream_id()},
               {"target_id", target.id()},
               {"error", built.error().message}});
    return done(Failed("configuration"));
  }
  auto call = std::make_shared<ProbeCall>(std::move(built.value()));
  auto send = [&client, credentials, call, headers, options, done,
               upstream_id = request.upstream_id(),
               target_id = target.id()](const std::string& entra_token) {
    std::string error;
    if (!AuthenticateProbe(credentials, entra_token, call.get(), &error, headers)) {
      log::Warn("probe not sent: the target has no usable credentials",
                {{"upstream_id", upstream_id}, {"target_id", target_id}, {"error", error}});
      return done(Failed("configuration"));
    }
    auto handler = std::make_shared<ProbeHandler>(options.max_body_bytes, done);
    auto transfer = client.Start(std::move(call->request), handler);
    if (transfer) handler->SetTransfer(transfer);
  };
  if (call->spec.auth == translate::AuthScheme::kAzureEntraToken) {
    if (entra == nullptr) return done(Failed("configuration"));
    // A token miss is a blocking fetch from IMDS: never on a gRPC thread.
    workers.Post([entra, send, done] {
      std::string error;
      auto token = entra->Get(&error);
      if (!token) return done(Failed("connect"));
      send(*token);
    });
    return;
  }
  send("");
}

}  // namespace tg::adapter
