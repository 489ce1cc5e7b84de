// Size: every provider's wire format (requests checked, answers written), one section each.
#include "fake_wire.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <bit>
#include <cctype>
#include <charconv>
#include <cstdio>
#include <initializer_list>

#include "tg/adapter/aws/eventstream.h"
#include "tg/common/bounded_json.h"
#include "tg/common/crypto.h"
#include "tg/common/json_util.h"

namespace tg::fakes {
namespace {

using Headers = std::vector<std::pair<std::string, std::string>>;

std::string Q(std::string_view s) {
  std::string out;
  tg::json::AppendQuoted(out, s);
  return out;
}

// `json` when it is a JSON object, "{}" otherwise: tool arguments are embedded
// as objects by Anthropic, Gemini and Bedrock.
std::string ObjectOrEmpty(std::string_view json) {
  rapidjson::Document doc;
  if (!tg::json::Parse(json, &doc).ok() || !doc.IsObject()) return "{}";
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> writer(buf);
  doc.Accept(writer);
  return buf.GetString();
}

std::string N(int64_t v) { return std::to_string(v); }

// A request id in AWS's UUID shape, unique per request.
std::string RequestUuid(uint64_t seq) {
  char buf[40];
  std::snprintf(buf, sizeof(buf), "00000000-0000-4000-8000-%012llx",
                static_cast<unsigned long long>(seq));
  return buf;
}

// Words with their leading space ("Hello", " from", " the"), as models stream.
std::vector<std::string> Pieces(std::string_view text) {
  std::vector<std::string> out;
  size_t start = 0;
  for (size_t i = 1; i <= text.size(); ++i) {
    if (i == text.size() || text[i] == ' ') {
      out.emplace_back(text.substr(start, i - start));
      start = i;
    }
  }
  return out;
}

// Tool arguments arrive in fragments in every streaming format but Gemini's.
std::vector<std::string> Fragments(std::string_view args) {
  if (args.size() < 2) return {std::string(args)};
  size_t half = args.size() / 2;
  return {std::string(args.substr(0, half)), std::string(args.substr(half))};
}

struct Plan {
  std::string model;
  std::string text;
  std::vector<FakeToolCall> calls;
  std::string finish;  // stop | length | tool_calls | content_filter
  int64_t in = 0, out = 0, cached = 0;
  uint64_t seq = 1;
  int64_t now = 0;
  bool include_usage = false;
};

Plan MakePlan(Api api, const RequestFacts& facts, const FakeAnswer& answer, const ReplyIds& ids) {
  Plan p;
  p.model = facts.model;
  p.text = answer.text;
  // A prefill is continued: the answer is what follows it (all of the text
  // when the prefill is not its beginning).
  if (!facts.prefill.empty() && p.text.starts_with(facts.prefill)) {
    p.text.erase(0, facts.prefill.size());
  }
  p.calls = answer.tool_calls;
  if (p.calls.empty() && !facts.tool_names.empty() && !facts.ends_with_tool_result) {
    p.calls.push_back({"", facts.tool_names.front(), answer.auto_tool_arguments});
    p.text.clear();
  }
  for (size_t i = 0; i < p.calls.size(); ++i) {
    if (!p.calls[i].id.empty()) continue;
    std::string suffix =
        "fake" + N(static_cast<int64_t>(ids.seq)) + "_" + N(static_cast<int64_t>(i));
    switch (api) {
      case Api::kAnthropic:
        p.calls[i].id = "toolu_" + suffix;
        break;
      case Api::kBedrock:
        p.calls[i].id = "tooluse_" + suffix;
        break;
      default:
        p.calls[i].id = "call_" + suffix;
    }
  }
  p.finish = p.calls.empty() ? answer.finish : "tool_calls";
  p.in = answer.input_tokens;
  p.out = answer.output_tokens;
  p.cached = answer.cached_tokens;
  p.seq = ids.seq;
  p.now = ids.now_s;
  p.include_usage = facts.include_usage;
  return p;
}

// ------------------------------------------------------------ OpenAI / Azure

std::string OpenAiUsage(const Plan& p) {
  return R"({"prompt_tokens":)" + N(p.in) + R"(,"completion_tokens":)" + N(p.out) +
         R"(,"total_tokens":)" + N(p.in + p.out) + R"(,"prompt_tokens_details":{"cached_tokens":)" +
         N(p.cached) +
         R"(,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,)"
         R"("accepted_prediction_tokens":0,"rejected_prediction_tokens":0}})";
}

constexpr char kAzureFilterOk[] = R"({"hate":{"filtered":false,"severity":"safe"},)"
                                  R"("self_harm":{"filtered":false,"severity":"safe"},)"
                                  R"("sexual":{"filtered":false,"severity":"safe"},)"
                                  R"("violence":{"filtered":false,"severity":"safe"}})";

std::string ChatToolCalls(const Plan& p) {
  std::string s = "[";
  for (size_t i = 0; i < p.calls.size(); ++i) {
    if (i > 0) s += ",";
    s += R"({"id":)" + Q(p.calls[i].id) + R"(,"type":"function","function":{"name":)" +
         Q(p.calls[i].name) + R"(,"arguments":)" + Q(p.calls[i].arguments_json) + "}}";
  }
  return s + "]";
}

// The request id (and region or timing) headers of every OpenAI or Azure answer.
void AddOpenAiHeaders(WireReply* r, uint64_t seq, bool azure) {
  if (azure) {
    r->headers.emplace_back("apim-request-id", "fake-apim-" + N(static_cast<int64_t>(seq)));
    r->headers.emplace_back("x-ms-region", "East US");
  } else {
    r->headers.emplace_back("x-request-id", "req_fake" + N(static_cast<int64_t>(seq)));
    r->headers.emplace_back("openai-processing-ms", "1");
  }
}

WireReply OpenAiChat(const Plan& p, bool stream, bool azure) {
  WireReply r;
  const std::string id = "chatcmpl-fake" + N(static_cast<int64_t>(p.seq));
  AddOpenAiHeaders(&r, p.seq, azure);
  if (!stream) {
    r.headers.emplace_back("Content-Type", "application/json");
    std::string message = R"({"role":"assistant","content":)" +
                          (p.calls.empty() ? Q(p.text) : std::string("null")) +
                          R"(,"refusal":null)";
    if (!p.calls.empty()) message += R"(,"tool_calls":)" + ChatToolCalls(p);
    message += R"(,"annotations":[]})";
    r.body = R"({"id":)" + Q(id) + R"(,"object":"chat.completion","created":)" + N(p.now) +
             R"(,"model":)" + Q(p.model) + R"(,"choices":[{"index":0,"message":)" + message;
    if (azure) r.body += std::string(R"(,"content_filter_results":)") + kAzureFilterOk;
    r.body += R"(,"logprobs":null,"finish_reason":)" + Q(p.finish) + "}]";
    r.body += R"(,"usage":)" + OpenAiUsage(p);
    if (azure) {
      r.body +=
          std::string(R"(,"prompt_filter_results":[{"prompt_index":0,"content_filter_results":)") +
          kAzureFilterOk + "}]";
    } else {
      r.body += R"(,"service_tier":"default")";
    }
    r.body += R"(,"system_fingerprint":"fp_fake"})";
    return r;
  }
  r.headers.emplace_back("Content-Type", "text/event-stream; charset=utf-8");
  r.streamed = true;
  auto data = [](const std::string& json) { return "data: " + json + "\n\n"; };
  const std::string prefix =
      R"({"id":)" + Q(id) + R"(,"object":"chat.completion.chunk","created":)" + N(p.now) +
      R"(,"model":)" + Q(p.model) + (azure ? "" : R"(,"service_tier":"default")") +
      R"(,"system_fingerprint":"fp_fake","choices":[)";
  const std::string usage_null = p.include_usage ? R"(,"usage":null)" : "";
  auto chunk = [&](const std::string& delta, const std::string& finish, bool filtered) {
    std::string c = prefix + R"({"index":0,"delta":)" + delta;
    if (azure)
      c += std::string(R"(,"content_filter_results":)") + (filtered ? kAzureFilterOk : "{}");
    c += R"(,"logprobs":null,"finish_reason":)" + finish + "}]" + usage_null + "}";
    return data(c);
  };
  if (azure) {
    // Azure's first chunk carries only the prompt filter results.
    r.events.push_back(data(
        std::string(R"({"choices":[],"created":0,"id":"","model":"","object":"",)"
                    R"("prompt_filter_results":[{"prompt_index":0,"content_filter_results":)") +
        kAzureFilterOk + "}]}"));
  }
  r.events.push_back(chunk(R"({"role":"assistant","content":"","refusal":null})", "null", false));
  for (const std::string& piece : Pieces(p.text)) {
    r.events.push_back(chunk(R"({"content":)" + Q(piece) + "}", "null", true));
  }
  for (size_t i = 0; i < p.calls.size(); ++i) {
    const FakeToolCall& c = p.calls[i];
    r.events.push_back(chunk(
        R"({"tool_calls":[{"index":)" + N(static_cast<int64_t>(i)) + R"(,"id":)" + Q(c.id) +
            R"(,"type":"function","function":{"name":)" + Q(c.name) + R"(,"arguments":""}}]})",
        "null", false));
    for (const std::string& frag : Fragments(c.arguments_json)) {
      r.events.push_back(chunk(R"({"tool_calls":[{"index":)" + N(static_cast<int64_t>(i)) +
                                   R"(,"function":{"arguments":)" + Q(frag) + "}}]}",
                               "null", false));
    }
  }
  r.events.push_back(chunk("{}", Q(p.finish), false));
  if (p.include_usage) {
    r.events.push_back(data(prefix + R"(],"usage":)" + OpenAiUsage(p) + "}"));
  }
  r.events.push_back("data: [DONE]\n\n");
  return r;
}

// ------------------------------------------------------------ OpenAI Responses

std::string ResponsesUsage(const Plan& p) {
  return R"({"input_tokens":)" + N(p.in) + R"(,"input_tokens_details":{"cached_tokens":)" +
         N(p.cached) + R"(},"output_tokens":)" + N(p.out) +
         R"(,"output_tokens_details":{"reasoning_tokens":0},"total_tokens":)" + N(p.in + p.out) +
         "}";
}

WireReply OpenAiResponses(const Plan& p, bool stream) {
  WireReply r;
  r.headers.emplace_back("x-request-id", "req_fake" + N(static_cast<int64_t>(p.seq)));
  const std::string seq = N(static_cast<int64_t>(p.seq));
  const std::string resp_id = "resp_fake" + seq;
  const std::string msg_id = "msg_fake" + seq;
  auto fc_id = [&](size_t i) { return "fc_fake" + seq + "_" + N(static_cast<int64_t>(i)); };
  const bool incomplete = p.finish == "length" || p.finish == "content_filter";
  const std::string reason = p.finish == "length" ? "max_output_tokens" : "content_filter";

  auto text_part = [](const std::string& text) {
    return R"({"type":"output_text","annotations":[],"logprobs":[],"text":)" + Q(text) + "}";
  };
  auto message_item = [&](bool done) {
    return R"({"id":)" + Q(msg_id) + R"(,"type":"message","status":)" +
           Q(done ? "completed" : "in_progress") + R"(,"content":)" +
           (done ? "[" + text_part(p.text) + "]" : std::string("[]")) + R"(,"role":"assistant"})";
  };
  auto call_item = [&](size_t i, bool done) {
    const FakeToolCall& c = p.calls[i];
    return R"({"id":)" + Q(fc_id(i)) + R"(,"type":"function_call","status":)" +
           Q(done ? "completed" : "in_progress") + R"(,"arguments":)" +
           Q(done ? c.arguments_json : "") + R"(,"call_id":)" + Q(c.id) + R"(,"name":)" +
           Q(c.name) + "}";
  };
  const bool has_message = !p.text.empty() || p.calls.empty();
  auto response = [&](const std::string& status, bool done) {
    std::string output = "[";
    if (done) {
      bool first = true;
      if (has_message) {
        output += message_item(true);
        first = false;
      }
      for (size_t i = 0; i < p.calls.size(); ++i) {
        if (!first) output += ",";
        output += call_item(i, true);
        first = false;
      }
    }
    output += "]";
    return R"({"id":)" + Q(resp_id) + R"(,"object":"response","created_at":)" + N(p.now) +
           R"(,"status":)" + Q(status) +
           R"(,"background":false,"error":null,"incomplete_details":)" +
           (done && incomplete ? R"({"reason":)" + Q(reason) + "}" : std::string("null")) +
           R"(,"instructions":null,"max_output_tokens":null,"model":)" + Q(p.model) +
           R"(,"output":)" + output +
           R"(,"parallel_tool_calls":true,"previous_response_id":null,)"
           R"("reasoning":{"effort":null,"summary":null},"store":true,"temperature":1.0,)"
           R"("text":{"format":{"type":"text"}},"tool_choice":"auto","tools":[],"top_p":1.0,)"
           R"("truncation":"disabled","usage":)" +
           (done ? ResponsesUsage(p) : std::string("null")) + R"(,"user":null,"metadata":{}})";
  };
  const std::string final_status = incomplete ? "incomplete" : "completed";
  if (!stream) {
    r.headers.emplace_back("Content-Type", "application/json");
    r.body = response(final_status, true);
    return r;
  }
  r.headers.emplace_back("Content-Type", "text/event-stream; charset=utf-8");
  r.streamed = true;
  int n = 0;
  auto event = [&](const std::string& type, const std::string& fields) {
    std::string e = "event: " + type + "\ndata: {\"type\":" + Q(type) +
                    ",\"sequence_number\":" + N(n++) + fields + "}\n\n";
    r.events.push_back(std::move(e));
  };
  event("response.created", R"(,"response":)" + response("in_progress", false));
  event("response.in_progress", R"(,"response":)" + response("in_progress", false));
  int index = 0;
  if (has_message) {
    const std::string where =
        R"(,"item_id":)" + Q(msg_id) + R"(,"output_index":)" + N(index) + R"(,"content_index":0)";
    event("response.output_item.added",
          R"(,"output_index":)" + N(index) + R"(,"item":)" + message_item(false));
    event("response.content_part.added", where + R"(,"part":)" + text_part(""));
    for (const std::string& piece : Pieces(p.text)) {
      event("response.output_text.delta", where + R"(,"delta":)" + Q(piece) + R"(,"logprobs":[])");
    }
    event("response.output_text.done", where + R"(,"text":)" + Q(p.text) + R"(,"logprobs":[])");
    event("response.content_part.done", where + R"(,"part":)" + text_part(p.text));
    event("response.output_item.done",
          R"(,"output_index":)" + N(index) + R"(,"item":)" + message_item(true));
    ++index;
  }
  for (size_t i = 0; i < p.calls.size(); ++i, ++index) {
    const std::string where = R"(,"item_id":)" + Q(fc_id(i)) + R"(,"output_index":)" + N(index);
    event("response.output_item.added",
          R"(,"output_index":)" + N(index) + R"(,"item":)" + call_item(i, false));
    for (const std::string& frag : Fragments(p.calls[i].arguments_json)) {
      event("response.function_call_arguments.delta", where + R"(,"delta":)" + Q(frag));
    }
    event("response.function_call_arguments.done",
          where + R"(,"arguments":)" + Q(p.calls[i].arguments_json));
    event("response.output_item.done",
          R"(,"output_index":)" + N(index) + R"(,"item":)" + call_item(i, true));
  }
  event(incomplete ? "response.incomplete" : "response.completed",
        R"(,"response":)" + response(final_status, true));
  return r;
}

// ------------------------------------------------------------ Anthropic

std::string AnthropicStop(const std::string& f) {
  if (f == "length") return "max_tokens";
  if (f == "tool_calls") return "tool_use";
  if (f == "content_filter") return "refusal";
  return "end_turn";
}

WireReply Anthropic(const Plan& p, bool stream) {
  WireReply r;
  r.headers.emplace_back("request-id", "req_fake" + N(static_cast<int64_t>(p.seq)));
  const std::string id = "msg_fake" + N(static_cast<int64_t>(p.seq));
  const std::string usage_in = R"("input_tokens":)" + N(p.in - p.cached) +
                               R"(,"cache_creation_input_tokens":0,"cache_read_input_tokens":)" +
                               N(p.cached);
  const bool has_text = !p.text.empty() || p.calls.empty();
  if (!stream) {
    r.headers.emplace_back("Content-Type", "application/json");
    std::string content = "[";
    if (has_text) content += R"({"type":"text","text":)" + Q(p.text) + "}";
    for (size_t i = 0; i < p.calls.size(); ++i) {
      if (i > 0 || has_text) content += ",";
      content += R"({"type":"tool_use","id":)" + Q(p.calls[i].id) + R"(,"name":)" +
                 Q(p.calls[i].name) + R"(,"input":)" + ObjectOrEmpty(p.calls[i].arguments_json) +
                 "}";
    }
    content += "]";
    r.body = R"({"id":)" + Q(id) + R"(,"type":"message","role":"assistant","model":)" + Q(p.model) +
             R"(,"content":)" + content + R"(,"stop_reason":)" + Q(AnthropicStop(p.finish)) +
             R"(,"stop_sequence":null,"usage":{)" + usage_in + R"(,"output_tokens":)" + N(p.out) +
             R"(,"service_tier":"standard"}})";
    return r;
  }
  r.headers.emplace_back("Content-Type", "text/event-stream; charset=utf-8");
  r.streamed = true;
  auto event = [&](const std::string& type, const std::string& json) {
    r.events.push_back("event: " + type + "\ndata: " + json + "\n\n");
  };
  event("message_start", R"({"type":"message_start","message":{"id":)" + Q(id) +
                             R"(,"type":"message","role":"assistant","model":)" + Q(p.model) +
                             R"(,"content":[],"stop_reason":null,"stop_sequence":null,"usage":{)" +
                             usage_in + R"(,"output_tokens":1,"service_tier":"standard"}}})");
  int block = 0;
  bool pinged = false;
  auto ping = [&] {
    if (!pinged) event("ping", R"({"type": "ping"})");
    pinged = true;
  };
  if (has_text) {
    event("content_block_start", R"({"type":"content_block_start","index":)" + N(block) +
                                     R"(,"content_block":{"type":"text","text":""}})");
    ping();
    for (const std::string& piece : Pieces(p.text)) {
      event("content_block_delta", R"({"type":"content_block_delta","index":)" + N(block) +
                                       R"(,"delta":{"type":"text_delta","text":)" + Q(piece) +
                                       "}}");
    }
    event("content_block_stop", R"({"type":"content_block_stop","index":)" + N(block) + "}");
    ++block;
  }
  for (const FakeToolCall& c : p.calls) {
    event("content_block_start", R"({"type":"content_block_start","index":)" + N(block) +
                                     R"(,"content_block":{"type":"tool_use","id":)" + Q(c.id) +
                                     R"(,"name":)" + Q(c.name) + R"(,"input":{}}})");
    ping();
    std::vector<std::string> frags = Fragments(c.arguments_json);
    frags.insert(frags.begin(), "");  // Anthropic opens with an empty partial_json
    for (const std::string& frag : frags) {
      event("content_block_delta", R"({"type":"content_block_delta","index":)" + N(block) +
                                       R"(,"delta":{"type":"input_json_delta","partial_json":)" +
                                       Q(frag) + "}}");
    }
    event("content_block_stop", R"({"type":"content_block_stop","index":)" + N(block) + "}");
    ++block;
  }
  event("message_delta",
        R"({"type":"message_delta","delta":{"stop_reason":)" + Q(AnthropicStop(p.finish)) +
            R"(,"stop_sequence":null},"usage":{"output_tokens":)" + N(p.out) + "}}");
  event("message_stop", R"({"type":"message_stop"})");
  return r;
}

// ------------------------------------------------------------ Gemini

std::string GeminiFinish(const std::string& f) {
  if (f == "length") return "MAX_TOKENS";
  if (f == "content_filter") return "SAFETY";
  return "STOP";  // tool calls too: Gemini says STOP with a functionCall part
}

WireReply Gemini(const Plan& p, bool stream, bool sse) {
  WireReply r;
  const std::string tail = R"(,"modelVersion":)" + Q(p.model) + R"(,"responseId":)" +
                           Q("fake" + N(static_cast<int64_t>(p.seq))) + "}";
  std::string full_usage = R"({"promptTokenCount":)" + N(p.in) + R"(,"candidatesTokenCount":)" +
                           N(p.out) + R"(,"totalTokenCount":)" + N(p.in + p.out);
  if (p.cached > 0) full_usage += R"(,"cachedContentTokenCount":)" + N(p.cached);
  full_usage += R"(,"promptTokensDetails":[{"modality":"TEXT","tokenCount":)" + N(p.in) + "}]}";
  const std::string prompt_usage =
      R"({"promptTokenCount":)" + N(p.in) + R"(,"totalTokenCount":)" + N(p.in) + "}";
  auto call_part = [](const FakeToolCall& c) {
    return R"({"functionCall":{"name":)" + Q(c.name) + R"(,"args":)" +
           ObjectOrEmpty(c.arguments_json) + "}}";
  };
  auto response = [&](const std::string& parts, bool last) {
    return R"({"candidates":[{"content":{"parts":)" + parts + R"(,"role":"model"})" +
           (last ? R"(,"finishReason":)" + Q(GeminiFinish(p.finish)) : std::string()) +
           R"(,"index":0}],"usageMetadata":)" + (last ? full_usage : prompt_usage) + tail;
  };
  if (!stream) {
    r.headers.emplace_back("Content-Type", "application/json; charset=UTF-8");
    std::string parts = "[";
    bool first = true;
    if (!p.text.empty() || p.calls.empty()) {
      parts += R"({"text":)" + Q(p.text) + "}";
      first = false;
    }
    for (const FakeToolCall& c : p.calls) {
      if (!first) parts += ",";
      parts += call_part(c);
      first = false;
    }
    r.body = response(parts + "]", true);
    return r;
  }
  // One chunk per text piece; function calls arrive whole; the last chunk
  // carries finishReason and the full usage.
  std::vector<std::string> chunks_parts;
  for (const std::string& piece : Pieces(p.text)) {
    chunks_parts.push_back(R"([{"text":)" + Q(piece) + "}]");
  }
  if (!p.calls.empty()) {
    std::string parts = "[";
    for (size_t i = 0; i < p.calls.size(); ++i) parts += (i ? "," : "") + call_part(p.calls[i]);
    chunks_parts.push_back(parts + "]");
  }
  if (chunks_parts.empty()) chunks_parts.push_back(R"([{"text":""}])");
  r.streamed = true;
  if (sse) {
    r.headers.emplace_back("Content-Type", "text/event-stream");
    for (size_t i = 0; i < chunks_parts.size(); ++i) {
      r.events.push_back("data: " + response(chunks_parts[i], i + 1 == chunks_parts.size()) +
                         "\r\n\r\n");
    }
  } else {
    // Without alt=sse Gemini streams one JSON array, element by element.
    r.headers.emplace_back("Content-Type", "application/json; charset=UTF-8");
    for (size_t i = 0; i < chunks_parts.size(); ++i) {
      r.events.push_back((i == 0 ? "[" : ",\r\n") +
                         response(chunks_parts[i], i + 1 == chunks_parts.size()));
    }
    r.events.push_back("]");
  }
  return r;
}

// ------------------------------------------------------------ Bedrock

std::string BedrockStop(const std::string& f) {
  if (f == "length") return "max_tokens";
  if (f == "tool_calls") return "tool_use";
  if (f == "content_filter") return "content_filtered";
  return "end_turn";
}

std::string BedrockUsage(const Plan& p) {
  std::string s = R"({"inputTokens":)" + N(p.in) + R"(,"outputTokens":)" + N(p.out) +
                  R"(,"totalTokens":)" + N(p.in + p.out);
  if (p.cached > 0) s += R"(,"cacheReadInputTokens":)" + N(p.cached);
  return s + "}";
}

WireReply Bedrock(const Plan& p, bool stream) {
  WireReply r;
  r.headers.emplace_back("x-amzn-RequestId", RequestUuid(p.seq));
  const bool has_text = !p.text.empty() || p.calls.empty();
  if (!stream) {
    r.headers.emplace_back("Content-Type", "application/json");
    std::string content = "[";
    if (has_text) content += R"({"text":)" + Q(p.text) + "}";
    for (size_t i = 0; i < p.calls.size(); ++i) {
      if (i > 0 || has_text) content += ",";
      content += R"({"toolUse":{"input":)" + ObjectOrEmpty(p.calls[i].arguments_json) +
                 R"(,"name":)" + Q(p.calls[i].name) + R"(,"toolUseId":)" + Q(p.calls[i].id) + "}}";
    }
    content += "]";
    r.body = R"({"metrics":{"latencyMs":42},"output":{"message":{"content":)" + content +
             R"(,"role":"assistant"}},"stopReason":)" + Q(BedrockStop(p.finish)) + R"(,"usage":)" +
             BedrockUsage(p) + "}";
    return r;
  }
  r.headers.emplace_back("Content-Type", "application/vnd.amazon.eventstream");
  r.streamed = true;
  // Bedrock pads payloads with a "p" field of varying length (hides token
  // lengths from traffic analysis); decoders must ignore it.
  static constexpr std::string_view kPad =
      "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123";
  size_t n = 0;
  auto event = [&](std::string_view type, std::string json_without_brace) {
    std::string pad(kPad.substr(0, 1 + (n++ * 7) % kPad.size()));
    std::string payload = json_without_brace + R"(,"p":)" + Q(pad) + "}";
    r.events.push_back(adapter::aws::EncodeEvent(type, payload));
  };
  event("messageStart", R"({"role":"assistant")");
  int block = 0;
  if (has_text) {
    for (const std::string& piece : Pieces(p.text)) {
      event("contentBlockDelta",
            R"({"contentBlockIndex":)" + N(block) + R"(,"delta":{"text":)" + Q(piece) + "}");
    }
    event("contentBlockStop", R"({"contentBlockIndex":)" + N(block));
    ++block;
  }
  for (const FakeToolCall& c : p.calls) {
    event("contentBlockStart", R"({"contentBlockIndex":)" + N(block) +
                                   R"(,"start":{"toolUse":{"name":)" + Q(c.name) +
                                   R"(,"toolUseId":)" + Q(c.id) + "}}");
    for (const std::string& frag : Fragments(c.arguments_json)) {
      event("contentBlockDelta", R"({"contentBlockIndex":)" + N(block) +
                                     R"(,"delta":{"toolUse":{"input":)" + Q(frag) + "}}");
    }
    event("contentBlockStop", R"({"contentBlockIndex":)" + N(block));
    ++block;
  }
  event("messageStop", R"({"stopReason":)" + Q(BedrockStop(p.finish)));
  event("metadata", R"({"metrics":{"latencyMs":42},"usage":)" + BedrockUsage(p));
  return r;
}

// ------------------------------------------------------------ request facts

const rapidjson::Value* Member(const rapidjson::Value& v, const char* name) {
  return v.IsObject() && v.HasMember(name) ? &v[name] : nullptr;
}

std::string StringMember(const rapidjson::Value& v, const char* name) {
  const rapidjson::Value* m = Member(v, name);
  return m != nullptr && m->IsString() ? std::string(m->GetString(), m->GetStringLength())
                                       : std::string();
}

bool BoolMember(const rapidjson::Value& v, const char* name) {
  const rapidjson::Value* m = Member(v, name);
  return m != nullptr && m->IsBool() && m->GetBool();
}

const rapidjson::Value* LastOf(const rapidjson::Value* array) {
  if (array == nullptr || !array->IsArray() || array->Empty()) return nullptr;
  return &(*array)[array->Size() - 1];
}

// Whether any element of `content` (an array of blocks) has `key` as its
// type (Anthropic "tool_result") or as a member (Bedrock "toolResult").
bool ContentHas(const rapidjson::Value* content, const char* type_value, const char* member) {
  if (content == nullptr || !content->IsArray()) return false;
  for (const auto& block : content->GetArray()) {
    if (type_value != nullptr && StringMember(block, "type") == type_value) return true;
    if (member != nullptr && Member(block, member) != nullptr) return true;
  }
  return false;
}

// The text of a message's content: a string, or the `text` of its blocks
// (text, output_text and Gemini parts alike).
std::string TextOf(const rapidjson::Value* content) {
  if (content == nullptr) return "";
  if (content->IsString()) return std::string(content->GetString(), content->GetStringLength());
  std::string out;
  if (!content->IsArray()) return out;
  for (const auto& block : content->GetArray()) out += StringMember(block, "text");
  return out;
}

// The assistant (Gemini: model) message a conversation ends with: a prefill
// the answer continues. "" when it ends otherwise.
std::string PrefillOf(const rapidjson::Value* last, const char* role, const char* content) {
  if (last == nullptr || StringMember(*last, "role") != role) return "";
  return TextOf(Member(*last, content));
}

// ------------------------------------------------------------ embeddings

// Past the largest real model's 3072, so no real request is refused, yet a
// bound on what one request can make the fake allocate.
constexpr int kMaxDimensions = 4096;

uint64_t Fnv1a(std::string_view s) {
  uint64_t h = 14695981039346656037ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

// Each value as the shortest decimal of its double: for FakeEmbedding's k/1024
// values the exact decimal, so a client reads exactly FakeEmbedding() whether
// it parses into float32 or into double.
std::string FloatArray(const std::vector<float>& v) {
  std::string s = "[";
  char buf[32];
  for (size_t i = 0; i < v.size(); ++i) {
    if (i > 0) s += ",";
    s.append(buf, std::to_chars(buf, buf + sizeof(buf), static_cast<double>(v[i])).ptr);
  }
  return s + "]";
}

// OpenAI's encoding_format "base64": the float32 little-endian bytes.
std::string Float32Base64(const std::vector<float>& v) {
  std::string bytes;
  bytes.reserve(v.size() * 4);
  for (float f : v) {
    const auto u = std::bit_cast<uint32_t>(f);
    for (int b = 0; b < 4; ++b) bytes += static_cast<char>((u >> (8 * b)) & 0xff);
  }
  return tg::crypto::Base64Encode(bytes);
}

std::string StringOf(const rapidjson::Value& v) { return {v.GetString(), v.GetStringLength()}; }

// An optional member as OpenAI and Google read it: null counts as absent.
// (Bedrock's JSON schemas refuse a null, so its checks use Member.)
const rapidjson::Value* Given(const rapidjson::Value& v, const char* name) {
  const rapidjson::Value* m = Member(v, name);
  return m != nullptr && !m->IsNull() ? m : nullptr;
}

// An optional vector length: true (and *out set when given) when absent or
// an integer in [1, kMaxDimensions].
bool DimensionsOk(const rapidjson::Value* given, int* out) {
  if (given == nullptr) return true;
  if (!given->IsInt() || given->GetInt() < 1 || given->GetInt() > kMaxDimensions) return false;
  *out = given->GetInt();
  return true;
}

// Whether `v` is a string among `allowed`.
bool OneOf(const rapidjson::Value& v, std::initializer_list<std::string_view> allowed) {
  return v.IsString() && std::find(allowed.begin(), allowed.end(), StringOf(v)) != allowed.end();
}

// ---- OpenAI, Azure

// OpenAI's `input` as texts: a string, strings, token ids or arrays of token
// ids (each embedded as the ids' decimal text joined by spaces). false when
// it is none of these, or empty anywhere (OpenAI refuses empty inputs).
bool OpenAiTexts(const rapidjson::Value& input, std::vector<std::string>* texts) {
  auto ids_text = [](const rapidjson::Value& ids, std::string* out) {
    if (!ids.IsArray() || ids.Empty()) return false;
    for (const auto& id : ids.GetArray()) {
      if (!id.IsInt() || id.GetInt() < 0) return false;
      if (!out->empty()) *out += ' ';
      *out += std::to_string(id.GetInt());
    }
    return true;
  };
  if (input.IsString()) {
    texts->push_back(StringOf(input));
    return !texts->back().empty();
  }
  if (!input.IsArray() || input.Empty()) return false;
  if (input[0].IsInt()) {  // one input given as token ids
    texts->emplace_back();
    return ids_text(input, &texts->back());
  }
  if (input.Size() > 2048) return false;     // OpenAI's limit of inputs per request
  const bool strings = input[0].IsString();  // else arrays of token ids
  for (const auto& item : input.GetArray()) {
    texts->emplace_back();
    if (strings) {
      if (!item.IsString() || item.GetStringLength() == 0) return false;
      texts->back() = StringOf(item);
    } else if (!ids_text(item, &texts->back())) {
      return false;
    }
  }
  return true;
}

WireReply OpenAiEmbeddings(Api api, const RequestFacts& facts, const rapidjson::Value& doc,
                           const ReplyIds& ids) {
  auto bad = [api](const std::string& message) { return BuildError(api, 400, message); };
  // Azure's deployment path names the model; OpenAI (and Azure's v1 path) need the body's.
  const rapidjson::Value* model_member = Given(doc, "model");
  if (model_member != nullptr && !model_member->IsString()) {
    return bad("Invalid type for 'model': expected a string.");
  }
  std::string model = facts.model;
  if (model.empty() && model_member != nullptr) model = StringOf(*model_member);
  if (model.empty()) return bad("you must provide a model parameter");
  const rapidjson::Value* input = Given(doc, "input");
  if (input == nullptr) return bad("'input' is a required property");
  std::vector<std::string> texts;
  if (!OpenAiTexts(*input, &texts)) {
    return bad(
        "'$.input' is invalid. Please check the API reference: "
        "https://platform.openai.com/docs/api-reference.");
  }
  int dimensions = kFakeEmbeddingDimensions;
  if (!DimensionsOk(Given(doc, "dimensions"), &dimensions)) {
    return bad("Invalid value for 'dimensions': expected an integer from 1 to " +
               N(kMaxDimensions) + ".");
  }
  const rapidjson::Value* format = Given(doc, "encoding_format");
  if (format != nullptr && !OneOf(*format, {"float", "base64"})) {
    return bad("Invalid value for 'encoding_format'. Supported values are: 'float' and 'base64'.");
  }
  const bool base64 = format != nullptr && StringOf(*format) == "base64";
  if (const rapidjson::Value* user = Given(doc, "user"); user != nullptr && !user->IsString()) {
    return bad("Invalid type for 'user': expected a string.");
  }
  WireReply r;
  AddOpenAiHeaders(&r, ids.seq, api == Api::kAzureEmbeddings);
  r.headers.emplace_back("Content-Type", "application/json");
  int64_t tokens = 0;
  r.body = R"({"object":"list","data":[)";
  for (size_t i = 0; i < texts.size(); ++i) {
    const std::vector<float> v = FakeEmbedding(texts[i], dimensions);
    tokens += FakeTokenCount(texts[i]);
    r.body += (i > 0 ? "," : "") + std::string(R"({"object":"embedding","index":)") +
              N(static_cast<int64_t>(i)) + R"(,"embedding":)" +
              (base64 ? Q(Float32Base64(v)) : FloatArray(v)) + "}";
  }
  r.body += R"(],"model":)" + Q(model) + R"(,"usage":{"prompt_tokens":)" + N(tokens) +
            R"(,"total_tokens":)" + N(tokens) + "}}";
  return r;
}

// ---- Gemini

// One EmbedContentRequest (the :embedContent body, or an element of
// :batchEmbedContents' requests) as its `{"values":[…]}`; "" and *error in
// Google's style ("* <where>.<field>: …") when it is invalid.
std::string GeminiValues(const rapidjson::Value& request, const std::string& where,
                         std::string* error) {
  auto fail = [&](const std::string& field, const std::string& why) {
    *error = "* " + where + "." + field + ": " + why + "\n";
    return std::string();
  };
  const rapidjson::Value* content = Given(request, "content");
  if (content == nullptr) return fail("content", "contents is not specified");
  const rapidjson::Value* parts = Given(*content, "parts");
  if (parts == nullptr || !parts->IsArray() || parts->Empty()) {
    return fail("content.parts", "contents.parts must not be empty.");
  }
  // The parts' texts embed as one text.
  std::string text;
  for (const auto& part : parts->GetArray()) {
    const rapidjson::Value* t = Given(part, "text");
    if (t == nullptr || !t->IsString()) {
      return fail("content.parts", "only text parts can be embedded.");
    }
    text += StringOf(*t);
  }
  if (text.empty()) return fail("content.parts", "the text must not be empty.");
  int dimensions = kFakeEmbeddingDimensions;
  if (!DimensionsOk(Given(request, "outputDimensionality"), &dimensions)) {
    return fail("output_dimensionality", "must be an integer from 1 to " + N(kMaxDimensions) + ".");
  }
  if (const rapidjson::Value* task = Given(request, "taskType");
      task != nullptr &&
      !OneOf(*task, {"TASK_TYPE_UNSPECIFIED", "RETRIEVAL_QUERY", "RETRIEVAL_DOCUMENT",
                     "SEMANTIC_SIMILARITY", "CLASSIFICATION", "CLUSTERING", "QUESTION_ANSWERING",
                     "FACT_VERIFICATION", "CODE_RETRIEVAL_QUERY"})) {
    return fail("task_type", "invalid value.");
  }
  if (const rapidjson::Value* title = Given(request, "title");
      title != nullptr && !title->IsString()) {
    return fail("title", "must be a string.");
  }
  return R"({"values":)" + FloatArray(FakeEmbedding(text, dimensions)) + "}";
}

WireReply GeminiEmbeddings(const RequestFacts& facts, const rapidjson::Value& doc) {
  auto bad = [](const std::string& message) {
    return BuildError(Api::kGeminiEmbeddings, 400, message);
  };
  WireReply r;
  r.headers.emplace_back("Content-Type", "application/json; charset=UTF-8");
  std::string error;
  if (!facts.gemini_batch) {
    const std::string values = GeminiValues(doc, "EmbedContentRequest", &error);
    if (values.empty()) return bad(error);
    r.body = R"({"embedding":)" + values + "}";
    return r;
  }
  const rapidjson::Value* requests = Given(doc, "requests");
  if (requests == nullptr || !requests->IsArray() || requests->Empty()) {
    return bad("* BatchEmbedContentsRequest.requests: must not be empty.\n");
  }
  if (requests->Size() > 100) {
    return bad("* BatchEmbedContentsRequest.requests: at most 100 requests can be in one batch.\n");
  }
  // Google refuses a batch whose requests name another model than the URL.
  const std::string model = "models/" + facts.model;
  r.body = R"({"embeddings":[)";
  for (rapidjson::SizeType i = 0; i < requests->Size(); ++i) {
    const rapidjson::Value& request = (*requests)[i];
    const std::string where = "BatchEmbedContentsRequest.requests[" + N(i) + "]";
    if (StringMember(request, "model") != model) {
      return bad("* " + where + ".model: the model must be " + model +
                 ", the model of the request URL.\n");
    }
    const std::string values = GeminiValues(request, where, &error);
    if (values.empty()) return bad(error);
    r.body += (i > 0 ? "," : "") + values;
  }
  r.body += "]}";
  return r;
}

// ---- Bedrock InvokeModel

// Bedrock's 400 wording, with the JSON-schema detail when there is one.
std::string BedrockMalformed(std::string_view detail = "") {
  return "Malformed input request" + (detail.empty() ? "" : ": " + std::string(detail)) +
         ", please reformat your input and try again.";
}

// Bedrock checks an InvokeModel body against the model's JSON schema, which
// refuses keys it does not name. "" when every key is allowed.
std::string ExtraneousKey(const rapidjson::Value& doc,
                          std::initializer_list<std::string_view> allowed) {
  for (const auto& m : doc.GetObject()) {
    if (!OneOf(m.name, allowed)) return StringOf(m.name);
  }
  return "";
}

// The embedding types asked for (Titan embeddingTypes, Cohere
// embedding_types): absent, or a non-empty array of "float". Real models
// also serve binary or int8 vectors; the fake serves float vectors only.
bool FloatTypesOnly(const rapidjson::Value* types) {
  if (types == nullptr) return true;
  if (!types->IsArray() || types->Empty()) return false;
  for (const auto& t : types->GetArray()) {
    if (!OneOf(t, {"float"})) return false;
  }
  return true;
}

WireReply BedrockInvokeReply(const ReplyIds& ids, int64_t tokens, std::string body) {
  WireReply r;
  r.headers.emplace_back("x-amzn-RequestId", RequestUuid(ids.seq));
  r.headers.emplace_back("Content-Type", "application/json");
  r.headers.emplace_back("X-Amzn-Bedrock-Invocation-Latency", "42");
  r.headers.emplace_back("X-Amzn-Bedrock-Input-Token-Count", N(tokens));
  r.body = std::move(body);
  return r;
}

// amazon.titan-embed-text-*.
WireReply Titan(const rapidjson::Value& doc, const ReplyIds& ids) {
  auto bad = [](std::string_view detail) {
    return BuildError(Api::kBedrockInvoke, 400, BedrockMalformed(detail));
  };
  if (std::string key =
          ExtraneousKey(doc, {"inputText", "dimensions", "normalize", "embeddingTypes"});
      !key.empty()) {
    return bad("#: extraneous key [" + key + "] is not permitted");
  }
  const rapidjson::Value* input = Member(doc, "inputText");
  if (input == nullptr) return bad("#: required key [inputText] not found");
  if (!input->IsString()) return bad("#/inputText: expected type: String");
  if (input->GetStringLength() == 0) return bad("#/inputText: expected minLength: 1, actual: 0");
  // The real model's default is 1024 values; the fake's is kFakeEmbeddingDimensions.
  int dimensions = kFakeEmbeddingDimensions;
  if (const rapidjson::Value* d = Member(doc, "dimensions")) {
    if (!d->IsInt()) return bad("#/dimensions: expected type: Integer");
    if (d->GetInt() != 256 && d->GetInt() != 512 && d->GetInt() != 1024) {
      return bad("#/dimensions: " + N(d->GetInt()) + " is not a valid enum value");
    }
    dimensions = d->GetInt();
  }
  // Titan normalizes by default; the fake's vectors stay FakeEmbedding()
  // either way, so tests can compare them.
  if (const rapidjson::Value* n = Member(doc, "normalize"); n != nullptr && !n->IsBool()) {
    return bad("#/normalize: expected type: Boolean");
  }
  const rapidjson::Value* types = Member(doc, "embeddingTypes");
  if (!FloatTypesOnly(types)) return bad("#/embeddingTypes: the fake serves only [\"float\"]");
  const std::string text = StringOf(*input);
  const std::string values = FloatArray(FakeEmbedding(text, dimensions));
  const int64_t tokens = FakeTokenCount(text);
  std::string body = R"({"embedding":)" + values;
  // Asked for by type, the vectors come under embeddingsByType too.
  if (types != nullptr) body += R"(,"embeddingsByType":{"float":)" + values + "}";
  body += R"(,"inputTextTokenCount":)" + N(tokens) + "}";
  return BedrockInvokeReply(ids, tokens, std::move(body));
}

// cohere.embed-*.
WireReply Cohere(const rapidjson::Value& doc, const ReplyIds& ids) {
  auto bad = [](std::string_view detail) {
    return BuildError(Api::kBedrockInvoke, 400, BedrockMalformed(detail));
  };
  if (std::string key =
          ExtraneousKey(doc, {"texts", "images", "input_type", "truncate", "embedding_types"});
      !key.empty()) {
    return bad("#: extraneous key [" + key + "] is not permitted");
  }
  const rapidjson::Value* texts = Member(doc, "texts");
  if (texts == nullptr) return bad("#: required key [texts] not found");
  if (!texts->IsArray()) return bad("#/texts: expected type: JSONArray");
  if (texts->Empty()) return bad("#/texts: expected minimum item count: 1, found: 0");
  if (texts->Size() > 96) {
    return bad("#/texts: expected maximum item count: 96, found: " + N(texts->Size()));
  }
  const rapidjson::Value* input_type = Member(doc, "input_type");
  if (input_type == nullptr) return bad("#: required key [input_type] not found");
  if (!OneOf(*input_type, {"search_document", "search_query", "classification", "clustering"})) {
    return bad("#/input_type: not a valid enum value");
  }
  if (const rapidjson::Value* t = Member(doc, "truncate");
      t != nullptr && !OneOf(*t, {"NONE", "START", "END"})) {
    return bad("#/truncate: not a valid enum value");
  }
  const rapidjson::Value* types = Member(doc, "embedding_types");
  if (!FloatTypesOnly(types)) return bad("#/embedding_types: the fake serves only [\"float\"]");
  std::string vectors = "[";
  std::string echoed = "[";
  int64_t tokens = 0;
  for (rapidjson::SizeType i = 0; i < texts->Size(); ++i) {
    const rapidjson::Value& t = (*texts)[i];
    if (!t.IsString()) return bad("#/texts/" + N(i) + ": expected type: String");
    const std::string text = StringOf(t);
    vectors += (i > 0 ? "," : "") + FloatArray(FakeEmbedding(text, kFakeEmbeddingDimensions));
    echoed += (i > 0 ? "," : "") + Q(text);
    tokens += FakeTokenCount(text);
  }
  vectors += "]";
  echoed += "]";
  // Without embedding_types the floats come bare; with them, by type.
  const bool by_type = types != nullptr;
  return BedrockInvokeReply(ids, tokens,
                            R"({"id":)" + Q(RequestUuid(ids.seq)) + R"(,"embeddings":)" +
                                (by_type ? R"({"float":)" + vectors + "}" : vectors) +
                                R"(,"texts":)" + echoed + R"(,"response_type":)" +
                                Q(by_type ? "embeddings_by_type" : "embeddings_floats") + "}");
}

WireReply BedrockInvoke(const RequestFacts& facts, const rapidjson::Value& doc,
                        const ReplyIds& ids) {
  if (facts.model.starts_with("amazon.titan-embed-text")) return Titan(doc, ids);
  if (facts.model.starts_with("cohere.embed")) return Cohere(doc, ids);
  return BuildError(Api::kBedrockInvoke, 400,
                    "The fake provider's InvokeModel serves only amazon.titan-embed-text* and "
                    "cohere.embed* models, not " +
                        facts.model + ".");
}

}  // namespace

std::string_view ApiName(Api api) {
  switch (api) {
    case Api::kOpenAiChat:
      return "openai";
    case Api::kOpenAiResponses:
      return "responses";
    case Api::kAnthropic:
      return "anthropic";
    case Api::kGemini:
      return "gemini";
    case Api::kBedrock:
      return "bedrock";
    case Api::kAzure:
      return "azure";
    case Api::kOpenAiEmbeddings:
      return "openai_embeddings";
    case Api::kAzureEmbeddings:
      return "azure_embeddings";
    case Api::kGeminiEmbeddings:
      return "gemini_embeddings";
    case Api::kBedrockInvoke:
      return "bedrock_invoke";
    case Api::kImds:
      return "imds";
    case Api::kRaw:
      return "raw";
    case Api::kUnknown:
      break;
  }
  return "unknown";
}

bool ParseRequestFacts(Api api, std::string_view body, RequestFacts* facts) {
  rapidjson::Document doc;
  if (!tg::json::Parse(body, &doc).ok() || !doc.IsObject()) return false;
  std::string model = StringMember(doc, "model");
  if (!model.empty()) facts->model = model;
  if (api == Api::kOpenAiChat || api == Api::kAzure || api == Api::kOpenAiResponses ||
      api == Api::kAnthropic) {
    facts->stream = BoolMember(doc, "stream");
  }
  if (const rapidjson::Value* so = Member(doc, "stream_options")) {
    facts->include_usage = BoolMember(*so, "include_usage");
  }
  auto add_tool = [facts](const std::string& name) {
    if (!name.empty()) facts->tool_names.push_back(name);
  };
  switch (api) {
    case Api::kOpenAiChat:
    case Api::kAzure: {
      if (const auto* tools = Member(doc, "tools"); tools && tools->IsArray()) {
        for (const auto& t : tools->GetArray()) {
          if (const auto* f = Member(t, "function")) add_tool(StringMember(*f, "name"));
        }
      }
      const rapidjson::Value* last = LastOf(Member(doc, "messages"));
      facts->ends_with_tool_result = last != nullptr && StringMember(*last, "role") == "tool";
      facts->prefill = PrefillOf(last, "assistant", "content");
      break;
    }
    case Api::kOpenAiResponses: {
      if (const auto* tools = Member(doc, "tools"); tools && tools->IsArray()) {
        for (const auto& t : tools->GetArray()) {
          if (StringMember(t, "type") == "function") add_tool(StringMember(t, "name"));
        }
      }
      const rapidjson::Value* last = LastOf(Member(doc, "input"));
      facts->ends_with_tool_result =
          last != nullptr && StringMember(*last, "type") == "function_call_output";
      facts->prefill = PrefillOf(last, "assistant", "content");
      break;
    }
    case Api::kAnthropic: {
      if (const auto* tools = Member(doc, "tools"); tools && tools->IsArray()) {
        for (const auto& t : tools->GetArray()) add_tool(StringMember(t, "name"));
      }
      const rapidjson::Value* last = LastOf(Member(doc, "messages"));
      facts->ends_with_tool_result =
          last != nullptr && ContentHas(Member(*last, "content"), "tool_result", nullptr);
      facts->prefill = PrefillOf(last, "assistant", "content");
      break;
    }
    case Api::kGemini: {
      if (const auto* tools = Member(doc, "tools"); tools && tools->IsArray()) {
        for (const auto& t : tools->GetArray()) {
          const auto* decls = Member(t, "functionDeclarations");
          if (decls == nullptr || !decls->IsArray()) continue;
          for (const auto& d : decls->GetArray()) add_tool(StringMember(d, "name"));
        }
      }
      const rapidjson::Value* last = LastOf(Member(doc, "contents"));
      facts->ends_with_tool_result =
          last != nullptr && ContentHas(Member(*last, "parts"), nullptr, "functionResponse");
      facts->prefill = PrefillOf(last, "model", "parts");
      break;
    }
    case Api::kBedrock: {
      if (const auto* config = Member(doc, "toolConfig")) {
        if (const auto* tools = Member(*config, "tools"); tools && tools->IsArray()) {
          for (const auto& t : tools->GetArray()) {
            if (const auto* spec = Member(t, "toolSpec")) add_tool(StringMember(*spec, "name"));
          }
        }
      }
      const rapidjson::Value* last = LastOf(Member(doc, "messages"));
      facts->ends_with_tool_result =
          last != nullptr && ContentHas(Member(*last, "content"), nullptr, "toolResult");
      facts->prefill = PrefillOf(last, "assistant", "content");
      break;
    }
    default:
      break;
  }
  return true;
}

WireReply BuildModelList(Api api, const ReplyIds& ids) {
  WireReply r;
  r.headers.emplace_back("Content-Type", "application/json");
  const std::string created = std::to_string(ids.now_s);
  switch (api) {
    case Api::kAnthropic:
      r.body = R"({"data":[{"type":"model","id":"claude-3-5-sonnet-20241022",)"
               R"("display_name":"Claude 3.5 Sonnet","created_at":"2024-10-22T00:00:00Z"}],)"
               R"("has_more":false,"first_id":"claude-3-5-sonnet-20241022",)"
               R"("last_id":"claude-3-5-sonnet-20241022"})";
      break;
    case Api::kGemini:
      r.body = R"({"models":[{"name":"models/gemini-1.5-pro","version":"001",)"
               R"("displayName":"Gemini 1.5 Pro","inputTokenLimit":2000000,)"
               R"("outputTokenLimit":8192,"supportedGenerationMethods":)"
               R"(["generateContent","countTokens"]}]})";
      break;
    case Api::kBedrock:
      r.body = R"({"modelSummaries":[{"modelArn":"arn:aws:bedrock:us-east-1::foundation-model/)"
               R"(anthropic.claude-3-sonnet-20240229-v1:0","modelId":)"
               R"("anthropic.claude-3-sonnet-20240229-v1:0","modelName":"Claude 3 Sonnet",)"
               R"("providerName":"Anthropic","inputModalities":["TEXT","IMAGE"],)"
               R"("outputModalities":["TEXT"],"responseStreamingSupported":true}]})";
      break;
    default:  // OpenAI, Azure
      r.body = R"({"object":"list","data":[{"id":"gpt-4o","object":"model","created":)" + created +
               R"(,"owned_by":"system"}]})";
      break;
  }
  return r;
}

WireReply BuildAnswer(Api api, const RequestFacts& facts, const FakeAnswer& answer,
                      const ReplyIds& ids) {
  Plan p = MakePlan(api, facts, answer, ids);
  switch (api) {
    case Api::kOpenAiChat:
      return OpenAiChat(p, facts.stream, /*azure=*/false);
    case Api::kAzure:
      return OpenAiChat(p, facts.stream, /*azure=*/true);
    case Api::kOpenAiResponses:
      return OpenAiResponses(p, facts.stream);
    case Api::kAnthropic:
      return Anthropic(p, facts.stream);
    case Api::kGemini:
      return Gemini(p, facts.stream, facts.gemini_sse);
    case Api::kBedrock:
      return Bedrock(p, facts.stream);
    default:
      return BuildError(api, 404);
  }
}

std::vector<float> FakeEmbedding(std::string_view text, int dimensions) {
  std::vector<float> v;
  if (dimensions < 1) return v;
  const uint64_t h = Fnv1a(text);
  v.reserve(static_cast<size_t>(dimensions));
  for (int j = 0; j < dimensions; ++j) {
    v.push_back(static_cast<float>(static_cast<int>((h >> (j % 32)) % 2001) - 1000) / 1024.0f);
  }
  return v;
}

int FakeTokenCount(std::string_view text) {
  int words = 0;
  bool in_word = false;
  for (char c : text) {
    const bool space = std::isspace(static_cast<unsigned char>(c)) != 0;
    if (!space && !in_word) ++words;
    in_word = !space;
  }
  return text.empty() ? 0 : std::max(words, 1);
}

WireReply BuildEmbeddings(Api api, const RequestFacts& facts, std::string_view body,
                          const ReplyIds& ids) {
  rapidjson::Document doc;
  if (!tg::json::Parse(body, &doc).ok() || !doc.IsObject()) return BuildUnparsableBody(api);
  switch (api) {
    case Api::kOpenAiEmbeddings:
    case Api::kAzureEmbeddings:
      return OpenAiEmbeddings(api, facts, doc, ids);
    case Api::kGeminiEmbeddings:
      return GeminiEmbeddings(facts, doc);
    case Api::kBedrockInvoke:
      return BedrockInvoke(facts, doc, ids);
    default:
      return BuildError(api, 404);
  }
}

WireReply BuildUnparsableBody(Api api) {
  const bool bedrock = api == Api::kBedrock || api == Api::kBedrockInvoke;
  return BuildError(
      api, 400, bedrock ? BedrockMalformed() : "We could not parse the JSON body of your request.");
}

WireReply BuildError(Api api, int status, std::string_view message, std::string_view type) {
  WireReply r;
  r.status = status;
  r.headers.emplace_back("Content-Type", "application/json");
  std::string msg(message);
  std::string t(type);
  // Each provider's other APIs answer errors as its chat API does.
  switch (api) {
    case Api::kOpenAiChat:
    case Api::kOpenAiResponses:
    case Api::kOpenAiEmbeddings: {
      std::string code = "null";
      if (t == "context_length_exceeded") {  // what OpenAI answers a prompt over the context
        t = "invalid_request_error";
        code = Q("context_length_exceeded");
        if (msg.empty()) {
          msg =
              "This model's maximum context length is 8192 tokens. However, your messages "
              "resulted in 9000 tokens. Please reduce the length of the messages.";
        }
      }
      if (t == "content_filter") {  // what OpenAI (and Azure) answer a prompt they refuse
        t = "invalid_request_error";
        code = Q("content_filter");
        if (msg.empty()) {
          msg =
              "The response was filtered due to the prompt triggering content management "
              "policy.";
        }
      }
      if (t.empty()) {
        switch (status) {
          case 401:
            t = "invalid_request_error";
            code = Q("invalid_api_key");
            if (msg.empty()) msg = "Incorrect API key provided.";
            break;
          case 404:
            t = "invalid_request_error";
            code = Q("model_not_found");
            if (msg.empty()) msg = "The model does not exist or you do not have access to it.";
            break;
          case 429:
            t = "requests";
            code = Q("rate_limit_exceeded");
            if (msg.empty()) msg = "Rate limit reached for requests. Please try again in 1s.";
            break;
          case 500:
            t = "server_error";
            if (msg.empty()) {
              msg = "The server had an error while processing your request. Sorry about that!";
            }
            break;
          case 503:
            t = "server_error";
            if (msg.empty()) msg = "The engine is currently overloaded, please try again later";
            break;
          default:
            t = status >= 500 ? "server_error" : "invalid_request_error";
        }
      }
      if (msg.empty()) msg = "Error " + std::to_string(status) + " (fake provider).";
      r.body = R"({"error":{"message":)" + Q(msg) + R"(,"type":)" + Q(t) +
               R"(,"param":null,"code":)" + code + "}}";
      r.headers.emplace_back("x-request-id", "req_fake_error");
      if (status == 429) {
        r.headers.emplace_back("retry-after", "1");
        r.headers.emplace_back("retry-after-ms", "1000");
      }
      break;
    }
    case Api::kAzure:
    case Api::kAzureEmbeddings: {
      if (msg.empty()) {
        switch (status) {
          case 401:
            msg =
                "Access denied due to invalid subscription key or wrong API endpoint. Make sure "
                "to provide a valid key for an active subscription and use a correct regional "
                "API endpoint for your resource.";
            break;
          case 404:
            msg = "Resource not found";
            break;
          case 429:
            msg = std::string("Requests to the ") +
                  (api == Api::kAzureEmbeddings ? "Embeddings_Create" : "ChatCompletions_Create") +
                  " Operation under Azure OpenAI API version 2024-10-21 have exceeded token rate "
                  "limit of your current OpenAI S0 pricing tier. Please retry after 1 second.";
            break;
          default:
            msg = "Error " + std::to_string(status) + " (fake provider).";
        }
      }
      r.body = R"({"error":{"code":)" + Q(t.empty() ? std::to_string(status) : t) +
               R"(,"message":)" + Q(msg) + "}}";
      r.headers.emplace_back("apim-request-id", "fake-apim-error");
      if (status == 429) {
        r.headers.emplace_back("retry-after", "1");
        r.headers.emplace_back("retry-after-ms", "1000");
      }
      break;
    }
    case Api::kAnthropic: {
      if (t.empty()) {
        switch (status) {
          case 400:
            t = "invalid_request_error";
            break;
          case 401:
            t = "authentication_error";
            break;
          case 403:
            t = "permission_error";
            break;
          case 404:
            t = "not_found_error";
            break;
          case 413:
            t = "request_too_large";
            break;
          case 429:
            t = "rate_limit_error";
            break;
          case 504:
            t = "timeout_error";
            break;
          case 529:
            t = "overloaded_error";
            break;
          default:
            t = "api_error";
        }
      }
      if (msg.empty()) {
        msg = status == 529   ? "Overloaded"
              : status == 429 ? "Number of request tokens has exceeded your per-minute rate limit"
              : status == 401 ? "invalid x-api-key"
                              : "Error " + std::to_string(status) + " (fake provider).";
      }
      r.body = R"({"type":"error","error":{"type":)" + Q(t) + R"(,"message":)" + Q(msg) +
               R"(},"request_id":"req_fake_error"})";
      r.headers.emplace_back("request-id", "req_fake_error");
      if (status == 429) r.headers.emplace_back("retry-after", "1");
      break;
    }
    case Api::kGemini:
    case Api::kGeminiEmbeddings: {
      if (t.empty()) {
        switch (status) {
          case 400:
            t = "INVALID_ARGUMENT";
            break;
          case 401:
            t = "UNAUTHENTICATED";
            break;
          case 403:
            t = "PERMISSION_DENIED";
            break;
          case 404:
            t = "NOT_FOUND";
            break;
          case 429:
            t = "RESOURCE_EXHAUSTED";
            break;
          case 500:
            t = "INTERNAL";
            break;
          case 503:
            t = "UNAVAILABLE";
            break;
          case 504:
            t = "DEADLINE_EXCEEDED";
            break;
          default:
            t = "UNKNOWN";
        }
      }
      if (msg.empty()) {
        msg = status == 429   ? "Resource has been exhausted (e.g. check quota)."
              : status == 500 ? "An internal error has occurred. Please retry or report in "
                                "https://developers.generativeai.google/guide/troubleshooting"
              : status == 503 ? "The model is overloaded. Please try again later."
                              : "Error " + std::to_string(status) + " (fake provider).";
      }
      r.headers[0].second = "application/json; charset=UTF-8";
      r.body = R"({"error":{"code":)" + std::to_string(status) + R"(,"message":)" + Q(msg) +
               R"(,"status":)" + Q(t) + "}}";
      break;
    }
    case Api::kBedrock:
    case Api::kBedrockInvoke: {
      if (t.empty()) {
        switch (status) {
          case 400:
            t = "ValidationException";
            break;
          case 403:
            t = "AccessDeniedException";
            break;
          case 404:
            t = "ResourceNotFoundException";
            break;
          case 408:
            t = "ModelTimeoutException";
            break;
          case 424:
            t = "ModelErrorException";
            break;
          case 429:
            t = "ThrottlingException";
            break;
          case 503:
            t = "ServiceUnavailableException";
            break;
          default:
            t = "InternalServerException";
        }
      }
      if (msg.empty()) {
        msg = status == 429 ? "Too many requests, please wait before trying again."
                            : "Error " + std::to_string(status) + " (fake provider).";
      }
      r.headers.emplace_back("x-amzn-ErrorType",
                             t + ":http://internal.amazon.com/coral/com.amazon.bedrock/");
      r.headers.emplace_back("x-amzn-RequestId", "00000000-0000-4000-8000-0000000e4404");
      r.body = R"({"message":)" + Q(msg) + "}";
      break;
    }
    default:
      r.body = R"({"error":)" + Q(msg.empty() ? "not found" : msg) + "}";
  }
  return r;
}

std::string BuildStreamError(Api api, std::string_view type, int sequence_number) {
  switch (api) {
    case Api::kOpenAiChat:
    case Api::kAzure:
    case Api::kOpenAiEmbeddings:
    case Api::kAzureEmbeddings:
      return R"(data: {"error":{"message":"The server had an error while processing your request. )"
             R"(Sorry about that!","type":)" +
             Q(type.empty() ? "server_error" : type) + R"(,"param":null,"code":null}})" + "\n\n";
    case Api::kOpenAiResponses:
      return "event: error\ndata: {\"type\":\"error\",\"sequence_number\":" + N(sequence_number) +
             R"(,"code":)" + Q(type.empty() ? "server_error" : type) +
             R"(,"message":"The server had an error while processing your request.",)"
             R"("param":null})" +
             "\n\n";
    case Api::kAnthropic:
      return "event: error\ndata: " + std::string(R"({"type":"error","error":{"type":)") +
             Q(type.empty() ? "overloaded_error" : type) + R"(,"message":"Overloaded"}})" + "\n\n";
    case Api::kGemini:
    case Api::kGeminiEmbeddings:
      return std::string(
                 R"(data: {"error":{"code":500,"message":"An internal error has occurred.",)") +
             R"("status":)" + Q(type.empty() ? "INTERNAL" : type) + "}}\r\n\r\n";
    case Api::kBedrock:
    case Api::kBedrockInvoke:
      return adapter::aws::EncodeException(
          type.empty() ? "modelStreamErrorException" : type,
          R"({"message":"The model stream failed (injected by the fake provider)."})");
    default:
      return "";
  }
}

}  // namespace tg::fakes
