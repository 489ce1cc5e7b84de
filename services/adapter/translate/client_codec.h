#pragma once

// Client side of the translation: the client's body → canonical request, and
// canonical answers (whole, streamed, or failed) → the client's format.
//
// Use, for one call:
//   const ClientCodec& client = ClientCodecFor(format);
//   Result<ChatRequest> req = client.DecodeRequest(body);   // error: 400 + EncodeError
//   … not streamed: client.EncodeResponse(response)
//   … streamed: auto enc = client.NewStreamEncoder({req.include_usage, …});
//     for each canonical StreamEvent: enc->Encode(event, &bytes) → body chunk.
//     Encode(kEnd) writes the format's terminator; Encode(kError) writes an
//     explicit error event instead (never a clean end).
//   … provider failed before any body byte: head status = error.http_status,
//     body = client.EncodeError(error).

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "tg/adapter/translate/chat.h"
#include "tg/adapter/translate/result.h"

namespace tg::adapter::translate {

enum class ClientFormat {
  kOpenAiChat,         // …/chat/completions
  kAnthropicMessages,  // …/messages
  kOpenAiResponses,    // …/responses
};

struct StreamEncoderOptions {
  bool include_usage = false;  // ChatRequest::include_usage (OpenAI Chat clients)
  // Used until (or unless) the provider names the answer in a kStart event.
  std::string id;
  std::string model;
  int64_t created = 0;  // unix seconds
};

class ClientStreamEncoder {
 public:
  virtual ~ClientStreamEncoder() = default;
  // Appends the SSE bytes for `event` to *out (possibly none). Events after
  // kEnd or kError are ignored.
  virtual void Encode(const StreamEvent& event, std::string* out) = 0;
  // kEnd or kError has been encoded.
  bool finished() const { return finished_; }

  // Mid-stream rescue: the state after the events encoded so far (JSON,
  // opaque to callers), so that a new encoder, in another invocation and
  // perhaps another process, continues the same client stream.
  virtual std::string SaveState() const = 0;
  // Continues from SaveState's output instead of starting a stream: nothing
  // is announced twice; ids, block and item indexes and sequence numbers go
  // on; kStart no longer renames the answer. false (the encoder unchanged)
  // when `state` is not one this kind of encoder saved.
  virtual bool RestoreState(std::string_view state) = 0;

 protected:
  bool finished_ = false;
};

// A client API: four functions, defined in the client format's own file
// (clients/<format>_client.cc; clients/clients.h lists them).
class ClientCodec final {
 public:
  using DecodeFn = Result<ChatRequest> (*)(std::string_view body);
  using EncodeFn = std::string (*)(const ChatResponse& response);
  using EncoderFn = std::unique_ptr<ClientStreamEncoder> (*)(const StreamEncoderOptions& options);
  using ErrorFn = std::string (*)(const AdapterError& error);

  constexpr ClientCodec(DecodeFn decode, EncodeFn encode, EncoderFn encoder, ErrorFn error)
      : decode_(decode), encode_(encode), encoder_(encoder), error_(error) {}

  Result<ChatRequest> DecodeRequest(std::string_view body) const { return decode_(body); }
  std::string EncodeResponse(const ChatResponse& response) const { return encode_(response); }
  std::unique_ptr<ClientStreamEncoder> NewStreamEncoder(const StreamEncoderOptions& options) const {
    return encoder_(options);
  }
  // The error body (`{"error":{…}}` OpenAI, `{"type":"error","error":{…}}`
  // Anthropic); send it with error.http_status.
  std::string EncodeError(const AdapterError& error) const { return error_(error); }

 private:
  DecodeFn decode_;
  EncodeFn encode_;
  EncoderFn encoder_;
  ErrorFn error_;
};

const ClientCodec& ClientCodecFor(ClientFormat format);

// "text/event-stream" or "application/json".
inline std::string_view ClientContentType(bool stream) {
  return stream ? "text/event-stream" : "application/json";
}

}  // namespace tg::adapter::translate
