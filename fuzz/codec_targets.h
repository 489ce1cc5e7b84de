#pragma once

// The codecs and targets the translation fuzz targets choose from with their
// selector bytes. The orders are part of the seed format (seeds.cc).

#include <array>
#include <string>

#include "tg/adapter/translate/client_codec.h"
#include "tg/adapter/translate/provider_codec.h"

namespace tg::fuzz {

namespace translate = tg::adapter::translate;

inline constexpr std::array<translate::ClientFormat, 3> kClientFormats = {
    translate::ClientFormat::kOpenAiChat, translate::ClientFormat::kAnthropicMessages,
    translate::ClientFormat::kOpenAiResponses};

// Provider codecs by selector: openai, openai responses, anthropic, gemini,
// azure, bedrock (the SSE ones first; bedrock frames with eventstream).
inline constexpr int kProviderCount = 6;
inline constexpr int kBedrock = 5;

inline translate::TargetInfo ProviderTarget(int index) {
  translate::TargetInfo t;
  switch (index % kProviderCount) {
    case 0:
      t.provider = "openai";
      t.model = "gpt-4o-mini";
      break;
    case 1:
      t.provider = "openai";
      t.model = "gpt-4o";
      t.api = "responses";
      break;
    case 2:
      t.provider = "anthropic";
      t.model = "claude-3-5-sonnet-20240620";
      break;
    case 3:
      t.provider = "gemini";
      t.model = "gemini-1.5-pro";
      break;
    case 4:
      t.provider = "azure";
      t.model = "gpt-4o";
      t.azure_endpoint = "https://example.openai.azure.com";
      t.azure_version = "2024-06-01";
      break;
    default:
      t.provider = "bedrock";
      t.model = "anthropic.claude-3-5-sonnet-20240620-v1:0";
      t.aws_region = "eu-west-1";
      break;
  }
  return t;
}

inline const translate::ProviderCodec& ProviderCodecAt(int index) {
  const translate::ProviderCodec* codec = translate::ProviderCodecFor(ProviderTarget(index));
  if (codec == nullptr) __builtin_trap();  // the table above names an unknown provider
  return *codec;
}

inline const translate::ResponseContext& FuzzResponseContext() {
  static const translate::ResponseContext ctx{"ctx-model", 1700000000, "req-fuzz-1"};
  return ctx;
}

}  // namespace tg::fuzz
