#include "tg/adapter/translate/finish_reason.h"

namespace tg::adapter::translate {

std::string_view FinishFromAnthropic(std::string_view r) {
  if (r == "max_tokens" || r == "model_context_window_exceeded") return "length";
  if (r == "tool_use") return "tool_calls";
  if (r == "refusal") return "content_filter";
  return "stop";  // end_turn, stop_sequence, pause_turn
}

std::string_view FinishFromBedrock(std::string_view r) {
  if (r == "max_tokens" || r == "model_context_window_exceeded") return "length";
  if (r == "tool_use") return "tool_calls";
  if (r == "guardrail_intervened" || r == "content_filtered") return "content_filter";
  return "stop";  // end_turn, stop_sequence
}

std::string_view FinishFromGemini(std::string_view r, bool has_function_call) {
  if (r == "MAX_TOKENS") return "length";
  if (r == "SAFETY" || r == "RECITATION" || r == "BLOCKLIST" || r == "PROHIBITED_CONTENT" ||
      r == "SPII" || r.substr(0, 6) == "IMAGE_") {
    return "content_filter";
  }
  // STOP, OTHER, FINISH_REASON_UNSPECIFIED and anything newer: a function
  // call in the answer is what makes it a tool_calls finish.
  return has_function_call ? "tool_calls" : "stop";
}

std::string_view AnthropicStopReason(std::string_view f) {
  if (f == "length") return "max_tokens";
  if (f == "tool_calls" || f == "function_call") return "tool_use";
  if (f == "content_filter") return "refusal";
  return "end_turn";
}

ResponsesOutcome ResponsesOutcomeFromFinish(std::string_view f) {
  if (f == "length") return {"incomplete", "max_output_tokens"};
  if (f == "content_filter") return {"incomplete", "content_filter"};
  return {"completed", ""};
}

}  // namespace tg::adapter::translate
