// A provider's whole (non-streamed) answer through tg-adapter's answer path:
// the provider codec's ParseResponse (openai, responses, anthropic, gemini,
// azure, bedrock) for a success or an error status, then every client codec's
// EncodeResponse, or EncodeError for the failure. Whatever the provider
// sent, every answer and error body written for a client must be JSON (the
// typed answer is written by hand, not from a document): a trap otherwise.
//
// Input: provider:u8 | status:u8 (an index into kStatuses) | body.

#include <rapidjson/document.h>

#include <array>
#include <string>

#include "codec_targets.h"
#include "fuzz_input.h"

namespace translate = tg::adapter::translate;

namespace {
constexpr std::array<int, 12> kStatuses = {200, 201, 400, 401, 403, 404,
                                           408, 413, 429, 500, 503, 529};

void ExpectJson(const std::string& text) {
  rapidjson::Document d;
  d.Parse(text.data(), text.size());
  if (d.HasParseError() || !d.IsObject()) __builtin_trap();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  tg::fuzz::FuzzInput in(data, size);
  const translate::ProviderCodec& codec = tg::fuzz::ProviderCodecAt(in.Byte());
  int status = kStatuses[in.Byte() % kStatuses.size()];
  std::string_view body = in.Rest();

  translate::Result<translate::ChatResponse> response =
      codec.ParseResponse(status, body, tg::fuzz::FuzzResponseContext());
  for (translate::ClientFormat f : tg::fuzz::kClientFormats) {
    const auto& client = translate::ClientCodecFor(f);
    if (response.ok()) {
      ExpectJson(client.EncodeResponse(response.value()));
    } else {
      ExpectJson(client.EncodeError(response.error()));
    }
  }
  return 0;
}
