// tg-fuzz-seeds GOLDEN_DIR OUT_DIR: writes the seed corpus of every fuzz
// target into OUT_DIR/<target>/, in each target's input shape (selector
// bytes, then the payload; see the comment at the top of each *_fuzz.cc):
// the translation golden files of tests/unit/golden/adapter, the seeds'
// admin bodies (tests/seeds/seed_bodies.h), and the few hand-written inputs
// below. scripts/fuzz runs it before fuzzing; nothing it writes is committed.

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "seed_bodies.h"
#include "tg/adapter/aws/eventstream.h"
#include "tg/adapter/translate/json.h"
#include "tg/common/jwt.h"

namespace fs = std::filesystem;
namespace json = tg::adapter::translate::json;

namespace {

fs::path g_out;
int g_written = 0;

std::string ReadFile(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

void Write(const std::string& target, const std::string& name, std::string_view bytes) {
  fs::create_directories(g_out / target);
  std::ofstream f(g_out / target / name, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  ++g_written;
}

std::string Bytes(std::initializer_list<int> selectors, std::string_view payload) {
  std::string s;
  for (int b : selectors) s.push_back(static_cast<char>(b));
  s.append(payload);
  return s;
}

bool IsExpected(const fs::path& p) {
  return p.filename().string().find(".expected.") != std::string::npos;
}

std::vector<fs::path> Cases(const fs::path& dir, std::string_view ext) {
  std::vector<fs::path> out;
  if (!fs::is_directory(dir)) return out;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().extension() == ext && !IsExpected(e.path())) out.push_back(e.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

// The selector of fuzz/codec_targets.h for a golden target.
int ProviderIndex(const json::Value& target) {
  std::string_view p = json::GetString(target, "provider");
  if (p == "openai") {
    const json::Value* o = json::GetObject(target, "provider_options");
    return o != nullptr && json::GetString(*o, "api") == "responses" ? 1 : 0;
  }
  if (p == "anthropic") return 2;
  if (p == "gemini" || p == "google") return 3;
  if (p == "azure") return 4;
  return 5;
}

int ProviderIndexOfCase(const std::string& name) {
  if (name.starts_with("openai_responses")) return 1;
  if (name.starts_with("openai")) return 0;
  if (name.starts_with("anthropic")) return 2;
  if (name.starts_with("gemini")) return 3;
  if (name.starts_with("azure")) return 4;
  return 5;
}

std::string BodyText(const json::Value& in) {
  const json::Value* body = json::Find(in, "body");
  if (body == nullptr) return "";
  return body->IsString() ? std::string(json::AsString(body)) : json::Write(*body);
}

std::string HttpPost(std::string_view path, std::string_view body, std::string_view extra = "") {
  return "POST " + std::string(path) +
         " HTTP/1.1\r\nHost: team.gw.example.com\r\nX-TG-API-Key: tg_fuzzkey\r\n"
         "Content-Type: application/json\r\n" +
         std::string(extra) + "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" +
         std::string(body);
}

void Requests(const fs::path& golden) {
  constexpr std::array<std::string_view, 3> kClients = {"openai_chat", "anthropic", "responses"};
  constexpr std::array<std::string_view, 3> kPaths = {"/v1/chat/completions", "/v1/messages",
                                                      "/v1/responses"};
  for (const fs::path& p : Cases(golden / "requests", ".json")) {
    json::Document in;
    std::string error;
    if (!json::Parse(ReadFile(p), &in, &error)) continue;
    std::string_view client = json::GetString(in, "client");
    int c = 0;
    while (c < 2 && kClients[c] != client) ++c;
    const json::Value* target = json::GetObject(in, "target");
    int variant = 0;
    if (target != nullptr) {
      if (json::GetBool(*target, "stream")) variant |= 1;
      if (!json::GetString(*target, "host").empty()) variant |= 2;
      if (!json::GetString(*target, "path").empty()) variant |= 4;
      if (json::GetBool(*target, "azure_use_managed_identity")) variant |= 16;
      if (json::GetObject(*target, "headers") != nullptr) variant |= 32;
    }
    std::string body = BodyText(in);
    std::string name = p.stem().string();
    Write("client_request", name, Bytes({c, variant}, body));
    Write("edge_http", name, Bytes({0}, HttpPost(kPaths[c], body)));
  }
}

void Responses(const fs::path& golden) {
  constexpr std::array<int, 12> kStatuses = {200, 201, 400, 401, 403, 404,
                                             408, 413, 429, 500, 503, 529};
  for (const fs::path& p : Cases(golden / "responses", ".json")) {
    json::Document in;
    std::string error;
    if (!json::Parse(ReadFile(p), &in, &error)) continue;
    const json::Value* target = json::GetObject(in, "target");
    int provider = target == nullptr ? 0 : ProviderIndex(*target);
    int status = static_cast<int>(json::GetInt(in, "status", 200));
    int s = 0;
    while (s < 11 && kStatuses[s] != status) ++s;
    Write("provider_response", p.stem().string(), Bytes({provider, s}, BodyText(in)));
  }
}

// A Bedrock golden stream (one {"type", "payload"} per line) as eventstream
// frames, the way Bedrock sends it.
std::string BedrockFrames(const fs::path& p) {
  std::string frames;
  std::istringstream lines(ReadFile(p));
  std::string line;
  while (std::getline(lines, line)) {
    json::Document d;
    std::string error;
    if (line.empty() || !json::Parse(line, &d, &error)) continue;
    std::string type(json::GetString(d, "type"));
    const json::Value* payload = json::Find(d, "payload");
    std::string text = payload == nullptr ? "" : json::Write(*payload);
    frames += type.ends_with("Exception") ? tg::adapter::aws::EncodeException(type, text)
                                          : tg::adapter::aws::EncodeEvent(type, text);
  }
  return frames;
}

void Streams(const fs::path& golden) {
  for (const fs::path& p : Cases(golden / "streams", ".sse")) {
    std::string name = p.stem().string();
    std::string raw = ReadFile(p);
    int provider = ProviderIndexOfCase(name);
    Write("provider_stream", name, Bytes({provider, 0, 1}, raw));
    Write("provider_stream", name + "_split7", Bytes({provider, 7, 0}, raw));
    Write("sse_parser", name, Bytes({0}, raw));
    Write("sse_parser", name + "_split3", Bytes({3}, raw));
  }
  for (const fs::path& p : Cases(golden / "streams", ".jsonl")) {
    std::string name = p.stem().string();
    std::string frames = BedrockFrames(p);
    Write("provider_stream", name, Bytes({5, 0, 1}, frames));
    Write("provider_stream", name + "_split5_crc", Bytes({5, 5, 3}, frames));
    Write("eventstream", name, Bytes({0, 0}, frames));
    Write("eventstream", name + "_split9_crc", Bytes({1, 9}, frames));
  }
}

void AdminBodies() {
  namespace s = tg::testing::seeds;
  struct Seed {
    const char* name;
    int resource;  // fuzz/admin_json_fuzz.cc: gateway, upstream, service, rule, key, lenient
    const char* body;
  };
  const Seed seeds[] = {
      {"gateway_step1", 0, s::kGatewayStep1},
      {"gateway_subdomain", 0, s::kGatewayWithSubdomain},
      {"upstream_step2", 1, s::kUpstreamStep2},
      {"upstream_openai_responses", 1, s::kOpenAiResponses},
      {"upstream_anthropic", 1, s::kAnthropic},
      {"upstream_gemini", 1, s::kGemini},
      {"upstream_bedrock", 1, s::kBedrockStandalone},
      {"upstream_bedrock_anthropic", 1, s::kBedrockAnthropic},
      {"upstream_azure", 1, s::kAzure},
      {"upstream_header_credentials", 1, s::kUpstreamHeaderCredentials},
      {"upstream_weighted_hosts", 1, s::kWeightedHostTargets},
      {"service_step3", 2, s::kServiceStep3},
      {"service_endpoint", 2,
       R"({"name": "ep", "type": "endpoint", "host": "api.example.com", "port": 443,
           "protocol": "https", "headers": {"x-a": "b"}, "tags": ["t"],
           "credentials": {"header_name": "Authorization", "header_value": "Bearer x"}})"},
      {"rule_step4", 3, s::kRuleStep4},
      {"rule_strip_path", 3, s::kRuleStripPath},
      {"key_step5", 4, s::kKeyStep5},
      {"key_expires", 4, R"({"name": "k", "expires_at": "2030-01-01T00:00:00Z"})"},
      {"lenient_comments", 5, "{\"a\": 1, # comment\n \"b\": [1, 2,], // more\n \"c\": \"#//\",}"},
  };
  for (const Seed& seed : seeds) Write("admin_json", seed.name, Bytes({seed.resource}, seed.body));
}

// Hand-written requests for what the golden files do not show: the admin
// listener, chunked bodies, pipelining, Expect, odd targets.
void EdgeRequests() {
  const std::pair<const char*, std::string> seeds[] = {
      {"healthz", "GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n"},
      {"admin_list",
       "GET /api/v1/gateways/0b6f1d5e-1111-4222-8333-944455556666/upstreams/ HTTP/1.1\r\n"
       "Host: localhost:8080\r\nAuthorization: Bearer a.b.c\r\n\r\n"},
      {"admin_percent", "DELETE /api/v1/gateways/g%2F1/rules/r%41 HTTP/1.1\r\nHost: x\r\n\r\n"},
      {"chunked",
       "POST /ai/v1/chat/completions?x=1 HTTP/1.1\r\nHost: team.gw.example.com:8081\r\n"
       "Authorization: bearer tg_k\r\nTransfer-Encoding: chunked\r\n\r\n"
       "5;ext=1\r\n{\"a\":\r\n3\r\n 1}\r\n0\r\nTrailer: v\r\n\r\n"},
      {"pipelined",
       "GET / HTTP/1.1\r\nHost: a\r\n\r\nPOST /v1 HTTP/1.1\r\nHost: a\r\n"
       "Content-Length: 2\r\n\r\n{}GET /gone HTTP/1.0\r\n\r\n"},
      {"expect",
       "PUT /ai HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 0\r\n"
       "traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\r\n\r\n"},
      {"absolute_form",
       "POST @127.0.0.2:9199/steal HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n"},
      {"wrong_method", "DELETE /v1/chat/completions HTTP/1.1\r\nX-Api-Key: k\r\n\r\n"},
  };
  for (const auto& [name, bytes] : seeds) {
    Write("edge_http", name, Bytes({0}, bytes));
    Write("edge_http", std::string(name) + "_split1", Bytes({1}, bytes));
  }
}

void Tokens() {
  // The secret of fuzz/admin_jwt_fuzz.cc.
  constexpr std::string_view kSecret = "fuzz-admin-secret-0123456789abcdef0123456789";
  auto now = std::chrono::system_clock::time_point(std::chrono::seconds(1700000000));
  Write("admin_jwt", "valid",
        Bytes({0}, tg::jwt::SignHs256(kSecret, "admin", now, std::chrono::hours(1))));
  Write("admin_jwt", "expired",
        Bytes({0}, tg::jwt::SignHs256(kSecret, "admin", now - std::chrono::hours(2),
                                      std::chrono::hours(1))));
  Write("admin_jwt", "none_alg", Bytes({0}, "eyJhbGciOiJub25lIn0.eyJzdWIiOiJhIn0."));
  Write("admin_jwt", "claims",
        Bytes({1},
              "{\"alg\":\"HS256\",\"typ\":\"JWT\"}\n"
              "{\"sub\":\"admin\",\"iat\":1700000000,\"exp\":1700003600,\"iss\":\"tg\",\"aud\":["
              "\"a\"]}"));
  Write("admin_jwt", "claims_no_exp", Bytes({1}, "{\"alg\":\"HS256\"}\n{\"sub\":\"admin\"}"));
  Write("admin_jwt", "claims_hs512", Bytes({1}, "{\"alg\":\"HS512\"}\n{\"exp\":\"soon\"}"));
  Write("admin_jwt", "forged",
        Bytes({2}, "{\"alg\":\"HS256\"}\n{\"sub\":\"admin\",\"exp\":1900000000}"));
}

// fuzz/token_estimate_fuzz.cc (split:u8 | payload): the golden request
// bodies, the client-format streams and whole answers they translate to.
void TokenEstimateSeeds(const fs::path& golden) {
  for (const fs::path& p : Cases(golden / "requests", ".json")) {
    json::Document in;
    std::string error;
    if (!json::Parse(ReadFile(p), &in, &error)) continue;
    Write("token_estimate", "request_" + p.stem().string(), Bytes({7}, BodyText(in)));
  }
  if (fs::is_directory(golden / "streams")) {
    for (const auto& e : fs::directory_iterator(golden / "streams")) {
      const std::string name = e.path().filename().string();
      if (!name.ends_with(".sse") || name.find(".expected.") == std::string::npos) continue;
      const std::string raw = ReadFile(e.path());
      Write("token_estimate", "stream_" + name, Bytes({0}, raw));
      Write("token_estimate", "stream_" + name + "_split200", Bytes({200}, raw));
    }
  }
  for (const fs::path& p : Cases(golden / "responses", ".json")) {
    fs::path expected = p;
    expected.replace_extension(".expected.json");
    json::Document out;
    std::string error;
    if (!fs::exists(expected) || !json::Parse(ReadFile(expected), &out, &error)) continue;
    for (const char* client : {"openai_chat", "anthropic", "responses"}) {
      const json::Value* answer = json::Find(out, client);
      if (answer == nullptr) continue;
      Write("token_estimate", "answer_" + p.stem().string() + "_" + client,
            Bytes({31}, json::Write(*answer)));
    }
  }
}

// fuzz/plugin_settings_fuzz.cc (shape:u8 | JSON; 0 PluginConfig, 1 Gateway,
// 2 Rule): TrustGate's examples of docs/API.md "Plugins (rate limits)", each
// documented refusal, and Go durations at the edges of what parses.
void PluginSettingsSeeds() {
  struct Seed {
    const char* name;
    int shape;
    const char* json;
  };
  const Seed seeds[] = {
      {"gateway_example", 1,
       R"({"name": "multi-provider-gateway",
 "required_plugins": [
   {"name": "rate_limiter", "enabled": true, "stage": "pre_request", "priority": 1,
    "level": "gateway", "parallel": false,
    "settings": {"limits": {"global": {"limit": 1000, "window": "1m"},
                            "per_ip": {"limit": 60, "window": "1m"},
                            "per_user": {"limit": 100, "window": "1m"}},
                 "actions": {"type": "reject", "retry_after": "60"}}}]})"},
      {"rule_example", 2,
       R"({"path": "/v1", "service_id": "s", "methods": ["POST"],
 "plugin_chain": [
   {"name": "token_rate_limiter", "stage": "pre_request", "priority": 1,
    "settings": {"tokens_per_minute": 10000, "requests_per_minute": 60,
                 "bucket_size": 20000, "tokens_per_request": 4000}}]})"},
      {"rate_limiter", 0,
       R"({"name": "rate_limiter", "id": "x", "settings": {"limits": {
           "per_api_key": {"limit": 5, "window": "1h30m"}, "per_model": {"limit": 2,
           "window": "1.5h"}, "global": {"limit": 1000000000, "window": "24h"}},
           "actions": {"type": "block", "retry_after": "1.5s"}}})"},
      {"token_scope_model", 0,
       R"({"name": "token_rate_limiter", "stage": "post_response", "level": "rule",
           "enabled": false, "settings": {"tokens_per_minute": 1000000000000, "scope": "model"}})"},
      {"chain_priorities", 2,
       R"({"plugin_chain": [
   {"name": "rate_limiter", "priority": 9, "settings": {"limits": {"global": {"limit": 1, "window": "1s"}}}},
   {"name": "token_rate_limiter", "priority": 0, "settings": {"tokens_per_minute": 1, "scope": "gateway"}},
   {"name": "data_masking", "settings": {}},
   {"name": "rate_limiter", "priority": 1000, "settings": {"limits": {"per_ip": {"limit": 1, "window": "30s"}}}}]})"},
      {"not_supported", 0, R"({"name": "data_masking", "settings": {}})"},
      {"unknown_plugin", 0, R"({"name": "foo"})"},
      {"wrong_level", 0,
       R"({"name": "rate_limiter", "level": "gateway", "settings": {"limits": {"global": {"limit": 1, "window": "1m"}}}})"},
      {"wrong_stage", 0,
       R"({"name": "rate_limiter", "stage": "post_request", "settings": {"limits": {"global": {"limit": 1, "window": "1m"}}}})"},
      {"bad_window", 0,
       R"({"name": "rate_limiter", "settings": {"limits": {"per_ip": {"limit": 1, "window": "1x"}}}})"},
      {"short_window", 0,
       R"({"name": "rate_limiter", "settings": {"limits": {"per_ip": {"limit": 1, "window": "999ms"}}}})"},
      {"unknown_limit", 0,
       R"({"name": "rate_limiter", "settings": {"limits": {"per_region": {"limit": 1, "window": "1m"}}}})"},
      {"too_large_request", 1,
       R"({"name": "g", "required_plugins": [{"name": "token_rate_limiter"},
           {"name": "token_rate_limiter", "settings": {"tokens_per_minute": 10000,
            "bucket_size": 20000, "tokens_per_request": 20001}}]})"},
      {"fraction", 0,
       R"({"name": "token_rate_limiter", "settings": {"tokens_per_minute": 60.5, "requests_per_minute": "60"}})"},
      {"retry_after_digits", 0,
       R"({"name": "rate_limiter", "priority": 1001, "settings": {"limits": {"global": {"limit": 1, "window": "1m"}},
           "actions": {"retry_after": "1234567"}}})"},
      {"null_settings", 0,
       R"({"name": "rate_limiter", "settings": {"limits": {"global": null, "per_ip": {"limit": 1e9, "window": "-1m"}}}})"},
  };
  for (const Seed& seed : seeds) {
    Write("plugin_settings", seed.name, Bytes({seed.shape}, seed.json));
  }
  // Go durations, read raw by ParseGoDuration (and refused as JSON).
  const char* durations[] = {"1h30m",
                             "1.5h",
                             "500ms",
                             "0",
                             "-1m30s",
                             "+.5s",
                             "1\xC2\xB5s",
                             "3\xCE\xBCs",
                             "2562047h",
                             "2562048h",
                             "9223372036854775807ns",
                             "9223372036854775808ns",
                             "1.0000000000000000000001s",
                             ".",
                             "1e3s"};
  int i = 0;
  for (const char* d : durations) {
    Write("plugin_settings", "duration_" + std::to_string(i++), Bytes({0}, d));
  }
}

}  // namespace

// Embeddings: client bodies for every target (mode 0) and each provider's
// answer shape (odd modes), as embeddings_fuzz reads them.
void Embeddings() {
  const std::vector<std::string> clients = {
      R"({"model":"m","input":"hello world"})",
      R"({"model":"m","input":["a","b"],"dimensions":256,"encoding_format":"base64"})",
      R"({"model":"m","input":[[1,2],[3]]})",
  };
  for (int t = 0; t < 6; ++t) {
    for (size_t i = 0; i < clients.size(); ++i) {
      Write("embeddings", "client-" + std::to_string(t) + "-" + std::to_string(i),
            Bytes({t, 0}, clients[i]));
    }
  }
  const std::vector<std::pair<int, std::string>> answers = {
      {0,
       R"({"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.5]}],"model":"m","usage":{"prompt_tokens":1,"total_tokens":1}})"},
      {2, R"({"embedding":{"values":[0.5,-1]}})"},
      {2, R"({"embeddings":[{"values":[0.5]},{"values":[1]}]})"},
      {3, R"({"embedding":[0.25,0.5],"inputTextTokenCount":2})"},
      {4,
       R"({"id":"x","embeddings":{"float":[[0.25],[0.75]]},"texts":["a","b"],"response_type":"embeddings_by_type"})"},
      {4,
       R"({"id":"x","embeddings":[[0.25],[0.75]],"texts":["a","b"],"response_type":"embeddings_floats"})"},
  };
  for (size_t i = 0; i < answers.size(); ++i) {
    for (int mode : {1, 3, 5, 7}) {
      Write("embeddings", "answer-" + std::to_string(i) + "-" + std::to_string(mode),
            Bytes({answers[i].first, mode}, answers[i].second));
    }
  }
}

int main(int argc, char** argv) {
  if (argc != 3) {
    std::cerr << "usage: tg-fuzz-seeds GOLDEN_DIR OUT_DIR\n";
    return 2;
  }
  fs::path golden = argv[1];
  g_out = argv[2];
  Requests(golden);
  Responses(golden);
  Streams(golden);
  AdminBodies();
  EdgeRequests();
  Tokens();
  Embeddings();
  TokenEstimateSeeds(golden);
  PluginSettingsSeeds();
  std::cout << "wrote " << g_written << " seeds to " << g_out.string() << "\n";
  return g_written > 0 ? 0 : 1;
}
