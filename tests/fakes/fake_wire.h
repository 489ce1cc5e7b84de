#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tg::fakes {

// The fake provider's answers in each provider's exact wire format. Pure
// functions (no I/O), so the formats themselves can be checked in tests.

enum class Api {
  kOpenAiChat,        // POST /v1/chat/completions
  kOpenAiResponses,   // POST /v1/responses
  kAnthropic,         // POST /v1/messages
  kGemini,            // POST /v1beta/models/{m}:generateContent | :streamGenerateContent
  kBedrock,           // POST /model/{id}/converse | /converse-stream
  kAzure,             // POST /openai/deployments/{d}/chat/completions?api-version=…
  kOpenAiEmbeddings,  // POST /v1/embeddings
  kAzureEmbeddings,   // POST /openai/deployments/{d}/embeddings?api-version=…
  kGeminiEmbeddings,  // POST /v1beta/models/{m}:embedContent | :batchEmbedContents
  kBedrockInvoke,     // POST /model/{id}/invoke (Titan and Cohere embedding models)
  kImds,              // GET /metadata/identity/oauth2/token (Azure managed identity)
  kRaw,               // GET /_fake/stream: a plain chunked byte stream (HTTP client tests)
  kUnknown,
};
// "openai" | "responses" | "anthropic" | "gemini" | "bedrock" | "azure" | "openai_embeddings" |
// "azure_embeddings" | "gemini_embeddings" | "bedrock_invoke" | "imds" | "raw" | "unknown"
std::string_view ApiName(Api api);

struct FakeToolCall {
  std::string id;  // "" -> minted in the provider's style (call_…, toolu_…, tooluse_…)
  std::string name;
  std::string arguments_json;  // a JSON object, as text
};

// What the fake answers, in whichever format was asked.
struct FakeAnswer {
  std::string text = "Hello from the fake provider!";
  // Explicit tool calls. When empty and the request offers tools (and does not
  // end with a tool result), the first offered tool is called with
  // auto_tool_arguments and no text.
  std::vector<FakeToolCall> tool_calls;
  std::string auto_tool_arguments = R"({"location":"Paris"})";
  // Without tool calls: "stop" | "length" | "content_filter", mapped to each
  // provider's vocabulary (end_turn/max_tokens, STOP/MAX_TOKENS, …).
  std::string finish = "stop";
  int64_t input_tokens = 12;  // the whole prompt, cached tokens included
  int64_t output_tokens = 9;
  int64_t cached_tokens = 0;
  // Delay between stream events; 0 sends them back to back.
  std::chrono::milliseconds event_interval{0};
};

// What the fake needs to know about a request to answer it.
struct RequestFacts {
  std::string model;  // body "model", or the path's model/deployment
  bool stream = false;
  bool include_usage = false;  // OpenAI stream_options.include_usage
  bool gemini_sse = false;     // :streamGenerateContent?alt=sse (else a JSON array)
  bool gemini_batch = false;   // :batchEmbedContents (else :embedContent)
  std::vector<std::string> tool_names;
  bool ends_with_tool_result = false;
  // The text of an assistant (Gemini: model) message the conversation ends
  // with: a prefill, which the answer continues.
  std::string prefill;
};

// Reads model/stream/tools from a request body. false when the body is not a
// JSON object (the caller answers 400 in the provider's format).
bool ParseRequestFacts(Api api, std::string_view body, RequestFacts* facts);

struct WireReply {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;  // Content-Type included
  bool streamed = false;                                     // chunked; one chunk per event
  std::string body;                                          // when !streamed
  std::vector<std::string> events;                           // when streamed, terminator included
};

struct ReplyIds {
  uint64_t seq = 1;            // makes ids unique per request: chatcmpl-fake1, msg_fake1, …
  int64_t now_s = 1700000000;  // "created" timestamps
};

WireReply BuildAnswer(Api api, const RequestFacts& facts, const FakeAnswer& answer,
                      const ReplyIds& ids);

// ------------------------------------------------------------ embeddings

// The length of every vector whose request names none. Real models default to
// hundreds or thousands; 8 keeps answers and tests small.
inline constexpr int kFakeEmbeddingDimensions = 8;

// The fake's embedding of `text`: `dimensions` values (none when < 1) derived
// from the text's FNV-1a hash, each k/1024 with |k| <= 1000, so exactly a
// float32, short in JSON, and equal whatever the wire format.
std::vector<float> FakeEmbedding(std::string_view text, int dimensions);

// The usage the fake reports for `text`: its whitespace-separated words, at
// least 1 when the text is not empty.
int FakeTokenCount(std::string_view text);

// The answer to an embeddings request (kOpenAiEmbeddings, kAzureEmbeddings,
// kGeminiEmbeddings, kBedrockInvoke): `body` checked as the provider checks
// it (a 400 in its error format otherwise), then one FakeEmbedding per input.
// `facts` carries what the path says: model (Gemini model, Bedrock model id,
// Azure deployment) and gemini_batch.
WireReply BuildEmbeddings(Api api, const RequestFacts& facts, std::string_view body,
                          const ReplyIds& ids);

// The provider's 400 for a body that is not a JSON object.
WireReply BuildUnparsableBody(Api api);

// The provider's model list (the cheap GET an active health probe calls):
// OpenAI and Azure `{"object":"list","data":[{"id",…}]}`, Anthropic
// `{"data":[{"type":"model",…}],"has_more":false,…}`, Gemini
// `{"models":[{"name":"models/…",…}]}`, Bedrock `{"modelSummaries":[…]}`.
WireReply BuildModelList(Api api, const ReplyIds& ids);

// The provider's error answer for `status` (its JSON shape, type names and
// headers: x-amzn-ErrorType for Bedrock, retry-after on 429, …). `message`
// "" picks the provider's usual wording for that status; `type` "" picks the
// usual type/code (Bedrock: the exception name).
WireReply BuildError(Api api, int status, std::string_view message = "",
                     std::string_view type = "");

// One mid-stream error event in the provider's format (OpenAI `data:
// {"error":…}`, Anthropic `event: error`, Bedrock an exception frame, …).
// `type` "" picks a server-side error; for Bedrock it is the exception type.
std::string BuildStreamError(Api api, std::string_view type = "", int sequence_number = 0);

}  // namespace tg::fakes
