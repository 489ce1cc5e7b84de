#pragma once

// The client codecs, one per client API. Each lives in its own file
// (clients/<format>_client.cc), which says how it maps the client's API to
// the canonical form and back; ClientCodecFor (client_codec.h) picks among
// them. Stateless: one instance each, shared by every call.

#include "tg/adapter/translate/client_codec.h"

namespace tg::adapter::translate {

const ClientCodec& OpenAiChatClientCodec();  // openai_chat_client.cc
const ClientCodec& AnthropicClientCodec();   // anthropic_client.cc
const ClientCodec& ResponsesClientCodec();   // responses_client.cc

}  // namespace tg::adapter::translate
