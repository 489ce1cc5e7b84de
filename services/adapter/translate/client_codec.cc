#include "tg/adapter/translate/client_codec.h"

#include "tg/adapter/translate/clients/clients.h"

namespace tg::adapter::translate {

const ClientCodec& ClientCodecFor(ClientFormat format) {
  switch (format) {
    case ClientFormat::kOpenAiChat:
      return OpenAiChatClientCodec();
    case ClientFormat::kAnthropicMessages:
      return AnthropicClientCodec();
    case ClientFormat::kOpenAiResponses:
      return ResponsesClientCodec();
  }
  return OpenAiChatClientCodec();
}

}  // namespace tg::adapter::translate
