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

// The parts of an OpenAI message's content in order, as the providers with
// typed content blocks take them (Anthropic, Gemini, Bedrock): a string is
// one text part; an array gives its text parts and its image parts (the
// image's URL). Empty texts, and parts with no counterpart there
// (input_audio, file), are skipped. `on_image` may refuse an image by
// returning false: the walk stops there and returns false.
template <typename OnText, typename OnImage>
bool ForEachContentPart(const json::Value* content, OnText&& on_text, OnImage&& on_image) {
  if (content == nullptr) return true;
  if (content->IsString()) {
    if (content->GetStringLength() > 0) on_text(json::AsString(content));
    return true;
  }
  if (!content->IsArray()) return true;
  for (const json::Value& part : content->GetArray()) {
    if (json::GetString(part, "type") == "text") {
      std::string_view text = json::GetString(part, "text");
      if (!text.empty()) on_text(text);
    } else if (std::string_view url = ImageUrlOf(part); !url.empty()) {
      if (!on_image(url)) return false;
    }
  }
  return true;
}

}  // namespace tg::adapter::translate
