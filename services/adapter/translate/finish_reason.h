#pragma once

// finish_reason mapping between OpenAI's values and each provider's enum, per
// the gateway's table in provider-wire-formats.md §0. Unknown values map to
// the most neutral answer ("stop" / "end_turn") rather than failing a
// response that was otherwise fine.

#include <string_view>

namespace tg::adapter::translate {

// Provider → OpenAI.
std::string_view FinishFromAnthropic(std::string_view stop_reason);
std::string_view FinishFromBedrock(std::string_view stop_reason);
std::string_view FinishFromGemini(std::string_view finish_reason, bool has_function_call);

// OpenAI → Anthropic stop_reason (for Anthropic clients).
std::string_view AnthropicStopReason(std::string_view finish_reason);

// OpenAI → Responses status and incomplete_details.reason ("" when complete).
struct ResponsesOutcome {
  std::string_view status;             // completed | incomplete
  std::string_view incomplete_reason;  // max_output_tokens | content_filter | ""
};
ResponsesOutcome ResponsesOutcomeFromFinish(std::string_view finish_reason);

}  // namespace tg::adapter::translate
