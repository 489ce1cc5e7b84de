#include "tg/adapter/translate/client_codec.h"

#include "tg/adapter/translate/clients/anthropic_client.h"
#include "tg/adapter/translate/clients/openai_chat_client.h"
#include "tg/adapter/translate/clients/responses_client.h"

namespace tg::adapter::translate {

const ClientCodec& ClientCodecFor(ClientFormat format) {
  // Codecs are stateless: one instance each, shared by every call.
  static const OpenAiChatClient kOpenAiChat;
  static const AnthropicClient kAnthropic;
  static const ResponsesClient kResponses;
  switch (format) {
    case ClientFormat::kOpenAiChat:
      return kOpenAiChat;
    case ClientFormat::kAnthropicMessages:
      return kAnthropic;
    case ClientFormat::kOpenAiResponses:
      return kResponses;
  }
  return kOpenAiChat;
}

}  // namespace tg::adapter::translate
