// Token estimates without a tokenizer (gateway-edge/token_estimate.h): the
// text rules against real cl100k_base counts, the prompt of each client
// format, and the output counter of each answer format, fed whole and cut at
// every byte.

#include <gtest/gtest.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "tg/edge/token_estimate.h"

namespace tg::edge {
namespace {

using tg::v1::ClientFormat;

constexpr ClientFormat kChat = tg::v1::CLIENT_FORMAT_OPENAI_CHAT;
constexpr ClientFormat kAnthropic = tg::v1::CLIENT_FORMAT_ANTHROPIC_MESSAGES;
constexpr ClientFormat kResponses = tg::v1::CLIENT_FORMAT_OPENAI_RESPONSES;
constexpr ClientFormat kEmbeddings = tg::v1::CLIENT_FORMAT_OPENAI_EMBEDDINGS;

int64_t E(std::string_view text) { return EstimateTextTokens(text); }

struct Known {
  const char* name;
  const char* text;
  int64_t cl100k;  // tiktoken's cl100k_base (js-tiktoken 1.0.21)
};

// Real counts, so that a change of the rules shows how far it moves them.
const Known kKnown[] = {
    {"hello", "hello world", 2},
    {"hello_punct", "Hello, world!", 4},
    {"question", "What is the capital of France? Please answer in one sentence.", 13},
    {"prose_105_words",
     "The gateway receives requests from many clients and forwards each one to a provider chosen "
     "by its rules. Before it calls a provider, it must decide whether the request fits within "
     "the budget of tokens that the key is allowed to spend in the current minute. Counting "
     "tokens exactly would require the provider's own tokenizer, which is large, slow to load "
     "and different for every model family. Instead, the gateway estimates the count from the "
     "text itself: words, numbers, punctuation and characters of other scripts each contribute a "
     "small, predictable amount. The estimate is usually within a tenth of the real value for "
     "ordinary prose.",
     120},
    {"code_cpp",
     "int64_t EstimateTextTokens(std::string_view text) {\n"
     "  int64_t tokens = 0;\n"
     "  for (size_t i = 0; i < text.size(); ++i) {\n"
     "    if (text[i] == '\\n') ++tokens;\n"
     "  }\n"
     "  return tokens;\n"
     "}",
     61},
    {"code_python",
     "def fibonacci(n):\n"
     "    \"\"\"Return the n-th Fibonacci number.\"\"\"\n"
     "    a, b = 0, 1\n"
     "    for _ in range(n):\n"
     "        a, b = b, a + b\n"
     "    return a\n"
     "\n"
     "print([fibonacci(i) for i in range(10)])",
     59},
    {"json",
     R"({"model": "gpt-4o", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 256, "stream": true})",
     38},
    {"json_compact",
     R"({"type":"function","function":{"name":"get_weather","description":"Get the current weather in a given city","parameters":{"type":"object","properties":{"city":{"type":"string","description":"The city, e.g. Paris"},"unit":{"type":"string","enum":["celsius","fahrenheit"]}},"required":["city"]}}})",
     68},
    {"digits", "1234567890", 4},
    {"numbers", "Call 555-0123 or pay $1,234.56 by 2024-06-01; pi is 3.14159265358979.", 34},
    {"log_line",
     "2024-06-01T12:34:56.789Z INFO [edge] request_id=3f2a9c1b status=200 latency_ms=123 "
     "model=\"gpt-4o\" tokens=4521",
     49},
    {"markdown",
     "# Title\n\n## Section\n\n- item one\n- item two\n\n**Bold** and _italic_ text, `code` and a "
     "[link](https://example.com/path?q=1).\n\n---\n",
     41},
    {"chinese", "北京是中华人民共和国的首都，也是全国的政治、文化和国际交往中心。", 33},
    {"japanese",
     "東京は日本の首都であり、世界最大級の都市圏を形成している。多くの企業の本社が置かれている。",
     48},
    {"russian",
     "Москва — столица России, крупнейший по численности населения город страны. В городе "
     "расположены органы государственной власти, многие музеи, театры и университеты.",
     84},
    {"emoji", "Great job! 🎉🎉 Let's celebrate 🚀 with 🍕 and ☕.", 23},
};

TEST(TokenEstimateTest, TextWithinAQuarterOfRealCounts) {
  for (const Known& k : kKnown) {
    const int64_t estimate = E(k.text);
    const int64_t tolerance = std::max<int64_t>(2, k.cl100k / 4);
    EXPECT_LE(std::llabs(estimate - k.cl100k), tolerance)
        << k.name << ": estimate " << estimate << ", cl100k " << k.cl100k;
  }
}

TEST(TokenEstimateTest, TextRules) {
  EXPECT_EQ(E(""), 0);
  EXPECT_EQ(E(" "), 1);
  EXPECT_EQ(E("a"), 1);
  EXPECT_EQ(E("the cat sat on the mat"), 6);  // short words: 1 each, spaces free
  EXPECT_EQ(E("123"), 1);                     // digits: groups of 3
  EXPECT_EQ(E("1234567"), 3);
  EXPECT_EQ(E("don't"), 2);  // don|'t
  EXPECT_EQ(E("=================="), 2);
  EXPECT_EQ(E("你好世界"), 4);  // CJK: 1.1 per character
  EXPECT_EQ(E("\xff\xfe"), 2);  // not UTF-8: a token per byte
  // camelCase costs more than one word, less than separate words.
  EXPECT_GT(E("getUserAccountBalance"), E("balance"));
  EXPECT_LT(E("getUserAccountBalance"), E("get User Account Balance"));
  // Linear in the size, whatever the text.
  const std::string letters(1 << 20, 'a');
  EXPECT_GT(E(letters), 200'000);
  std::string bytes(1 << 20, '\0');
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<char>(i * 131 % 251);
  EXPECT_GT(E(bytes), 0);
}

// ---------------------------------------------------------------------------
// Requests

// The compact JSON of a tool definition, as the estimate serializes it.
constexpr std::string_view kChatTool =
    R"({"type":"function","function":{"name":"get_weather","description":"Get the weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}})";

TEST(TokenEstimateTest, ChatMatchesOpenAiAccountingOnASimpleConversation) {
  // cl100k: 3 per message + role + content, 3 for the reply: 3+1+6 + 3+1+7 + 3 = 24.
  const RequestTokens t = EstimateRequestTokens(
      R"({"model":"gpt-4o","messages":[{"role":"system","content":"You are a helpful assistant."},)"
      R"({"role":"user","content":"What is the capital of France?"}]})",
      kChat);
  EXPECT_NEAR(t.prompt, 24, 2);
  EXPECT_EQ(t.max_output, 0);
}

TEST(TokenEstimateTest, ChatCountsPartsImagesToolsAndNames) {
  const std::string body =
      R"({"model":"gpt-4o","messages":[)"
      R"({"role":"system","content":"You are a helpful assistant."},)"
      R"({"role":"user","name":"alice","content":[{"type":"text","text":"What is in this image?"},)"
      R"({"type":"image_url","image_url":{"url":"https://example.com/cat.png","detail":"high"}},)"
      R"({"type":"image_url","image_url":{"url":"data:image/png;base64,iVBORw0KGgoAAAANSUhEUg"}},)"
      R"({"type":"input_audio","input_audio":{"data":"AAAA","format":"wav"}}]},)"
      R"({"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function",)"
      R"("function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]},)"
      R"({"role":"tool","tool_call_id":"call_1","content":"Sunny, 24 C"}],)"
      R"("tools":[)" +
      std::string(kChatTool) + R"(],"max_tokens":100,"max_completion_tokens":200})";
  const int64_t expected = 3 +                                                    // reply
                           3 + E("system") + E("You are a helpful assistant.") +  //
                           3 + E("user") + 1 + E("alice") + E("What is in this image?") + 85 + 85 +
                           100 +  // media
                           3 + E("assistant") + E("get_weather") + E(R"({"city":"Paris"})") + 3 +
                           E("tool") + E("Sunny, 24 C") +  //
                           E("[" + std::string(kChatTool) + "]");
  const RequestTokens t = EstimateRequestTokens(body, kChat);
  EXPECT_EQ(t.prompt, expected);
  EXPECT_EQ(t.max_output, 200);  // max_completion_tokens wins
}

TEST(TokenEstimateTest, OutputCaps) {
  auto cap = [](ClientFormat f, const std::string& fields) {
    return EstimateRequestTokens("{\"messages\":[]," + fields + "}", f).max_output;
  };
  EXPECT_EQ(cap(kChat, R"("max_tokens":50)"), 50);
  EXPECT_EQ(cap(kChat, R"("max_completion_tokens":"9","max_tokens":50)"), 50);  // wrong type
  EXPECT_EQ(cap(kChat, R"("max_tokens":-5)"), 0);
  EXPECT_EQ(cap(kChat, R"("max_tokens":1e12)"), 1'000'000'000);
  EXPECT_EQ(cap(kChat, R"("max_tokens":18446744073709551615)"), 1'000'000'000);
  EXPECT_EQ(cap(kChat, R"("max_tokens":2.5)"), 0);  // not an integer: no cap
  EXPECT_EQ(cap(kChat, R"("max_tokens":1e3)"), 1000);
  EXPECT_EQ(cap(kChat, R"("max_tokens":null)"), 0);
  EXPECT_EQ(cap(kAnthropic, R"("max_tokens":1024)"), 1024);
  EXPECT_EQ(cap(kAnthropic, R"("max_completion_tokens":1024)"), 0);
  EXPECT_EQ(cap(kResponses, R"("max_output_tokens":300,"max_tokens":5)"), 300);
  EXPECT_EQ(cap(kEmbeddings, R"("max_tokens":300)"), 0);
}

TEST(TokenEstimateTest, AnthropicSystemBlocksToolsAndImages) {
  const std::string tools =
      R"([{"name":"get_weather","description":"Get the weather","input_schema":{"type":"object"}}])";
  const std::string body =
      R"({"model":"claude-3-5-sonnet","max_tokens":1024,)"
      R"("system":[{"type":"text","text":"You are terse."},{"type":"text","text":"Answer in French."}],)"
      R"("messages":[{"role":"user","content":"Weather in Paris?"},)"
      R"({"role":"assistant","content":[{"type":"text","text":"Checking."},)"
      R"({"type":"tool_use","id":"toolu_1","name":"get_weather","input":{"city":"Paris"}}]},)"
      R"({"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_1",)"
      R"("content":[{"type":"text","text":"Sunny"},{"type":"image","source":{"type":"base64",)"
      R"("media_type":"image/png","data":"iVBORw0KGgo"}}]},)"
      R"({"type":"tool_result","tool_use_id":"toolu_2","content":"Dry"},)"
      R"({"type":"image","source":{"type":"url","url":"https://example.com/a.png"}},)"
      R"({"type":"document","source":{"type":"url","url":"https://example.com/a.pdf"}}]}],)"
      R"("tools":)" +
      tools + "}";
  const int64_t expected = 3 + E("You are terse.") + E("Answer in French.") +        //
                           3 + E("user") + E("Weather in Paris?") +                  //
                           3 + E("assistant") + E("Checking.") + E("get_weather") +  //
                           E(R"({"city":"Paris"})") +                                //
                           3 + E("user") + E("Sunny") + 85 + E("Dry") + 85 + 100 +   //
                           E(tools);
  const RequestTokens t = EstimateRequestTokens(body, kAnthropic);
  EXPECT_EQ(t.prompt, expected);
  EXPECT_EQ(t.max_output, 1024);

  const RequestTokens plain = EstimateRequestTokens(
      R"({"system":"Be brief.","messages":[{"role":"user","content":"Hi"}],"max_tokens":5})",
      kAnthropic);
  EXPECT_EQ(plain.prompt, 3 + E("Be brief.") + 3 + E("user") + E("Hi"));
}

TEST(TokenEstimateTest, ResponsesInstructionsItemsAndTools) {
  const std::string tools =
      R"([{"type":"function","name":"get_weather","parameters":{"type":"object"}}])";
  const std::string body =
      R"({"model":"gpt-4o","instructions":"Be brief.","max_output_tokens":64,"input":[)"
      R"({"role":"user","content":[{"type":"input_text","text":"What is this?"},)"
      R"({"type":"input_image","image_url":"https://example.com/cat.png"},)"
      R"({"type":"input_file","file_id":"file_1"}]},)"
      R"({"role":"assistant","content":[{"type":"output_text","text":"A cat."}]},)"
      R"({"type":"function_call","call_id":"call_1","name":"get_weather","arguments":"{}"},)"
      R"({"type":"function_call_output","call_id":"call_1","output":"Sunny"},)"
      R"({"role":"user","content":"Thanks"}],"tools":)" +
      tools + "}";
  const int64_t expected = 3 + E("Be brief.") +                               //
                           3 + E("user") + E("What is this?") + 85 + 100 +    //
                           3 + E("assistant") + E("A cat.") +                 //
                           3 + E("get_weather") + E("{}") + 3 + E("Sunny") +  //
                           3 + E("user") + E("Thanks") + E(tools);
  const RequestTokens t = EstimateRequestTokens(body, kResponses);
  EXPECT_EQ(t.prompt, expected);
  EXPECT_EQ(t.max_output, 64);

  EXPECT_EQ(EstimateRequestTokens(R"({"input":"Tell me a joke."})", kResponses).prompt,
            3 + 3 + E("Tell me a joke."));
}

TEST(TokenEstimateTest, EmbeddingsInputs) {
  EXPECT_EQ(EstimateRequestTokens(R"({"model":"m","input":"hello world"})", kEmbeddings).prompt,
            E("hello world"));
  EXPECT_EQ(EstimateRequestTokens(R"({"input":["hello world","good night"]})", kEmbeddings).prompt,
            E("hello world") + E("good night"));
  EXPECT_EQ(EstimateRequestTokens(R"({"input":[15339,1917,0]})", kEmbeddings).prompt, 3);
  EXPECT_EQ(EstimateRequestTokens(R"({"input":[[1,2],[3],[]]})", kEmbeddings).prompt, 3);
  EXPECT_EQ(EstimateRequestTokens(R"({"model":"m"})", kEmbeddings).prompt, 0);
}

TEST(TokenEstimateTest, UnparsableOrOtherFormatsFallBackToTheBodyText) {
  const std::string not_json = R"({"messages": [ oops )";
  EXPECT_EQ(EstimateRequestTokens(not_json, kChat).prompt, E(not_json));
  EXPECT_EQ(EstimateRequestTokens("[1,2,3]", kAnthropic).prompt, E("[1,2,3]"));
  const std::string body = R"({"messages":[{"role":"user","content":"hi"}]})";
  EXPECT_EQ(EstimateRequestTokens(body, tg::v1::CLIENT_FORMAT_PASSTHROUGH).prompt, E(body));
  EXPECT_EQ(EstimateRequestTokens(body, tg::v1::CLIENT_FORMAT_UNSPECIFIED).prompt, E(body));
  EXPECT_EQ(EstimateRequestTokens("", kChat).prompt, 0);
  // Nested past the parser's bound: refused, then counted as text.
  const std::string deep = std::string(300, '[') + std::string(300, ']');
  EXPECT_EQ(EstimateRequestTokens(deep, kChat).prompt, E(deep));
}

TEST(TokenEstimateTest, OddShapesNeverFail) {
  const std::vector<std::string> bodies = {
      R"({"messages":"hi","tools":5,"system":7,"input":{"a":[1,{"b":null}]}})",
      R"({"messages":[1,"two",null,[],{"role":5,"name":[],"content":7,"tool_calls":{"x":1}}]})",
      R"({"messages":[{"content":[1,null,"s",{"type":5},{"type":"text","text":9},{"type":"tool_result","content":[{"type":"tool_result","content":[{"type":"tool_result","content":[[[]]]}]}]}]}]})",
      R"({"messages":[{"tool_calls":[1,{"function":"x"},{"function":{"name":1,"arguments":{}}}],"function_call":[]}]})",
      R"({"input":[1,"s",null,{"role":null},{"type":"function_call","input":[1]},{"content":{}}]})",
      R"({"input":[{"x":1},true,1.5]})",
      R"({"messages":[{"role":"user","content":"\u0000\ud83d\ude00 é"}]})",
      R"({})",
  };
  for (const std::string& body : bodies) {
    for (ClientFormat f : {kChat, kAnthropic, kResponses, kEmbeddings}) {
      const RequestTokens t = EstimateRequestTokens(body, f);
      EXPECT_GE(t.prompt, 0) << body;
      EXPECT_GE(t.max_output, 0) << body;
    }
  }
}

// ---------------------------------------------------------------------------
// Output

int64_t CountWhole(ClientFormat f, bool stream, std::string_view bytes) {
  OutputTokenCounter counter(f, stream);
  counter.Feed(bytes);
  return counter.Finish();
}

// The count of `bytes` fed at once, after checking that it is the same when
// they are cut at any byte, and fed a byte at a time.
int64_t CountAnySplit(ClientFormat f, bool stream, std::string_view bytes) {
  const int64_t whole = CountWhole(f, stream, bytes);
  for (size_t cut = 0; cut <= bytes.size(); ++cut) {
    OutputTokenCounter counter(f, stream);
    counter.Feed(bytes.substr(0, cut));
    counter.Feed(bytes.substr(cut));
    EXPECT_EQ(counter.Finish(), whole) << "cut at " << cut;
  }
  OutputTokenCounter by_byte(f, stream);
  for (char c : bytes) by_byte.Feed(std::string_view(&c, 1));
  EXPECT_EQ(by_byte.Finish(), whole);
  return whole;
}

std::string WithLineEnds(std::string_view lf, std::string_view eol) {
  std::string out;
  for (char c : lf) {
    if (c == '\n') {
      out += eol;
    } else {
      out += c;
    }
  }
  return out;
}

constexpr std::string_view kChatStream =
    "data: "
    R"({"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"role":"assistant","reasoning_content":"Think"}}]})"
    "\n\n"
    "data: "
    R"({"choices":[{"index":0,"delta":{"reasoning_content":"ing first."}}]})"
    "\n\n"
    "data: "
    R"({"choices":[{"index":0,"delta":{"content":"The capital"}}]})"
    "\n\n"
    ": a comment\n"
    "data: "
    R"({"choices":[{"index":0,"delta":{"content":" of France is Par"}}]})"
    "\n\n"
    "data: "
    R"({"choices":[{"index":0,"delta":{"content":"is."}}]})"
    "\n\n"
    "data: "
    R"({"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"get_weather","arguments":""}}]}}]})"
    "\n\n"
    "data: "
    R"({"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"city\": \"Par"}}]}}]})"
    "\n\n"
    "data: "
    R"({"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"is\"}"}}]}}]})"
    "\n\n"
    "data: "
    R"({"choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]})"
    "\n\n"
    "data: "
    R"({"choices":[],"usage":{"prompt_tokens":10,"completion_tokens":20,"total_tokens":30}})"
    "\n\n"
    "data: [DONE]\n\n";

TEST(OutputTokenCounterTest, ChatStreamAtAnySplit) {
  const int64_t expected = E("Thinking first.") + E("The capital of France is Paris.") +
                           E("get_weather") + E(R"({"city": "Paris"})");
  EXPECT_EQ(CountAnySplit(kChat, true, kChatStream), expected);
  EXPECT_EQ(CountAnySplit(kChat, true, WithLineEnds(kChatStream, "\r\n")), expected);
  EXPECT_EQ(CountAnySplit(kChat, true, WithLineEnds(kChatStream, "\r")), expected);
}

constexpr std::string_view kAnthropicStream =
    "event: message_start\n"
    "data: "
    R"({"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","content":[],"usage":{"input_tokens":25,"output_tokens":1}}})"
    "\n\n"
    "event: content_block_start\n"
    "data: "
    R"({"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":""}})"
    "\n\n"
    "event: content_block_delta\n"
    "data: "
    R"({"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"Let me check."}})"
    "\n\n"
    "event: content_block_delta\n"
    "data: "
    R"({"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"EqQBCgIYAhIM"}})"
    "\n\n"
    "event: content_block_stop\n"
    "data: "
    R"({"type":"content_block_stop","index":0})"
    "\n\n"
    "event: content_block_start\n"
    "data: "
    R"({"type":"content_block_start","index":1,"content_block":{"type":"text","text":""}})"
    "\n\n"
    "event: ping\n"
    "data: "
    R"({"type": "ping"})"
    "\n\n"
    "event: content_block_delta\n"
    "data: "
    R"({"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"Hello, wor"}})"
    "\n\n"
    "event: content_block_delta\n"
    "data: "
    R"({"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"ld!"}})"
    "\n\n"
    "event: content_block_stop\n"
    "data: "
    R"({"type":"content_block_stop","index":1})"
    "\n\n"
    "event: content_block_start\n"
    "data: "
    R"({"type":"content_block_start","index":2,"content_block":{"type":"tool_use","id":"toolu_1","name":"get_weather","input":{}}})"
    "\n\n"
    "event: content_block_delta\n"
    "data: "
    R"({"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":"{\"city\": \"Par"}})"
    "\n\n"
    "event: content_block_delta\n"
    "data: "
    R"({"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":"is\"}"}})"
    "\n\n"
    "event: content_block_stop\n"
    "data: "
    R"({"type":"content_block_stop","index":2})"
    "\n\n"
    "event: message_delta\n"
    "data: "
    R"({"type":"message_delta","delta":{"stop_reason":"tool_use"},"usage":{"output_tokens":89}})"
    "\n\n"
    "event: message_stop\n"
    "data: "
    R"({"type":"message_stop"})"
    "\n\n";

TEST(OutputTokenCounterTest, AnthropicStreamAtAnySplit) {
  const int64_t expected =
      E("Let me check.") + E("Hello, world!") + E("get_weather") + E(R"({"city": "Paris"})");
  EXPECT_EQ(CountAnySplit(kAnthropic, true, kAnthropicStream), expected);
  EXPECT_EQ(CountAnySplit(kAnthropic, true, WithLineEnds(kAnthropicStream, "\r\n")), expected);
}

constexpr std::string_view kResponsesStream =
    "event: response.created\n"
    "data: "
    R"({"type":"response.created","response":{"id":"resp_1","status":"in_progress","instructions":"Be brief and polite.","output":[]},"sequence_number":0})"
    "\n\n"
    "event: response.output_item.added\n"
    "data: "
    R"({"type":"response.output_item.added","output_index":0,"item":{"type":"reasoning","summary":[]},"sequence_number":1})"
    "\n\n"
    "event: response.reasoning_summary_text.delta\n"
    "data: "
    R"({"type":"response.reasoning_summary_text.delta","output_index":0,"summary_index":0,"delta":"Looking it up.","sequence_number":2})"
    "\n\n"
    "event: response.output_text.delta\n"
    "data: "
    R"({"type":"response.output_text.delta","item_id":"msg_1","output_index":1,"content_index":0,"delta":"The capital","sequence_number":3})"
    "\n\n"
    "event: response.output_text.delta\n"
    "data: "
    R"({"type":"response.output_text.delta","item_id":"msg_1","output_index":1,"content_index":0,"delta":" of France is Paris.","sequence_number":4})"
    "\n\n"
    "event: response.output_text.done\n"
    "data: "
    R"({"type":"response.output_text.done","output_index":1,"content_index":0,"text":"The capital of France is Paris.","sequence_number":5})"
    "\n\n"
    "event: response.output_item.added\n"
    "data: "
    R"({"type":"response.output_item.added","output_index":2,"item":{"type":"function_call","call_id":"call_1","name":"get_weather","arguments":""},"sequence_number":6})"
    "\n\n"
    "event: response.function_call_arguments.delta\n"
    "data: "
    R"({"type":"response.function_call_arguments.delta","output_index":2,"delta":"{\"city\": \"Par","sequence_number":7})"
    "\n\n"
    "event: response.function_call_arguments.delta\n"
    "data: "
    R"({"type":"response.function_call_arguments.delta","output_index":2,"delta":"is\"}","sequence_number":8})"
    "\n\n"
    "event: response.completed\n"
    "data: "
    R"({"type":"response.completed","response":{"id":"resp_1","status":"completed","output":[{"type":"message","content":[{"type":"output_text","text":"The capital of France is Paris."}]}],"usage":{"input_tokens":5,"output_tokens":9}},"sequence_number":9})"
    "\n\n";

TEST(OutputTokenCounterTest, ResponsesStreamAtAnySplit) {
  const int64_t expected = E("Looking it up.") + E("The capital of France is Paris.") +
                           E("get_weather") + E(R"({"city": "Paris"})");
  EXPECT_EQ(CountAnySplit(kResponses, true, kResponsesStream), expected);
  EXPECT_EQ(CountAnySplit(kResponses, true, WithLineEnds(kResponsesStream, "\r")), expected);
}

TEST(OutputTokenCounterTest, WholeAnswers) {
  EXPECT_EQ(
      CountAnySplit(
          kChat, false,
          R"({"id":"c","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant",)"
          R"("content":"The capital of France is Paris.","tool_calls":[{"id":"call_1","type":"function",)"
          R"("function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]},"finish_reason":"stop"}],)"
          R"("usage":{"prompt_tokens":10,"completion_tokens":7,"total_tokens":17}})"),
      E("The capital of France is Paris.") + E("get_weather") + E(R"({"city":"Paris"})"));
  EXPECT_EQ(
      CountAnySplit(
          kAnthropic, false,
          R"({"id":"msg_1","type":"message","role":"assistant","content":[)"
          R"({"type":"thinking","thinking":"Let me check.","signature":"EqQB"},)"
          R"({"type":"text","text":"Hello, world!"},)"
          R"({"type":"tool_use","id":"toolu_1","name":"get_weather","input":{"city":"Paris"}}],)"
          R"("stop_reason":"tool_use","usage":{"input_tokens":5,"output_tokens":9}})"),
      E("Let me check.") + E("Hello, world!") + E("get_weather") + E(R"({"city":"Paris"})"));
  EXPECT_EQ(
      CountAnySplit(
          kResponses, false,
          R"({"id":"resp_1","object":"response","status":"completed","instructions":"Be brief.","output":[)"
          R"({"type":"reasoning","summary":[{"type":"summary_text","text":"Looking it up."}]},)"
          R"({"type":"message","role":"assistant","content":[{"type":"output_text","text":"The capital of France is Paris.","annotations":[]}]},)"
          R"({"type":"function_call","call_id":"call_1","name":"get_weather","arguments":"{}"}],)"
          R"("usage":{"input_tokens":5,"output_tokens":9}})"),
      E("Looking it up.") + E("The capital of France is Paris.") + E("get_weather") + E("{}"));
  // An answer that is not JSON (an error page) has no output.
  EXPECT_EQ(CountWhole(kChat, false, "<html>502 Bad Gateway</html>"), 0);
}

TEST(OutputTokenCounterTest, CutOffStreams) {
  // The client left mid-stream: what was streamed counts; a last event
  // without its blank line counts when its data is whole, not when cut.
  const std::string event =
      "data: " + std::string(R"({"choices":[{"index":0,"delta":{"content":"Hello there"}}]})");
  EXPECT_EQ(CountAnySplit(kChat, true, event), E("Hello there"));
  EXPECT_EQ(CountAnySplit(kChat, true, event.substr(0, event.size() - 3)), 0);
  OutputTokenCounter counter(kChat, true);
  counter.Feed(event + "\n\n" + event.substr(0, 20));
  EXPECT_EQ(counter.Finish(), E("Hello there"));
  EXPECT_EQ(counter.Finish(), E("Hello there"));  // once finished, the same answer
  counter.Feed(event + "\n\n");
  EXPECT_EQ(counter.Finish(), E("Hello there"));
}

TEST(OutputTokenCounterTest, OversizedEventsAreCountedBySize) {
  const std::string big_line =
      "data: " + std::string(R"({"choices":[{"index":0,"delta":{"content":")") +
      std::string(1'200'000, 'x') + R"("}}]})";
  const std::string small =
      "data: " + std::string(R"({"choices":[{"index":0,"delta":{"content":"after"}}]})") + "\n\n";
  const int64_t big_tokens = static_cast<int64_t>((big_line.size() + 1 + 3) / 4);  // + its LF
  const std::string stream = big_line + "\n\n" + small;
  EXPECT_EQ(CountWhole(kChat, true, stream), big_tokens + E("after"));
  // Cut in 64 KiB pieces and at a few odd places: the same count.
  for (size_t piece : {size_t{65536}, size_t{1'048'575}, size_t{1'048'577}, size_t{4099}}) {
    OutputTokenCounter counter(kChat, true);
    for (size_t pos = 0; pos < stream.size(); pos += piece) {
      counter.Feed(std::string_view(stream).substr(pos, piece));
    }
    EXPECT_EQ(counter.Finish(), big_tokens + E("after")) << piece;
  }
  // A whole answer above the bound: its size / 4.
  const std::string whole =
      R"({"choices":[{"message":{"content":")" + std::string(1'500'000, 'y') + R"("}}]})";
  EXPECT_EQ(CountWhole(kChat, false, whole), static_cast<int64_t>((whole.size() + 3) / 4));
}

TEST(OutputTokenCounterTest, OtherFormatsAndOddEvents) {
  EXPECT_EQ(CountWhole(kEmbeddings, false, R"({"data":[{"embedding":[0.1]}]})"), 0);
  EXPECT_EQ(CountWhole(tg::v1::CLIENT_FORMAT_PASSTHROUGH, true, std::string(10, 'z')), 3);
  EXPECT_EQ(CountWhole(tg::v1::CLIENT_FORMAT_UNSPECIFIED, false, ""), 0);
  const std::string odd =
      "data: not json\n\n"
      "data: [1,2]\n\n"
      "data: {\"choices\":\"x\"}\n\n"
      "data: "
      "{\"choices\":[1,{\"delta\":5},{\"delta\":{\"content\":5,\"tool_calls\":[1,{\"function\":7}]}"
      "}]}\n\n"
      "data: "
      "{\"type\":\"content_block_delta\",\"index\":\"x\",\"delta\":{\"type\":\"text_delta\","
      "\"text\":[]}}\n\n"
      "data: {\"type\":\"response.output_text.delta\",\"output_index\":-1,\"delta\":{}}\n\n"
      "data: {\"error\":{\"message\":\"overloaded\"}}\n\n"
      "data:\n\n\n\n"
      "event: error\n\n"
      "data: {\"choices\":[{\"delta\":{\"content\":\"\\u0000\"}}]}\n\n";
  for (ClientFormat f : {kChat, kAnthropic, kResponses}) {
    EXPECT_LE(CountAnySplit(f, true, odd), 1);
    EXPECT_EQ(CountWhole(f, false, odd), 0);
  }
}

}  // namespace
}  // namespace tg::edge
