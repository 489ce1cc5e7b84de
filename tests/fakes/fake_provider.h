#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "fake_wire.h"
#include "tg/adapter/aws/sigv4.h"

namespace tg::fakes {

// One fake LLM provider speaking all five native APIs over plain HTTP/1.1 on
// 127.0.0.1, for tests and benchmarks:
//
//   POST /v1/chat/completions                          OpenAI Chat (Bearer)
//   POST /v1/responses                                 OpenAI Responses (Bearer)
//   POST /v1/messages                                  Anthropic (x-api-key + anthropic-version)
//   POST /v1beta/models/{m}:generateContent            Gemini (x-goog-api-key or ?key=)
//   POST /v1beta/models/{m}:streamGenerateContent[?alt=sse]
//   POST /model/{id}/converse | /converse-stream       Bedrock (SigV4, eventstream)
//   POST /openai/deployments/{d}/chat/completions?api-version=…   Azure (api-key or Entra Bearer)
//   POST /openai/v1/chat/completions                   Azure v1 endpoint
//   POST /v1/embeddings                                OpenAI embeddings (Bearer)
//   POST /openai/deployments/{d}/embeddings?api-version=…   Azure embeddings; /openai/v1/embeddings
//   POST /v1beta/models/{m}:embedContent | :batchEmbedContents   Gemini embeddings
//   POST /model/{id}/invoke                            Bedrock InvokeModel: Titan and Cohere
//                                                      embedding models (SigV4)
//   GET  /v1/models                                    OpenAI (Bearer) or, with x-api-key or
//                                                      anthropic-version, Anthropic model list
//   GET  /v1beta/models | /foundation-models | /openai/models   Gemini, Bedrock, Azure model list
//   GET  /metadata/identity/oauth2/token               Azure IMDS (Metadata: true)
//   GET  /_fake/stream?chunks=N&size=S&interval_ms=I   raw chunked bytes (HTTP client tests)
//
// Each checks its credentials and answers in the provider's exact wire format
// (errors included), streamed or not; embeddings are FakeEmbedding() vectors
// (fake_wire.h), kFakeEmbeddingDimensions long unless the request says. Control endpoints (never
// recorded, never faulted):
//
//   GET /_fake/health            {"status":"ok","port":N}
//   GET /_fake/requests          the record, credentials redacted; DELETE clears it
//   POST /_fake/faults {"path","api","status","error_type","retry_after","delay_ms","hang",
//                                 "close_before_head",
//                                 "drop_after_bytes",
//                                 "drop_after_events","error_after_events",
//                                 "stream_error_type","malformed","malformed_size",
//                                 "omit_done","garbage_before_event","garbage_events",
//                                 "delay_before_event","event_delay_ms","reject_prefill",
//                                 "count"}; DELETE clears them
//   POST /_fake/answer           {"text","tool_calls":[{"id","name","arguments"}],"finish",
//                                 "input_tokens","output_tokens","cached_tokens",
//                                 "event_interval_ms","auto_tool_arguments"}
//   POST /_fake/reset            faults, record and answer back to their defaults
//
// Threads: the server runs its own Asio threads; every public method is
// thread-safe.

struct FakeCredentials {
  std::string openai_key = "sk-fake-openai";
  std::string anthropic_key = "sk-ant-fake";
  std::string gemini_key = "fake-gemini-key";
  std::string azure_key = "fake-azure-key";
  // Accepted by Azure as "Authorization: Bearer …" and served by the fake IMDS.
  std::string azure_entra_token = "fake-entra-token";
  adapter::aws::Credentials aws{"AKIDFAKEEXAMPLE", "fake/Secret/Key+EXAMPLE", ""};
  std::string aws_region = "us-east-1";  // "" accepts any region in the credential scope
  // X-Amz-Date must be this close to the fake's clock; 0 disables the check
  // (tests that sign at a fixed date).
  std::chrono::seconds aws_max_skew{15 * 60};
};

// A misbehaviour, applied to matching requests before anything else.
struct FakeFault {
  std::string path_prefix;  // "" matches every path; else a prefix of the path (no query)
  std::string api;          // "" any; else ApiName(): "openai", "bedrock", …
  int status = 0;           // > 0: answer this status in the provider's error format
  // That answer's error type ("" the provider's usual one for the status;
  // OpenAI "context_length_exceeded": its 400 for a prompt over the context;
  // "content_filter": its 400 for a refused prompt).
  std::string error_type;
  // Set on that status answer, replacing the provider's own of the same name
  // ("Retry-After": "2"; control JSON: "retry_after").
  std::vector<std::pair<std::string, std::string>> headers;
  std::chrono::milliseconds delay{0};  // wait this long before answering
  bool hang = false;  // never answer; the connection stays open until the client leaves
  bool close_before_head = false;   // read the request, then close the connection without a byte
  int64_t drop_after_bytes = -1;    // >= 0: close the connection after this many body bytes
  int64_t drop_after_events = -1;   // >= 0: close after this many stream events (no terminator)
  int64_t error_after_events = -1;  // >= 0: after this many events, the provider's mid-stream
                                    // error event, then the stream ends
  std::string stream_error_type;    // "" provider default; Bedrock: the exception type
  // Hostile answers (issue 11), instead of the provider's own:
  //   "deep_json": 200, application/json, `malformed_size` nested arrays;
  //   "sse_without_blank_lines": 200, text/event-stream, `malformed_size`
  //     bytes of `data:` lines with no blank line, so no event ever ends;
  //   "invalid_utf8_error": `status` (default 500), a text body and an
  //     X-Fake-Bytes header with bytes that are not UTF-8.
  std::string malformed;
  int64_t malformed_size = 200000;
  // Stream shapes (issue 12), on an otherwise good stream:
  bool omit_done = false;             // no `data: [DONE]` (OpenAI): the body just ends, cleanly
  int64_t garbage_before_event = -1;  // >= 0: `garbage_events` events that are not JSON
  int garbage_events = 1;             //   go before this event (clamped to the end)
  // >= 0: wait event_delay before sending this stream event (1: after the
  // OpenAI role-only chunk, so the head and a chunk come at once but the
  // first token late).
  int64_t delay_before_event = -1;
  std::chrono::milliseconds event_delay{0};
  // A request that ends with an assistant message (a prefill) gets a 400, as
  // from a model that refuses prefill; other requests are served as usual.
  bool reject_prefill = false;
  int count = -1;  // requests it applies to; -1 until cleared
};

struct RecordedRequest {
  uint64_t id = 0;  // 1, 2, … in arrival order
  Api api = Api::kUnknown;
  std::string method;
  std::string path;   // without the query, as received (still percent-encoded)
  std::string query;  // without '?'
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  int status = 0;                    // status answered; 0 while waiting or when hung
  bool finished = false;             // the whole answer was written
  bool client_disconnected = false;  // the client went away before the answer was complete
  uint64_t body_bytes_sent = 0;
  uint64_t events_sent = 0;

  // First value of a header, case-insensitively; "" when absent.
  std::string Header(std::string_view name) const;
};

struct FakeProviderOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 0;  // 0 picks a free port; see port()
  int threads = 2;
  FakeCredentials credentials;
  bool record = true;  // keep a RecordedRequest per request (benchmarks turn it off)
  size_t max_body_bytes = 32 * 1024 * 1024;
};

class FakeProvider {
 public:
  explicit FakeProvider(FakeProviderOptions options = {});
  ~FakeProvider();  // Stop()
  FakeProvider(const FakeProvider&) = delete;
  FakeProvider& operator=(const FakeProvider&) = delete;

  // Binds and starts serving; false (and *error) when the address cannot be bound.
  bool Start(std::string* error = nullptr);
  // Closes the listener and every connection, then joins the threads. Idempotent.
  void Stop();

  uint16_t port() const;
  std::string base_url() const;  // "http://127.0.0.1:<port>"
  const FakeCredentials& credentials() const;
  // A target for the admin API (JSON) of `provider` (openai, anthropic,
  // gemini, azure, bedrock) pointed at this fake, with its credentials;
  // `extra` adds members, each followed by ", ".
  std::string TargetJson(const std::string& provider, const std::string& extra = "") const;

  void SetAnswer(FakeAnswer answer);
  FakeAnswer answer() const;

  void AddFault(FakeFault fault);
  void ClearFaults();

  std::vector<RecordedRequest> Requests() const;
  void ClearRequests();
  // Waits until `predicate` holds for the record (re-checked on every change).
  bool WaitFor(const std::function<bool(const std::vector<RecordedRequest>&)>& predicate,
               std::chrono::milliseconds timeout) const;

  size_t open_connections() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace tg::fakes
