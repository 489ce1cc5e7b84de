#include "tg/adapter/translate/stream_aggregator.h"

namespace tg::adapter::translate {

StreamAggregator::StreamAggregator(const ResponseContext& ctx) {
  draft_.model = ctx.model;
  draft_.created = ctx.created;
  draft_.id = MintId("chatcmpl-", ctx.id_seed, 0);
}

void StreamAggregator::Add(const StreamEvent& ev) {
  if (done_) return;
  switch (ev.type) {
    case StreamEvent::Type::kStart:
      if (!ev.id.empty()) draft_.id = ev.id;
      if (!ev.model.empty()) draft_.model = ev.model;
      if (ev.created != 0) draft_.created = ev.created;
      break;
    case StreamEvent::Type::kDelta: {
      if (ev.choice < 0 || ev.choice > 128) break;
      if (draft_.choices.size() <= static_cast<size_t>(ev.choice)) {
        draft_.choices.resize(ev.choice + 1);
      }
      ChoiceDraft& c = draft_.choices[ev.choice];
      if (!ev.content.empty()) {
        c.content.append(ev.content);
        c.has_content = true;
      }
      c.refusal.append(ev.refusal);
      for (const ToolCallDelta& tc : ev.tool_calls) {
        if (tc.index < 0 || tc.index > 1024) continue;
        if (c.tool_calls.size() <= static_cast<size_t>(tc.index)) c.tool_calls.resize(tc.index + 1);
        ToolCall& call = c.tool_calls[tc.index];
        if (!tc.id.empty()) call.id = tc.id;
        if (!tc.name.empty()) call.name = tc.name;
        call.arguments.append(tc.arguments);
      }
      if (!ev.finish_reason.empty()) c.finish_reason = ev.finish_reason;
      break;
    }
    case StreamEvent::Type::kUsage:
      draft_.usage = ev.usage;
      draft_.has_usage = true;
      break;
    case StreamEvent::Type::kEnd:
      done_ = true;
      break;
    case StreamEvent::Type::kError:
      done_ = true;
      failed_ = true;
      error_ = ev.error;
      break;
  }
}

Result<ChatResponse> StreamAggregator::Take() {
  if (failed_) return error_;
  if (!done_) {
    return AdapterError{ErrorKind::kStreamBroken, 502, true, "stream_broken",
                        "stream ended before it was complete"};
  }
  if (draft_.choices.empty()) draft_.choices.resize(1);
  return AnswerOf(std::move(draft_));
}

StreamEvents ResponseToStreamEvents(const ChatResponse& response) {
  ResponseDraft d =
      response.completion ? ReadChatResponse(response.completion->doc) : response.draft;
  StreamEvents events;
  StreamEvent start;
  start.type = StreamEvent::Type::kStart;
  start.id = d.id;
  start.model = d.model;
  start.created = d.created;
  start.usage.prompt_tokens = d.usage.prompt_tokens;
  start.usage.cached_tokens = d.usage.cached_tokens;
  events.push_back(std::move(start));
  for (size_t i = 0; i < d.choices.size(); ++i) {
    ChoiceDraft& c = d.choices[i];
    StreamEvent ev;
    ev.choice = static_cast<int>(i);
    ev.content = std::move(c.content);
    ev.refusal = std::move(c.refusal);
    for (size_t t = 0; t < c.tool_calls.size(); ++t) {
      ToolCall& call = c.tool_calls[t];
      ev.tool_calls.push_back(ToolCallDelta{static_cast<int>(t), std::move(call.id),
                                            std::move(call.name), std::move(call.arguments)});
    }
    ev.finish_reason = c.finish_reason;
    events.push_back(std::move(ev));
  }
  if (d.has_usage) {
    StreamEvent usage;
    usage.type = StreamEvent::Type::kUsage;
    usage.usage = d.usage;
    events.push_back(std::move(usage));
  }
  StreamEvent end;
  end.type = StreamEvent::Type::kEnd;
  events.push_back(std::move(end));
  return events;
}

}  // namespace tg::adapter::translate
