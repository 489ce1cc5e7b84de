#pragma once

#include <grpcpp/grpcpp.h>

#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "tg/adapter/aws/eventstream.h"
#include "tg/adapter/http/http_client.h"
#include "tg/adapter/service/auth.h"
#include "tg/adapter/service/target_directory.h"
#include "tg/adapter/translate/client_codec.h"
#include "tg/adapter/translate/embeddings.h"
#include "tg/adapter/translate/provider_codec.h"
#include "tg/common/input_limits.h"
#include "tg/common/limits.h"
#include "tg/common/trace.h"
#include "tg/common/worker_pool.h"
#include "tg/v1/adapter.pb.h"

namespace tg::adapter {

struct InvocationOptions {
  // Events queued for the caller above which the provider read pauses, and
  // below which it resumes: a slow edge (and so a slow client) holds the
  // provider back instead of making the adapter buffer a whole answer.
  size_t pause_above_bytes = 256 * 1024;
  size_t resume_below_bytes = 64 * 1024;
  // A whole non-streamed answer is read into memory up to this size; a
  // larger one (by Content-Length, or as it arrives) ends the transfer with
  // 502 "provider answer too large", not retried elsewhere. The translated
  // answer is held to the same bound. A provider's error body is read only up
  // to max_error_body (the rest is not read, the message is cut at a
  // character boundary).
  size_t max_buffered_body = limits::kMaxProviderAnswerBytes;
  size_t max_error_body = limits::kMaxErrorBodyBytes;
  http::HttpTimeouts timeouts;
};

// Where an Invocation's events go: the gRPC reactor. One write in flight;
// the Invocation calls Write again only after OnWriteDone.
class EventSink {
 public:
  virtual ~EventSink() = default;
  virtual void WriteEvent(const tg::v1::InvokeEvent* event) = 0;
  // The last event and the status in one step (no OnWriteDone follows).
  virtual void WriteLastEvent(const tg::v1::InvokeEvent* event, const grpc::Status& status) = 0;
  virtual void FinishStream(const grpc::Status& status) = 0;
};

// One Invoke: the client's body translated for the provider, the provider
// called, and its answer translated back, streamed as InvokeEvents in the
// order adapter.proto promises (head, chunks, usage, end).
//
// Threads: Start and the sink callbacks come from gRPC, the HTTP callbacks
// from the HTTP client's loop; everything shared is under mu_.
class Invocation : public std::enable_shared_from_this<Invocation> {
 public:
  // `target`: the request's target as this replica's directory has it;
  // nullptr when it has none by that id (the call is then refused).
  Invocation(tg::v1::InvokeRequest request, std::shared_ptr<const ResolvedTarget> target,
             http::HttpClient& client, EntraTokenSource* entra, WorkerPool& workers,
             InvocationOptions options, EventSink* sink,
             const std::optional<trace::TraceContext>& trace_parent = std::nullopt);
  ~Invocation();

  void Start();
  // From the sink.
  void OnWriteDone(bool ok);
  void OnCancel();
  // The reactor is gone: no more sink calls.
  void Detach();

  // From the HTTP client (through a small handler object).
  void OnHttpHead(const http::HttpResponseHead& head);
  void OnHttpBody(std::string_view chunk);
  void OnHttpDone(const http::HttpResult& result);

 private:
  void StartProvider();
  // POST …/embeddings (translate/embeddings.h): one whole answer, never streamed.
  void StartEmbeddings();
  // Sends the built call with the target's auth (an Entra token fetched off
  // the gRPC thread first when the target needs one); a call that could not
  // be built is answered with its error instead.
  void SendSpec(translate::Result<translate::HttpRequestSpec> spec);
  void FailUnknownProvider();
  void StartPassthrough();
  void Send(http::HttpRequest request);
  // The answer is over max_buffered_body: cancels the transfer (OnHttpDone
  // then answers "provider answer too large").
  void RefuseTooLarge();
  void FailTooLarge();
  // Queues events; `last` ends the stream after them.
  void Emit(std::vector<tg::v1::InvokeEvent> events, bool last);
  void PumpLocked(std::unique_lock<std::mutex>& lock);
  // A complete failure answer in the client's format (nothing sent yet).
  std::vector<tg::v1::InvokeEvent> FailureAnswer(int status, tg::v1::ProviderError::Kind kind,
                                                 bool retryable, const std::string& type,
                                                 const std::string& message);
  void FailBeforeBody(int status, tg::v1::ProviderError::Kind kind, bool retryable,
                      const std::string& type, const std::string& message);
  void TranslateStreamEvents(translate::StreamEvents& events,
                             std::vector<tg::v1::InvokeEvent>* out);
  // The transfer's timeouts: the adapter's, overridden by the rule's.
  http::HttpTimeouts Timeouts() const;
  bool first_token_sent_ = false;  // an event with first_token went out
  // The stream's last events (usage, End) after `out`, queued as the last.
  void EndStream(std::vector<tg::v1::InvokeEvent> out);
  // Stops reading the provider: the transfer is cancelled and its OnDone,
  // which follows, is not a failure (HTTP loop thread).
  void StopReading();
  translate::ResponseContext Context() const;
  std::string ProviderLabel() const;
  // The outcome, once (from Emit with last): span attributes and metrics.
  void Observe(const std::vector<tg::v1::InvokeEvent>& last_events);

  const tg::v1::InvokeRequest req_;
  const std::shared_ptr<const ResolvedTarget> target_;
  http::HttpClient& client_;
  EntraTokenSource* const entra_;
  WorkerPool& workers_;
  const InvocationOptions options_;
  const bool passthrough_;

  // Translation state (HTTP loop thread, after Start).
  const translate::ClientCodec* client_codec_ = nullptr;
  const translate::ProviderCodec* provider_codec_ = nullptr;
  translate::TargetInfo target_info_;
  translate::HttpRequestSpec spec_;
  // An embeddings call: its decoded request (nullptr for chat).
  std::unique_ptr<translate::EmbeddingsRequest> embeddings_;
  int64_t header_tokens_ = -1;  // X-Amzn-Bedrock-Input-Token-Count, for embeddings
  bool client_stream_ = false;
  bool include_usage_ = false;
  std::unique_ptr<translate::ProviderStreamDecoder> decoder_;
  std::unique_ptr<translate::ClientStreamEncoder> encoder_;
  std::unique_ptr<aws::EventStreamDecoder> eventstream_;
  int status_ = 0;
  bool streaming_answer_ = false;  // a 2xx stream being translated as it comes
  // That stream's head, held back until its first body byte: a stream that
  // breaks before any byte is then still one complete failure answer with
  // its own head (adapter.proto), not a second head after a 200.
  std::optional<tg::v1::InvokeEvent> stream_head_;
  bool body_started_ = false;
  std::string buffered_;          // error bodies and whole answers
  bool stopped_reading_ = false;  // StopReading: the answer is complete as it is
  bool stream_ended_ = false;     // EndStream ran: OnHttpDone has nothing to add
  // The answer passed max_buffered_body and its transfer is cancelled.
  // Written on the HTTP loop thread under mu_.
  bool too_large_ = false;
  std::optional<translate::AdapterError> stream_error_;
  int skipped_events_seen_ = 0;  // malformed events counted in the metric so far
  // A 429 or 5xx answer's retry-after, retry-after-ms and x-ratelimit-reset-*
  // headers (lower case), passed on in the failure's head.
  std::vector<std::pair<std::string, std::string>> retry_headers_;
  bool context_length_ = false;  // the provider's error: the prompt is over the model's context
  std::optional<translate::Usage> usage_;

  // Mid-stream rescue (InvokeRequest.resumable / resume; HTTP loop thread).
  // While the stream can still be resumed elsewhere (text only, one choice,
  // not finished): its text so far, the encoder state saved just before the
  // error event, and that event, which goes in End.error_event.
  bool resumable_ = false;
  bool can_resume_ = false;
  std::string progress_text_;
  std::optional<std::string> saved_state_;
  std::string error_event_;
  translate::Usage start_usage_;  // a kStart's early usage (the prompt tokens)
  // A resumed stream: the prefill lost trailing whitespace (providers refuse
  // it) that the client already has, so the continuation's leading
  // whitespace is dropped.
  bool skip_leading_space_ = false;
  void TrackProgress(translate::StreamEvent& ev);
  translate::Usage PriorUsage() const;
  // A broken stream's End gets its error event and, if it can be resumed,
  // its progress.
  void AttachProgress(tg::v1::InvokeEvent* end_event);

  // Tracing and metrics. span_ is the Invoke's server span; provider_span_
  // the provider HTTP call (its traceparent goes to the provider).
  trace::Span span_;
  trace::Span provider_span_;
  std::chrono::steady_clock::time_point provider_started_;
  bool observed_ = false;

  std::mutex mu_;
  EventSink* sink_;  // null once detached
  std::shared_ptr<http::HttpTransfer> transfer_;
  std::deque<tg::v1::InvokeEvent> queue_;
  size_t queued_bytes_ = 0;
  tg::v1::InvokeEvent writing_event_;
  bool writing_ = false;
  bool last_queued_ = false;
  bool finished_ = false;
  bool cancelled_ = false;
  bool paused_ = false;
};

}  // namespace tg::adapter
