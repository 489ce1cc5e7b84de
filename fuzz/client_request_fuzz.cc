// A client's request body through the whole request path of tg-adapter: the
// client codec's DecodeRequest (OpenAI Chat, Anthropic Messages, OpenAI
// Responses), then every provider codec's BuildRequest of the canonical
// request (openai, responses, anthropic, gemini, azure, bedrock), or the
// client's error body when decoding fails.
//
// Input: client:u8 | variant:u8 | body. variant bit 0 asks providers for a
// stream, bit 1 overrides the base URL, bit 2 the path, bit 3 clears the
// target's model, bit 4 uses Azure's managed identity, bit 5 adds target
// headers, bit 6 restores each client stream encoder from the body (a saved
// stream state, as a mid-stream rescue hands one over) and encodes on.
//
// Every body also goes through tg-edge's one-pass scan (ScanRoutingFields),
// which must agree with the bounded parser's document on the outcome and on
// the routing fields.

#include <rapidjson/document.h>

#include <cstdlib>
#include <string>

#include "codec_targets.h"
#include "fuzz_input.h"
#include "tg/common/bounded_json.h"

namespace translate = tg::adapter::translate;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  tg::fuzz::FuzzInput in(data, size);
  const auto& client = translate::ClientCodecFor(tg::fuzz::kClientFormats[in.Byte() % 3]);
  uint8_t variant = in.Byte();
  std::string_view body = in.Rest();

  {
    rapidjson::Document doc;
    const tg::json::ParseResult parsed = tg::json::Parse(body, &doc);
    tg::json::RoutingFields fields;
    const tg::json::ParseResult scanned = tg::json::ScanRoutingFields(body, &fields);
    if (parsed.failure != scanned.failure || parsed.message != scanned.message) std::abort();
    if (fields.object != (parsed.ok() && doc.IsObject())) std::abort();
    if (fields.object) {
      auto m = doc.FindMember("model");
      const bool model = m != doc.MemberEnd() && m->value.IsString();
      if (fields.model.has_value() != model) std::abort();
      if (model && *fields.model != std::string(m->value.GetString(), m->value.GetStringLength())) {
        std::abort();
      }
      auto st = doc.FindMember("stream");
      const bool stream = st != doc.MemberEnd() && st->value.IsBool();
      if (fields.stream.has_value() != stream) std::abort();
      if (stream && *fields.stream != st->value.GetBool()) std::abort();
    }
  }

  if (variant & 64) {
    for (auto format : tg::fuzz::kClientFormats) {
      auto enc = translate::ClientCodecFor(format).NewStreamEncoder({});
      (void)enc->RestoreState(body);
      translate::StreamEvent text;
      text.content = "x";
      translate::StreamEvent call;
      call.tool_calls.push_back({1, "c", "f", "{}"});
      translate::StreamEvent end;
      end.type = translate::StreamEvent::Type::kEnd;
      std::string out;
      for (const auto* e : {&text, &call, &text, &end}) enc->Encode(*e, &out);
      (void)enc->SaveState();
    }
    return 0;
  }

  translate::Result<translate::ChatRequest> request = client.DecodeRequest(body);
  if (!request.ok()) {
    (void)client.EncodeError(request.error());
    return 0;
  }
  for (int p = 0; p < tg::fuzz::kProviderCount; ++p) {
    translate::TargetInfo target = tg::fuzz::ProviderTarget(p);
    target.stream = variant & 1;
    if (variant & 2) target.host = "http://127.0.0.1:8080/prefix";
    if (variant & 4) target.path = "/custom/{model}/path";
    if (variant & 8) target.model.clear();
    if (variant & 16) {
      target.azure_use_managed_identity = true;
      target.azure_version = "2023-05-15";
    }
    if (variant & 32) target.headers = {{"x-extra", "1"}, {"anthropic-version", "2023-06-01"}};
    translate::Result<translate::HttpRequestSpec> spec =
        tg::fuzz::ProviderCodecAt(p).BuildRequest(request.value(), target);
    if (!spec.ok()) (void)client.EncodeError(spec.error());
  }
  return 0;
}
