#pragma once

// Bridges between streamed and whole answers, for when the client's wish and
// the target's `stream` setting differ:
//   - StreamAggregator folds a provider's canonical stream into one
//     ChatResponse (client did not ask for a stream, target streams);
//   - ResponseToStreamEvents replays a whole answer as canonical events
//     (client asked for a stream, target answers whole).

#include "tg/adapter/translate/canonical.h"
#include "tg/adapter/translate/chat.h"
#include "tg/adapter/translate/result.h"

namespace tg::adapter::translate {

class StreamAggregator {
 public:
  explicit StreamAggregator(const ResponseContext& ctx);

  // Folds one event in. Events after kEnd or kError are ignored.
  void Add(const StreamEvent& event);
  bool done() const { return done_; }

  // The answer once kEnd was added; the error if kError was (or if neither
  // came: the stream was cut).
  Result<ChatResponse> Take();

 private:
  ResponseDraft draft_;
  bool done_ = false;
  bool failed_ = false;
  AdapterError error_;
};

// kStart, one kDelta per choice (content, refusal, every tool call whole,
// finish_reason), kUsage when the answer has usage, kEnd.
StreamEvents ResponseToStreamEvents(const ChatResponse& response);

}  // namespace tg::adapter::translate
