#pragma once

// The canonical form every codec converts to or from: OpenAI Chat Completions.
// Client formats convert to/from it and providers convert from/to it, so each
// new format or provider is one codec, not one per pair.

#include <rapidjson/document.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "tg/adapter/translate/json.h"
#include "tg/adapter/translate/result.h"

namespace tg::adapter::translate {

// Token counts in OpenAI's terms: prompt = everything the model read (cached
// tokens included), completion = everything it wrote (reasoning included).
struct Usage {
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
  int64_t total_tokens = 0;
  int64_t cached_tokens = 0;
  int64_t reasoning_tokens = 0;
};

// A request as an OpenAI Chat Completions body. Normalised by the client
// codecs: `messages` is an array, the seeds' top-level `system` has become a
// leading system message, and a few extension members that Chat Completions
// lacks but some provider understands may be present (`top_k`,
// `previous_response_id`); each provider codec keeps what its API accepts.
struct ChatRequest {
  ChatRequest() : pool(NewPool()), doc(pool.get()) {}
  // Small pool chunks (json::kPoolChunkBytes); the pool outlives doc.
  static std::unique_ptr<rapidjson::MemoryPoolAllocator<>> NewPool() {
    return std::make_unique<rapidjson::MemoryPoolAllocator<>>(json::kPoolChunkBytes);
  }

  std::unique_ptr<rapidjson::MemoryPoolAllocator<>> pool;
  rapidjson::Document doc;
  std::string model;           // as the client asked ("" when absent)
  bool stream = false;         // the client asked for a stream
  bool include_usage = false;  // stream_options.include_usage (OpenAI clients)
};

struct ToolCall {
  std::string id;
  std::string name;
  std::string arguments;  // JSON text
};

struct ChoiceDraft {
  std::string content;
  bool has_content = false;  // false: `content: null` (a pure tool-call answer)
  std::string refusal;
  std::vector<ToolCall> tool_calls;
  std::string finish_reason = "stop";
};

// A canonical answer in typed form: what a chat.completion says.
struct ResponseDraft {
  std::string id;
  std::string model;
  int64_t created = 0;
  std::vector<ChoiceDraft> choices;
  Usage usage;
  bool has_usage = false;
};

// An OpenAI-shaped provider's `chat.completion` as parsed.
struct CompletionDocument {
  CompletionDocument() : pool(ChatRequest::NewPool()), doc(pool.get()) {}
  std::unique_ptr<rapidjson::MemoryPoolAllocator<>> pool;
  rapidjson::Document doc;
};

// A non-streamed answer in canonical form, parsed once and written once.
// Codecs of providers with their own format fill `draft` (typed), which the
// client encoders write directly. OpenAI-shaped providers (OpenAI, Azure,
// compatible servers) keep their `chat.completion` as parsed in `completion`
// instead, so that what the draft does not model (system_fingerprint,
// logprobs, service_tier …) reaches an OpenAI client unchanged; the other
// client encoders read it (canonical.h, ReadAnswer).
struct ChatResponse {
  ResponseDraft draft;                             // unless `completion` is set
  std::unique_ptr<CompletionDocument> completion;  // OpenAI-shaped providers only
  Usage usage;  // of either form; here for the Invoke Usage event
  bool has_usage = false;
};

struct ToolCallDelta {
  int index = 0;          // 0, 1, … in the order the calls appear in the answer
  std::string id;         // set on a call's first delta only
  std::string name;       // set on a call's first delta only
  std::string arguments;  // a fragment of the JSON arguments text
};

// One step of a canonical stream. Decoders emit, for a successful stream:
// kStart? (kDelta)* kUsage? kEnd; a failure ends with kError instead of kEnd.
// The role is implied (the encoders announce `assistant` before the first
// delta of a choice).
struct StreamEvent {
  enum class Type { kStart, kDelta, kUsage, kEnd, kError };
  Type type = Type::kDelta;

  // kStart: what the provider named the answer; empty when it did not.
  std::string id;
  std::string model;
  int64_t created = 0;

  // kDelta
  int choice = 0;
  std::string content;
  std::string refusal;
  std::vector<ToolCallDelta> tool_calls;
  std::string finish_reason;  // OpenAI's value, set on the last delta of a choice

  // kUsage; kStart may carry prompt_tokens/cached_tokens when known early.
  Usage usage;

  // kError
  AdapterError error;
};

using StreamEvents = std::vector<StreamEvent>;

// What a provider codec needs beyond the provider's bytes to build a
// canonical answer. Supplied by the caller so translation stays pure.
struct ResponseContext {
  std::string model;    // effective model, used when the provider names none
  int64_t created = 0;  // unix seconds, used when the provider gives none
  std::string id_seed;  // e.g. the request id; minted ids derive from it
};

}  // namespace tg::adapter::translate
