// Translation costs on tg-adapter's hot paths (targets: a typical chat
// request under 20 µs, a stream chunk under 5 µs).
//
//   request:  client body → canonical → provider HTTP call (body serialised)
//   answer:   a whole provider answer → canonical → client answer bytes
//   chunk:    one provider SSE event → canonical event(s) → client SSE bytes
//
// Build: cmake --build <dir> --target adapter_translate_bench
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "tg/adapter/translate/client_codec.h"
#include "tg/adapter/translate/provider_codec.h"

namespace tg::adapter::translate {
namespace {

// A typical chat request (~1.3 KB): system prompt, a short history with one
// tool round trip, one tool definition, the usual sampling fields.
constexpr char kChatBody[] = R"({
  "model": "gpt-4o-mini",
  "messages": [
    {"role": "system", "content":
      "You are a helpful assistant for a travel company. Answer briefly, prices in EUR."},
    {"role": "user", "content": "I want to fly from Paris to Rome next Friday. Options?"},
    {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function",
      "function": {"name": "search_flights",
                   "arguments": "{\"from\":\"CDG\",\"to\":\"FCO\",\"date\":\"2025-06-13\"}"}}]},
    {"role": "tool", "tool_call_id": "call_1", "content":
      "[{\"flight\":\"AF1404\",\"dep\":\"07:10\",\"price\":129},{\"flight\":\"AZ317\"}]"},
    {"role": "assistant", "content":
      "There are two direct flights: AF1404 at 07:10 for 129 EUR and AZ317 at 12:45 for 98 EUR."},
    {"role": "user", "content": "Book the cheaper one, window seat if possible."}
  ],
  "tools": [{"type": "function", "function": {
    "name": "search_flights", "description": "Search direct flights",
    "parameters": {"type": "object", "properties": {"from": {"type": "string"},
      "to": {"type": "string"}, "date": {"type": "string", "format": "date"}},
      "required": ["from", "to", "date"], "additionalProperties": false}}}],
  "temperature": 0.7,
  "max_tokens": 1020,
  "stream": true
})";

TargetInfo Target(const char* provider, const char* model) {
  TargetInfo t;
  t.provider = provider;
  t.model = model;
  t.stream = true;
  t.aws_region = "eu-west-1";
  t.azure_endpoint = "https://example.openai.azure.com";
  return t;
}

void TranslateRequest(benchmark::State& state, const char* provider, const char* api,
                      const char* model) {
  const ClientCodec& client = ClientCodecFor(ClientFormat::kOpenAiChat);
  const ProviderCodec* codec = FindProviderCodec(provider, api);
  TargetInfo target = Target(provider, model);
  size_t bytes = 0;
  for (auto _ : state) {
    Result<ChatRequest> req = client.DecodeRequest(kChatBody);
    if (!req.ok()) return state.SkipWithError(req.error().message.c_str());
    Result<HttpRequestSpec> http = codec->BuildRequest(req.value(), target);
    if (!http.ok()) return state.SkipWithError(http.error().message.c_str());
    bytes += http.value().body.size();
    benchmark::DoNotOptimize(http);
  }
  state.SetBytesProcessed(static_cast<int64_t>(sizeof(kChatBody) * state.iterations()));
  state.counters["out_bytes"] =
      static_cast<double>(bytes) / static_cast<double>(state.iterations());
}
BENCHMARK_CAPTURE(TranslateRequest, openai, "openai", "", "gpt-4o-mini");
BENCHMARK_CAPTURE(TranslateRequest, anthropic, "anthropic", "", "claude-3-5-sonnet-20241022");
BENCHMARK_CAPTURE(TranslateRequest, gemini, "gemini", "", "gemini-2.0-flash-001");
BENCHMARK_CAPTURE(TranslateRequest, bedrock, "bedrock", "",
                  "eu.anthropic.claude-3-5-sonnet-20240620-v1:0");
BENCHMARK_CAPTURE(TranslateRequest, openai_responses, "openai", "responses", "gpt-4o-mini");

// Anthropic client body → OpenAI provider (the other direction of the most
// common cross-format pair).
void TranslateAnthropicClientRequest(benchmark::State& state) {
  constexpr char kBody[] = R"({"model":"claude-3-5-sonnet-20241022","max_tokens":1024,
    "system":"You are a helpful assistant for a travel company.",
    "messages":[{"role":"user","content":"Fly Paris to Rome next Friday?"},
      {"role":"assistant","content":[{"type":"text","text":"Searching."},
        {"type":"tool_use","id":"toolu_1","name":"search_flights",
         "input":{"from":"CDG","to":"FCO"}}]},
      {"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_1",
        "content":"AZ317 98 EUR"},{"type":"text","text":"Book it."}]}],
    "tools":[{"name":"search_flights","description":"Search","input_schema":{"type":"object",
      "properties":{"from":{"type":"string"},"to":{"type":"string"}}}}],"stream":true})";
  const ClientCodec& client = ClientCodecFor(ClientFormat::kAnthropicMessages);
  const ProviderCodec* codec = FindProviderCodec("openai");
  TargetInfo target = Target("openai", "gpt-4o-mini");
  for (auto _ : state) {
    Result<ChatRequest> req = client.DecodeRequest(kBody);
    if (!req.ok()) return state.SkipWithError(req.error().message.c_str());
    Result<HttpRequestSpec> http = codec->BuildRequest(req.value(), target);
    benchmark::DoNotOptimize(http);
  }
}
BENCHMARK(TranslateAnthropicClientRequest);

// One provider chunk through a long-lived decoder and encoder, as in a
// stream: the per-chunk cost, not the setup.
void TranslateChunk(benchmark::State& state, const char* provider, std::string chunk,
                    ClientFormat format, std::string preamble) {
  const ProviderCodec* codec = FindProviderCodec(provider);
  auto decoder = codec->NewStreamDecoder({"m", 1700000000, "req"});
  auto encoder = ClientCodecFor(format).NewStreamEncoder({true, "id", "m", 1700000000});
  StreamEvents events;
  std::string out;
  decoder->Feed(preamble, &events);
  for (const StreamEvent& ev : events) encoder->Encode(ev, &out);
  for (auto _ : state) {
    events.clear();
    out.clear();
    decoder->Feed(chunk, &events);
    for (const StreamEvent& ev : events) encoder->Encode(ev, &out);
    benchmark::DoNotOptimize(out);
  }
  state.SetBytesProcessed(static_cast<int64_t>(chunk.size() * state.iterations()));
}

const char kOpenAiChunk[] =
    "data: {\"id\":\"chatcmpl-123\",\"object\":\"chat.completion.chunk\",\"created\":1694268190,"
    "\"model\":\"gpt-4o-mini-2024-07-18\",\"system_fingerprint\":\"fp_44709d6fcb\",\"choices\":"
    "[{\"index\":0,\"delta\":{\"content\":\" Paris is lovely in spring.\"},\"logprobs\":null,"
    "\"finish_reason\":null}],\"usage\":null}\n\n";
const char kAnthropicPreamble[] =
    "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\","
    "\"model\":\"claude\",\"usage\":{\"input_tokens\":25,\"output_tokens\":1}}}\n\n"
    "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,"
    "\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n";
const char kAnthropicChunk[] =
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,"
    "\"delta\":{\"type\":\"text_delta\",\"text\":\" Paris is lovely in spring.\"}}\n\n";
const char kGeminiChunk[] =
    "data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \" Paris is lovely in "
    "spring.\"}],\"role\": \"model\"},\"index\": 0}],\"usageMetadata\": {\"promptTokenCount\": 8,"
    "\"totalTokenCount\": 8},\"modelVersion\": \"gemini-2.0-flash-001\"}\r\n\r\n";

BENCHMARK_CAPTURE(TranslateChunk, openai_to_chat, "openai", kOpenAiChunk, ClientFormat::kOpenAiChat,
                  "");
BENCHMARK_CAPTURE(TranslateChunk, anthropic_to_chat, "anthropic", kAnthropicChunk,
                  ClientFormat::kOpenAiChat, kAnthropicPreamble);
BENCHMARK_CAPTURE(TranslateChunk, anthropic_to_anthropic, "anthropic", kAnthropicChunk,
                  ClientFormat::kAnthropicMessages, kAnthropicPreamble);
BENCHMARK_CAPTURE(TranslateChunk, openai_to_responses, "openai", kOpenAiChunk,
                  ClientFormat::kOpenAiResponses, "");
BENCHMARK_CAPTURE(TranslateChunk, gemini_to_chat, "gemini", kGeminiChunk, ClientFormat::kOpenAiChat,
                  "");

// A whole non-streamed answer (~1 KB: text and one tool call, usage), as
// each provider sends it, translated for a client.
constexpr char kText[] =
    "AZ317 at 12:45 is the cheaper direct flight; I will book it with a window seat.";
const std::string kOpenAiAnswer =
    std::string(R"({"id":"chatcmpl-9x","object":"chat.completion",
"created":1717000000,"model":"gpt-4o-mini-2024-07-18","system_fingerprint":"fp_44709d6fcb",
"choices":[{"index":0,"message":{"role":"assistant","content":")") +
    kText +
    R"(","refusal":null,"tool_calls":[{"id":"call_2","type":"function","function":{
"name":"book_flight","arguments":"{\"flight\":\"AZ317\",\"seat\":\"window\"}"}}]},
"logprobs":null,"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":212,
"completion_tokens":41,"total_tokens":253,"prompt_tokens_details":{"cached_tokens":0},
"completion_tokens_details":{"reasoning_tokens":0}}})";
const std::string kAnthropicAnswer = std::string(R"({"id":"msg_01","type":"message",
"role":"assistant","model":"claude-3-5-sonnet-20241022","content":[{"type":"text","text":")") +
                                     kText +
                                     R"("},{"type":"tool_use","id":"toolu_2","name":"book_flight",
"input":{"flight":"AZ317","seat":"window"}}],"stop_reason":"tool_use","stop_sequence":null,
"usage":{"input_tokens":212,"output_tokens":41}})";
const std::string kGeminiAnswer = std::string(R"({"candidates":[{"content":{"parts":[
{"text":")") + kText + R"("},{"functionCall":{"name":"book_flight",
"args":{"flight":"AZ317","seat":"window"}}}],"role":"model"},"finishReason":"STOP","index":0}],
"usageMetadata":{"promptTokenCount":212,"candidatesTokenCount":41,"totalTokenCount":253},
"modelVersion":"gemini-2.0-flash-001","responseId":"r-9x"})";

void TranslateAnswer(benchmark::State& state, const char* provider, std::string body,
                     ClientFormat format) {
  const ProviderCodec* codec = FindProviderCodec(provider);
  const ClientCodec& client = ClientCodecFor(format);
  const ResponseContext ctx{"m", 1700000000, "req"};
  for (auto _ : state) {
    Result<ChatResponse> answer = codec->ParseResponse(200, body, ctx);
    if (!answer.ok()) return state.SkipWithError(answer.error().message.c_str());
    std::string out = client.EncodeResponse(answer.value());
    benchmark::DoNotOptimize(out);
  }
  state.SetBytesProcessed(static_cast<int64_t>(body.size() * state.iterations()));
}
BENCHMARK_CAPTURE(TranslateAnswer, openai_to_chat, "openai", kOpenAiAnswer,
                  ClientFormat::kOpenAiChat);
BENCHMARK_CAPTURE(TranslateAnswer, openai_to_anthropic, "openai", kOpenAiAnswer,
                  ClientFormat::kAnthropicMessages);
BENCHMARK_CAPTURE(TranslateAnswer, anthropic_to_chat, "anthropic", kAnthropicAnswer,
                  ClientFormat::kOpenAiChat);
BENCHMARK_CAPTURE(TranslateAnswer, anthropic_to_anthropic, "anthropic", kAnthropicAnswer,
                  ClientFormat::kAnthropicMessages);
BENCHMARK_CAPTURE(TranslateAnswer, gemini_to_chat, "gemini", kGeminiAnswer,
                  ClientFormat::kOpenAiChat);
BENCHMARK_CAPTURE(TranslateAnswer, gemini_to_responses, "gemini", kGeminiAnswer,
                  ClientFormat::kOpenAiResponses);

// Bedrock: one already-decoded eventstream event.
void TranslateBedrockEvent(benchmark::State& state) {
  auto decoder = FindProviderCodec("bedrock")->NewStreamDecoder({"m", 1700000000, "req"});
  auto encoder = ClientCodecFor(ClientFormat::kOpenAiChat).NewStreamEncoder({true, "id", "m", 1});
  StreamEvents events;
  std::string out;
  const std::string payload =
      R"({"contentBlockIndex":0,"delta":{"text":" Paris is lovely in spring."},"p":"abcdefgh"})";
  for (auto _ : state) {
    events.clear();
    out.clear();
    decoder->FeedEvent("contentBlockDelta", payload, &events);
    for (const StreamEvent& ev : events) encoder->Encode(ev, &out);
    benchmark::DoNotOptimize(out);
  }
}
BENCHMARK(TranslateBedrockEvent);

}  // namespace
}  // namespace tg::adapter::translate

BENCHMARK_MAIN();
