// An admin API body through the edge's JSON → proto mapping and tg-config's
// checks: json::ParseProto (the lenient normaliser, the unknown-field check
// and protobuf's JSON parser) into a Gateway, Upstream, Service, Rule or
// ApiKey; then Normalize*/Validate* (services/config/validation.h) and the
// credential masking every answer goes through; then PrintProto, whose output
// must parse back to the same message.
//
// Input: resource:u8 | body.

#include <google/protobuf/util/message_differencer.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "fuzz_input.h"
#include "tg/common/json_util.h"
#include "tg/config/credentials.h"
#include "tg/config/validation.h"
#include "tg/v1/resources.pb.h"

namespace {

// What the admin API answers must be what it accepts.
void CheckRoundTrip(const google::protobuf::Message& msg) {
  std::string printed = tg::json::PrintProto(msg);
  if (printed.empty()) return;  // not printable (an out-of-range timestamp): nothing answered
  std::unique_ptr<google::protobuf::Message> again(msg.New());
  std::string error;
  if (!tg::json::ParseProto(printed, again.get(), &error)) {
    std::fprintf(stderr, "printed %s\ndoes not parse back: %s\n", printed.c_str(), error.c_str());
    std::abort();
  }
  // Same message (map entries print in no fixed order, so not the same text).
  if (!google::protobuf::util::MessageDifferencer::Equals(*again, msg)) {
    std::fprintf(stderr, "printed %s\nprints again as %s\n", printed.c_str(),
                 tg::json::PrintProto(*again).c_str());
    std::abort();
  }
}

template <typename Resource, typename Normalize, typename Validate, typename Mask>
void Check(std::string_view body, Normalize normalize, Validate validate, Mask mask) {
  Resource r;
  std::string error;
  if (!tg::json::ParseProto(body, &r, &error)) {
    if (error.empty()) std::abort();  // a 400 must say why
    return;
  }
  CheckRoundTrip(r);
  normalize(&r);
  (void)validate(r);
  mask(&r);
  CheckRoundTrip(r);
}

void Nothing(google::protobuf::Message*) {}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace config = tg::config;
  namespace v1 = tg::v1;
  tg::fuzz::FuzzInput in(data, size);
  uint8_t resource = in.Byte() % 6;
  std::string_view body = in.Rest();
  switch (resource) {
    case 0:
      Check<v1::Gateway>(body, Nothing, config::ValidateGateway, Nothing);
      break;
    case 1:
      Check<v1::Upstream>(body, config::NormalizeUpstream, config::ValidateUpstream,
                          config::MaskUpstream);
      break;
    case 2:
      Check<v1::Service>(body, config::NormalizeService, config::ValidateService,
                         config::MaskService);
      break;
    case 3:
      Check<v1::Rule>(body, config::NormalizeRule, config::ValidateRule, Nothing);
      break;
    case 4:
      Check<v1::ApiKey>(
          body, Nothing, [](const v1::ApiKey&) { return 0; }, Nothing);
      break;
    default: {
      std::string strict, error;
      if (tg::json::NormalizeLenient(body, &strict, &error) == error.empty()) {
        // exactly one of: normalised, or an error message
      } else {
        std::abort();
      }
      break;
    }
  }
  return 0;
}
