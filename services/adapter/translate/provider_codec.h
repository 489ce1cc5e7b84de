#pragma once

// Provider side of the translation: canonical request → the provider's HTTP
// call, and the provider's answer (whole or streamed) → canonical.
//
// Pure: no I/O and no credentials. The caller applies the auth scheme named
// in HttpRequestSpec::auth with the target's credentials (and signs Bedrock
// calls), performs the call, and feeds the answer back.
//
// Use, for one call:
//   const ProviderCodec* codec = ProviderCodecFor(target);        // null: unknown
//   Result<HttpRequestSpec> http = codec->BuildRequest(request, target);
//   … send; on a non-2xx status read the whole body, then
//   codec->ParseResponse(status, body, ctx)   → the AdapterError to report
//   … on 2xx, not streamed:
//   codec->ParseResponse(status, body, ctx)   → ChatResponse
//   … on 2xx, streamed:
//   auto dec = codec->NewStreamDecoder(ctx); dec->Feed(bytes, &events) per
//   read (Bedrock: FeedEvent per decoded eventstream message), and
//   dec->Finish(&events) at end of body.

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tg/adapter/translate/chat.h"
#include "tg/adapter/translate/result.h"

namespace tg::adapter::translate {

using Headers = std::vector<std::pair<std::string, std::string>>;

// What the translation needs to know of a tg.v1.Target (and of its
// non-secret credential fields). Filled by the caller from the proto.
struct TargetInfo {
  std::string provider;  // openai | anthropic | gemini | google | bedrock | azure
  std::string model;     // the effective model (replaces the body's `model`)
  std::string path;      // Target.path: replaces the provider's default path when set
  // Base-URL override (Target.host/port/protocol): self-hosted
  // OpenAI-compatible servers, regional endpoints, test fakes. `host` may also
  // be a full base URL ("http://127.0.0.1:8080/prefix").
  std::string host;
  int port = 0;
  std::string protocol;  // http | https (default https)
  // Target.provider_options, the members the codecs read.
  std::string api;             // openai: "completions" (default) | "responses"
  std::string api_version;     // azure: when credentials carry no azure_version
  Headers headers;             // Target.headers, added to every call
  bool stream = false;         // ask the provider for a stream
  std::string aws_region;      // Credentials.aws_region (bedrock)
  std::string azure_endpoint;  // Credentials.azure_endpoint (azure)
  std::string azure_version;   // Credentials.azure_version (azure; "" = default)
  bool azure_use_managed_identity = false;
};

// How the caller must authenticate the call. The translation never sees a
// secret; this names what to add.
enum class AuthScheme {
  kNone,
  kBearer,           // Authorization: Bearer <api_key>             (openai)
  kAnthropicApiKey,  // x-api-key: <api_key>                         (anthropic)
  kGoogleApiKey,     // x-goog-api-key: <api_key>                    (gemini)
  kAzureApiKey,      // api-key: <api_key>                           (azure)
  kAzureEntraToken,  // Authorization: Bearer <Entra token from IMDS> (azure, managed identity)
  kAwsSigV4,         // SigV4 with aws_* credentials, aws_service/aws_region below (bedrock)
};
std::string_view AuthSchemeName(AuthScheme scheme);

// How the answer's body is framed.
enum class BodyFraming {
  kJson,            // one JSON document
  kSse,             // text/event-stream: feed bytes to ProviderStreamDecoder::Feed
  kAwsEventStream,  // application/vnd.amazon.eventstream: decode frames, then FeedEvent
};

struct HttpRequestSpec {
  std::string method = "POST";
  std::string url;  // absolute; path segments already percent-encoded
  Headers headers;  // content-type, accept, provider version headers, target headers; no auth
  std::string body;
  AuthScheme auth = AuthScheme::kNone;
  std::string aws_service;  // SigV4 only: "bedrock"
  std::string aws_region;   // SigV4 only
  BodyFraming framing = BodyFraming::kJson;
};

// Turns a provider's streamed answer into canonical stream events, whatever
// way the bytes are split. After it has emitted kEnd or kError it ignores any
// further input.
class ProviderStreamDecoder {
 public:
  virtual ~ProviderStreamDecoder() = default;

  // Raw body bytes (SSE providers).
  virtual void Feed(std::string_view bytes, StreamEvents* out) = 0;

  // One decoded AWS eventstream message (Bedrock). `type` is the
  // `:event-type` header for events (messageStart, contentBlockDelta, …) and
  // the `:exception-type` (or `:error-code`) header for exceptions
  // (throttlingException, …); `payload` is the message's JSON payload.
  // Non-Bedrock decoders report a protocol error.
  virtual void FeedEvent(std::string_view type, std::string_view payload, StreamEvents* out);

  // End of the body. Emits kEnd if the provider's stream was complete, else a
  // kError of kind kStreamBroken (truncated streams must not look complete).
  virtual void Finish(StreamEvents* out) = 0;

  bool done() const { return done_; }

  // Malformed events skipped so far (a stream tolerates a few among good
  // ones; the caller counts and logs them).
  int skipped_events() const { return skipped_events_; }

 protected:
  void EmitEnd(StreamEvents* out);
  void EmitError(AdapterError error, StreamEvents* out);
  void EmitBroken(std::string message, StreamEvents* out);

  bool done_ = false;
  int skipped_events_ = 0;
};

// A provider API: its name and three functions, defined in the provider's
// own file (providers/<provider>_codec.cc; providers/providers.h lists them).
class ProviderCodec final {
 public:
  using BuildFn = Result<HttpRequestSpec> (*)(const ChatRequest&, const TargetInfo&);
  using ParseFn = Result<ChatResponse> (*)(int status, std::string_view body,
                                           const ResponseContext&);
  using DecoderFn = std::unique_ptr<ProviderStreamDecoder> (*)(const ResponseContext&);

  constexpr ProviderCodec(std::string_view name, BuildFn build, ParseFn parse, DecoderFn decoder)
      : name_(name), build_(build), parse_(parse), decoder_(decoder) {}

  // The provider's name as reported in ResponseHead.provider.
  std::string_view name() const { return name_; }

  // Canonical request + target → the HTTP call (stream per target.stream).
  // Fails when the request cannot be expressed for this provider.
  Result<HttpRequestSpec> BuildRequest(const ChatRequest& request, const TargetInfo& target) const {
    return build_(request, target);
  }

  // The provider's complete answer → canonical answer; a non-2xx status (or a
  // 2xx that says it failed) → the AdapterError to report.
  Result<ChatResponse> ParseResponse(int status, std::string_view body,
                                     const ResponseContext& ctx) const {
    return parse_(status, body, ctx);
  }

  std::unique_ptr<ProviderStreamDecoder> NewStreamDecoder(const ResponseContext& ctx) const {
    return decoder_(ctx);
  }

 private:
  std::string_view name_;
  BuildFn build_;
  ParseFn parse_;
  DecoderFn decoder_;
};

// The codec for a provider name (case-insensitive; `google` is `gemini`) and,
// for openai, provider_options.api (`completions` default, or `responses`).
// nullptr for an unknown provider.
const ProviderCodec* FindProviderCodec(std::string_view provider, std::string_view api = "");
// Same, for the target's provider and `api` option.
const ProviderCodec* ProviderCodecFor(const TargetInfo& target);

}  // namespace tg::adapter::translate
