// Golden-file tests of the adapter's translation layer
// (tests/unit/golden/adapter/):
//
//   requests/<case>.json   {"client", "target", "body"}: a client's body and
//                          the target it goes to;
//     <case>.expected.json {"canonical", "http"}: the canonical request and
//                          the HTTP call built for the provider.
//   responses/<case>.json  {"provider", "status", "body"}: a provider's answer;
//     <case>.expected.json the canonical answer (or the error) and what each
//                          client format receives.
//   streams/<case>.sse     a provider's raw stream (Bedrock: <case>.events.jsonl,
//                          one decoded eventstream message per line);
//     <case>.events.jsonl  the canonical events, and <case>.<client>.sse the
//                          bytes each client format receives.
//
// Every stream is also fed one byte at a time and in uneven splits: the
// output must not depend on how the network cut it.
//
// TG_UPDATE_GOLDEN=1 rewrites the expected files (review the diff!).
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "tg/adapter/translate/canonical.h"
#include "tg/adapter/translate/client_codec.h"
#include "tg/adapter/translate/json.h"
#include "tg/adapter/translate/provider_codec.h"

#ifndef TG_GOLDEN_DIR
#error "TG_GOLDEN_DIR must point at tests/unit/golden"
#endif

namespace tg::adapter::translate {
namespace {

namespace fs = std::filesystem;
using json::Value;

const fs::path kGolden = fs::path(TG_GOLDEN_DIR) / "adapter";

bool Updating() {
  const char* v = std::getenv("TG_UPDATE_GOLDEN");
  return v != nullptr && std::string(v) == "1";
}

std::string ReadFile(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void WriteFile(const fs::path& p, const std::string& s) {
  std::ofstream out(p, std::ios::binary);
  out << s;
}

std::vector<fs::path> Cases(const std::string& dir, const std::string& suffix) {
  std::vector<fs::path> out;
  if (!fs::exists(kGolden / dir)) return out;
  for (const auto& entry : fs::directory_iterator(kGolden / dir)) {
    std::string name = entry.path().filename().string();
    if (name.size() > suffix.size() && name.ends_with(suffix) &&
        name.find(".expected") == std::string::npos &&
        name.find('.') == name.size() - suffix.size()) {
      out.push_back(entry.path());
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::string CaseName(const fs::path& p) {
  std::string name = p.filename().string();
  return name.substr(0, name.find('.'));
}

// Compares `actual` (pretty JSON) with the expected file semantically, or
// rewrites the file when updating.
void ExpectJsonGolden(const fs::path& expected_path, const std::string& actual) {
  if (Updating()) {
    WriteFile(expected_path, actual + "\n");
    return;
  }
  ASSERT_TRUE(fs::exists(expected_path))
      << expected_path << " missing; run with TG_UPDATE_GOLDEN=1";
  json::Document want, got;
  std::string error;
  ASSERT_TRUE(json::Parse(ReadFile(expected_path), &want, &error))
      << expected_path << ": " << error;
  ASSERT_TRUE(json::Parse(actual, &got, &error)) << error;
  EXPECT_TRUE(want == got) << expected_path << "\n--- got:\n" << actual;
}

void ExpectTextGolden(const fs::path& expected_path, const std::string& actual) {
  if (Updating()) {
    WriteFile(expected_path, actual);
    return;
  }
  ASSERT_TRUE(fs::exists(expected_path))
      << expected_path << " missing; run with TG_UPDATE_GOLDEN=1";
  EXPECT_EQ(ReadFile(expected_path), actual) << expected_path;
}

std::string_view FormatName(ClientFormat f) {
  switch (f) {
    case ClientFormat::kOpenAiChat:
      return "openai_chat";
    case ClientFormat::kAnthropicMessages:
      return "anthropic";
    case ClientFormat::kOpenAiResponses:
      return "responses";
  }
  return "";
}

constexpr ClientFormat kFormats[] = {ClientFormat::kOpenAiChat, ClientFormat::kAnthropicMessages,
                                     ClientFormat::kOpenAiResponses};

ClientFormat ParseFormat(std::string_view name) {
  for (ClientFormat f : kFormats) {
    if (FormatName(f) == name) return f;
  }
  ADD_FAILURE() << "unknown client format " << name;
  return ClientFormat::kOpenAiChat;
}

TargetInfo ParseTarget(const Value& t) {
  TargetInfo target;
  target.provider = json::GetString(t, "provider");
  target.model = json::GetString(t, "model");
  target.path = json::GetString(t, "path");
  target.host = json::GetString(t, "host");
  target.port = static_cast<int>(json::GetInt(t, "port"));
  target.protocol = json::GetString(t, "protocol");
  if (const Value* o = json::GetObject(t, "provider_options")) {
    target.api = json::GetString(*o, "api");
    target.api_version = json::GetString(*o, "api_version");
  }
  if (const Value* h = json::GetObject(t, "headers")) {
    for (const auto& m : h->GetObject()) {
      target.headers.emplace_back(m.name.GetString(), m.value.GetString());
    }
  }
  target.stream = json::GetBool(t, "stream");
  target.aws_region = json::GetString(t, "aws_region");
  target.azure_endpoint = json::GetString(t, "azure_endpoint");
  target.azure_version = json::GetString(t, "azure_version");
  target.azure_use_managed_identity = json::GetBool(t, "azure_use_managed_identity");
  return target;
}

std::string_view FramingName(BodyFraming f) {
  switch (f) {
    case BodyFraming::kJson:
      return "json";
    case BodyFraming::kSse:
      return "sse";
    case BodyFraming::kAwsEventStream:
      return "aws-eventstream";
  }
  return "";
}

std::string_view KindName(ErrorKind k) {
  switch (k) {
    case ErrorKind::kHttp:
      return "http";
    case ErrorKind::kProtocol:
      return "protocol";
    case ErrorKind::kStreamBroken:
      return "stream_broken";
    case ErrorKind::kInvalidRequest:
      return "invalid_request";
  }
  return "";
}

Value ErrorValue(const AdapterError& e, json::Allocator& a) {
  Value v(rapidjson::kObjectType);
  v.AddMember("kind", json::Str(KindName(e.kind), a), a);
  v.AddMember("http_status", e.http_status, a);
  v.AddMember("retryable", e.retryable, a);
  v.AddMember("type", json::Str(e.type, a), a);
  v.AddMember("message", json::Str(e.message, a), a);
  return v;
}

// Parses a JSON text into a value of `a`, or keeps it as a string.
Value JsonOrString(const std::string& text, json::Allocator& a) {
  json::Document d;
  d.Parse(text.data(), text.size());
  if (d.HasParseError()) return json::Str(text, a);
  return Value(d, a);
}

const ResponseContext kContext{"ctx-model", 1700000000, "req-golden-1"};

// ---- requests ---------------------------------------------------------------

class RequestGolden : public ::testing::TestWithParam<fs::path> {};

TEST_P(RequestGolden, TranslatesClientBodyToProviderCall) {
  json::Document in;
  std::string error;
  ASSERT_TRUE(json::Parse(ReadFile(GetParam()), &in, &error)) << error;
  ClientFormat format = ParseFormat(json::GetString(in, "client"));
  const Value* body = json::Find(in, "body");
  ASSERT_NE(body, nullptr);
  std::string body_text = body->IsString() ? std::string(json::AsString(body)) : json::Write(*body);
  TargetInfo target = ParseTarget(*json::GetObject(in, "target"));

  json::Document out;
  out.SetObject();
  json::Allocator& a = out.GetAllocator();
  Result<ChatRequest> req = ClientCodecFor(format).DecodeRequest(body_text);
  if (!req.ok()) {
    out.AddMember("decode_error", ErrorValue(req.error(), a), a);
  } else {
    out.AddMember("canonical", Value(req.value().doc, a), a);
    const ProviderCodec* codec = ProviderCodecFor(target);
    ASSERT_NE(codec, nullptr) << target.provider;
    Result<HttpRequestSpec> http = codec->BuildRequest(req.value(), target);
    if (!http.ok()) {
      out.AddMember("build_error", ErrorValue(http.error(), a), a);
    } else {
      const HttpRequestSpec& h = http.value();
      Value v(rapidjson::kObjectType);
      v.AddMember("method", json::Str(h.method, a), a);
      v.AddMember("url", json::Str(h.url, a), a);
      v.AddMember("auth", json::Str(AuthSchemeName(h.auth), a), a);
      if (!h.aws_service.empty()) {
        v.AddMember("aws_service", json::Str(h.aws_service, a), a);
        v.AddMember("aws_region", json::Str(h.aws_region, a), a);
      }
      v.AddMember("framing", json::Str(FramingName(h.framing), a), a);
      Value headers(rapidjson::kArrayType);
      for (const auto& [name, value] : h.headers) {
        Value pair(rapidjson::kArrayType);
        pair.PushBack(json::Str(name, a), a);
        pair.PushBack(json::Str(value, a), a);
        headers.PushBack(pair, a);
      }
      v.AddMember("headers", headers, a);
      v.AddMember("body", JsonOrString(h.body, a), a);
      out.AddMember("http", v, a);
    }
  }
  fs::path expected = GetParam();
  expected.replace_extension(".expected.json");
  ExpectJsonGolden(expected, json::WritePretty(out));
}

INSTANTIATE_TEST_SUITE_P(Golden, RequestGolden, ::testing::ValuesIn(Cases("requests", ".json")),
                         [](const auto& info) { return CaseName(info.param); });

// ---- responses --------------------------------------------------------------

class ResponseGolden : public ::testing::TestWithParam<fs::path> {};

TEST_P(ResponseGolden, TranslatesProviderAnswerForEveryClient) {
  json::Document in;
  std::string error;
  ASSERT_TRUE(json::Parse(ReadFile(GetParam()), &in, &error)) << error;
  TargetInfo target = ParseTarget(*json::GetObject(in, "target"));
  const ProviderCodec* codec = ProviderCodecFor(target);
  ASSERT_NE(codec, nullptr);
  int status = static_cast<int>(json::GetInt(in, "status", 200));
  const Value* body = json::Find(in, "body");
  ASSERT_NE(body, nullptr);
  std::string body_text = body->IsString() ? std::string(json::AsString(body)) : json::Write(*body);

  json::Document out;
  out.SetObject();
  json::Allocator& a = out.GetAllocator();
  Result<ChatResponse> resp = codec->ParseResponse(status, body_text, kContext);
  if (!resp.ok()) {
    out.AddMember("error", ErrorValue(resp.error(), a), a);
    for (ClientFormat f : kFormats) {
      out.AddMember(json::Str(FormatName(f), a),
                    JsonOrString(ClientCodecFor(f).EncodeError(resp.error()), a), a);
    }
  } else {
    out.AddMember("canonical", JsonOrString(WriteChatCompletion(resp.value()), a), a);
    for (ClientFormat f : kFormats) {
      out.AddMember(json::Str(FormatName(f), a),
                    JsonOrString(ClientCodecFor(f).EncodeResponse(resp.value()), a), a);
    }
  }
  fs::path expected = GetParam();
  expected.replace_extension(".expected.json");
  ExpectJsonGolden(expected, json::WritePretty(out));
}

INSTANTIATE_TEST_SUITE_P(Golden, ResponseGolden, ::testing::ValuesIn(Cases("responses", ".json")),
                         [](const auto& info) { return CaseName(info.param); });

// ---- streams ----------------------------------------------------------------

// The provider is the case name's prefix: `anthropic_tool_calls.sse`.
std::string ProviderOf(const std::string& case_name) {
  for (std::string_view p :
       {"openai_responses", "openai", "anthropic", "gemini", "bedrock", "azure"}) {
    if (case_name.starts_with(p)) return std::string(p);
  }
  return "";
}

const ProviderCodec* CodecOf(const std::string& provider) {
  if (provider == "openai_responses") return FindProviderCodec("openai", "responses");
  return FindProviderCodec(provider);
}

std::string EventLine(const StreamEvent& ev) {
  json::Document d;
  d.SetObject();
  json::Allocator& a = d.GetAllocator();
  auto usage = [&](const Usage& u) {
    Value v(rapidjson::kObjectType);
    v.AddMember("prompt", u.prompt_tokens, a);
    v.AddMember("completion", u.completion_tokens, a);
    v.AddMember("total", u.total_tokens, a);
    v.AddMember("cached", u.cached_tokens, a);
    v.AddMember("reasoning", u.reasoning_tokens, a);
    return v;
  };
  switch (ev.type) {
    case StreamEvent::Type::kStart:
      d.AddMember("start", true, a);
      d.AddMember("id", json::Str(ev.id, a), a);
      d.AddMember("model", json::Str(ev.model, a), a);
      d.AddMember("created", ev.created, a);
      d.AddMember("usage", usage(ev.usage), a);
      break;
    case StreamEvent::Type::kDelta: {
      d.AddMember("delta", ev.choice, a);
      if (!ev.content.empty()) d.AddMember("content", json::Str(ev.content, a), a);
      if (!ev.refusal.empty()) d.AddMember("refusal", json::Str(ev.refusal, a), a);
      if (!ev.tool_calls.empty()) {
        Value calls(rapidjson::kArrayType);
        for (const ToolCallDelta& tc : ev.tool_calls) {
          Value c(rapidjson::kObjectType);
          c.AddMember("index", tc.index, a);
          if (!tc.id.empty()) c.AddMember("id", json::Str(tc.id, a), a);
          if (!tc.name.empty()) c.AddMember("name", json::Str(tc.name, a), a);
          c.AddMember("arguments", json::Str(tc.arguments, a), a);
          calls.PushBack(c, a);
        }
        d.AddMember("tool_calls", calls, a);
      }
      if (!ev.finish_reason.empty()) d.AddMember("finish", json::Str(ev.finish_reason, a), a);
      break;
    }
    case StreamEvent::Type::kUsage:
      d.AddMember("usage", usage(ev.usage), a);
      break;
    case StreamEvent::Type::kEnd:
      d.AddMember("end", true, a);
      break;
    case StreamEvent::Type::kError:
      d.AddMember("error", ErrorValue(ev.error, a), a);
      break;
  }
  return json::Write(d);
}

struct BedrockEvent {
  std::string type;
  std::string payload;
};

std::vector<BedrockEvent> ReadBedrockEvents(const fs::path& p) {
  std::vector<BedrockEvent> out;
  std::istringstream lines(ReadFile(p));
  std::string line;
  while (std::getline(lines, line)) {
    if (line.empty()) continue;
    json::Document d;
    d.Parse(line.data(), line.size());
    EXPECT_FALSE(d.HasParseError()) << line;
    if (d.HasParseError()) continue;
    const Value* payload = json::Find(d, "payload");
    out.push_back({std::string(json::GetString(d, "type")),
                   payload == nullptr ? ""
                                      : (payload->IsString() ? std::string(json::AsString(payload))
                                                             : json::Write(*payload))});
  }
  return out;
}

// Decodes the provider stream with the given split size (0: whole).
StreamEvents DecodeStream(const ProviderCodec& codec, const std::string& raw, size_t split) {
  auto decoder = codec.NewStreamDecoder(kContext);
  StreamEvents events;
  if (split == 0) split = raw.size() + 1;
  for (size_t pos = 0; pos < raw.size(); pos += split) {
    decoder->Feed(std::string_view(raw).substr(pos, split), &events);
  }
  decoder->Finish(&events);
  return events;
}

StreamEvents DecodeBedrock(const ProviderCodec& codec, const std::vector<BedrockEvent>& input) {
  auto decoder = codec.NewStreamDecoder(kContext);
  StreamEvents events;
  for (const BedrockEvent& e : input) decoder->FeedEvent(e.type, e.payload, &events);
  decoder->Finish(&events);
  return events;
}

std::string EncodeFor(ClientFormat f, const StreamEvents& events) {
  StreamEncoderOptions options;
  options.include_usage = true;
  options.id = "gw-req-golden-1";
  options.model = "ctx-model";
  options.created = 1700000000;
  auto encoder = ClientCodecFor(f).NewStreamEncoder(options);
  std::string out;
  for (const StreamEvent& ev : events) encoder->Encode(ev, &out);
  return out;
}

class StreamGolden : public ::testing::TestWithParam<fs::path> {};

TEST_P(StreamGolden, DecodesAndReencodesForEveryClient) {
  const fs::path& input = GetParam();
  std::string name = CaseName(input);
  const ProviderCodec* codec = CodecOf(ProviderOf(name));
  ASSERT_NE(codec, nullptr) << name;
  StreamEvents events;
  if (input.extension() == ".jsonl") {
    events = DecodeBedrock(*codec, ReadBedrockEvents(input));
  } else {
    std::string raw = ReadFile(input);
    events = DecodeStream(*codec, raw, 0);
    // Splitting anywhere gives the same events.
    std::string whole;
    for (const StreamEvent& ev : events) whole += EventLine(ev) + "\n";
    for (size_t split : {1, 2, 3, 7, 64}) {
      std::string again;
      for (const StreamEvent& ev : DecodeStream(*codec, raw, split)) again += EventLine(ev) + "\n";
      EXPECT_EQ(whole, again) << name << " split " << split;
    }
  }
  std::string lines;
  for (const StreamEvent& ev : events) lines += EventLine(ev) + "\n";
  fs::path dir = input.parent_path();
  ExpectTextGolden(dir / (name + ".expected.events.jsonl"), lines);
  for (ClientFormat f : kFormats) {
    ExpectTextGolden(dir / (name + ".expected." + std::string(FormatName(f)) + ".sse"),
                     EncodeFor(f, events));
  }
}

std::vector<fs::path> StreamCases() {
  std::vector<fs::path> out = Cases("streams", ".sse");
  for (const fs::path& p : Cases("streams", ".jsonl")) out.push_back(p);
  return out;
}

INSTANTIATE_TEST_SUITE_P(Golden, StreamGolden, ::testing::ValuesIn(StreamCases()),
                         [](const auto& info) { return CaseName(info.param); });

}  // namespace
}  // namespace tg::adapter::translate
