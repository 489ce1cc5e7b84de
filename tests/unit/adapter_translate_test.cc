// Size: one layer's targeted tests (translation), beside its golden tests.
// Targeted tests of the translation layer: the seeds' mixed body, URLs and
// overrides, errors and retryability, stream termination rules, and every
// client format × provider pair end to end.
#include <curl/curl.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tg/adapter/translate/canonical.h"
#include "tg/adapter/translate/client_codec.h"
#include "tg/adapter/translate/json.h"
#include "tg/adapter/translate/provider_codec.h"
#include "tg/adapter/translate/providers/gemini_schema.h"
#include "tg/adapter/translate/providers/provider_util.h"
#include "tg/adapter/translate/stream_aggregator.h"
#include "tg/adapter/translate/target_url.h"

namespace tg::adapter::translate {
namespace {

using json::Value;

// The seeds' documented mixed body, verbatim: OpenAI messages plus
// Anthropic's top-level system and a shared max_tokens.
constexpr char kSeedMixedBody[] = R"({
  "model": "gpt-4",
  "messages": [
    {
      "role": "user",
      "content": "Hello!"
    }
  ],
  "max_tokens": 1020,
  "system": "You are an assistant"
})";

constexpr char kSeedStreamBody[] = R"({
"model": "gpt-4o-mini",
"messages": [
{
"role": "user",
"content": "Hello, how are you?"
}
],
"max_tokens": 1020,
"system": "You are an assistant",
"stream": true
})";

ChatRequest Decode(ClientFormat f, std::string_view body) {
  Result<ChatRequest> r = ClientCodecFor(f).DecodeRequest(body);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
  return r.ok() ? std::move(r).value() : ChatRequest{};
}

TargetInfo Target(std::string provider, std::string model, bool stream = false) {
  TargetInfo t;
  t.provider = std::move(provider);
  t.model = std::move(model);
  t.stream = stream;
  return t;
}

json::Document ParseJson(std::string_view text) {
  json::Document d;
  d.Parse(text.data(), text.size());
  EXPECT_FALSE(d.HasParseError()) << text;
  return d;
}

HttpRequestSpec Build(const ChatRequest& req, const TargetInfo& target) {
  const ProviderCodec* codec = ProviderCodecFor(target);
  EXPECT_NE(codec, nullptr) << target.provider;
  if (codec == nullptr) return {};
  Result<HttpRequestSpec> r = codec->BuildRequest(req, target);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
  return r.ok() ? std::move(r).value() : HttpRequestSpec{};
}

std::string Header(const HttpRequestSpec& spec, std::string_view name) {
  for (const auto& [n, v] : spec.headers) {
    if (n == name) return v;
  }
  return "";
}

// ---- the seeds' mixed body ----------------------------------------------------

TEST(SeedMixedBodyTest, OpenAiGetsALeadingSystemMessageAndNoUnknownFields) {
  ChatRequest req = Decode(ClientFormat::kOpenAiChat, kSeedMixedBody);
  HttpRequestSpec http = Build(req, Target("openai", "gpt-4o-mini"));
  EXPECT_EQ(http.url, "https://api.openai.com/v1/chat/completions");
  EXPECT_EQ(http.auth, AuthScheme::kBearer);
  json::Document body = ParseJson(http.body);
  EXPECT_EQ(json::GetString(body, "model"), "gpt-4o-mini");
  EXPECT_EQ(json::Find(body, "system"), nullptr) << "OpenAI rejects unknown top-level fields";
  const Value* messages = json::GetArray(body, "messages");
  ASSERT_NE(messages, nullptr);
  ASSERT_EQ(messages->Size(), 2u);
  EXPECT_EQ(json::GetString((*messages)[0], "role"), "system");
  EXPECT_EQ(json::GetString((*messages)[0], "content"), "You are an assistant");
  EXPECT_EQ(json::GetString((*messages)[1], "content"), "Hello!");
  EXPECT_EQ(json::GetInt(body, "max_tokens"), 1020);
  EXPECT_EQ(json::Find(body, "stream"), nullptr);
}

TEST(SeedMixedBodyTest, OpenAiKeepsAnExistingSystemMessage) {
  ChatRequest req = Decode(ClientFormat::kOpenAiChat, R"({
    "model": "m", "system": "top-level",
    "messages": [{"role": "system", "content": "in messages"},
                 {"role": "user", "content": "hi"}]})");
  json::Document body = ParseJson(Build(req, Target("openai", "m")).body);
  const Value& messages = body["messages"];
  ASSERT_EQ(messages.Size(), 2u);
  EXPECT_EQ(json::GetString(messages[0], "content"), "in messages");
  EXPECT_EQ(json::Find(body, "system"), nullptr);
}

TEST(SeedMixedBodyTest, AnthropicGetsTopLevelSystemAndOnlyItsFields) {
  ChatRequest req = Decode(ClientFormat::kOpenAiChat, kSeedMixedBody);
  HttpRequestSpec http = Build(req, Target("anthropic", "claude-3-5-sonnet-20241022"));
  EXPECT_EQ(http.url, "https://api.anthropic.com/v1/messages");
  EXPECT_EQ(http.auth, AuthScheme::kAnthropicApiKey);
  EXPECT_EQ(Header(http, "anthropic-version"), "2023-06-01");
  json::Document body = ParseJson(http.body);
  EXPECT_EQ(json::GetString(body, "model"), "claude-3-5-sonnet-20241022");
  EXPECT_EQ(json::GetString(body, "system"), "You are an assistant");
  EXPECT_EQ(json::GetInt(body, "max_tokens"), 1020);
  const Value& messages = body["messages"];
  ASSERT_EQ(messages.Size(), 1u);
  EXPECT_EQ(json::GetString(messages[0], "role"), "user");
  EXPECT_EQ(json::GetString(messages[0], "content"), "Hello!");
  for (const auto& m : body.GetObject()) {
    std::string_view key = m.name.GetString();
    EXPECT_TRUE(key == "model" || key == "system" || key == "max_tokens" || key == "messages")
        << "unexpected field " << key;
  }
}

TEST(SeedMixedBodyTest, StreamingSeedAsksEveryProviderForAStreamWithUsage) {
  ChatRequest req = Decode(ClientFormat::kOpenAiChat, kSeedStreamBody);
  EXPECT_TRUE(req.stream);
  json::Document openai = ParseJson(Build(req, Target("openai", "gpt-4o-mini", true)).body);
  EXPECT_TRUE(json::GetBool(openai, "stream"));
  EXPECT_TRUE(json::GetBool(openai["stream_options"], "include_usage"));
  json::Document anthropic = ParseJson(Build(req, Target("anthropic", "claude", true)).body);
  EXPECT_TRUE(json::GetBool(anthropic, "stream"));
  EXPECT_EQ(json::Find(anthropic, "stream_options"), nullptr);
}

TEST(SeedMixedBodyTest, AnthropicDefaultsMaxTokens) {
  ChatRequest req = Decode(ClientFormat::kOpenAiChat,
                           R"({"model":"x","messages":[{"role":"user","content":"hi"}]})");
  json::Document body = ParseJson(Build(req, Target("anthropic", "claude")).body);
  EXPECT_EQ(json::GetInt(body, "max_tokens"), 4096);
}

TEST(ClientDecodeTest, AcceptsTrailingCommasAndRejectsNonObjects) {
  EXPECT_TRUE(ClientCodecFor(ClientFormat::kOpenAiChat)
                  .DecodeRequest(R"({"model":"m","messages":[{"role":"user","content":"x"},],})")
                  .ok());
  Result<ChatRequest> bad = ClientCodecFor(ClientFormat::kOpenAiChat).DecodeRequest("[1,2]");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().http_status, 400);
  EXPECT_EQ(bad.error().kind, ErrorKind::kInvalidRequest);
  EXPECT_FALSE(ClientCodecFor(ClientFormat::kOpenAiChat).DecodeRequest(R"({"model":"m"})").ok());
  EXPECT_FALSE(ClientCodecFor(ClientFormat::kAnthropicMessages).DecodeRequest("{nope").ok());
}

// ---- URLs ---------------------------------------------------------------------

std::string Url(std::string_view provider_default, const TargetInfo& t, std::string_view path,
                const std::vector<std::pair<std::string, std::string>>& query = {}) {
  auto url = ProviderUrl(provider_default, t, path, query);
  return url.ok() ? url.value() : "error: " + url.error().message;
}

TEST(TargetUrlTest, HostPortProtocolOverrideTheDefaultBase) {
  TargetInfo t = Target("openai", "m");
  EXPECT_EQ(Url("https://api.openai.com", t, "/v1/x"), "https://api.openai.com/v1/x");
  t.host = "127.0.0.1";
  t.port = 8080;
  t.protocol = "http";
  EXPECT_EQ(Url("https://api.openai.com", t, "/v1/x"), "http://127.0.0.1:8080/v1/x");
  t.port = 80;
  EXPECT_EQ(Url("https://api.openai.com", t, "/v1/x"), "http://127.0.0.1/v1/x");
  t.protocol = "";
  t.port = 0;
  t.host = "llm.internal";
  EXPECT_EQ(Url("https://api.openai.com", t, "v1/x"), "https://llm.internal/v1/x");
  t.host = "llm.internal:9000";
  EXPECT_EQ(Url("https://api.openai.com", t, "/v1/x"), "https://llm.internal:9000/v1/x");
  t.host = "::1";
  t.port = 8443;
  EXPECT_EQ(Url("https://x", t, "/"), "https://[::1]:8443/");
  // A default base from credentials keeps its path prefix.
  EXPECT_EQ(Url("https://r.openai.azure.com/pre/", Target("azure", "m"), "/openai/x",
                {{"api-version", "2024-10-21"}}),
            "https://r.openai.azure.com/pre/openai/x?api-version=2024-10-21");
  EXPECT_EQ(Url("https://g", Target("gemini", "m"), "/m:stream?alt=sse", {{"alt", "sse"}}),
            "https://g/m:stream?alt=sse");
}

// Before: the URL was scheme://host:port + path by concatenation, so a path
// starting with '@' turned the configured host into user info, and a host
// with a scheme chose the scheme (file://, gopher://).
TEST(TargetUrlTest, NothingInAPathLeavesTheConfiguredHost) {
  TargetInfo t = Target("openai", "m");
  t.host = "provider.example";
  t.port = 8443;
  for (std::string_view path :
       {"@127.0.0.2:9199/steal", "/@127.0.0.2:9199/steal", "//127.0.0.2:9199/steal",
        "/../../../etc/passwd", "/%2e%2e/%2E%2E/x", "/a/..%2f..%2fb", "\\127.0.0.2\\x",
        "/a#@127.0.0.2/", "/a b\r\nHost: evil", "/a?x=1#@evil:1/", "/caf\xc3\xa9"}) {
    std::string url = Url("https://api.openai.com", t, path);
    ASSERT_EQ(url.rfind("https://provider.example:8443/", 0), 0u) << path << " -> " << url;
    // libcurl, reading the URL back, finds the configured host and nothing else.
    CURLU* u = curl_url();
    ASSERT_EQ(curl_url_set(u, CURLUPART_URL, url.c_str(), 0), CURLUE_OK) << url;
    char* host = nullptr;
    char* user = nullptr;
    char* fragment = nullptr;
    ASSERT_EQ(curl_url_get(u, CURLUPART_HOST, &host, 0), CURLUE_OK);
    EXPECT_STREQ(host, "provider.example") << path;
    EXPECT_NE(curl_url_get(u, CURLUPART_USER, &user, 0), CURLUE_OK) << path << " -> " << url;
    EXPECT_NE(curl_url_get(u, CURLUPART_FRAGMENT, &fragment, 0), CURLUE_OK) << url;
    EXPECT_EQ(url.find_first_of(" \r\n#\\"), std::string::npos) << url;
    curl_free(host);
    curl_free(user);
    curl_free(fragment);
    curl_url_cleanup(u);
  }
  EXPECT_EQ(Url("https://x", t, "/%2e%2e/a%zz"), "https://provider.example:8443/%2E%2E/a%25zz");
}

TEST(TargetUrlTest, HostsThatAreNotHostsAreConfigurationErrors) {
  TargetInfo t = Target("openai", "m");
  for (std::string_view host : {"file://localhost", "gopher://x", "dict://x:11211", "http://a@b",
                                "a@b", "http://fake:9000/prefix", "h/p", "h?x"}) {
    t.host = std::string(host);
    auto url = ProviderUrl("https://api.openai.com", t, "/v1/chat/completions");
    ASSERT_FALSE(url.ok()) << host << " -> " << url.value();
    EXPECT_EQ(url.error().type, "configuration_error");
    EXPECT_EQ(url.error().http_status, 502);
  }
  t.host = "x";
  t.protocol = "file";
  EXPECT_FALSE(ProviderUrl("https://api.openai.com", t, "/").ok());
  // Default bases made from credentials are checked as well.
  TargetInfo d = Target("azure", "m");
  for (std::string_view base :
       {"file:///etc/passwd", "https://u:p@r.example", "https://r.example#x",
        "https://r.example?x=1", "https://bedrock-runtime.evil.example/.amazonaws.com#"}) {
    EXPECT_FALSE(ProviderUrl(base, d, "/x").ok()) << base;
  }
  d.aws_region = "x.evil.example#";
  d.provider = "bedrock";
  ChatRequest req = Decode(ClientFormat::kOpenAiChat, kSeedMixedBody);
  auto spec = ProviderCodecFor(d)->BuildRequest(req, d);
  ASSERT_FALSE(spec.ok());
  EXPECT_EQ(spec.error().type, "configuration_error");
}

TEST(TargetUrlTest, TargetPathReplacesTheDefaultPath) {
  TargetInfo t = Target("openai", "gpt-4o-mini");
  t.host = "localhost";
  t.port = 11434;
  t.protocol = "http";
  t.path = "/v1/chat/completions";
  ChatRequest req = Decode(ClientFormat::kOpenAiChat, kSeedMixedBody);
  EXPECT_EQ(Build(req, t).url, "http://localhost:11434/v1/chat/completions");
  t.path = "custom/{model}/chat";
  EXPECT_EQ(Build(req, t).url, "http://localhost:11434/custom/gpt-4o-mini/chat");
}

TEST(TargetUrlTest, PathEncodeKeepsOnlyUnreserved) {
  EXPECT_EQ(PathEncode("eu.anthropic.claude-3-5-sonnet-20240620-v1:0"),
            "eu.anthropic.claude-3-5-sonnet-20240620-v1%3A0");
  EXPECT_EQ(PathEncode("a/b c~_"), "a%2Fb%20c~_");
  TargetInfo t = Target("azure", "m");
  EXPECT_EQ(Url("https://x", t, "/p", {{"api-version", "1"}}), "https://x/p?api-version=1");
  EXPECT_EQ(Url("https://x", t, "/p?a=b", {{"api-version", "1"}}), "https://x/p?a=b&api-version=1");
  EXPECT_EQ(Url("https://x", t, "/p?api-version=2", {{"api-version", "1"}}),
            "https://x/p?api-version=2");
  EXPECT_EQ(Url("https://x", t, "/p", {{"api-version", "1&x=#y"}}),
            "https://x/p?api-version=1%26x%3D%23y");
}

TEST(TargetHeadersTest, TargetHeadersOverrideDefaultsCaseInsensitively) {
  TargetInfo t = Target("anthropic", "claude");
  t.headers = {{"Anthropic-Version", "2024-01-01"}, {"x-extra", "1"}};
  ChatRequest req = Decode(ClientFormat::kOpenAiChat, kSeedMixedBody);
  HttpRequestSpec http = Build(req, t);
  int versions = 0;
  for (const auto& [n, v] : http.headers) {
    if (n == "anthropic-version" || n == "Anthropic-Version") {
      ++versions;
      EXPECT_EQ(v, "2024-01-01");
    }
  }
  EXPECT_EQ(versions, 1);
  EXPECT_EQ(Header(http, "x-extra"), "1");
}

// ---- errors -------------------------------------------------------------------

TEST(ProviderErrorTest, RetryableByStatus) {
  const ProviderCodec* openai = FindProviderCodec("openai");
  ResponseContext ctx{"m", 1, "r"};
  struct Case {
    int status;
    bool retryable;
  } cases[] = {{400, false}, {401, false}, {403, false}, {404, false}, {408, false},
               {429, true},  {500, true},  {502, true},  {503, true},  {529, true}};
  for (const Case& c : cases) {
    Result<ChatResponse> r = openai->ParseResponse(
        c.status, R"({"error":{"message":"boom","type":"x","code":null}})", ctx);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().http_status, c.status);
    EXPECT_EQ(r.error().retryable, c.retryable) << c.status;
    EXPECT_EQ(r.error().message, "boom");
  }
}

TEST(ProviderErrorTest, OpenAiQuotaExhaustedIsNotRetryable) {
  Result<ChatResponse> r = FindProviderCodec("openai")->ParseResponse(
      429, R"({"error":{"message":"You exceeded your current quota","type":"insufficient_quota",
                "code":"insufficient_quota"}})",
      ResponseContext{});
  ASSERT_FALSE(r.ok());
  EXPECT_FALSE(r.error().retryable);
}

TEST(ProviderErrorTest, NonJsonErrorBodyIsKeptTruncated) {
  std::string html = "<html>" + std::string(2000, 'x') + "</html>";
  Result<ChatResponse> r = FindProviderCodec("anthropic")->ParseResponse(502, html, {});
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.error().retryable);
  EXPECT_LT(r.error().message.size(), 600u);
}

// Issue 11: a provider's answer of 200,000 nested arrays crashed tg-adapter.
TEST(HostileJsonTest, DeeplyNestedProviderAnswersAreProtocolErrors) {
  const std::string deep = std::string(200000, '[') + std::string(200000, ']');
  for (const char* provider : {"openai", "anthropic", "gemini", "bedrock"}) {
    Result<ChatResponse> r = FindProviderCodec(provider)->ParseResponse(200, deep, {});
    ASSERT_FALSE(r.ok()) << provider;
    EXPECT_EQ(r.error().kind, ErrorKind::kProtocol) << provider;
    EXPECT_EQ(r.error().http_status, 502) << provider;
    EXPECT_NE(r.error().message.find("nested deeper than 128 levels"), std::string::npos)
        << provider << ": " << r.error().message;
    // An error body nested as deep is reported, not parsed.
    Result<ChatResponse> e = FindProviderCodec(provider)->ParseResponse(500, deep, {});
    ASSERT_FALSE(e.ok()) << provider;
    EXPECT_EQ(e.error().http_status, 500) << provider;
  }
  auto decoder = FindProviderCodec("openai")->NewStreamDecoder({});
  StreamEvents events;
  decoder->Feed("data: " + deep + "\n\n", &events);
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back().type, StreamEvent::Type::kError);
  EXPECT_NE(events.back().error.message.find("nested deeper"), std::string::npos);
}

TEST(HostileJsonTest, DeeplyNestedClientBodiesAre400) {
  const std::string deep =
      "{\"model\":\"m\",\"x\":" + std::string(200000, '[') + std::string(200000, ']') + "}";
  for (ClientFormat f : {ClientFormat::kOpenAiChat, ClientFormat::kAnthropicMessages,
                         ClientFormat::kOpenAiResponses}) {
    Result<ChatRequest> r = ClientCodecFor(f).DecodeRequest(deep);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().http_status, 400);
    EXPECT_NE(r.error().message.find("nested deeper than 128 levels"), std::string::npos)
        << r.error().message;
  }
  // Tool-call arguments and other provider JSON are parsed bounded too.
  json::Document doc;
  EXPECT_FALSE(json::ParseStrict(std::string(1000, '[') + std::string(1000, ']'), &doc));
  EXPECT_TRUE(json::ParseStrict(std::string(128, '[') + std::string(128, ']'), &doc));
}

TEST(ProviderErrorTest, ErrorMessagesAreUtf8AndCutAtACharacter) {
  std::string body = "\xff\xfe" + std::string(509, 'x') + "\xc3\xa9tail";
  Result<ChatResponse> r = FindProviderCodec("openai")->ParseResponse(500, body, {});
  ASSERT_FALSE(r.ok());
  const std::string& m = r.error().message;
  EXPECT_EQ(m.find("\xc3"), std::string::npos) << "a character cut in half";
  EXPECT_EQ(m.rfind("\xef\xbf\xbd", 0), 0u) << "invalid bytes become U+FFFD";
}

// Issue 12: a prompt over the model's context, in each provider's words, is
// recognised (the edge then fails over to another model only).
TEST(ProviderErrorTest, ContextLengthErrorsAreRecognisedInEveryProvidersWords) {
  Result<ChatResponse> r = FindProviderCodec("openai")->ParseResponse(
      400,
      R"({"error":{"message":"This model's maximum context length is 8192 tokens.",)"
      R"("type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}})",
      {});
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.error().context_length);
  EXPECT_FALSE(r.error().retryable);
  EXPECT_TRUE(IsContextLengthError(400, "invalid_request_error",
                                   "prompt is too long: 210000 tokens > 200000 maximum"));
  EXPECT_TRUE(IsContextLengthError(
      400, "INVALID_ARGUMENT",
      "The input token count (1200000) exceeds the maximum number of tokens allowed (1048576)."));
  EXPECT_TRUE(
      IsContextLengthError(400, "ValidationException", "Input is too long for requested model."));
  EXPECT_TRUE(IsContextLengthError(413, "", "Request exceeds the model's context window"));
  EXPECT_FALSE(IsContextLengthError(400, "invalid_request_error", "messages: field required"));
  EXPECT_FALSE(IsContextLengthError(429, "context_length_exceeded", "")) << "only 400 and 413";
  Result<ChatResponse> other = FindProviderCodec("openai")->ParseResponse(
      400, R"({"error":{"message":"bad","type":"invalid_request_error"}})", {});
  ASSERT_FALSE(other.ok());
  EXPECT_FALSE(other.error().context_length);
}

TEST(ProviderErrorTest, UnparseableSuccessIsAProtocolError) {
  Result<ChatResponse> r = FindProviderCodec("openai")->ParseResponse(200, "not json", {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::kProtocol);
  EXPECT_EQ(r.error().http_status, 502);
}

TEST(ClientErrorBodyTest, EachFormatHasItsShape) {
  AdapterError e{ErrorKind::kHttp, 529, true, "overloaded_error", "Overloaded"};
  json::Document openai = ParseJson(ClientCodecFor(ClientFormat::kOpenAiChat).EncodeError(e));
  EXPECT_EQ(json::GetString(openai["error"], "message"), "Overloaded");
  EXPECT_EQ(json::GetString(openai["error"], "type"), "server_error");
  json::Document anthropic =
      ParseJson(ClientCodecFor(ClientFormat::kAnthropicMessages).EncodeError(e));
  EXPECT_EQ(json::GetString(anthropic, "type"), "error");
  EXPECT_EQ(json::GetString(anthropic["error"], "type"), "overloaded_error");
  EXPECT_EQ(json::GetString(anthropic["error"], "message"), "Overloaded");
}

// ---- streams ------------------------------------------------------------------

StreamEvents DecodeAll(std::string_view provider, std::string_view raw, std::string_view api = "") {
  auto decoder = FindProviderCodec(provider, api)->NewStreamDecoder({"m", 1, "seed"});
  StreamEvents events;
  decoder->Feed(raw, &events);
  decoder->Finish(&events);
  return events;
}

std::string Encode(ClientFormat f, const StreamEvents& events, bool include_usage = false) {
  StreamEncoderOptions o;
  o.include_usage = include_usage;
  o.id = "id";
  o.model = "m";
  auto enc = ClientCodecFor(f).NewStreamEncoder(o);
  std::string out;
  for (const StreamEvent& ev : events) enc->Encode(ev, &out);
  return out;
}

TEST(StreamTerminationTest, TruncatedStreamsEndInAnErrorNeverACleanEnd) {
  struct Case {
    const char* provider;
    const char* api;
    const char* raw;
  } cases[] = {
      {"openai", "",
       "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"}}]}\n\n"},
      {"anthropic", "",
       "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\"}}\n\n"},
  };
  for (const Case& c : cases) {
    StreamEvents events = DecodeAll(c.provider, c.raw, c.api);
    ASSERT_FALSE(events.empty());
    EXPECT_EQ(events.back().type, StreamEvent::Type::kError) << c.provider;
    EXPECT_EQ(events.back().error.kind, ErrorKind::kStreamBroken);
    EXPECT_TRUE(events.back().error.retryable);
    std::string chat = Encode(ClientFormat::kOpenAiChat, events);
    EXPECT_EQ(chat.find("data: [DONE]\n"), std::string::npos);
    EXPECT_NE(chat.find("data: {\"error\""), std::string::npos);
    std::string anthropic = Encode(ClientFormat::kAnthropicMessages, events);
    EXPECT_EQ(anthropic.find("event: message_stop"), std::string::npos);
    EXPECT_NE(anthropic.find("event: error\n"), std::string::npos);
  }
}

TEST(StreamTerminationTest, OpenAiClientGetsUsageChunkOnlyWhenAsked) {
  StreamEvents events = DecodeAll(
      "anthropic",
      "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\","
      "\"usage\":{\"input_tokens\":3,\"output_tokens\":1}}}\n\n"
      "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":"
      "\"end_turn\"},\"usage\":{\"output_tokens\":5}}\n\n"
      "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n");
  std::string with = Encode(ClientFormat::kOpenAiChat, events, true);
  EXPECT_NE(with.find("\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":5"),
            std::string::npos)
      << with;
  EXPECT_TRUE(with.ends_with("data: [DONE]\n\n"));
  std::string without = Encode(ClientFormat::kOpenAiChat, events, false);
  EXPECT_EQ(without.find("\"usage\""), std::string::npos);
  EXPECT_TRUE(without.ends_with("data: [DONE]\n\n"));
}

TEST(StreamTerminationTest, UsageChunkIsSentEvenWhenTheProviderGaveNone) {
  StreamEvents events = DecodeAll("openai",
                                  "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{"
                                  "\"content\":\"Hi\"},\"finish_reason\":\"stop\"}]}\n\n"
                                  "data: [DONE]\n\n");
  std::string out = Encode(ClientFormat::kOpenAiChat, events, true);
  EXPECT_NE(out.find("\"choices\":[],\"usage\":{\"prompt_tokens\":0"), std::string::npos) << out;
}

TEST(StreamTerminationTest, EventsAfterTheEndAreIgnored) {
  auto decoder = FindProviderCodec("openai")->NewStreamDecoder({});
  StreamEvents events;
  decoder->Feed("data: [DONE]\n\ndata: {\"choices\":[{\"delta\":{\"content\":\"late\"}}]}\n\n",
                &events);
  decoder->Finish(&events);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].type, StreamEvent::Type::kEnd);
}

// Issue 12: a stream whose body ends cleanly after every choice finished is
// complete without `data: [DONE]` (usage included); one that ends mid-answer
// is still broken.
TEST(StreamTerminationTest, AFinishedOpenAiStreamWithoutDoneIsComplete) {
  const std::string finished =
      "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"}}]}\n\n"
      "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n"
      "data: "
      "{\"id\":\"c\",\"choices\":[],\"usage\":{\"prompt_tokens\":4,\"completion_tokens\":2}}\n\n";
  for (const char* api : {"", "azure"}) {
    StreamEvents events =
        DecodeAll(std::string_view(api).empty() ? "openai" : "azure", finished, "");
    ASSERT_FALSE(events.empty()) << api;
    EXPECT_EQ(events.back().type, StreamEvent::Type::kEnd) << api;
    bool usage = false;
    for (const auto& ev : events) {
      if (ev.type == StreamEvent::Type::kUsage) usage = ev.usage.completion_tokens == 2;
    }
    EXPECT_TRUE(usage) << "the provider's usage is kept";
    EXPECT_TRUE(Encode(ClientFormat::kOpenAiChat, events).ends_with("data: [DONE]\n\n"));
  }
  // Two choices, one never finished: broken.
  StreamEvents half = DecodeAll(
      "openai",
      "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\"}},"
      "{\"index\":1,\"delta\":{\"content\":\"b\"}}]}\n\n"
      "data: "
      "{\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n");
  ASSERT_FALSE(half.empty());
  EXPECT_EQ(half.back().type, StreamEvent::Type::kError);
  EXPECT_EQ(half.back().error.kind, ErrorKind::kStreamBroken);
}

std::string Chunk(const std::string& text) {
  return "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"" + text +
         "\"}}]}\n\n";
}
constexpr const char* kGarbage = "data: {\"choices\": [{\"delta\": \n\n";
constexpr const char* kStop =
    "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n"
    "data: [DONE]\n\n";

std::string Text(const StreamEvents& events) {
  std::string text;
  for (const auto& ev : events) {
    if (ev.type == StreamEvent::Type::kDelta) text += ev.content;
  }
  return text;
}

TEST(StreamMalformedEventTest, OneMalformedEventIsSkippedAndCounted) {
  for (const char* provider : {"openai", "anthropic", "gemini"}) {
    auto decoder = FindProviderCodec(provider)->NewStreamDecoder({"m", 1, "seed"});
    StreamEvents events;
    if (std::string_view(provider) == "openai") {
      decoder->Feed(Chunk("Hel") + kGarbage + Chunk("lo") + kStop, &events);
    } else {
      decoder->Feed(kGarbage, &events);  // even first
    }
    EXPECT_EQ(decoder->skipped_events(), 1) << provider;
    for (const auto& ev : events) {
      EXPECT_NE(ev.type, StreamEvent::Type::kError)
          << provider << ": a lone bad event is not a failure: " << ev.error.message;
    }
    if (std::string_view(provider) == "openai") {
      EXPECT_EQ(Text(events), "Hello");
      ASSERT_FALSE(events.empty());
      EXPECT_EQ(events.back().type, StreamEvent::Type::kEnd);
    }
  }
}

TEST(StreamMalformedEventTest, AStreamOfMostlyGarbageFails) {
  auto decoder = FindProviderCodec("openai")->NewStreamDecoder({});
  StreamEvents events;
  decoder->Feed(Chunk("a") + kGarbage + kGarbage, &events);
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back().type, StreamEvent::Type::kError);
  EXPECT_EQ(events.back().error.kind, ErrorKind::kProtocol);
  // Good events between them keep a few tolerated, but never more than three.
  auto many = FindProviderCodec("openai")->NewStreamDecoder({});
  StreamEvents more;
  std::string raw;
  for (int i = 0; i < 10; ++i) raw += Chunk("x") + Chunk("y") + kGarbage;
  many->Feed(raw, &more);
  ASSERT_FALSE(more.empty());
  EXPECT_EQ(more.back().type, StreamEvent::Type::kError);
  EXPECT_EQ(many->skipped_events(), 4);
}

// ---- Bedrock model path ---------------------------------------------------------

TEST(BedrockPathTest, ModelIdIsEncodedOnceInTheUrlAndTwiceForSigV4) {
  ChatRequest req = Decode(ClientFormat::kOpenAiChat, kSeedStreamBody);
  TargetInfo t = Target("bedrock", "eu.anthropic.claude-3-5-sonnet-20240620-v1:0", true);
  t.aws_region = "eu-west-1";
  HttpRequestSpec http = Build(req, t);
  EXPECT_EQ(http.url,
            "https://bedrock-runtime.eu-west-1.amazonaws.com/model/"
            "eu.anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse-stream");
  EXPECT_EQ(http.auth, AuthScheme::kAwsSigV4);
  EXPECT_EQ(http.aws_service, "bedrock");
  EXPECT_EQ(http.aws_region, "eu-west-1");
  EXPECT_EQ(http.framing, BodyFraming::kAwsEventStream);
  // SigV4 (non-S3) signs the already-encoded path encoded once more, per
  // segment: what the signer derives from this URL.
  std::string path = http.url.substr(http.url.find("/model/"));
  std::string canonical;
  for (size_t start = 1; start <= path.size();) {
    size_t slash = std::min(path.find('/', start), path.size());
    canonical += "/" + PathEncode(path.substr(start, slash - start));
    start = slash + 1;
  }
  EXPECT_EQ(canonical, "/model/eu.anthropic.claude-3-5-sonnet-20240620-v1%253A0/converse-stream");
  json::Document body = ParseJson(http.body);
  EXPECT_EQ(json::GetString(body["system"][0], "text"), "You are an assistant");
  EXPECT_EQ(json::GetInt(body["inferenceConfig"], "maxTokens"), 1020);
  EXPECT_EQ(json::Find(body, "model"), nullptr);
}

TEST(BedrockPathTest, RegionDefaultsAndSlashesAreEncoded) {
  ChatRequest req = Decode(ClientFormat::kOpenAiChat, kSeedMixedBody);
  HttpRequestSpec http =
      Build(req, Target("bedrock", "arn:aws:bedrock:us-east-1:1:inference-profile/x"));
  EXPECT_EQ(http.url,
            "https://bedrock-runtime.us-east-1.amazonaws.com/model/"
            "arn%3Aaws%3Abedrock%3Aus-east-1%3A1%3Ainference-profile%2Fx/converse");
  EXPECT_EQ(http.aws_region, "us-east-1");
}

TEST(BedrockStreamTest, SseBytesAreAProtocolErrorAndExceptionsMapToStatuses) {
  auto decoder = FindProviderCodec("bedrock")->NewStreamDecoder({});
  StreamEvents events;
  decoder->Feed("data: {}\n\n", &events);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].error.kind, ErrorKind::kProtocol);
  struct Case {
    const char* type;
    int status;
    bool retryable;
  } cases[] = {{"throttlingException", 429, true},         {"validationException", 400, false},
               {"modelStreamErrorException", 424, false},  {"internalServerException", 500, true},
               {"serviceUnavailableException", 503, true}, {"InternalFailure", 500, true}};
  for (const Case& c : cases) {
    auto d = FindProviderCodec("bedrock")->NewStreamDecoder({});
    StreamEvents ev;
    d->FeedEvent("messageStart", R"({"role":"assistant"})", &ev);
    d->FeedEvent(c.type, R"({"message":"m"})", &ev);
    ASSERT_FALSE(ev.empty());
    EXPECT_EQ(ev.back().type, StreamEvent::Type::kError) << c.type;
    EXPECT_EQ(ev.back().error.http_status, c.status) << c.type;
    EXPECT_EQ(ev.back().error.retryable, c.retryable) << c.type;
  }
}

// ---- Anthropic specifics ----------------------------------------------------------

TEST(AnthropicTest, ConsecutiveToolMessagesBecomeOneUserMessage) {
  ChatRequest req = Decode(ClientFormat::kOpenAiChat, R"({"model":"m","messages":[
    {"role":"user","content":"weather?"},
    {"role":"assistant","content":null,"tool_calls":[
      {"id":"a","type":"function","function":{"name":"w","arguments":"{\"c\":1}"}},
      {"id":"b","type":"function","function":{"name":"w","arguments":""}}]},
    {"role":"tool","tool_call_id":"a","content":"1"},
    {"role":"tool","tool_call_id":"b","content":"2"}]})");
  json::Document body = ParseJson(Build(req, Target("anthropic", "claude")).body);
  const Value& messages = body["messages"];
  ASSERT_EQ(messages.Size(), 3u);
  EXPECT_EQ(json::GetString(messages[2], "role"), "user");
  ASSERT_EQ(messages[2]["content"].Size(), 2u);
  EXPECT_EQ(json::GetString(messages[2]["content"][0], "type"), "tool_result");
  EXPECT_EQ(json::GetString(messages[2]["content"][1], "tool_use_id"), "b");
  // Empty arguments are an empty object, not a string.
  EXPECT_TRUE(messages[1]["content"][1]["input"].IsObject());
  EXPECT_EQ(messages[1]["content"].Size(), 2u) << "null content adds no empty text block";
}

TEST(AnthropicTest, ClientAssistantTurnWithOnlyToolUseKeepsItsCalls) {
  ChatRequest req = Decode(ClientFormat::kAnthropicMessages, R"({"model":"c","max_tokens":9,
    "messages":[{"role":"user","content":"x"},
      {"role":"assistant","content":[{"type":"tool_use","id":"t1","name":"f","input":{"a":1}}]},
      {"role":"user","content":[{"type":"tool_result","tool_use_id":"t1","content":"ok"}]}]})");
  const Value& messages = req.doc["messages"];
  ASSERT_EQ(messages.Size(), 3u);
  EXPECT_EQ(json::GetString(messages[1], "role"), "assistant");
  EXPECT_TRUE(messages[1]["content"].IsNull());
  EXPECT_EQ(json::GetString(messages[1]["tool_calls"][0]["function"], "arguments"), R"({"a":1})");
  EXPECT_EQ(json::GetString(messages[2], "role"), "tool");
  EXPECT_EQ(json::GetString(messages[2], "content"), "ok");
}

TEST(AnthropicTest, ToolChoiceAndStopMapping) {
  struct Case {
    const char* choice;
    const char* type;
  } cases[] = {{R"("auto")", "auto"},
               {R"("required")", "any"},
               {R"("none")", "none"},
               {R"({"type":"function","function":{"name":"w"}})", "tool"}};
  for (const Case& c : cases) {
    ChatRequest req = Decode(
        ClientFormat::kOpenAiChat,
        std::string(R"({"model":"m","stop":"STOP","messages":[{"role":"user","content":"x"}],)") +
            R"("tools":[{"type":"function","function":{"name":"w"}}],"tool_choice":)" + c.choice +
            "}");
    json::Document body = ParseJson(Build(req, Target("anthropic", "claude")).body);
    EXPECT_EQ(json::GetString(body["tool_choice"], "type"), c.type) << c.choice;
    EXPECT_EQ(json::GetString(body["stop_sequences"][0], ""), "");
    EXPECT_STREQ(body["stop_sequences"][0].GetString(), "STOP");
    EXPECT_STREQ(json::GetString(body["tools"][0]["input_schema"], "type").data(), "object");
  }
}

TEST(AnthropicTest, StreamToolCallIndexesCountToolsNotBlocks) {
  StreamEvents events = DecodeAll(
      "anthropic",
      "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\"}}\n\n"
      "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,"
      "\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n"
      "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":1,"
      "\"content_block\":{\"type\":\"tool_use\",\"id\":\"t1\",\"name\":\"a\",\"input\":{}}}\n\n"
      "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":2,"
      "\"content_block\":{\"type\":\"tool_use\",\"id\":\"t2\",\"name\":\"b\",\"input\":{}}}\n\n"
      "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":2,"
      "\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{}\"}}\n\n");
  std::vector<int> indexes;
  for (const StreamEvent& ev : events) {
    for (const ToolCallDelta& tc : ev.tool_calls) indexes.push_back(tc.index);
  }
  EXPECT_EQ(indexes, (std::vector<int>{0, 1, 1}));
}

// ---- Gemini schema ------------------------------------------------------------------

TEST(GeminiSchemaTest, StripsRejectedKeywordsAndInlinesRefs) {
  json::Document schema = ParseJson(R"({
    "$schema": "http://json-schema.org/draft-07/schema#",
    "type": "object", "additionalProperties": false, "title": "Args",
    "$defs": {"Unit": {"type": "string", "enum": ["c", "f"], "description": "unit"}},
    "properties": {
      "unit": {"$ref": "#/$defs/Unit"},
      "when": {"type": "string", "format": "date-time", "default": "now"},
      "site": {"type": "string", "format": "uri", "examples": ["x"]},
      "kind": {"const": "fixed"},
      "tags": {"type": "array", "items": {"type": ["string", "null"], "minLength": 1}},
      "either": {"oneOf": [{"type": "integer"}, {"type": "string", "pattern": "^a"}]},
      "self": {"$ref": "#/definitions/Missing"}
    },
    "required": ["unit", "ghost"]})");
  json::Document out;
  out.SetObject();
  Value cleaned = CleanGeminiSchema(schema, schema, out.GetAllocator());
  json::Document want = ParseJson(R"({
    "type": "object", "title": "Args",
    "properties": {
      "unit": {"type": "string", "enum": ["c", "f"], "description": "unit"},
      "when": {"type": "string", "format": "date-time"},
      "site": {"type": "string"},
      "kind": {"enum": ["fixed"], "type": "string"},
      "tags": {"type": "array", "items": {"type": "string", "nullable": true, "minLength": 1}},
      "either": {"anyOf": [{"type": "integer"}, {"type": "string", "pattern": "^a"}]},
      "self": {}
    },
    "required": ["unit"]})");
  EXPECT_TRUE(cleaned == want) << json::Write(cleaned);
}

TEST(GeminiSchemaTest, RecursiveRefsAreCutOff) {
  json::Document schema = ParseJson(R"({"type":"object","properties":{"node":{"$ref":"#"}},
    "$defs":{"N":{"type":"object","properties":{"next":{"$ref":"#/$defs/N"}}}}})");
  json::Document loop = ParseJson(R"({"$ref":"#/$defs/N","$defs":{"N":{"type":"object",
    "properties":{"next":{"$ref":"#/$defs/N"}}}}})");
  json::Document out;
  out.SetObject();
  Value cleaned = CleanGeminiSchema(loop, loop, out.GetAllocator());
  EXPECT_EQ(json::GetString(cleaned, "type"), "object");  // terminated, no stack overflow
  (void)schema;
}

TEST(GeminiTest, ToolResultsNameTheFunctionAndIdsAreMinted) {
  ChatRequest req = Decode(ClientFormat::kOpenAiChat, R"({"model":"m","messages":[
    {"role":"user","content":"x"},
    {"role":"assistant","tool_calls":[{"id":"call_9","type":"function",
      "function":{"name":"lookup","arguments":"{\"q\":1}"}}]},
    {"role":"tool","tool_call_id":"call_9","content":"[1,2]"}],
    "tools":[{"type":"function","function":{"name":"lookup","parameters":{"type":"object"}}}]})");
  json::Document body = ParseJson(Build(req, Target("gemini", "gemini-2.0-flash")).body);
  const Value& fr = body["contents"][2]["parts"][0]["functionResponse"];
  EXPECT_EQ(json::GetString(fr, "name"), "lookup");
  EXPECT_EQ(json::Write(fr["response"]), R"({"content":"[1,2]"})");
  EXPECT_EQ(json::Find(body["tools"][0]["functionDeclarations"][0], "parameters"), nullptr)
      << "an object schema without properties is a Gemini 400";
  Result<ChatResponse> a = FindProviderCodec("gemini")->ParseResponse(
      200,
      R"({"candidates":[{"content":{"parts":[{"functionCall":{"name":"lookup","args":{}}}]},
          "finishReason":"STOP"}]})",
      {"m", 1, "req-a"});
  Result<ChatResponse> b = FindProviderCodec("gemini")->ParseResponse(
      200,
      R"({"candidates":[{"content":{"parts":[{"functionCall":{"name":"lookup","args":{}}}]},
          "finishReason":"STOP"}]})",
      {"m", 1, "req-b"});
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_EQ(a.value().draft.choices.size(), 1u);
  ASSERT_EQ(a.value().draft.choices[0].tool_calls.size(), 1u);
  ASSERT_EQ(b.value().draft.choices[0].tool_calls.size(), 1u);
  const std::string& id_a = a.value().draft.choices[0].tool_calls[0].id;
  const std::string& id_b = b.value().draft.choices[0].tool_calls[0].id;
  EXPECT_TRUE(id_a.starts_with("call_"));
  EXPECT_NE(id_a, id_b);
  EXPECT_EQ(a.value().draft.choices[0].finish_reason, "tool_calls");
}

// ---- stream ↔ whole ------------------------------------------------------------------

TEST(StreamAggregatorTest, FoldsAStreamIntoTheSameAnswerAsTheWholeResponse) {
  StreamEvents events = DecodeAll(
      "anthropic",
      "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\","
      "\"model\":\"claude\",\"usage\":{\"input_tokens\":5,\"output_tokens\":1}}}\n\n"
      "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,"
      "\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi \"}}\n\n"
      "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,"
      "\"delta\":{\"type\":\"text_delta\",\"text\":\"there\"}}\n\n"
      "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":1,"
      "\"content_block\":{\"type\":\"tool_use\",\"id\":\"t1\",\"name\":\"f\",\"input\":{}}}\n\n"
      "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,"
      "\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"a\\\":\"}}\n\n"
      "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,"
      "\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"1}\"}}\n\n"
      "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":"
      "\"tool_use\"},\"usage\":{\"output_tokens\":7}}\n\n"
      "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n");
  StreamAggregator agg({"m", 1, "seed"});
  for (const StreamEvent& ev : events) agg.Add(ev);
  Result<ChatResponse> folded = agg.Take();
  ASSERT_TRUE(folded.ok());
  Result<ChatResponse> whole =
      FindProviderCodec("anthropic")
          ->ParseResponse(200,
                          R"({"id":"msg_1","type":"message","role":"assistant","model":"claude",
          "content":[{"type":"text","text":"Hi there"},
                     {"type":"tool_use","id":"t1","name":"f","input":{"a":1}}],
          "stop_reason":"tool_use","usage":{"input_tokens":5,"output_tokens":7}})",
                          {"m", 1, "seed"});
  ASSERT_TRUE(whole.ok());
  EXPECT_EQ(WriteChatCompletion(folded.value()), WriteChatCompletion(whole.value()));
}

TEST(StreamAggregatorTest, ACutStreamIsAnError) {
  StreamAggregator agg({});
  StreamEvent delta;
  delta.content = "x";
  agg.Add(delta);
  Result<ChatResponse> r = agg.Take();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::kStreamBroken);
}

TEST(StreamAggregatorTest, WholeAnswerReplaysAsAStreamForEveryClient) {
  Result<ChatResponse> whole = FindProviderCodec("openai")->ParseResponse(
      200,
      R"({"id":"c1","object":"chat.completion","created":5,"model":"g","choices":[{"index":0,
          "message":{"role":"assistant","content":"Hey","tool_calls":[{"id":"k","type":"function",
          "function":{"name":"f","arguments":"{}"}}]},"finish_reason":"tool_calls"}],
          "usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}})",
      {});
  ASSERT_TRUE(whole.ok());
  StreamEvents events = ResponseToStreamEvents(whole.value());
  std::string chat = Encode(ClientFormat::kOpenAiChat, events, true);
  EXPECT_NE(chat.find("\"content\":\"Hey\""), std::string::npos);
  EXPECT_NE(chat.find("\"finish_reason\":\"tool_calls\""), std::string::npos);
  EXPECT_TRUE(chat.ends_with("data: [DONE]\n\n"));
  std::string anthropic = Encode(ClientFormat::kAnthropicMessages, events);
  EXPECT_NE(anthropic.find("\"stop_reason\":\"tool_use\""), std::string::npos);
  EXPECT_TRUE(anthropic.ends_with("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"));
  std::string responses = Encode(ClientFormat::kOpenAiResponses, events);
  EXPECT_NE(responses.find("event: response.completed\n"), std::string::npos);
}

// ---- every client format × every provider -------------------------------------------

struct ProviderFixture {
  const char* provider;
  const char* api;
  const char* response;  // a 200 body
  const char* stream;    // SSE, or for bedrock "type|payload" lines
};

const ProviderFixture kProviders[] = {
    {"openai", "",
     R"({"id":"c","object":"chat.completion","created":1,"model":"g","choices":[{"index":0,
        "message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}],
        "usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}})",
     "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"ok\"}}]}\n\n"
     "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n"
     "data: [DONE]\n\n"},
    {"openai", "responses",
     R"({"id":"resp_1","object":"response","created_at":1,"status":"completed","model":"g",
        "output":[{"type":"message","role":"assistant","content":[{"type":"output_text",
        "text":"ok"}]}],"usage":{"input_tokens":1,"output_tokens":1,"total_tokens":2}})",
     "event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\","
     "\"output_index\":0,\"delta\":\"ok\"}\n\n"
     "event: response.completed\ndata: {\"type\":\"response.completed\",\"response\":"
     "{\"status\":\"completed\",\"usage\":{\"input_tokens\":1,\"output_tokens\":1}}}\n\n"},
    {"anthropic", "",
     R"({"id":"m","type":"message","role":"assistant","model":"c","content":[{"type":"text",
        "text":"ok"}],"stop_reason":"end_turn","usage":{"input_tokens":1,"output_tokens":1}})",
     "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\"}}\n\n"
     "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,"
     "\"delta\":{\"type\":\"text_delta\",\"text\":\"ok\"}}\n\n"
     "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"},
    {"gemini", "",
     R"({"candidates":[{"content":{"parts":[{"text":"ok"}],"role":"model"},
        "finishReason":"STOP"}],"usageMetadata":{"promptTokenCount":1,"totalTokenCount":1}})",
     "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"ok\"}]},"
     "\"finishReason\":\"STOP\"}]}\r\n\r\n"},
    {"bedrock", "",
     R"({"output":{"message":{"role":"assistant","content":[{"text":"ok"}]}},
        "stopReason":"end_turn","usage":{"inputTokens":1,"outputTokens":1,"totalTokens":2}})",
     "messageStart|{\"role\":\"assistant\"}\n"
     "contentBlockDelta|{\"contentBlockIndex\":0,\"delta\":{\"text\":\"ok\"}}\n"
     "messageStop|{\"stopReason\":\"end_turn\"}\n"
     "metadata|{\"usage\":{\"inputTokens\":1,\"outputTokens\":1}}\n"},
    {"azure", "",
     R"({"id":"c","object":"chat.completion","created":1,"model":"g","choices":[{"index":0,
        "message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}]})",
     "data: {\"id\":\"\",\"choices\":[],\"prompt_filter_results\":[]}\n\n"
     "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"ok\"},"
     "\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n"},
};

struct ClientFixture {
  ClientFormat format;
  const char* body;
  const char* terminator;
};

const ClientFixture kClients[] = {
    {ClientFormat::kOpenAiChat, kSeedStreamBody, "data: [DONE]\n\n"},
    {ClientFormat::kAnthropicMessages,
     R"({"model":"claude","max_tokens":100,"system":"s","stream":true,
        "messages":[{"role":"user","content":"hi"}]})",
     "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"},
    {ClientFormat::kOpenAiResponses,
     R"({"model":"gpt","instructions":"s","input":"hi","stream":true})",
     "\"type\":\"response.completed\""},
};

TEST(EveryPairTest, EachClientFormatWorksWithEachProviderStreamedAndNot) {
  for (const ClientFixture& client : kClients) {
    const ClientCodec& cc = ClientCodecFor(client.format);
    Result<ChatRequest> req = cc.DecodeRequest(client.body);
    ASSERT_TRUE(req.ok());
    for (const ProviderFixture& p : kProviders) {
      SCOPED_TRACE(std::string(p.provider) + "/" + p.api + " for client " +
                   std::to_string(static_cast<int>(client.format)));
      const ProviderCodec* codec = FindProviderCodec(p.provider, p.api);
      ASSERT_NE(codec, nullptr);
      for (bool stream : {false, true}) {
        TargetInfo t = Target(p.provider, "model-x:1", stream);
        t.aws_region = "eu-west-1";
        t.azure_endpoint = "https://a.example";
        Result<HttpRequestSpec> http = codec->BuildRequest(req.value(), t);
        ASSERT_TRUE(http.ok()) << http.error().message;
        json::Document body = ParseJson(http.value().body);
        EXPECT_TRUE(body.IsObject());
      }
      ResponseContext ctx{"model-x", 1700000000, "r"};
      Result<ChatResponse> resp = codec->ParseResponse(200, p.response, ctx);
      ASSERT_TRUE(resp.ok()) << resp.error().message;
      json::Document encoded = ParseJson(cc.EncodeResponse(resp.value()));
      EXPECT_NE(json::Write(encoded).find("ok"), std::string::npos);

      auto decoder = codec->NewStreamDecoder(ctx);
      StreamEvents events;
      if (std::string_view(p.provider) == "bedrock") {
        std::string_view lines = p.stream;
        while (!lines.empty()) {
          std::string_view line = lines.substr(0, lines.find('\n'));
          lines.remove_prefix(std::min(lines.size(), line.size() + 1));
          size_t bar = line.find('|');
          decoder->FeedEvent(line.substr(0, bar), line.substr(bar + 1), &events);
        }
      } else {
        decoder->Feed(p.stream, &events);
      }
      decoder->Finish(&events);
      StreamEncoderOptions o;
      o.include_usage = true;
      auto enc = cc.NewStreamEncoder(o);
      std::string sse;
      for (const StreamEvent& ev : events) enc->Encode(ev, &sse);
      EXPECT_TRUE(enc->finished());
      EXPECT_NE(sse.find("ok"), std::string::npos) << sse;
      EXPECT_NE(sse.find(client.terminator), std::string::npos) << sse;
      if (client.format == ClientFormat::kOpenAiChat) {
        EXPECT_NE(sse.find("\"choices\":[],\"usage\":{"), std::string::npos) << sse;
      }
      EXPECT_EQ(sse.find("event: error"), std::string::npos) << sse;
      EXPECT_EQ(sse.find("data: {\"error\""), std::string::npos) << sse;
    }
  }
}

// ---- hostile input ----------------------------------------------------------------

// Mistyped members must not crash a codec (they read as absent) nor produce
// invalid JSON; truncated streams always end in kEnd or kError.
TEST(HostileInputTest, MistypedBodiesTranslateWithoutCrashing) {
  const char* bodies[] = {
      R"({"model":1,"messages":[1,"x",null,{"role":7},{"role":"user","content":5},
          {"role":"assistant","content":{},"tool_calls":"no"},{"role":"tool"},
          {"role":"user","content":[1,{"type":"image_url","image_url":5},{"type":"text"}]}],
          "tools":{"a":1},"tool_choice":5,"stop":7,"max_tokens":"x","temperature":"hot",
          "system":9,"response_format":"json","metadata":[1],"n":"two"})",
      R"({"messages":[{"role":"assistant","tool_calls":[{"function":{"arguments":"not json"}},
          {"id":5},{}]},{"role":"tool","tool_call_id":9,"content":[{"type":"text","text":1}]}],
          "tools":[1,{"type":"function"},{"type":"function","function":{"name":"f",
          "parameters":{"type":"object","properties":{"a":{"$ref":"#/nowhere"}},
          "required":"a"}}}]})",
  };
  const char* providers[][2] = {{"openai", ""}, {"openai", "responses"}, {"anthropic", ""},
                                {"gemini", ""}, {"bedrock", ""},         {"azure", ""}};
  for (const char* body : bodies) {
    Result<ChatRequest> req = ClientCodecFor(ClientFormat::kOpenAiChat).DecodeRequest(body);
    ASSERT_TRUE(req.ok());
    for (auto& p : providers) {
      TargetInfo t = Target(p[0], "m", true);
      t.azure_endpoint = "https://a";
      Result<HttpRequestSpec> http = FindProviderCodec(p[0], p[1])->BuildRequest(req.value(), t);
      if (http.ok()) {
        json::Document d;
        d.Parse(http.value().body.data(), http.value().body.size());
        EXPECT_FALSE(d.HasParseError()) << p[0] << " " << http.value().body;
      }
    }
  }
  for (ClientFormat f : {ClientFormat::kAnthropicMessages, ClientFormat::kOpenAiResponses}) {
    for (const char* body :
         {R"({"messages":[{"role":"user","content":[1,{"type":"image"},{"type":"tool_result"}]},
              {"role":"assistant","content":[{"type":"tool_use"}]}],"input":[1,{"type":
              "function_call"},{"role":"user","content":[{"type":"input_image"}]}],"tools":[1],
              "tool_choice":{"type":"tool"},"system":[1],"text":{"format":5}})",
          R"({"input":"hi","messages":[],"tools":"x","tool_choice":"x","reasoning":"x"})"}) {
      Result<ChatRequest> req = ClientCodecFor(f).DecodeRequest(body);
      if (!req.ok()) continue;
      Result<HttpRequestSpec> http =
          FindProviderCodec("anthropic")->BuildRequest(req.value(), Target("anthropic", "c"));
      (void)http;
    }
  }
}

TEST(HostileInputTest, EveryTruncationOfAStreamEndsInEndOrError) {
  const char* streams[][3] = {
      {"openai", "",
       "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"ok\","
       "\"tool_calls\":[{\"index\":0,\"id\":\"t\",\"function\":{\"name\":\"f\",\"arguments\":"
       "\"{}\"}}]}}]}\n\ndata: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{},"
       "\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":1}}\n\ndata: [DONE]\n\n"},
      {"anthropic", "",
       "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\"}}\n\n"
       "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,"
       "\"content_block\":{\"type\":\"tool_use\",\"id\":\"t\",\"name\":\"f\"}}\n\n"
       "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"},
      {"gemini", "",
       "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"ok\"}]},"
       "\"finishReason\":\"STOP\"}]}\r\n\r\n"},
      {"openai", "responses",
       "event: response.output_item.added\ndata: {\"type\":\"response.output_item.added\","
       "\"output_index\":0,\"item\":{\"type\":\"function_call\",\"call_id\":\"c\",\"name\":"
       "\"f\"}}\n\nevent: response.completed\ndata: {\"type\":\"response.completed\","
       "\"response\":{\"status\":\"completed\"}}\n\n"},
  };
  for (auto& s : streams) {
    std::string_view raw = s[2];
    for (size_t cut = 0; cut <= raw.size(); ++cut) {
      auto decoder = FindProviderCodec(s[0], s[1])->NewStreamDecoder({});
      StreamEvents events;
      decoder->Feed(raw.substr(0, cut), &events);
      decoder->Finish(&events);
      ASSERT_FALSE(events.empty()) << s[0] << " cut " << cut;
      StreamEvent::Type last = events.back().type;
      EXPECT_TRUE(last == StreamEvent::Type::kEnd || last == StreamEvent::Type::kError)
          << s[0] << " cut " << cut;
      for (ClientFormat f : {ClientFormat::kOpenAiChat, ClientFormat::kAnthropicMessages,
                             ClientFormat::kOpenAiResponses}) {
        auto enc = ClientCodecFor(f).NewStreamEncoder({});
        std::string out;
        for (const StreamEvent& ev : events) enc->Encode(ev, &out);
        EXPECT_TRUE(enc->finished());
      }
    }
  }
}

// Found by fuzz/client_request and fuzz/provider_response: an integral double
// outside int64's range ("max_output_tokens": 5e123, a provider's
// "input_tokens": 7.7e103) was cast to int64_t, which is undefined (x86
// gives INT64_MIN). It is now as unusable as a fraction: the fallback.
TEST(JsonTest, GetIntRefusesIntegralDoublesOutsideInt64) {
  json::Document d;
  std::string error;
  ASSERT_TRUE(json::Parse(R"({"a": 5e123, "b": -1e19, "c": 9.2233720368547758e18, "d": 4096.0})",
                          &d, &error));
  EXPECT_EQ(json::GetInt(d, "a", -7), -7);
  EXPECT_EQ(json::GetInt(d, "b", -7), -7);
  EXPECT_EQ(json::GetInt(d, "c", -7), -7);  // 2^63: one past INT64_MAX
  EXPECT_EQ(json::GetInt(d, "d", -7), 4096);
}

}  // namespace
}  // namespace tg::adapter::translate
