#pragma once

// Regrouping OpenAI's message list for providers that want strictly
// alternating user/model turns (Anthropic, Gemini, Bedrock).

#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "tg/adapter/translate/json.h"

namespace tg::adapter::translate {

struct Turn {
  bool assistant = false;
  // The OpenAI messages of this turn, in order, except that tool results come
  // first in a user turn (Anthropic requires tool_result blocks to lead the
  // message that answers a tool_use; Gemini and Bedrock accept it).
  std::vector<const json::Value*> messages;
};

struct Conversation {
  std::vector<std::string> system;  // texts of system/developer messages, in order
  std::vector<Turn> turns;          // consecutive same-side messages merged
  // tool_call id → function name, from the assistant messages (Gemini's
  // functionResponse names the function, not the call).
  std::unordered_map<std::string_view, std::string_view> tool_names;
};

// user, tool and (legacy) function messages form user turns; assistant
// messages form assistant turns; system and developer messages are lifted out.
// The result references `messages`: keep it alive.
Conversation GroupMessages(const json::Value* messages);

// The image URL of an OpenAI image_url part (`{"image_url":{"url"}}` or the
// older `{"image_url":"…"}`), "" when the part is not an image.
std::string_view ImageUrlOf(const json::Value& part);

}  // namespace tg::adapter::translate
