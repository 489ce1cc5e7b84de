// Size: one RPC's tests (Invoke) across every provider and client format.
// tg-adapter's Invoke through real gRPC, a real ConfigWatcher and the real
// libcurl client, against the in-process fake provider: every provider ×
// streamed or not × OpenAI Chat and Anthropic clients, provider errors,
// connect and first-byte failures, mid-stream drops and errors, cancellation,
// Azure managed identity and Bedrock SigV4.
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <optional>
#include <thread>

#include "adapter_fixture.h"
#include "tg/adapter/translate/client_codec.h"
#include "tg/common/json_util.h"

namespace tg::adapter {
namespace {

using std::chrono::milliseconds;
using tg::v1::ClientFormat;
using tg::v1::ProviderError;

constexpr ClientFormat kOpenAi = tg::v1::CLIENT_FORMAT_OPENAI_CHAT;
constexpr ClientFormat kAnthropic = tg::v1::CLIENT_FORMAT_ANTHROPIC_MESSAGES;
constexpr ClientFormat kClients[] = {kOpenAi, kAnthropic};

// One row per provider: the target pointed at the fake, the fake's ApiName
// (to aim faults), and a model in the provider's naming.
struct ProviderCase {
  const char* target;
  const char* provider;
  const char* api;
  const char* model;
};
constexpr ProviderCase kProviders[] = {
    {"t-openai", "openai", "openai", "gpt-4o"},
    {"t-openai-responses", "openai", "responses", "gpt-4o"},  // provider_options.api
    {"t-anthropic", "anthropic", "anthropic", "claude-3-5-sonnet-20241022"},
    {"t-gemini", "gemini", "gemini", "gemini-1.5-flash"},
    {"t-bedrock", "bedrock", "bedrock", "anthropic.claude-3-haiku-20240307-v1:0"},
    {"t-azure", "azure", "azure", "gpt-4o"},
};
constexpr const ProviderCase& kBedrock = kProviders[4];

const char* Name(ClientFormat f) {
  return f == kOpenAi ? "openai-chat client" : "anthropic client";
}

rapidjson::Document Json(const std::string& s) {
  rapidjson::Document d;
  d.Parse(s.c_str());
  return d;
}

std::string Str(const rapidjson::Value& v, const char* key) {
  return v.IsObject() && v.HasMember(key) && v[key].IsString() ? v[key].GetString() : "";
}

struct SseEvent {
  std::string event;
  std::string data;
};

std::vector<SseEvent> ParseSse(const std::string& body) {
  std::vector<SseEvent> out;
  size_t at = 0;
  while (at < body.size()) {
    size_t end = body.find("\n\n", at);
    std::string block = body.substr(at, end == std::string::npos ? std::string::npos : end - at);
    at = end == std::string::npos ? body.size() : end + 2;
    SseEvent e;
    size_t line_at = 0;
    while (line_at < block.size()) {
      size_t nl = block.find('\n', line_at);
      std::string line =
          block.substr(line_at, nl == std::string::npos ? std::string::npos : nl - line_at);
      line_at = nl == std::string::npos ? block.size() : nl + 1;
      if (line.rfind("event: ", 0) == 0) e.event = line.substr(7);
      if (line.rfind("data: ", 0) == 0) e.data += line.substr(6);
    }
    if (!e.event.empty() || !e.data.empty()) out.push_back(std::move(e));
  }
  return out;
}

// Everything one Invoke produced, and whether it kept adapter.proto's order:
// exactly one head, first; chunks; at most one usage; exactly one end, last.
struct Answer {
  int heads = 0;
  tg::v1::ResponseHead head;
  std::vector<std::string> chunks;
  std::optional<tg::v1::Usage> usage;
  std::optional<tg::v1::InvokeEvent::End> end;
  bool ordered = true;
  grpc::Status status;

  std::string body() const {
    std::string b;
    for (const auto& c : chunks) b += c;
    return b;
  }
  // One event may carry several parts; they apply in field order.
  void Add(const tg::v1::InvokeEvent& e) {
    if (end || (heads == 0 && !e.has_head())) ordered = false;
    if (!e.has_head() && !e.has_chunk() && !e.has_usage() && !e.has_end()) ordered = false;
    ++messages;
    if (e.has_head()) {
      if (++heads > 1) ordered = false;
      head = e.head();
    }
    if (e.has_chunk()) {
      if (usage) ordered = false;
      chunks.push_back(e.chunk());
    }
    if (e.has_usage()) {
      if (usage) ordered = false;
      usage = e.usage();
    }
    if (e.has_end()) end = e.end();
  }
  int messages = 0;
};

// A well-formed answer carrying the fake's text, in the client's format.
void ExpectValidAnswer(ClientFormat client, bool stream, const std::string& body) {
  const std::string text = fakes::FakeAnswer{}.text;
  if (!stream) {
    auto d = Json(body);
    ASSERT_TRUE(d.IsObject()) << body;
    if (client == kOpenAi) {
      EXPECT_EQ(Str(d, "object"), "chat.completion") << body;
      ASSERT_TRUE(d.HasMember("choices") && d["choices"].IsArray() && !d["choices"].Empty())
          << body;
      EXPECT_EQ(Str(d["choices"][0]["message"], "content"), text) << body;
      EXPECT_EQ(Str(d["choices"][0], "finish_reason"), "stop") << body;
      EXPECT_TRUE(d.HasMember("usage") && d["usage"]["prompt_tokens"].GetInt() == 12) << body;
    } else {
      EXPECT_EQ(Str(d, "type"), "message") << body;
      ASSERT_TRUE(d.HasMember("content") && d["content"].IsArray() && !d["content"].Empty())
          << body;
      EXPECT_EQ(Str(d["content"][0], "text"), text) << body;
      EXPECT_EQ(Str(d, "stop_reason"), "end_turn") << body;
      EXPECT_TRUE(d.HasMember("usage") && d["usage"]["input_tokens"].GetInt() == 12) << body;
    }
    return;
  }
  auto events = ParseSse(body);
  ASSERT_GE(events.size(), 2u) << body;
  std::string got, stop;
  bool usage_chunk = false;
  if (client == kOpenAi) {
    EXPECT_EQ(events.back().data, "[DONE]") << body;
    for (size_t i = 0; i + 1 < events.size(); ++i) {
      auto d = Json(events[i].data);
      ASSERT_TRUE(d.IsObject() && !d.HasMember("error")) << events[i].data;
      EXPECT_EQ(Str(d, "object"), "chat.completion.chunk");
      if (d.HasMember("usage") && d["usage"].IsObject()) {
        usage_chunk = d["usage"]["prompt_tokens"].GetInt() == 12;
      }
      if (!d.HasMember("choices") || !d["choices"].IsArray() || d["choices"].Empty()) continue;
      const auto& c = d["choices"][0];
      got += Str(c["delta"], "content");
      if (!Str(c, "finish_reason").empty()) stop = Str(c, "finish_reason");
    }
    EXPECT_TRUE(usage_chunk) << "stream_options.include_usage was asked: " << body;
    EXPECT_EQ(stop, "stop") << body;
  } else {
    EXPECT_EQ(events.front().event, "message_start") << body;
    EXPECT_EQ(events.back().event, "message_stop") << body;
    for (const auto& e : events) {
      ASSERT_NE(e.event, "error") << body;
      auto d = Json(e.data);
      if (e.event == "content_block_delta") got += Str(d["delta"], "text");
      if (e.event == "message_delta") {
        stop = Str(d["delta"], "stop_reason");
        usage_chunk = d.HasMember("usage") && d["usage"].IsObject();
      }
    }
    EXPECT_TRUE(usage_chunk) << body;
    EXPECT_EQ(stop, "end_turn") << body;
  }
  EXPECT_EQ(got, text) << body;
}

// An error body (not streamed) in the client's format.
void ExpectErrorBody(ClientFormat client, const std::string& body) {
  auto d = Json(body);
  ASSERT_TRUE(d.IsObject() && d.HasMember("error") && d["error"].IsObject()) << body;
  EXPECT_FALSE(Str(d["error"], "message").empty()) << body;
  if (client == kAnthropic) {
    EXPECT_EQ(Str(d, "type"), "error") << body;
    EXPECT_FALSE(Str(d["error"], "type").empty()) << body;
  }
}

// A stream that broke: its last chunk is the client format's error event, and
// no terminator was ever sent.
void ExpectStreamEndsInError(ClientFormat client, const Answer& a) {
  ASSERT_FALSE(a.chunks.empty());
  auto last = ParseSse(a.chunks.back());
  ASSERT_FALSE(last.empty()) << a.chunks.back();
  auto body = a.body();
  if (client == kOpenAi) {
    auto d = Json(last.back().data);
    EXPECT_TRUE(d.IsObject() && d.HasMember("error")) << a.chunks.back();
    EXPECT_EQ(body.find("[DONE]"), std::string::npos) << body;
  } else {
    EXPECT_EQ(last.back().event, "error") << a.chunks.back();
    EXPECT_EQ(body.find("message_stop"), std::string::npos) << body;
  }
}

// The answer's text in a client stream: OpenAI Chat delta contents, or
// Anthropic text_delta texts, in order.
std::string StreamText(ClientFormat client, const std::string& body) {
  std::string text;
  for (const auto& e : ParseSse(body)) {
    auto d = Json(e.data);
    if (!d.IsObject()) continue;
    if (client == kOpenAi) {
      if (d.HasMember("choices") && d["choices"].IsArray() && !d["choices"].Empty()) {
        text += Str(d["choices"][0]["delta"], "content");
      }
    } else if (e.event == "content_block_delta") {
      text += Str(d["delta"], "text");
    }
  }
  return text;
}

class AdapterInvokeIT : public it::AdapterFixture {
 protected:
  void SetUp() override {
    StartFake();
    for (const auto& p : kProviders) {
      auto* t = AddTarget(p.target, p.provider);
      if (std::string(p.api) == "responses") {
        (*t->mutable_provider_options()->mutable_fields())["api"].set_string_value("responses");
      }
    }
    auto* mi = AddTarget("t-azure-mi", "azure")->mutable_credentials();
    mi->clear_api_key();
    mi->set_azure_use_managed_identity(true);
    AddTarget("t-bedrock-bad", "bedrock")
        ->mutable_credentials()
        ->set_aws_secret_access_key("wrong/secret");
    AddTarget("t-closed", "openai", it::ClosedPort());
    AdapterServiceOptions ao;
    ao.invocation.timeouts.first_byte = milliseconds(1000);  // the hang fault's 504
    ao.config_wait = milliseconds(300);
    StartAdapter(ao, 2, /*entra=*/true);
    stub_ = Stub(kEdgeIdentity);
  }

  tg::v1::InvokeRequest Request(const std::string& target, const std::string& model,
                                ClientFormat client, bool stream) {
    tg::v1::InvokeRequest req;
    req.set_request_id("req-" + std::to_string(++seq_));
    req.set_upstream_id("u1");
    req.set_target_id(targets_.at(target).id());
    req.set_effective_model(model);
    req.set_client_format(client);
    req.set_stream(stream);
    std::string s = stream ? "true" : "false";
    if (client == kOpenAi) {
      req.set_body(R"({"model":"gpt-4","messages":[{"role":"system","content":"Be brief."},)"
                   R"({"role":"user","content":"Hello!"}],"max_tokens":100,"stream":)" +
                   s + (stream ? R"(,"stream_options":{"include_usage":true}})" : "}"));
    } else {
      req.set_body(R"({"model":"claude","system":"Be brief.","max_tokens":100,)"
                   R"("messages":[{"role":"user","content":"Hello!"}],"stream":)" +
                   s + "}");
    }
    return req;
  }

  Answer Invoke(const tg::v1::InvokeRequest& req) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    auto reader = stub_->Invoke(&ctx, req);
    Answer a;
    tg::v1::InvokeEvent e;
    while (reader->Read(&e)) a.Add(e);
    a.status = reader->Finish();
    return a;
  }
  Answer Invoke(const ProviderCase& p, ClientFormat client, bool stream) {
    return Invoke(Request(p.target, p.model, client, stream));
  }

  void Fault(const char* api, std::function<void(fakes::FakeFault&)> set) {
    fake_.ClearFaults();
    fakes::FakeFault f;
    f.api = api;
    set(f);
    fake_.AddFault(f);
  }

  // A failure before any body byte: head `status`, one error body in the
  // client's format, End{ok=false, body_started=false}.
  void ExpectFailureAnswer(const Answer& a, ClientFormat client, int status,
                           ProviderError::Kind kind, bool retryable) {
    EXPECT_TRUE(a.status.ok()) << a.status.error_message();
    EXPECT_TRUE(a.ordered);
    EXPECT_EQ(a.head.status(), status);
    ASSERT_EQ(a.chunks.size(), 1u);
    ExpectErrorBody(client, a.chunks[0]);
    ASSERT_TRUE(a.end.has_value());
    EXPECT_FALSE(a.end->ok());
    EXPECT_FALSE(a.end->body_started());
    EXPECT_EQ(a.end->error().kind(), kind);
    EXPECT_EQ(a.end->error().http_status(), status);
    EXPECT_EQ(a.end->error().retryable(), retryable);
  }

  std::unique_ptr<tg::v1::ProviderAdapterService::Stub> stub_;
  int seq_ = 0;
};

TEST_F(AdapterInvokeIT, EveryProviderAnswersEveryClientStreamedAndNot) {
  for (const auto& p : kProviders) {
    for (auto client : kClients) {
      for (bool stream : {false, true}) {
        SCOPED_TRACE(std::string(p.target) + " / " + Name(client) + (stream ? " / stream" : ""));
        auto a = Invoke(p, client, stream);
        ASSERT_TRUE(a.status.ok()) << a.status.error_message();
        EXPECT_TRUE(a.ordered);
        EXPECT_EQ(a.head.status(), 200);
        EXPECT_EQ(a.head.content_type(), stream ? "text/event-stream" : "application/json");
        ExpectValidAnswer(client, stream, a.body());
        ASSERT_TRUE(a.usage.has_value());
        EXPECT_EQ(a.usage->input_tokens(), 12);
        EXPECT_EQ(a.usage->output_tokens(), 9);
        ASSERT_TRUE(a.end.has_value());
        EXPECT_TRUE(a.end->ok()) << a.end->error().message();
        // A whole answer travels as one message (head, body, usage, end).
        if (!stream) {
          EXPECT_EQ(a.messages, 1);
        }
      }
    }
  }
  // Every call reached the provider's own API, answered and finished.
  for (const auto& r : fake_.Requests()) {
    EXPECT_EQ(r.status, 200) << r.path;
    EXPECT_TRUE(r.finished) << r.path;
  }
  EXPECT_EQ(fake_.Requests().size(), std::size(kProviders) * 4);
}

TEST_F(AdapterInvokeIT, ProviderErrorsAreCompleteAnswersInTheClientFormat) {
  for (const auto& p : kProviders) {
    for (int status : {429, 400}) {
      Fault(p.api, [&](auto& f) { f.status = status; });
      for (auto client : kClients) {
        for (bool stream : {false, true}) {
          SCOPED_TRACE(std::string(p.target) + " / " + std::to_string(status) + " / " +
                       Name(client) + (stream ? " / stream" : ""));
          ExpectFailureAnswer(Invoke(p, client, stream), client, status, ProviderError::KIND_HTTP,
                              status == 429);
        }
      }
    }
  }
}

TEST_F(AdapterInvokeIT, ConnectRefusedAndFirstByteTimeout) {
  for (auto client : kClients) {
    SCOPED_TRACE(Name(client));
    ExpectFailureAnswer(Invoke(Request("t-closed", "gpt-4o", client, true)), client, 502,
                        ProviderError::KIND_CONNECT, true);
  }
  Fault("openai", [](auto& f) { f.hang = true; });
  auto started = std::chrono::steady_clock::now();
  ExpectFailureAnswer(Invoke(kProviders[0], kOpenAi, true), kOpenAi, 504,
                      ProviderError::KIND_TIMEOUT, true);
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(5));
  EXPECT_TRUE(
      fake_.WaitFor([](const auto& rs) { return rs.size() == 1 && rs[0].client_disconnected; },
                    milliseconds(2000)))
      << "the timed-out call is closed";
}

// The adapter calls only what its configuration holds: a target id it does
// not know (or one of another upstream) is a retryable failure answer, and
// no provider is called.
TEST_F(AdapterInvokeIT, ATargetNotInTheConfigurationIsNeverCalled) {
  fake_.ClearRequests();
  for (auto client : kClients) {
    SCOPED_TRACE(Name(client));
    auto req = Request("t-openai", "gpt-4o", client, false);
    req.set_target_id("not-configured");
    ExpectFailureAnswer(Invoke(req), client, 502, ProviderError::KIND_CONNECT, true);
    req = Request("t-openai", "gpt-4o", client, false);
    req.set_upstream_id("another-upstream");
    ExpectFailureAnswer(Invoke(req), client, 502, ProviderError::KIND_CONNECT, true);
  }
  EXPECT_TRUE(fake_.Requests().empty());
}

TEST_F(AdapterInvokeIT, BrokenStreamsEndInAnExplicitErrorNeverATerminator) {
  // 20 text events: a break after the 6th is mid-text in every format (the
  // Responses stream opens with four framing events).
  fakes::FakeAnswer long_answer;
  long_answer.text =
      "one two three four five six seven eight nine ten eleven twelve thirteen "
      "fourteen fifteen sixteen seventeen eighteen nineteen twenty";
  fake_.SetAnswer(long_answer);
  for (const auto& p : kProviders) {
    for (bool provider_error : {false, true}) {
      Fault(p.api,
            [&](auto& f) { (provider_error ? f.error_after_events : f.drop_after_events) = 6; });
      for (auto client : kClients) {
        SCOPED_TRACE(std::string(p.target) + " / " + Name(client) +
                     (provider_error ? " / provider error event" : " / dropped"));
        auto a = Invoke(p, client, true);
        ASSERT_TRUE(a.status.ok()) << a.status.error_message();
        EXPECT_TRUE(a.ordered);
        EXPECT_EQ(a.head.status(), 200);
        ExpectStreamEndsInError(client, a);
        ASSERT_TRUE(a.end.has_value());
        EXPECT_FALSE(a.end->ok());
        EXPECT_TRUE(a.end->body_started());
        if (!provider_error) {
          EXPECT_TRUE(a.end->error().retryable());
        }
      }
    }
  }
}

// Mid-stream rescue, adapter side. A resumable stream broken midway (every
// provider, both client formats) ends with End.error_event instead of an
// error chunk and says how far it got; that progress, handed to a new Invoke
// (here: every provider again, which continues the prefill), resumes the
// same client stream: no second start, the rest of the text, usage summed.
TEST_F(AdapterInvokeIT, ABrokenStreamIsResumedFromItsProgressOnEveryProvider) {
  fakes::FakeAnswer long_answer;
  long_answer.text =
      "one two three four five six seven eight nine ten eleven twelve thirteen "
      "fourteen fifteen sixteen seventeen eighteen nineteen twenty";
  fake_.SetAnswer(long_answer);
  for (const auto& p : kProviders) {
    for (auto client : kClients) {
      SCOPED_TRACE(std::string(p.target) + " / " + Name(client));
      Fault(p.api, [](auto& f) { f.drop_after_events = 6; });
      auto req = Request(p.target, p.model, client, true);
      req.set_resumable(true);
      auto broken = Invoke(req);
      ASSERT_TRUE(broken.status.ok()) << broken.status.error_message();
      ASSERT_TRUE(broken.end.has_value());
      EXPECT_FALSE(broken.end->ok());
      EXPECT_TRUE(broken.end->body_started());
      EXPECT_EQ(broken.body().find("error"), std::string::npos) << "set apart: " << broken.body();
      EXPECT_NE(broken.end->error_event().find("error"), std::string::npos);
      ASSERT_TRUE(broken.end->has_progress());
      const std::string so_far = StreamText(client, broken.body());
      EXPECT_FALSE(so_far.empty());
      EXPECT_EQ(broken.end->progress().text(), so_far);
      EXPECT_EQ(long_answer.text.rfind(so_far, 0), 0u) << so_far;

      fake_.ClearFaults();
      fake_.ClearRequests();
      auto next = Request(p.target, p.model, client, true);
      next.set_resumable(true);
      *next.mutable_resume() = broken.end->progress();
      next.mutable_resume()->mutable_usage()->set_input_tokens(100);
      next.mutable_resume()->mutable_usage()->set_output_tokens(10);
      auto resumed = Invoke(next);
      ASSERT_TRUE(resumed.status.ok()) << resumed.status.error_message();
      ASSERT_TRUE(resumed.end.has_value());
      EXPECT_TRUE(resumed.end->ok()) << resumed.end->error().message();
      const std::string body = resumed.body();
      EXPECT_EQ(so_far + StreamText(client, body), long_answer.text) << body;
      EXPECT_EQ(body.find("message_start"), std::string::npos) << body;
      EXPECT_EQ(body.find("\"role\""), std::string::npos) << body;
      ASSERT_TRUE(resumed.usage.has_value());
      EXPECT_EQ(resumed.usage->input_tokens(), 100 + long_answer.input_tokens);
      EXPECT_EQ(resumed.usage->output_tokens(), 10 + long_answer.output_tokens);
      auto requests = fake_.Requests();
      ASSERT_EQ(requests.size(), 1u);
      EXPECT_NE(requests[0].body.find(so_far.substr(so_far.find_last_of(' ') + 1) + "\""),
                std::string::npos)
          << "the text so far ends the conversation: " << requests[0].body;
    }
  }
}

// A prefill never ends in whitespace (Anthropic refuses it): the client has
// the space already, so the continuation's leading one is dropped.
TEST_F(AdapterInvokeIT, APrefillLosesItsTrailingSpaceAndTheContinuationItsLeadingOne) {
  translate::StreamEncoderOptions o;
  o.id = "chatcmpl-x";
  auto enc = translate::ClientCodecFor(translate::ClientFormat::kOpenAiChat).NewStreamEncoder(o);
  std::string sent;
  translate::StreamEvent hello;
  hello.content = "Hello from ";
  enc->Encode(hello, &sent);
  auto req = Request("t-anthropic", "claude-3-5-sonnet-20241022", kOpenAi, true);
  req.mutable_resume()->set_text("Hello from ");
  req.mutable_resume()->set_encoder_state(enc->SaveState());
  auto a = Invoke(req);
  ASSERT_TRUE(a.end.has_value() && a.end->ok());
  EXPECT_EQ(StreamText(kOpenAi, a.body()), "the fake provider!") << a.body();
  EXPECT_NE(a.body().find("chatcmpl-x"), std::string::npos) << "the same id: " << a.body();
  auto requests = fake_.Requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_NE(requests[0].body.find(R"("text":"Hello from"})"), std::string::npos)
      << requests[0].body;

  // A state that is not the client format's own is refused before any call.
  req.set_client_format(kAnthropic);
  req.set_body(
      R"({"model":"claude","max_tokens":10,"stream":true,"messages":[{"role":"user","content":"Hi"}]})");
  fake_.ClearRequests();
  a = Invoke(req);
  ASSERT_TRUE(a.end.has_value());
  EXPECT_FALSE(a.end->ok());
  EXPECT_EQ(a.head.status(), 400);
  EXPECT_TRUE(fake_.Requests().empty());
}

TEST_F(AdapterInvokeIT, ABreakBeforeAnyBodyByteIsStillOneCompleteFailureAnswer) {
  for (const auto& p : kProviders) {
    Fault(p.api, [](auto& f) { f.drop_after_events = 0; });
    SCOPED_TRACE(p.target);
    auto a = Invoke(p, kOpenAi, true);
    EXPECT_EQ(a.heads, 1);
    ExpectFailureAnswer(a, kOpenAi, 502, ProviderError::KIND_PROTOCOL, true);
  }
}

TEST_F(AdapterInvokeIT, CancellingTheCallStopsTheProviderCall) {
  fakes::FakeAnswer slow;
  slow.event_interval = milliseconds(250);
  fake_.SetAnswer(slow);
  for (const auto& p : kProviders) {
    SCOPED_TRACE(p.target);
    fake_.ClearRequests();
    grpc::ClientContext ctx;
    auto reader = stub_->Invoke(&ctx, Request(p.target, p.model, kOpenAi, true));
    tg::v1::InvokeEvent e;
    bool chunk = false;
    while (!chunk && reader->Read(&e)) chunk = e.has_chunk();
    ASSERT_TRUE(chunk);
    ctx.TryCancel();
    while (reader->Read(&e)) {
    }
    EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
    EXPECT_TRUE(
        fake_.WaitFor([](const auto& rs) { return rs.size() == 1 && rs[0].client_disconnected; },
                      milliseconds(2000)));
    EXPECT_FALSE(fake_.Requests().at(0).finished);
  }
}

TEST_F(AdapterInvokeIT, AzureManagedIdentityFetchesOneTokenForManyCalls) {
  for (bool stream : {false, true}) {
    auto a = Invoke(Request("t-azure-mi", "gpt-4o", kOpenAi, stream));
    EXPECT_EQ(a.head.status(), 200) << a.body();
    ExpectValidAnswer(kOpenAi, stream, a.body());
    ASSERT_TRUE(a.end.has_value());
    EXPECT_TRUE(a.end->ok()) << a.end->error().message();
  }
  int imds = 0, azure = 0;
  for (const auto& r : fake_.Requests()) {
    if (r.api == fakes::Api::kImds) {
      ++imds;
      EXPECT_EQ(r.Header("metadata"), "true");
    }
    if (r.api == fakes::Api::kAzure) {
      ++azure;
      EXPECT_EQ(r.Header("authorization"), "Bearer " + fake_.credentials().azure_entra_token);
      EXPECT_EQ(r.Header("api-key"), "");
    }
  }
  EXPECT_EQ(imds, 1) << "the token is cached";
  EXPECT_EQ(azure, 2);
}

TEST_F(AdapterInvokeIT, BedrockCallsAreSigV4SignedAndABadSecretIs403) {
  auto a = Invoke(kBedrock, kOpenAi, false);
  EXPECT_EQ(a.head.status(), 200) << a.body();
  auto rs = fake_.Requests();
  ASSERT_EQ(rs.size(), 1u);
  EXPECT_EQ(
      rs[0]
          .Header("authorization")
          .rfind("AWS4-HMAC-SHA256 Credential=" + fake_.credentials().aws.access_key_id + "/", 0),
      0u)
      << rs[0].Header("authorization");
  EXPECT_EQ(rs[0].path, "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse");
  for (bool stream : {false, true}) {
    ExpectFailureAnswer(Invoke(Request("t-bedrock-bad", kBedrock.model, kAnthropic, stream)),
                        kAnthropic, 403, ProviderError::KIND_HTTP, false);
  }
}

TEST_F(AdapterInvokeIT, ACallAheadOfTheConfigWaitsBrieflyThenGoesOnWithWhatItHas) {
  auto req = Request("t-openai", "gpt-4o", kOpenAi, false);
  req.set_min_config_revision(4);  // this replica holds 3
  auto started = std::chrono::steady_clock::now();
  auto a = Invoke(req);
  EXPECT_GE(std::chrono::steady_clock::now() - started, milliseconds(300));
  EXPECT_EQ(a.head.status(), 200) << a.body();
  // A stopped watch answers the wait at once, from inside the call's setup.
  watcher_->Stop();
  a = Invoke(req);
  EXPECT_TRUE(a.status.ok()) << a.status.error_message();
  EXPECT_EQ(a.head.status(), 200) << a.body();
}

}  // namespace
}  // namespace tg::adapter
