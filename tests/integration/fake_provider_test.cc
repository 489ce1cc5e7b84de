// Size: the fake's own tests: five provider APIs, every fault kind, the control endpoints.
// The fake provider over real HTTP: every API streamed and not, credential
// checks (SigV4 included), every fault kind, the record and the control
// endpoints, and the tg-fake-provider executable.

#include "fake_provider.h"

#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <bit>
#include <chrono>
#include <cmath>
#include <cstring>
#include <ctime>
#include <map>
#include <string>
#include <vector>

#include "process.h"
#include "tg/adapter/aws/eventstream.h"
#include "tg/adapter/aws/sigv4.h"
#include "tg/adapter/http/curl_http_client.h"
#include "tg/common/crypto.h"

namespace tg::fakes {
namespace {

using adapter::http::CurlHttpClient;
using adapter::http::CurlHttpClientOptions;
using adapter::http::Fetch;
using adapter::http::HeaderList;
using adapter::http::HttpErrorKind;
using adapter::http::HttpRequest;
using adapter::http::HttpResponse;
using adapter::http::HttpTimeouts;
using std::chrono::milliseconds;

// The fakes listen on loopback, which the egress policy refuses by default.
CurlHttpClientOptions LoopbackAllowed() {
  CurlHttpClientOptions o;
  o.egress.allow_private = true;
  return o;
}

struct SseEvent {
  std::string event;
  std::string data;
};

// A small SSE reader of the test's own (LF or CRLF).
std::vector<SseEvent> ParseSse(std::string_view body) {
  std::vector<SseEvent> out;
  SseEvent current;
  bool any = false;
  size_t pos = 0;
  while (pos < body.size()) {
    size_t nl = body.find('\n', pos);
    if (nl == std::string_view::npos) nl = body.size();
    std::string_view line = body.substr(pos, nl - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    pos = nl + 1;
    if (line.empty()) {
      if (any) out.push_back(current);
      current = SseEvent();
      any = false;
    } else if (line.starts_with("event: ")) {
      current.event = line.substr(7);
      any = true;
    } else if (line.starts_with("data: ")) {
      if (!current.data.empty()) current.data += "\n";
      current.data += line.substr(6);
      any = true;
    }
  }
  if (any) out.push_back(current);
  return out;
}

rapidjson::Document Json(std::string_view s) {
  rapidjson::Document d;
  d.Parse(s.data(), s.size());
  EXPECT_FALSE(d.HasParseError()) << s;
  return d;
}

std::string Str(const rapidjson::Value& v) {
  return v.IsString() ? v.GetString() : "<not a string>";
}

class FakeProviderTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(fake_.Start()); }

  HttpResponse Post(const std::string& path, const std::string& body, HeaderList headers,
                    HttpTimeouts timeouts = {}) {
    HttpRequest r;
    r.url = fake_.base_url() + path;
    r.body = body;
    r.headers = std::move(headers);
    r.headers.emplace_back("Content-Type", "application/json");
    r.timeouts = timeouts;
    return Fetch(client_, r).get();
  }
  HttpResponse Get(const std::string& path, HeaderList headers = {}) {
    HttpRequest r;
    r.method = "GET";
    r.url = fake_.base_url() + path;
    r.headers = std::move(headers);
    return Fetch(client_, r).get();
  }

  HeaderList OpenAi() { return {{"Authorization", "Bearer sk-fake-openai"}}; }
  HeaderList Anthropic() {
    return {{"x-api-key", "sk-ant-fake"}, {"anthropic-version", "2023-06-01"}};
  }
  HeaderList Gemini() { return {{"x-goog-api-key", "fake-gemini-key"}}; }
  HeaderList Azure() { return {{"api-key", "fake-azure-key"}}; }

  // A Bedrock call signed like tg-adapter signs it.
  HttpResponse Bedrock(const std::string& model_id, bool stream, const std::string& body,
                       adapter::aws::Credentials credentials, bool double_encode = true) {
    return BedrockOp(model_id, stream ? "converse-stream" : "converse", body, credentials,
                     double_encode);
  }
  HttpResponse Invoke(const std::string& model_id, const std::string& body) {
    return BedrockOp(model_id, "invoke", body, fake_.credentials().aws);
  }
  HttpResponse BedrockOp(const std::string& model_id, const std::string& op,
                         const std::string& body, adapter::aws::Credentials credentials,
                         bool double_encode = true) {
    const std::string path = "/model/" + adapter::aws::UriEncode(model_id, false) + "/" + op;
    adapter::aws::SigningRequest s;
    s.method = "POST";
    s.path = path;
    s.headers = {{"Host", "127.0.0.1:" + std::to_string(fake_.port())},
                 {"Content-Type", "application/json"}};
    s.body = body;
    adapter::aws::SigV4Options o;
    o.region = "us-east-1";
    o.service = "bedrock";
    o.double_encode_path = double_encode;
    adapter::aws::SigV4Signature sig =
        adapter::aws::SignV4(s, credentials, o, std::chrono::system_clock::now());
    HttpRequest r;
    r.url = fake_.base_url() + path;
    r.body = body;
    r.headers = {{"Content-Type", "application/json"}};
    for (const auto& h : sig.headers) r.headers.push_back(h);
    return Fetch(client_, r).get();
  }

  static std::vector<adapter::aws::EventMessage> Frames(const std::string& body) {
    adapter::aws::EventStreamDecoder decoder;
    std::vector<adapter::aws::EventMessage> out;
    EXPECT_EQ(decoder.Feed(body, &out), adapter::aws::EventStreamError::kNone);
    EXPECT_TRUE(decoder.AtBoundary());
    return out;
  }

  FakeProvider fake_;
  CurlHttpClient client_{LoopbackAllowed()};
};

constexpr char kChat[] = R"({"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]})";
constexpr char kChatStreamTools[] =
    R"({"model":"gpt-4o","stream":true,"stream_options":{"include_usage":true},)"
    R"("messages":[{"role":"user","content":"weather?"}],)"
    R"("tools":[{"type":"function","function":{"name":"get_weather","parameters":{}}}]})";

// ------------------------------------------------------------------ OpenAI

TEST_F(FakeProviderTest, OpenAiChatNonStreamed) {
  HttpResponse r = Post("/v1/chat/completions", kChat, OpenAi());
  ASSERT_EQ(r.head.status, 200) << r.body;
  EXPECT_EQ(r.head.Header("content-type"), "application/json");
  auto d = Json(r.body);
  EXPECT_EQ(Str(d["object"]), "chat.completion");
  EXPECT_EQ(Str(d["model"]), "gpt-4o");
  EXPECT_EQ(Str(d["choices"][0]["message"]["content"]), "Hello from the fake provider!");
  EXPECT_EQ(Str(d["choices"][0]["finish_reason"]), "stop");
  EXPECT_EQ(d["usage"]["prompt_tokens"].GetInt(), 12);
  EXPECT_EQ(d["usage"]["completion_tokens"].GetInt(), 9);
  EXPECT_EQ(d["usage"]["total_tokens"].GetInt(), 21);
}

TEST_F(FakeProviderTest, OpenAiChatStreamedWithToolCallsAndUsage) {
  HttpResponse r = Post("/v1/chat/completions", kChatStreamTools, OpenAi());
  ASSERT_EQ(r.head.status, 200);
  EXPECT_EQ(r.head.Header("content-type"), "text/event-stream; charset=utf-8");
  auto events = ParseSse(r.body);
  ASSERT_GE(events.size(), 5u);
  EXPECT_EQ(events.back().data, "[DONE]");
  std::string arguments, id, finish;
  bool usage_seen = false;
  for (size_t i = 0; i + 1 < events.size(); ++i) {
    auto d = Json(events[i].data);
    EXPECT_EQ(Str(d["object"]), "chat.completion.chunk");
    if (id.empty()) id = Str(d["id"]);
    EXPECT_EQ(Str(d["id"]), id);  // the same id in every chunk
    if (d["choices"].Empty()) {
      usage_seen = true;
      EXPECT_EQ(i + 2, events.size());  // the usage chunk comes last, before [DONE]
      EXPECT_EQ(d["usage"]["total_tokens"].GetInt(), 21);
      continue;
    }
    EXPECT_TRUE(d["usage"].IsNull());
    const auto& choice = d["choices"][0];
    if (choice["finish_reason"].IsString()) finish = choice["finish_reason"].GetString();
    if (choice["delta"].HasMember("tool_calls")) {
      const auto& tc = choice["delta"]["tool_calls"][0];
      EXPECT_EQ(tc["index"].GetInt(), 0);
      if (tc.HasMember("id")) {
        EXPECT_EQ(Str(tc["function"]["name"]), "get_weather");
        EXPECT_EQ(Str(tc["type"]), "function");
      }
      arguments += Str(tc["function"]["arguments"]);
    }
  }
  EXPECT_TRUE(usage_seen);
  EXPECT_EQ(finish, "tool_calls");
  EXPECT_EQ(arguments, R"({"location":"Paris"})");
}

TEST_F(FakeProviderTest, OpenAiAnswersTextAfterAToolResult) {
  HttpResponse r = Post(
      "/v1/chat/completions",
      R"({"model":"m","tools":[{"type":"function","function":{"name":"f"}}],"messages":[)"
      R"({"role":"user","content":"q"},{"role":"assistant","content":null,"tool_calls":[{"id":"c",)"
      R"("type":"function","function":{"name":"f","arguments":"{}"}}]},)"
      R"({"role":"tool","tool_call_id":"c","content":"sunny"}]})",
      OpenAi());
  auto d = Json(r.body);
  EXPECT_EQ(Str(d["choices"][0]["finish_reason"]), "stop");
  EXPECT_FALSE(d["choices"][0]["message"].HasMember("tool_calls"));
}

TEST_F(FakeProviderTest, OpenAiCredentials) {
  HttpResponse missing = Post("/v1/chat/completions", kChat, {});
  EXPECT_EQ(missing.head.status, 401);
  auto d = Json(missing.body);
  EXPECT_TRUE(d["error"]["code"].IsNull());
  EXPECT_NE(Str(d["error"]["message"]).find("You didn't provide an API key"), std::string::npos);

  HttpResponse wrong = Post("/v1/chat/completions", kChat, {{"Authorization", "Bearer nope"}});
  EXPECT_EQ(wrong.head.status, 401);
  EXPECT_EQ(Str(Json(wrong.body)["error"]["code"]), "invalid_api_key");
  EXPECT_EQ(wrong.body.find("nope"), std::string::npos);  // a key is never echoed

  HttpResponse bad_json = Post("/v1/chat/completions", "{not json", OpenAi());
  EXPECT_EQ(bad_json.head.status, 400);
  EXPECT_EQ(Str(Json(bad_json.body)["error"]["type"]), "invalid_request_error");
}

TEST_F(FakeProviderTest, OpenAiResponsesNonStreamedAndStreamed) {
  HttpResponse r = Post("/v1/responses", R"({"model":"gpt-4.1","input":"hi"})", OpenAi());
  ASSERT_EQ(r.head.status, 200);
  auto d = Json(r.body);
  EXPECT_EQ(Str(d["object"]), "response");
  EXPECT_EQ(Str(d["status"]), "completed");
  EXPECT_EQ(Str(d["output"][0]["type"]), "message");
  EXPECT_EQ(Str(d["output"][0]["content"][0]["text"]), "Hello from the fake provider!");
  EXPECT_EQ(d["usage"]["input_tokens"].GetInt(), 12);

  HttpResponse s =
      Post("/v1/responses", R"({"model":"gpt-4.1","input":"hi","stream":true})", OpenAi());
  auto events = ParseSse(s.body);
  ASSERT_GE(events.size(), 8u);
  std::string text;
  for (size_t i = 0; i < events.size(); ++i) {
    auto e = Json(events[i].data);
    EXPECT_EQ(Str(e["type"]), events[i].event);  // event name == data.type
    EXPECT_EQ(e["sequence_number"].GetInt(), static_cast<int>(i));
    if (events[i].event == "response.output_text.delta") text += Str(e["delta"]);
  }
  EXPECT_EQ(events.front().event, "response.created");
  EXPECT_EQ(events.back().event, "response.completed");
  EXPECT_EQ(text, "Hello from the fake provider!");
  EXPECT_EQ(Json(events.back().data)["response"]["usage"]["total_tokens"].GetInt(), 21);
  EXPECT_EQ(s.body.find("[DONE]"), std::string::npos);
}

TEST_F(FakeProviderTest, OpenAiResponsesFunctionCalls) {
  const std::string body =
      R"({"model":"m","stream":true,"input":"q","tools":[{"type":"function","name":"lookup"}]})";
  auto events = ParseSse(Post("/v1/responses", body, OpenAi()).body);
  std::string args, call_id;
  for (const auto& e : events) {
    auto d = Json(e.data);
    if (e.event == "response.output_item.added") {
      EXPECT_EQ(Str(d["item"]["type"]), "function_call");
      call_id = Str(d["item"]["call_id"]);
      EXPECT_EQ(Str(d["item"]["name"]), "lookup");
    }
    if (e.event == "response.function_call_arguments.delta") args += Str(d["delta"]);
  }
  EXPECT_EQ(args, R"({"location":"Paris"})");
  EXPECT_TRUE(call_id.starts_with("call_"));
  auto done = Json(events.back().data);
  EXPECT_EQ(Str(done["response"]["output"][0]["type"]), "function_call");
}

// ------------------------------------------------------------------ Anthropic

TEST_F(FakeProviderTest, AnthropicNonStreamedAndStreamed) {
  const std::string body = R"({"model":"claude-3-5-haiku","max_tokens":100,)"
                           R"("messages":[{"role":"user","content":"hi"}]})";
  HttpResponse r = Post("/v1/messages", body, Anthropic());
  ASSERT_EQ(r.head.status, 200) << r.body;
  auto d = Json(r.body);
  EXPECT_EQ(Str(d["type"]), "message");
  EXPECT_EQ(Str(d["content"][0]["text"]), "Hello from the fake provider!");
  EXPECT_EQ(Str(d["stop_reason"]), "end_turn");
  EXPECT_EQ(d["usage"]["input_tokens"].GetInt(), 12);
  EXPECT_EQ(d["usage"]["output_tokens"].GetInt(), 9);

  std::string streamed = body;
  streamed.insert(1, R"("stream":true,)");
  auto events = ParseSse(Post("/v1/messages", streamed, Anthropic()).body);
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.front().event, "message_start");
  EXPECT_EQ(events.back().event, "message_stop");
  std::string text;
  for (const auto& e : events) {
    auto j = Json(e.data);
    EXPECT_EQ(Str(j["type"]), e.event);
    if (e.event == "content_block_delta") text += Str(j["delta"]["text"]);
    if (e.event == "message_delta") {
      EXPECT_EQ(Str(j["delta"]["stop_reason"]), "end_turn");
      EXPECT_EQ(j["usage"]["output_tokens"].GetInt(), 9);
    }
  }
  EXPECT_EQ(text, "Hello from the fake provider!");
}

TEST_F(FakeProviderTest, AnthropicToolUse) {
  FakeAnswer a;
  a.tool_calls = {{"toolu_1", "get_weather", R"({"city":"Oslo"})"}};
  a.text = "Let me check.";
  fake_.SetAnswer(a);
  const std::string body = R"({"model":"c","max_tokens":10,"stream":true,"messages":[]})";
  auto events = ParseSse(Post("/v1/messages", body, Anthropic()).body);
  std::string json;
  int tool_index = -1;
  for (const auto& e : events) {
    auto j = Json(e.data);
    if (e.event == "content_block_start" && Str(j["content_block"]["type"]) == "tool_use") {
      tool_index = j["index"].GetInt();
      EXPECT_EQ(Str(j["content_block"]["id"]), "toolu_1");
    }
    if (e.event == "content_block_delta" && Str(j["delta"]["type"]) == "input_json_delta") {
      json += Str(j["delta"]["partial_json"]);
    }
    if (e.event == "message_delta") {
      EXPECT_EQ(Str(j["delta"]["stop_reason"]), "tool_use");
    }
  }
  EXPECT_EQ(tool_index, 1);  // after the text block
  EXPECT_EQ(json, R"({"city":"Oslo"})");

  auto d = Json(
      Post("/v1/messages", R"({"model":"c","max_tokens":10,"messages":[]})", Anthropic()).body);
  EXPECT_EQ(Str(d["content"][1]["type"]), "tool_use");
  EXPECT_EQ(Str(d["content"][1]["input"]["city"]), "Oslo");
}

TEST_F(FakeProviderTest, AnthropicCredentials) {
  const std::string body = R"({"model":"c","max_tokens":1,"messages":[]})";
  HttpResponse missing = Post("/v1/messages", body, {{"anthropic-version", "2023-06-01"}});
  EXPECT_EQ(missing.head.status, 401);
  EXPECT_EQ(Str(Json(missing.body)["error"]["type"]), "authentication_error");
  HttpResponse wrong =
      Post("/v1/messages", body, {{"x-api-key", "bad"}, {"anthropic-version", "2023-06-01"}});
  EXPECT_EQ(wrong.head.status, 401);
  EXPECT_EQ(Str(Json(wrong.body)["type"]), "error");
  HttpResponse no_version = Post("/v1/messages", body, {{"x-api-key", "sk-ant-fake"}});
  EXPECT_EQ(no_version.head.status, 400);
  EXPECT_EQ(Str(Json(no_version.body)["error"]["type"]), "invalid_request_error");
  HttpResponse bearer =
      Post("/v1/messages", body,
           {{"Authorization", "Bearer sk-ant-fake"}, {"anthropic-version", "2023-06-01"}});
  EXPECT_EQ(bearer.head.status, 200);
}

// ------------------------------------------------------------------ Gemini

TEST_F(FakeProviderTest, GeminiNonStreamedWithHeaderOrQueryKey) {
  const std::string body = R"({"contents":[{"role":"user","parts":[{"text":"hi"}]}]})";
  HttpResponse r = Post("/v1beta/models/gemini-2.0-flash:generateContent", body, Gemini());
  ASSERT_EQ(r.head.status, 200) << r.body;
  auto d = Json(r.body);
  EXPECT_EQ(Str(d["candidates"][0]["content"]["parts"][0]["text"]),
            "Hello from the fake provider!");
  EXPECT_EQ(Str(d["candidates"][0]["finishReason"]), "STOP");
  EXPECT_EQ(d["usageMetadata"]["totalTokenCount"].GetInt(), 21);
  EXPECT_EQ(Str(d["modelVersion"]), "gemini-2.0-flash");

  HttpResponse q =
      Post("/v1beta/models/gemini-2.0-flash:generateContent?key=fake-gemini-key", body, {});
  EXPECT_EQ(q.head.status, 200);
  // The record keeps the key; the control endpoint redacts it.
  EXPECT_EQ(fake_.Requests().back().query, "key=fake-gemini-key");
  EXPECT_EQ(Get("/_fake/requests").body.find("fake-gemini-key"), std::string::npos);
}

TEST_F(FakeProviderTest, GeminiSseStreamUsesCrlf) {
  const std::string body = R"({"contents":[{"role":"user","parts":[{"text":"hi"}]}]})";
  HttpResponse r =
      Post("/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse", body, Gemini());
  ASSERT_EQ(r.head.status, 200);
  EXPECT_EQ(r.head.Header("content-type"), "text/event-stream");
  EXPECT_NE(r.body.find("\r\n\r\n"), std::string::npos);
  EXPECT_EQ(r.body.find("\n\n"), std::string::npos);  // only CRLF separators
  auto events = ParseSse(r.body);
  ASSERT_GE(events.size(), 2u);
  std::string text;
  for (size_t i = 0; i < events.size(); ++i) {
    auto d = Json(events[i].data);
    const auto& cand = d["candidates"][0];
    text += Str(cand["content"]["parts"][0]["text"]);
    EXPECT_EQ(cand.HasMember("finishReason"), i + 1 == events.size());
  }
  EXPECT_EQ(text, "Hello from the fake provider!");
  EXPECT_EQ(Json(events.back().data)["usageMetadata"]["candidatesTokenCount"].GetInt(), 9);
}

TEST_F(FakeProviderTest, GeminiJsonArrayStreamAndFunctionCalls) {
  const std::string body = R"({"contents":[{"role":"user","parts":[{"text":"hi"}]}],)"
                           R"("tools":[{"functionDeclarations":[{"name":"get_weather"}]}]})";
  HttpResponse r = Post("/v1beta/models/gemini-pro:streamGenerateContent", body, Gemini());
  ASSERT_EQ(r.head.status, 200);
  auto d = Json(r.body);  // one JSON array
  ASSERT_TRUE(d.IsArray());
  const auto& last = d[d.Size() - 1]["candidates"][0];
  EXPECT_EQ(Str(last["content"]["parts"][0]["functionCall"]["name"]), "get_weather");
  EXPECT_EQ(Str(last["content"]["parts"][0]["functionCall"]["args"]["location"]), "Paris");
  EXPECT_EQ(Str(last["finishReason"]), "STOP");
}

TEST_F(FakeProviderTest, GeminiCredentials) {
  const std::string path = "/v1beta/models/gemini-2.0-flash:generateContent";
  HttpResponse wrong = Post(path, "{}", {{"x-goog-api-key", "bad"}});
  EXPECT_EQ(wrong.head.status, 400);
  auto d = Json(wrong.body);
  EXPECT_EQ(Str(d["error"]["status"]), "INVALID_ARGUMENT");
  EXPECT_EQ(Str(d["error"]["details"][0]["reason"]), "API_KEY_INVALID");
  HttpResponse missing = Post(path, "{}", {});
  EXPECT_EQ(missing.head.status, 403);
  EXPECT_EQ(Str(Json(missing.body)["error"]["status"]), "PERMISSION_DENIED");
  EXPECT_EQ(Post("/v1beta/models/x:countTokens", "{}", Gemini()).head.status, 404);
}

// ------------------------------------------------------------------ Bedrock

constexpr char kModelId[] = "anthropic.claude-3-haiku-20240307-v1:0";
constexpr char kConverse[] = R"({"messages":[{"role":"user","content":[{"text":"hi"}]}]})";

TEST_F(FakeProviderTest, BedrockConverseVerifiesSigV4) {
  HttpResponse r = Bedrock(kModelId, false, kConverse, fake_.credentials().aws);
  ASSERT_EQ(r.head.status, 200) << r.body;
  auto d = Json(r.body);
  EXPECT_EQ(Str(d["output"]["message"]["content"][0]["text"]), "Hello from the fake provider!");
  EXPECT_EQ(Str(d["stopReason"]), "end_turn");
  EXPECT_EQ(d["usage"]["totalTokens"].GetInt(), 21);
  // The model id went out encoded once.
  EXPECT_EQ(fake_.Requests().back().path,
            "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse");
}

TEST_F(FakeProviderTest, BedrockConverseStreamIsEventstream) {
  HttpResponse r = Bedrock(kModelId, true, kConverse, fake_.credentials().aws);
  ASSERT_EQ(r.head.status, 200) << r.body;
  EXPECT_EQ(r.head.Header("content-type"), "application/vnd.amazon.eventstream");
  auto frames = Frames(r.body);
  ASSERT_GE(frames.size(), 4u);
  EXPECT_EQ(frames.front().type(), "messageStart");
  EXPECT_EQ(frames[frames.size() - 2].type(), "messageStop");
  EXPECT_EQ(frames.back().type(), "metadata");
  std::string text;
  for (const auto& f : frames) {
    EXPECT_EQ(f.message_type(), "event");
    EXPECT_EQ(f.content_type(), "application/json");
    auto j = Json(f.payload);
    EXPECT_TRUE(j.HasMember("p"));  // the padding real Bedrock adds
    if (f.type() == "contentBlockDelta") text += Str(j["delta"]["text"]);
  }
  EXPECT_EQ(text, "Hello from the fake provider!");
  EXPECT_EQ(Json(frames.back().payload)["usage"]["outputTokens"].GetInt(), 9);
}

TEST_F(FakeProviderTest, BedrockToolUseStream) {
  const std::string body =
      R"({"messages":[{"role":"user","content":[{"text":"hi"}]}],)"
      R"("toolConfig":{"tools":[{"toolSpec":{"name":"get_weather","inputSchema":{"json":{}}}}]}})";
  auto frames = Frames(Bedrock(kModelId, true, body, fake_.credentials().aws).body);
  std::string input, name;
  for (const auto& f : frames) {
    auto j = Json(f.payload);
    if (f.type() == "contentBlockStart") name = Str(j["start"]["toolUse"]["name"]);
    if (f.type() == "contentBlockDelta") input += Str(j["delta"]["toolUse"]["input"]);
    if (f.type() == "messageStop") {
      EXPECT_EQ(Str(j["stopReason"]), "tool_use");
    }
  }
  EXPECT_EQ(name, "get_weather");
  EXPECT_EQ(input, R"({"location":"Paris"})");
}

TEST_F(FakeProviderTest, BedrockRejectsWrongSignatures) {
  adapter::aws::Credentials wrong = fake_.credentials().aws;
  wrong.secret_access_key = "not-the-secret";
  HttpResponse r = Bedrock(kModelId, false, kConverse, wrong);
  EXPECT_EQ(r.head.status, 403);
  EXPECT_TRUE(r.head.Header("x-amzn-ErrorType").starts_with("InvalidSignatureException:"));
  EXPECT_NE(Str(Json(r.body)["message"]).find("signature we calculated does not match"),
            std::string::npos);

  // Signing the path encoded once (the classic Bedrock bug) is a wrong signature too.
  HttpResponse single = Bedrock(kModelId, false, kConverse, fake_.credentials().aws,
                                /*double_encode=*/false);
  EXPECT_EQ(single.head.status, 403);

  adapter::aws::Credentials unknown = fake_.credentials().aws;
  unknown.access_key_id = "AKIDUNKNOWN";
  EXPECT_TRUE(Bedrock(kModelId, false, kConverse, unknown)
                  .head.Header("x-amzn-ErrorType")
                  .starts_with("UnrecognizedClientException:"));

  HttpResponse unsigned_call = Post("/model/m/converse", kConverse, {});
  EXPECT_EQ(unsigned_call.head.status, 403);
  EXPECT_EQ(Str(Json(unsigned_call.body)["message"]), "Missing Authentication Token");
}

TEST(FakeProviderSessionTokenTest, BedrockRequiresTheSessionToken) {
  FakeProviderOptions o;
  o.credentials.aws.session_token = "the-session-token";
  FakeProvider fake(o);
  ASSERT_TRUE(fake.Start());
  CurlHttpClient client(LoopbackAllowed());
  auto call = [&](const std::string& token) {
    adapter::aws::Credentials c = fake.credentials().aws;
    c.session_token = token;
    adapter::aws::SigningRequest s;
    s.method = "POST";
    s.path = "/model/m/converse";
    s.headers = {{"Host", "127.0.0.1:" + std::to_string(fake.port())}};
    s.body = kConverse;
    adapter::aws::SigV4Options opt{"us-east-1", "bedrock"};
    auto sig = adapter::aws::SignV4(s, c, opt, std::chrono::system_clock::now());
    HttpRequest r;
    r.url = fake.base_url() + s.path;
    r.body = kConverse;
    r.headers = sig.headers;
    return Fetch(client, r).get().head.status;
  };
  EXPECT_EQ(call("the-session-token"), 200);
  EXPECT_EQ(call(""), 403);
  EXPECT_EQ(call("another-token"), 403);
}

// ------------------------------------------------------------------ Azure + IMDS

TEST_F(FakeProviderTest, AzureDeploymentsNonStreamedAndStreamed) {
  const std::string path = "/openai/deployments/gpt4o-prod/chat/completions?api-version=2024-10-21";
  HttpResponse r = Post(path, R"({"messages":[{"role":"user","content":"hi"}]})", Azure());
  ASSERT_EQ(r.head.status, 200) << r.body;
  auto d = Json(r.body);
  EXPECT_EQ(Str(d["model"]), "gpt4o-prod");
  EXPECT_TRUE(d["choices"][0].HasMember("content_filter_results"));
  EXPECT_TRUE(d.HasMember("prompt_filter_results"));

  auto events = ParseSse(
      Post(path, R"({"stream":true,"messages":[{"role":"user","content":"hi"}]})", Azure()).body);
  ASSERT_GE(events.size(), 3u);
  auto first = Json(events.front().data);
  EXPECT_TRUE(first["choices"].Empty());  // Azure's prompt-filter chunk
  EXPECT_EQ(Str(first["id"]), "");
  EXPECT_EQ(events.back().data, "[DONE]");
}

TEST_F(FakeProviderTest, AzureCredentialsAndApiVersion) {
  const std::string body = R"({"messages":[]})";
  HttpResponse wrong = Post("/openai/deployments/d/chat/completions?api-version=2024-10-21", body,
                            {{"api-key", "bad"}});
  EXPECT_EQ(wrong.head.status, 401);
  EXPECT_EQ(Str(Json(wrong.body)["error"]["code"]), "401");
  HttpResponse no_version = Post("/openai/deployments/d/chat/completions", body, Azure());
  EXPECT_EQ(no_version.head.status, 404);
  HttpResponse entra = Post("/openai/deployments/d/chat/completions?api-version=2024-10-21", body,
                            {{"Authorization", "Bearer fake-entra-token"}});
  EXPECT_EQ(entra.head.status, 200);
  HttpResponse v1 = Post("/openai/v1/chat/completions", R"({"model":"d","messages":[]})", Azure());
  EXPECT_EQ(v1.head.status, 200);
}

TEST_F(FakeProviderTest, ImdsServesTheEntraToken) {
  const std::string path =
      "/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https%3A%2F%2F"
      "cognitiveservices.azure.com%2F";
  EXPECT_EQ(Get(path).head.status, 400);
  HttpResponse r = Get(path, {{"Metadata", "true"}});
  ASSERT_EQ(r.head.status, 200);
  auto d = Json(r.body);
  EXPECT_EQ(Str(d["access_token"]), "fake-entra-token");
  EXPECT_EQ(Str(d["token_type"]), "Bearer");
  EXPECT_EQ(Str(d["resource"]), "https://cognitiveservices.azure.com/");
  EXPECT_GT(std::stoll(Str(d["expires_on"])), static_cast<long long>(std::time(nullptr)));
}

// ------------------------------------------------------------------ embeddings

// `array` holds exactly `expected`: each JSON number parses to its float32, exactly.
void ExpectVector(const rapidjson::Value& array, const std::vector<float>& expected) {
  ASSERT_TRUE(array.IsArray());
  ASSERT_EQ(array.Size(), expected.size());
  for (rapidjson::SizeType j = 0; j < array.Size(); ++j) {
    EXPECT_EQ(array[j].GetDouble(), static_cast<double>(expected[j])) << "value " << j;
  }
}

std::vector<float> Fake(std::string_view text, int dimensions = kFakeEmbeddingDimensions) {
  return FakeEmbedding(text, dimensions);
}

TEST(FakeEmbeddingTest, DeterministicSmallExactValuesAndWordCounts) {
  const std::vector<float> v = Fake("hello world", 40);
  ASSERT_EQ(v.size(), 40u);
  EXPECT_EQ(v, Fake("hello world", 40));
  EXPECT_NE(v, Fake("hello world!", 40));
  for (float x : v) {
    EXPECT_LE(std::abs(x), 1000.0f / 1024);
    EXPECT_EQ(x * 1024, static_cast<float>(static_cast<int>(x * 1024)));  // k/1024, exactly
  }
  EXPECT_TRUE(Fake("x", 0).empty());
  EXPECT_EQ(FakeTokenCount("  one two\tthree\n"), 3);
  EXPECT_EQ(FakeTokenCount("   "), 1);  // not empty: at least one token
  EXPECT_EQ(FakeTokenCount(""), 0);
}

TEST_F(FakeProviderTest, OpenAiEmbeddings) {
  HttpResponse r =
      Post("/v1/embeddings", R"({"model":"text-embedding-3-small","input":["hello world","one"]})",
           OpenAi());
  ASSERT_EQ(r.head.status, 200) << r.body;
  EXPECT_EQ(r.head.Header("content-type"), "application/json");
  auto d = Json(r.body);
  EXPECT_EQ(Str(d["object"]), "list");
  EXPECT_EQ(Str(d["model"]), "text-embedding-3-small");
  ASSERT_EQ(d["data"].Size(), 2u);
  const char* texts[] = {"hello world", "one"};
  for (rapidjson::SizeType i = 0; i < 2; ++i) {
    EXPECT_EQ(Str(d["data"][i]["object"]), "embedding");
    EXPECT_EQ(d["data"][i]["index"].GetInt(), static_cast<int>(i));
    ExpectVector(d["data"][i]["embedding"], Fake(texts[i]));
  }
  EXPECT_EQ(d["usage"]["prompt_tokens"].GetInt(), 3);
  EXPECT_EQ(d["usage"]["total_tokens"].GetInt(), 3);
  EXPECT_EQ(fake_.Requests().back().api, Api::kOpenAiEmbeddings);

  // base64: the float32 little-endian bytes.
  auto b = Json(Post("/v1/embeddings",
                     R"({"model":"m","input":"hello world","dimensions":3,)"
                     R"("encoding_format":"base64","user":"u"})",
                     OpenAi())
                    .body);
  auto bytes = crypto::Base64Decode(Str(b["data"][0]["embedding"]));
  ASSERT_TRUE(bytes.has_value());
  ASSERT_EQ(bytes->size(), 12u);
  std::vector<float> decoded(3);
  for (size_t j = 0; j < 3; ++j) {
    uint32_t u = 0;
    for (int k = 3; k >= 0; --k) u = (u << 8) | static_cast<unsigned char>((*bytes)[j * 4 + k]);
    decoded[j] = std::bit_cast<float>(u);
  }
  EXPECT_EQ(decoded, Fake("hello world", 3));

  // Token ids embed as their decimal text.
  auto t = Json(Post("/v1/embeddings", R"({"model":"m","input":[[1,2,3]]})", OpenAi()).body);
  ExpectVector(t["data"][0]["embedding"], Fake("1 2 3"));
  EXPECT_EQ(t["usage"]["prompt_tokens"].GetInt(), 3);
}

TEST_F(FakeProviderTest, OpenAiEmbeddingsErrors) {
  HttpResponse wrong =
      Post("/v1/embeddings", R"({"model":"m","input":"x"})", {{"Authorization", "Bearer bad"}});
  EXPECT_EQ(wrong.head.status, 401);
  EXPECT_EQ(Str(Json(wrong.body)["error"]["code"]), "invalid_api_key");
  for (const char* body :
       {"{", R"({"input":"x"})", R"({"model":"m","input":""})", R"({"model":"m","input":[]})",
        R"({"model":"m","input":[1,"a"]})", R"({"model":"m","input":"x","dimensions":0})",
        R"({"model":"m","input":"x","encoding_format":"hex"})"}) {
    HttpResponse r = Post("/v1/embeddings", body, OpenAi());
    EXPECT_EQ(r.head.status, 400) << body;
    EXPECT_EQ(Str(Json(r.body)["error"]["type"]), "invalid_request_error") << body;
  }
}

TEST_F(FakeProviderTest, AzureEmbeddings) {
  const std::string path = "/openai/deployments/emb-prod/embeddings?api-version=2024-10-21";
  const std::string body = R"({"input":"hello world"})";
  HttpResponse r = Post(path, body, Azure());
  ASSERT_EQ(r.head.status, 200) << r.body;
  EXPECT_FALSE(r.head.Header("apim-request-id").empty());
  auto d = Json(r.body);
  EXPECT_EQ(Str(d["model"]), "emb-prod");  // the deployment
  ExpectVector(d["data"][0]["embedding"], Fake("hello world"));
  EXPECT_EQ(d["usage"]["total_tokens"].GetInt(), 2);
  EXPECT_EQ(fake_.Requests().back().api, Api::kAzureEmbeddings);

  EXPECT_EQ(Post(path, body, {{"Authorization", "Bearer fake-entra-token"}}).head.status, 200);
  HttpResponse wrong = Post(path, body, {{"api-key", "bad"}});
  EXPECT_EQ(wrong.head.status, 401);
  EXPECT_EQ(Str(Json(wrong.body)["error"]["code"]), "401");
  EXPECT_EQ(Post("/openai/deployments/emb-prod/embeddings", body, Azure()).head.status, 404);
  HttpResponse bad = Post(path, R"({"input":[]})", Azure());
  EXPECT_EQ(bad.head.status, 400);
  EXPECT_TRUE(Json(bad.body)["error"].HasMember("message"));
  EXPECT_EQ(
      Str(Json(
          Post("/openai/v1/embeddings", R"({"model":"e","input":"x"})", Azure()).body)["model"]),
      "e");
}

TEST_F(FakeProviderTest, GeminiEmbedContentAndBatch) {
  HttpResponse r = Post(
      "/v1beta/models/text-embedding-004:embedContent",
      R"({"content":{"parts":[{"text":"hello "},{"text":"world"}]},"taskType":"RETRIEVAL_QUERY"})",
      Gemini());
  ASSERT_EQ(r.head.status, 200) << r.body;
  auto d = Json(r.body);
  ExpectVector(d["embedding"]["values"], Fake("hello world"));
  EXPECT_EQ(d.MemberCount(), 1u);  // no usage
  EXPECT_EQ(fake_.Requests().back().api, Api::kGeminiEmbeddings);
  auto v1 = Json(Post("/v1/models/m:embedContent",
                      R"({"content":{"parts":[{"text":"a"}]},"outputDimensionality":4})", Gemini())
                     .body);
  ExpectVector(v1["embedding"]["values"], Fake("a", 4));

  const std::string batch_path = "/v1beta/models/text-embedding-004:batchEmbedContents";
  HttpResponse b = Post(
      batch_path,
      R"({"requests":[{"model":"models/text-embedding-004","content":{"parts":[{"text":"a"}]}},)"
      R"({"model":"models/text-embedding-004","content":{"parts":[{"text":"b"}]},)"
      R"("outputDimensionality":2}]})",
      Gemini());
  ASSERT_EQ(b.head.status, 200) << b.body;
  auto bd = Json(b.body);
  ASSERT_EQ(bd["embeddings"].Size(), 2u);
  ExpectVector(bd["embeddings"][0]["values"], Fake("a"));
  ExpectVector(bd["embeddings"][1]["values"], Fake("b", 2));

  HttpResponse mismatch = Post(
      batch_path, R"({"requests":[{"model":"models/other","content":{"parts":[{"text":"a"}]}}]})",
      Gemini());
  EXPECT_EQ(mismatch.head.status, 400);
  EXPECT_EQ(Str(Json(mismatch.body)["error"]["status"]), "INVALID_ARGUMENT");
  const std::string path = "/v1beta/models/text-embedding-004:embedContent";
  EXPECT_EQ(Post(path, R"({"content":{"parts":[]}})", Gemini()).head.status, 400);
  EXPECT_EQ(Post(path, "[1]", Gemini()).head.status, 400);
  HttpResponse wrong = Post(path, "{}", {{"x-goog-api-key", "bad"}});
  EXPECT_EQ(wrong.head.status, 400);
  EXPECT_EQ(Str(Json(wrong.body)["error"]["details"][0]["reason"]), "API_KEY_INVALID");
  EXPECT_EQ(Post(path, "{}", {}).head.status, 403);
}

constexpr char kTitan[] = "amazon.titan-embed-text-v2:0";
constexpr char kCohere[] = "cohere.embed-english-v3";

TEST_F(FakeProviderTest, BedrockTitanEmbeddings) {
  HttpResponse r = Invoke(kTitan, R"({"inputText":"hello big world"})");
  ASSERT_EQ(r.head.status, 200) << r.body;
  auto d = Json(r.body);
  ExpectVector(d["embedding"], Fake("hello big world"));
  EXPECT_EQ(d["inputTextTokenCount"].GetInt(), 3);
  EXPECT_EQ(d.MemberCount(), 2u);
  EXPECT_EQ(r.head.Header("X-Amzn-Bedrock-Input-Token-Count"), "3");
  const RecordedRequest rec = fake_.Requests().back();
  EXPECT_EQ(rec.api, Api::kBedrockInvoke);
  EXPECT_EQ(rec.path, "/model/amazon.titan-embed-text-v2%3A0/invoke");

  auto sized = Json(Invoke(kTitan, R"({"inputText":"x","dimensions":256,"normalize":true})").body);
  ExpectVector(sized["embedding"], Fake("x", 256));

  for (const char* body : {R"({"inputText":"x","dimensions":100})", R"({"inputText":""})",
                           R"({"texts":["x"]})", "{"}) {
    HttpResponse bad = Invoke(kTitan, body);
    EXPECT_EQ(bad.head.status, 400) << body;
    EXPECT_TRUE(bad.head.Header("x-amzn-ErrorType").starts_with("ValidationException:")) << body;
    EXPECT_TRUE(Json(bad.body).HasMember("message")) << body;
  }

  adapter::aws::Credentials wrong = fake_.credentials().aws;
  wrong.secret_access_key = "not-the-secret";
  HttpResponse denied = BedrockOp(kTitan, "invoke", R"({"inputText":"x"})", wrong);
  EXPECT_EQ(denied.head.status, 403);
  EXPECT_TRUE(denied.head.Header("x-amzn-ErrorType").starts_with("InvalidSignatureException:"));
  EXPECT_EQ(Post("/model/m/invoke", R"({"inputText":"x"})", {}).head.status, 403);
}

TEST_F(FakeProviderTest, BedrockCohereEmbeddings) {
  HttpResponse r = Invoke(kCohere, R"({"texts":["a b","c"],"input_type":"search_document"})");
  ASSERT_EQ(r.head.status, 200) << r.body;
  auto d = Json(r.body);
  EXPECT_FALSE(Str(d["id"]).empty());
  EXPECT_EQ(Str(d["response_type"]), "embeddings_floats");
  ASSERT_EQ(d["embeddings"].Size(), 2u);
  ExpectVector(d["embeddings"][0], Fake("a b"));
  ExpectVector(d["embeddings"][1], Fake("c"));
  EXPECT_EQ(Str(d["texts"][1]), "c");
  EXPECT_EQ(r.head.Header("X-Amzn-Bedrock-Input-Token-Count"), "3");

  auto typed = Json(Invoke(kCohere, R"({"texts":["a"],"input_type":"search_query",)"
                                    R"("truncate":"END","embedding_types":["float"]})")
                        .body);
  EXPECT_EQ(Str(typed["response_type"]), "embeddings_by_type");
  ExpectVector(typed["embeddings"]["float"][0], Fake("a"));

  std::string many = R"({"input_type":"clustering","texts":[)";
  for (int i = 0; i < 97; ++i) many += (i ? ",\"t\"" : "\"t\"");
  many += "]}";
  for (const std::string& body : {std::string(R"({"texts":["a"]})"), many,
                                  std::string(R"({"texts":[],"input_type":"clustering"})")}) {
    HttpResponse bad = Invoke(kCohere, body);
    EXPECT_EQ(bad.head.status, 400) << body;
    EXPECT_TRUE(bad.head.Header("x-amzn-ErrorType").starts_with("ValidationException:"));
  }
  // Other models: InvokeModel is served for the embedding models only.
  HttpResponse other = Invoke(kModelId, R"({"inputText":"x"})");
  EXPECT_EQ(other.head.status, 400);
  EXPECT_TRUE(other.head.Header("x-amzn-ErrorType").starts_with("ValidationException:"));
}

TEST_F(FakeProviderTest, EmbeddingPathsTakeFaults) {
  auto fault = [&](const std::string& path, const std::string& api, int status) {
    FakeFault f;
    f.path_prefix = path;
    f.api = api;
    f.status = status;
    f.count = 1;
    fake_.AddFault(f);
  };
  fault("/v1/embeddings", "", 429);
  fault("/openai/deployments/e/embeddings", "", 503);
  fault("/v1beta/models/g:embedContent", "", 500);
  fault("", "bedrock_invoke", 429);

  HttpResponse o = Post("/v1/embeddings", R"({"model":"m","input":"x"})", OpenAi());
  EXPECT_EQ(o.head.status, 429);
  EXPECT_EQ(Str(Json(o.body)["error"]["code"]), "rate_limit_exceeded");
  HttpResponse a =
      Post("/openai/deployments/e/embeddings?api-version=2024-10-21", R"({"input":"x"})", Azure());
  EXPECT_EQ(a.head.status, 503);
  EXPECT_EQ(Str(Json(a.body)["error"]["code"]), "503");
  HttpResponse g =
      Post("/v1beta/models/g:embedContent", R"({"content":{"parts":[{"text":"x"}]}})", Gemini());
  EXPECT_EQ(g.head.status, 500);
  EXPECT_EQ(Str(Json(g.body)["error"]["status"]), "INTERNAL");
  EXPECT_EQ(Bedrock(kModelId, false, kConverse, fake_.credentials().aws).head.status,
            200);  // the api names bedrock_invoke only
  HttpResponse b = Invoke(kTitan, R"({"inputText":"x"})");
  EXPECT_EQ(b.head.status, 429);
  EXPECT_TRUE(b.head.Header("x-amzn-ErrorType").starts_with("ThrottlingException"));
  // Each fault was used once.
  EXPECT_EQ(Post("/v1/embeddings", R"({"model":"m","input":"x"})", OpenAi()).head.status, 200);
  EXPECT_EQ(Invoke(kTitan, R"({"inputText":"x"})").head.status, 200);
}

// ------------------------------------------------------------------ faults

TEST_F(FakeProviderTest, StatusFaultsUseEachProvidersErrorFormat) {
  FakeFault f;
  f.status = 529;
  f.api = "anthropic";
  fake_.AddFault(f);
  f.status = 429;
  f.api = "bedrock";
  fake_.AddFault(f);
  f.status = 503;
  f.api = "gemini";
  fake_.AddFault(f);
  f.status = 500;
  f.api = "openai";
  fake_.AddFault(f);

  HttpResponse a = Post("/v1/messages", "{}", Anthropic());
  EXPECT_EQ(a.head.status, 529);
  EXPECT_EQ(Str(Json(a.body)["error"]["type"]), "overloaded_error");
  HttpResponse b = Bedrock(kModelId, false, kConverse, fake_.credentials().aws);
  EXPECT_EQ(b.head.status, 429);
  EXPECT_TRUE(b.head.Header("x-amzn-ErrorType").starts_with("ThrottlingException"));
  HttpResponse g = Post("/v1beta/models/g:generateContent", "{}", Gemini());
  EXPECT_EQ(g.head.status, 503);
  EXPECT_EQ(Str(Json(g.body)["error"]["status"]), "UNAVAILABLE");
  HttpResponse o = Post("/v1/chat/completions", kChat, OpenAi());
  EXPECT_EQ(o.head.status, 500);
  EXPECT_EQ(Str(Json(o.body)["error"]["type"]), "server_error");
  // Not faulted: another API.
  EXPECT_EQ(Post("/v1/responses", R"({"input":"x"})", OpenAi()).head.status, 200);
}

TEST_F(FakeProviderTest, FaultCountAndPathPrefix) {
  FakeFault f;
  f.path_prefix = "/v1/chat/";
  f.status = 503;
  f.count = 2;
  fake_.AddFault(f);
  EXPECT_EQ(Post("/v1/messages", "{}", Anthropic()).head.status, 200);  // other path
  EXPECT_EQ(Post("/v1/chat/completions", kChat, OpenAi()).head.status, 503);
  EXPECT_EQ(Post("/v1/chat/completions", kChat, OpenAi()).head.status, 503);
  EXPECT_EQ(Post("/v1/chat/completions", kChat, OpenAi()).head.status, 200);  // used up
}

TEST_F(FakeProviderTest, DelayFault) {
  FakeFault f;
  f.delay = milliseconds(300);
  fake_.AddFault(f);
  auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(Post("/v1/chat/completions", kChat, OpenAi()).head.status, 200);
  EXPECT_GE(std::chrono::steady_clock::now() - start, milliseconds(300));
}

TEST_F(FakeProviderTest, HangFaultHoldsUntilTheClientLeaves) {
  FakeFault f;
  f.hang = true;
  fake_.AddFault(f);
  HttpTimeouts t;
  t.first_byte = milliseconds(300);
  HttpResponse r = Post("/v1/chat/completions", kChat, OpenAi(), t);
  EXPECT_EQ(r.result.error, HttpErrorKind::kTimeout);
  ASSERT_TRUE(fake_.WaitFor(
      [](const auto& recs) { return !recs.empty() && recs.back().client_disconnected; },
      milliseconds(3000)));
  EXPECT_EQ(fake_.Requests().back().status, 0);
}

TEST_F(FakeProviderTest, DropAfterBytesTruncatesABody) {
  FakeFault f;
  f.drop_after_bytes = 20;
  fake_.AddFault(f);
  HttpResponse r = Post("/v1/chat/completions", kChat, OpenAi());
  EXPECT_EQ(r.result.error, HttpErrorKind::kProtocol);  // closed short of Content-Length
  EXPECT_EQ(r.body.size(), 20u);
  EXPECT_EQ(fake_.Requests().back().body_bytes_sent, 20u);
  EXPECT_FALSE(fake_.Requests().back().finished);
}

TEST_F(FakeProviderTest, DropAfterEventsCutsAStreamWithoutItsTerminator) {
  FakeFault f;
  f.drop_after_events = 3;
  fake_.AddFault(f);
  std::string body = kChat;
  body.insert(1, R"("stream":true,)");
  HttpResponse r = Post("/v1/chat/completions", body, OpenAi());
  EXPECT_EQ(r.result.error, HttpErrorKind::kProtocol);
  EXPECT_EQ(ParseSse(r.body).size(), 3u);
  EXPECT_EQ(r.body.find("[DONE]"), std::string::npos);
}

TEST_F(FakeProviderTest, ErrorAfterEventsSendsTheProvidersMidStreamError) {
  FakeFault f;
  f.error_after_events = 2;
  fake_.AddFault(f);
  std::string body = kChat;
  body.insert(1, R"("stream":true,)");
  HttpResponse o = Post("/v1/chat/completions", body, OpenAi());
  EXPECT_TRUE(o.result.ok());  // the HTTP stream itself ends cleanly
  auto events = ParseSse(o.body);
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(Str(Json(events[2].data)["error"]["type"]), "server_error");

  auto a = ParseSse(Post("/v1/messages", R"({"stream":true,"messages":[]})", Anthropic()).body);
  ASSERT_EQ(a.size(), 3u);
  EXPECT_EQ(a[2].event, "error");
  EXPECT_EQ(Str(Json(a[2].data)["error"]["type"]), "overloaded_error");

  fake_.ClearFaults();
  f.stream_error_type = "throttlingException";
  fake_.AddFault(f);
  auto frames = Frames(Bedrock(kModelId, true, kConverse, fake_.credentials().aws).body);
  ASSERT_EQ(frames.size(), 3u);
  EXPECT_EQ(frames[2].message_type(), "exception");
  EXPECT_EQ(frames[2].type(), "throttlingException");
}

TEST_F(FakeProviderTest, SlowStreamsHonourTheEventInterval) {
  FakeAnswer a;
  a.text = "one two three four";
  a.event_interval = milliseconds(50);
  fake_.SetAnswer(a);
  auto start = std::chrono::steady_clock::now();
  auto events =
      ParseSse(Post("/v1/messages", R"({"stream":true,"messages":[]})", Anthropic()).body);
  const auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_GE(elapsed, milliseconds(50) * (events.size() - 1));
}

// ------------------------------------------------------------------ control + record

TEST_F(FakeProviderTest, ControlEndpoints) {
  EXPECT_EQ(Get("/_fake/health").head.status, 200);
  HttpResponse set = Post("/_fake/faults", R"({"path":"/v1/messages","status":429,"count":1})", {});
  EXPECT_EQ(set.head.status, 200);
  EXPECT_EQ(Post("/v1/messages", "{}", Anthropic()).head.status, 429);
  EXPECT_EQ(Post("/v1/messages", "{}", Anthropic()).head.status, 200);

  Post("/_fake/faults", R"({"status":500})", {});
  EXPECT_EQ(Post("/v1/messages", "{}", Anthropic()).head.status, 500);
  HttpRequest del;
  del.method = "DELETE";
  del.url = fake_.base_url() + "/_fake/faults";
  EXPECT_EQ(Fetch(client_, del).get().head.status, 200);
  EXPECT_EQ(Post("/v1/messages", "{}", Anthropic()).head.status, 200);

  Post("/_fake/answer",
       R"({"text":"scripted","input_tokens":5,"output_tokens":2,"finish":"length"})", {});
  auto d = Json(Post("/v1/chat/completions", kChat, OpenAi()).body);
  EXPECT_EQ(Str(d["choices"][0]["message"]["content"]), "scripted");
  EXPECT_EQ(Str(d["choices"][0]["finish_reason"]), "length");
  EXPECT_EQ(d["usage"]["total_tokens"].GetInt(), 7);

  // The record over HTTP: control calls are not in it, credentials are redacted.
  auto records = Json(Get("/_fake/requests").body);
  ASSERT_TRUE(records.IsArray());
  for (const auto& r : records.GetArray()) {
    EXPECT_FALSE(Str(r["path"]).starts_with("/_fake/"));
    if (r["headers"].HasMember("x-api-key")) {
      EXPECT_EQ(Str(r["headers"]["x-api-key"]), "<redacted>");
    }
  }
  const auto& last = records[records.Size() - 1];
  EXPECT_EQ(Str(last["api"]), "openai");
  EXPECT_EQ(Str(last["method"]), "POST");
  EXPECT_EQ(Str(last["body"]), kChat);
  EXPECT_EQ(Str(last["headers"]["authorization"]), "<redacted>");
  EXPECT_EQ(last["status"].GetInt(), 200);
  EXPECT_TRUE(last["finished"].GetBool());

  Post("/_fake/reset", "{}", {});
  EXPECT_TRUE(fake_.Requests().empty());
  EXPECT_EQ(fake_.answer().text, FakeAnswer().text);
}

TEST_F(FakeProviderTest, RecordHoldsWhatWasReceived) {
  Post("/v1/chat/completions", kChat, {{"Authorization", "Bearer sk-fake-openai"}, {"X-T", "1"}});
  auto records = fake_.Requests();
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0].id, 1u);
  EXPECT_EQ(records[0].api, Api::kOpenAiChat);
  EXPECT_EQ(records[0].path, "/v1/chat/completions");
  EXPECT_EQ(records[0].Header("authorization"), "Bearer sk-fake-openai");
  EXPECT_EQ(records[0].Header("x-t"), "1");
  EXPECT_EQ(records[0].body, kChat);
  fake_.ClearRequests();
  EXPECT_TRUE(fake_.Requests().empty());
  EXPECT_EQ(Post("/nope", "{}", {}).head.status, 404);
}

TEST_F(FakeProviderTest, ManyConcurrentStreamsOverKeepAlive) {
  std::vector<std::future<HttpResponse>> calls;
  std::string body = kChat;
  body.insert(1, R"("stream":true,)");
  for (int i = 0; i < 100; ++i) {
    HttpRequest r;
    r.url = fake_.base_url() + "/v1/chat/completions";
    r.body = body;
    r.headers = {{"Authorization", "Bearer sk-fake-openai"}, {"Content-Type", "application/json"}};
    calls.push_back(Fetch(client_, r));
  }
  for (auto& c : calls) {
    HttpResponse r = c.get();
    ASSERT_TRUE(r.result.ok()) << r.result.message;
    EXPECT_EQ(ParseSse(r.body).back().data, "[DONE]");
  }
  // Reused connections: a second wave opens none.
  HttpResponse again = Post("/v1/chat/completions", kChat, OpenAi());
  EXPECT_EQ(again.result.new_connections, 0);
}

TEST(FakeProviderExecutableTest, ServesOnTheGivenPort) {
  const int port = tg::testing::FreePort();
  tg::testing::Process process("tg-fake-provider", tg::testing::BinDir() + "/tg-fake-provider",
                               {{"TG_PORT", std::to_string(port)}, {"TG_OPENAI_KEY", "sk-exe"}},
                               ::testing::TempDir() + "/tg-fake-provider.log");
  ASSERT_TRUE(process.Start());
  const std::string base = "http://127.0.0.1:" + std::to_string(port);
  ASSERT_TRUE(tg::testing::WaitFor(
      [&] { return tg::testing::Http("GET", base + "/_fake/health").status == 200; },
      milliseconds(10000)))
      << process.LogTail();
  auto r = tg::testing::Http("POST", base + "/v1/chat/completions", kChat,
                             {"Authorization: Bearer sk-exe", "Content-Type: application/json"});
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(tg::testing::Http("POST", base + "/v1/chat/completions", kChat,
                              {"Authorization: Bearer sk-fake-openai"})
                .status,
            401);
  EXPECT_EQ(process.Stop(), 0);
}

}  // namespace
}  // namespace tg::fakes
