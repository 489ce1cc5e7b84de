// tg-edge's request path up to the first RPC: Beast's request parser fed the
// way gateway-edge/http_server.cc feeds it (same parser type and header/body
// limits; reads cut anywhere; keep-alive requests one after the other), the
// HttpRequest the server builds from it, then the pure routing decisions of
// both listeners: MatchAdminRoute (admin :8080) and ExtractApiKey,
// SubdomainOf, MatchRule, ForwardPath, ClientFormatOf and the traceparent
// parser (proxy :8081, gateway-edge/proxy_routing.h) and the models answer
// (model_catalog.h) against a fixed config
// snapshot; and the retry policy's header parsers (retry_policy.h) on every
// header value.
//
// Input: split:u8 | raw bytes as a client would send them on one connection.

#include <rapidjson/document.h>

#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cctype>
#include <chrono>
#include <cstdlib>
#include <string>

#include "fuzz_input.h"
#include "tg/common/config_snapshot.h"
#include "tg/common/trace.h"
#include "tg/edge/admin_route.h"
#include "tg/edge/http_server.h"
#include "tg/edge/model_catalog.h"
#include "tg/edge/proxy_routing.h"
#include "tg/edge/retry_policy.h"

namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace v1 = tg::v1;
using tg::edge::HttpRequest;

constexpr int kMaxRequestsPerConnection = 8;

// One gateway (subdomain "team"), one service, rules that exercise every
// matching rule: the catch-all, longest prefix first, whole segments,
// strip_path with a trailing slash, an inactive rule, a method mismatch.
std::shared_ptr<const tg::ConfigSnapshot> Snapshot() {
  v1::ConfigSnapshot proto;
  auto* gw = proto.add_gateways();
  gw->set_id("gw-1");
  gw->set_name("fuzz");
  gw->set_subdomain("team");
  auto* svc = proto.add_services();
  svc->set_id("svc-1");
  svc->set_gateway_id("gw-1");
  svc->set_name("svc");
  svc->set_type("upstream");
  svc->set_upstream_id("up-1");
  struct R {
    const char* id;
    const char* path;
    std::vector<const char*> methods;
    bool strip;
    bool active;
    const char* service;
  };
  for (const R& r : std::vector<R>{{"r-root", "/", {"GET"}, false, true, "svc-1"},
                                   {"r-v1", "/v1", {"POST"}, false, true, "svc-1"},
                                   {"r-ai", "/ai/", {"POST", "PUT"}, true, true, "svc-1"},
                                   {"r-off", "/ai/v1/chat", {"POST"}, false, false, "svc-1"},
                                   {"r-gone", "/gone", {"POST"}, false, true, "svc-missing"}}) {
    auto* rule = proto.add_rules();
    rule->set_id(r.id);
    rule->set_gateway_id("gw-1");
    rule->set_path(r.path);
    rule->set_service_id(r.service);
    for (const char* m : r.methods) rule->add_methods(m);
    rule->set_strip_path(r.strip);
    rule->set_active(r.active);
  }
  return tg::ConfigSnapshot::FromProto(proto, 1);
}

// What the server does with a request in hand (Dispatch), then the handlers'
// first, pure steps.
void Route(const http::request<http::string_body>& req, std::string_view remote) {
  static const std::shared_ptr<const tg::ConfigSnapshot> snapshot = Snapshot();
  HttpRequest r;
  r.method = std::string(req.method_string());
  r.target = std::string(req.target());
  r.path = r.target.substr(0, r.target.find('?'));
  if (auto q = r.target.find('?'); q != std::string::npos) r.query = r.target.substr(q + 1);
  for (const auto& f : req)
    r.headers.emplace_back(std::string(f.name_string()), std::string(f.value()));
  r.body = req.body();
  r.remote = std::string(remote);

  if (auto route = tg::edge::MatchAdminRoute(r.path)) {
    (void)tg::edge::AllowedMethods(*route);
    (void)tg::edge::MethodAllowed(*route, r.method);
  }
  (void)tg::edge::RequiresAdminToken(r.path);

  (void)tg::edge::ExtractApiKey(r);
  (void)tg::trace::ParseTraceparent(r.Header("traceparent"));
  // The retry policy's parsers read a provider's retry-after,
  // retry-after-ms and x-ratelimit-reset-* headers: header values as hostile
  // as these, under whichever of those names the input gives them.
  google::protobuf::Map<std::string, std::string> retry_headers;
  for (const auto& [name, value] : r.headers) {
    std::string lower = name;
    for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    retry_headers[lower] = value;
    (void)tg::edge::ParseResetDuration(value);
  }
  (void)tg::edge::ProviderRetryAfter(retry_headers, std::chrono::system_clock::now());
  (void)tg::edge::ClientFormatOf(r.path);
  // GET …/models[/{id}]: the answer (an id echoed in a 404 included) must be
  // valid JSON and valid UTF-8 whatever the path's escapes decode to.
  if (auto models = tg::edge::ParseModelsPath(r.path)) {
    static const std::vector<tg::edge::CatalogModel> kModels = {{"gpt-4", "openai"},
                                                                {"claude-3", "anthropic"}};
    for (bool anthropic : {false, true}) {
      const std::string body = tg::edge::ModelsAnswer(kModels, *models, anthropic, 0).body;
      rapidjson::Document d;
      d.Parse<rapidjson::kParseValidateEncodingFlag>(body.data(), body.size());
      if (d.HasParseError() || !d.IsObject()) std::abort();
    }
  }
  std::string sub = tg::edge::SubdomainOf(r.Header("Host"), "gw.example.com");
  std::string gateway = "gw-1";
  if (!sub.empty()) {
    if (const v1::Gateway* g = snapshot->FindGatewayBySubdomain(sub)) gateway = g->id();
  }
  tg::edge::RouteMatch m = tg::edge::MatchRule(*snapshot, gateway, r.method, r.path);
  if (m.result == tg::edge::RouteMatch::Result::kMatched) {
    if (m.rule == nullptr || m.service == nullptr) std::abort();
    // An origin-form path stays one after the rule's prefix is stripped.
    std::string forward = tg::edge::ForwardPath(*m.rule, r.path);
    if (r.path.starts_with('/') && !forward.starts_with('/')) std::abort();
  } else if (m.result == tg::edge::RouteMatch::Result::kWrongMethod && m.allow.empty()) {
    std::abort();  // a 405 must say what is allowed
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  tg::fuzz::FuzzInput in(data, size);
  size_t split = in.Byte();
  std::string_view wire = in.Rest();
  const tg::edge::HttpServerOptions options;  // the limits the server applies

  std::string buffer;  // what has arrived and no parser has consumed yet
  size_t requests = 0;
  bool closed = false;
  std::optional<http::request_parser<http::string_body>> parser;
  auto fresh = [&] {
    parser.emplace();
    parser->header_limit(options.header_limit);
    parser->body_limit(options.body_limit);
  };
  fresh();

  // Parses what the buffer holds; false once the connection is over.
  auto drain = [&](bool eof) {
    while (!closed) {
      beast::error_code ec;
      if (buffer.empty() && !eof) return true;
      size_t used = 0;
      if (!buffer.empty()) used = parser->put(boost::asio::buffer(buffer), ec);
      buffer.erase(0, used);
      if (ec == http::error::need_more || (!ec && used == 0 && !parser->is_done())) {
        if (!eof) return true;
        ec = {};
        if (parser->got_some()) parser->put_eof(ec);
        if (!ec && !parser->is_done()) ec = http::error::partial_message;
        if (!parser->got_some() && !ec) return false;
      }
      if (ec) {
        // FailRead: the start line may be parsed although the head failed.
        if (parser->got_some() && !parser->get().method_string().empty()) {
          std::string_view target(parser->get().target().data(), parser->get().target().size());
          (void)target.substr(0, target.find('?'));
        }
        closed = true;
        return false;
      }
      if (!parser->is_done()) continue;
      http::request<http::string_body> req = parser->release();
      Route(req, "127.0.0.1:40000");
      if (!req.keep_alive() || ++requests == kMaxRequestsPerConnection) {
        closed = true;
        return false;
      }
      fresh();
      if (buffer.empty() && eof) return false;
    }
    return false;
  };
  tg::fuzz::FeedSplit(wire, split, [&](std::string_view piece) {
    if (closed) return;
    buffer.append(piece);
    drain(false);
  });
  if (!closed) drain(true);
  return 0;
}
