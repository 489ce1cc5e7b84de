#pragma once

// Token counts without a tokenizer, for the token rate limiter: the prompt of
// a request (refused before any provider is called when it cannot fit) and
// the output of an answer whose provider usage never arrived (a stream the
// client cut off). The rules, and how they compare with real counts, are at
// the top of token_estimate.cc. Pure: no I/O, no clock; bounded memory and
// time on any input (fuzz/token_estimate_fuzz.cc).

#include <cstdint>
#include <memory>
#include <string_view>

#include "tg/v1/adapter.pb.h"

namespace tg::edge {

// Tokens of a piece of UTF-8 text (invalid bytes count as symbols), aimed at
// OpenAI's cl100k/o200k family and close enough for Anthropic and Gemini:
// against cl100k, within about 10 % on English prose, code and JSON and 25 %
// on other scripts (o200k counts those fewer: see token_estimate.cc).
int64_t EstimateTextTokens(std::string_view text);

struct RequestTokens {
  int64_t prompt = 0;      // estimated input tokens: text, per-message framing, images, tools
  int64_t max_output = 0;  // the request's own cap (max_tokens & co.), 0 when absent
};

// From a request body in the client's format: CLIENT_FORMAT_OPENAI_CHAT,
// ANTHROPIC_MESSAGES, OPENAI_RESPONSES, OPENAI_EMBEDDINGS; any other format,
// or a body that does not parse as a JSON object: EstimateTextTokens(body).
RequestTokens EstimateRequestTokens(std::string_view body, tg::v1::ClientFormat format);

// The output text of a client-format answer as it reaches the client: the
// SSE events of a stream (OpenAI chat chunks, Anthropic content_block_delta,
// Responses *.delta events) or a whole JSON answer, counted at Finish. Bytes
// may be cut anywhere between Feed calls: the count does not depend on where.
// At most one event (1 MiB) is held; a larger one is skipped and counted as
// bytes / 4. Embeddings count 0; other formats (passthrough) bytes / 4.
class OutputTokenCounter {
 public:
  OutputTokenCounter(tg::v1::ClientFormat format, bool stream);
  ~OutputTokenCounter();
  OutputTokenCounter(OutputTokenCounter&&) noexcept;
  OutputTokenCounter& operator=(OutputTokenCounter&&) noexcept;

  void Feed(std::string_view bytes);
  // The estimated output tokens of everything fed. Meant to be called once,
  // at the end; later Feed calls are ignored and later calls return the same.
  int64_t Finish();

 private:
  class State;
  std::unique_ptr<State> state_;
};

}  // namespace tg::edge
