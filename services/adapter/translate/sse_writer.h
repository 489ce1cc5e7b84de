#pragma once

#include <string>
#include <string_view>

namespace tg::adapter::translate {

// Appends one SSE event. `data` must be one line (compact JSON is); `event`
// is omitted when empty (OpenAI Chat streams carry no event names).
inline void AppendSse(std::string* out, std::string_view event, std::string_view data) {
  out->reserve(out->size() + event.size() + data.size() + 16);
  if (!event.empty()) {
    out->append("event: ");
    out->append(event);
    out->push_back('\n');
  }
  out->append("data: ");
  out->append(data);
  out->append("\n\n");
}

}  // namespace tg::adapter::translate
