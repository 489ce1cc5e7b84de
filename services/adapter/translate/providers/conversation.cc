#include "tg/adapter/translate/providers/conversation.h"

#include <algorithm>

namespace tg::adapter::translate {

Conversation GroupMessages(const json::Value* messages) {
  Conversation conv;
  if (messages == nullptr || !messages->IsArray()) return conv;
  for (const json::Value& m : messages->GetArray()) {
    std::string_view role = json::GetString(m, "role");
    if (role == "system" || role == "developer") {
      std::string text = json::ContentText(json::Find(m, "content"), "\n");
      if (!text.empty()) conv.system.push_back(std::move(text));
      continue;
    }
    bool assistant = role == "assistant";
    if (assistant) {
      if (const json::Value* calls = json::GetArray(m, "tool_calls")) {
        for (const json::Value& call : calls->GetArray()) {
          const json::Value* fn = json::GetObject(call, "function");
          if (fn != nullptr)
            conv.tool_names[json::GetString(call, "id")] = json::GetString(*fn, "name");
        }
      }
    }
    if (conv.turns.empty() || conv.turns.back().assistant != assistant) {
      conv.turns.push_back(Turn{assistant, {}});
    }
    conv.turns.back().messages.push_back(&m);
  }
  for (Turn& turn : conv.turns) {
    if (turn.assistant) continue;
    std::stable_partition(turn.messages.begin(), turn.messages.end(), [](const json::Value* m) {
      std::string_view role = json::GetString(*m, "role");
      return role == "tool" || role == "function";
    });
  }
  return conv;
}

std::string_view ImageUrlOf(const json::Value& part) {
  if (json::GetString(part, "type") != "image_url") return {};
  const json::Value* image = json::Find(part, "image_url");
  if (image == nullptr) return {};
  if (image->IsString()) return json::AsString(image);
  return json::GetString(*image, "url");
}

}  // namespace tg::adapter::translate
