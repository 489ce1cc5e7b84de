// Mid-stream rescue, client side: an encoder restored from another's saved
// state continues the very same client stream.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tg/adapter/translate/client_codec.h"

namespace tg::adapter::translate {
namespace {

StreamEvent Start(std::string id) {
  StreamEvent e;
  e.type = StreamEvent::Type::kStart;
  e.id = std::move(id);
  e.model = "provider-model";
  e.created = 1700000000;
  e.usage.prompt_tokens = 7;
  return e;
}

StreamEvent Text(std::string text) {
  StreamEvent e;
  e.content = std::move(text);
  return e;
}

StreamEvent Call(int index, std::string id, std::string name, std::string args) {
  StreamEvent e;
  e.tool_calls.push_back({index, std::move(id), std::move(name), std::move(args)});
  return e;
}

StreamEvent Finish(std::string reason) {
  StreamEvent e;
  e.finish_reason = std::move(reason);
  return e;
}

StreamEvent Of(StreamEvent::Type type) {
  StreamEvent e;
  e.type = type;
  if (type == StreamEvent::Type::kUsage) {
    e.usage.prompt_tokens = 7;
    e.usage.completion_tokens = 5;
    e.usage.total_tokens = 12;
  }
  return e;
}

constexpr ClientFormat kFormats[] = {ClientFormat::kOpenAiChat, ClientFormat::kAnthropicMessages,
                                     ClientFormat::kOpenAiResponses};

std::unique_ptr<ClientStreamEncoder> NewEncoder(ClientFormat f, std::string id) {
  StreamEncoderOptions o;
  o.include_usage = true;
  o.id = std::move(id);
  o.model = "m";
  o.created = 1;
  return ClientCodecFor(f).NewStreamEncoder(o);
}

// Whatever the point where the first encoder stops, the second one, restored
// from its state (and built with other options, as a continuation on another
// target is), writes exactly the bytes the first would have written.
TEST(StreamResumeTest, ARestoredEncoderContinuesTheSameStreamFromAnyPoint) {
  const std::vector<std::vector<StreamEvent>> answers = {
      {Start("chatcmpl-a"), Text("one"), Text(" two"), Text(" three"), Finish("stop"),
       Of(StreamEvent::Type::kUsage), Of(StreamEvent::Type::kEnd)},
      {Start("msg_b"), Text("Let me look."), Call(0, "call_1", "weather", "{\"ci"),
       Call(0, "", "", "ty\":\"Paris\"}"), Call(1, "call_2", "time", "{}"), Finish("tool_calls"),
       Of(StreamEvent::Type::kUsage), Of(StreamEvent::Type::kEnd)},
  };
  for (ClientFormat f : kFormats) {
    for (const auto& events : answers) {
      std::string whole;
      auto one = NewEncoder(f, "first");
      for (const auto& e : events) one->Encode(e, &whole);
      ASSERT_TRUE(one->finished());
      for (size_t k = 0; k <= events.size(); ++k) {
        auto a = NewEncoder(f, "first");
        std::string out;
        for (size_t i = 0; i < k; ++i) a->Encode(events[i], &out);
        auto b = NewEncoder(f, "second");
        ASSERT_TRUE(b->RestoreState(a->SaveState())) << a->SaveState();
        for (size_t i = k; i < events.size(); ++i) b->Encode(events[i], &out);
        EXPECT_EQ(out, whole) << "format " << static_cast<int>(f) << ", split at " << k;
        EXPECT_TRUE(b->finished());
      }
    }
  }
}

// A continuation's own kStart does not rename the answer the client has.
TEST(StreamResumeTest, TheContinuationKeepsTheAnswersIdAndModel) {
  for (ClientFormat f : kFormats) {
    auto a = NewEncoder(f, "chatcmpl-first");
    std::string out;
    a->Encode(Start(""), &out);
    a->Encode(Text("one"), &out);
    auto b = NewEncoder(f, "chatcmpl-second");
    ASSERT_TRUE(b->RestoreState(a->SaveState()));
    std::string rest;
    StreamEvent other = Start("msg_other");
    other.model = "other-model";
    b->Encode(other, &rest);
    b->Encode(Text(" two"), &rest);
    b->Encode(Of(StreamEvent::Type::kEnd), &rest);
    EXPECT_EQ(rest.find("msg_other"), std::string::npos) << rest;
    EXPECT_EQ(rest.find("other-model"), std::string::npos) << rest;
    EXPECT_EQ(rest.find("chatcmpl-second"), std::string::npos) << rest;
    EXPECT_EQ(rest.find("message_start"), std::string::npos) << rest;
    EXPECT_EQ(rest.find("response.created"), std::string::npos) << rest;
    if (f == ClientFormat::kOpenAiChat) {
      EXPECT_EQ(rest.find("\"role\""), std::string::npos) << "no second role: " << rest;
    }
  }
}

// A state is untrusted input: one of another format, malformed JSON or
// indexes out of range is refused, and the encoder stays as it was.
TEST(StreamResumeTest, StatesThatAreNotTheEncodersOwnAreRefused) {
  auto chat = NewEncoder(ClientFormat::kOpenAiChat, "x");
  auto anthropic = NewEncoder(ClientFormat::kAnthropicMessages, "x");
  auto responses = NewEncoder(ClientFormat::kOpenAiResponses, "x");
  const std::string chat_state = chat->SaveState();
  EXPECT_FALSE(anthropic->RestoreState(chat_state));
  EXPECT_FALSE(responses->RestoreState(chat_state));
  for (auto* enc : {chat.get(), anthropic.get(), responses.get()}) {
    EXPECT_FALSE(enc->RestoreState(""));
    EXPECT_FALSE(enc->RestoreState("not json"));
    EXPECT_FALSE(enc->RestoreState("[]"));
    EXPECT_FALSE(enc->RestoreState(std::string(100000, '[')));
  }
  EXPECT_FALSE(anthropic->RestoreState(
      R"({"kind":"anthropic","usage":[0,0,0,0,0],"created":1,"open_block":7,"next_block":2,"tool_blocks":[]})"));
  EXPECT_FALSE(anthropic->RestoreState(
      R"({"kind":"anthropic","usage":[0,0,0,0,0],"created":1,"open_block":0,"next_block":1,"tool_blocks":[5]})"));
  EXPECT_FALSE(anthropic->RestoreState(
      R"({"kind":"anthropic","usage":[0,0,0,0,0],"created":1,"open_block":0,"next_block":99999999,"tool_blocks":[]})"));
  EXPECT_FALSE(responses->RestoreState(
      R"({"kind":"responses","usage":[0,0,0,0,0],"created":1,"sequence":3,"items":[],"open_item":0,"tool_items":[]})"));
  EXPECT_FALSE(responses->RestoreState(
      R"({"kind":"responses","usage":[0,0,0,0,0],"created":1,"sequence":-1,"items":[],"open_item":-1,"tool_items":[]})"));
  EXPECT_FALSE(
      chat->RestoreState(R"({"kind":"openai_chat","usage":[0,0,0,0,0],"created":1,"roles":[2]})"));
  // The same states with their indexes in range are taken.
  EXPECT_TRUE(anthropic->RestoreState(
      R"({"kind":"anthropic","usage":[0,0,0,0,0],"created":1,"open_block":0,"next_block":1,"tool_blocks":[]})"));
  EXPECT_TRUE(responses->RestoreState(
      R"({"kind":"responses","usage":[0,0,0,0,0],"created":1,"sequence":3,"items":[],"open_item":-1,"tool_items":[]})"));
  EXPECT_TRUE(
      chat->RestoreState(R"({"kind":"openai_chat","usage":[0,0,0,0,0],"created":1,"roles":[1]})"));
  EXPECT_FALSE(
      chat->RestoreState(R"({"kind":"openai_chat","usage":[0,-1,0,0,0],"created":1,"roles":[1]})"));
  // Refused states changed nothing: each still writes a whole stream.
  for (auto* enc : {chat.get(), anthropic.get(), responses.get()}) {
    std::string out;
    enc->Encode(Text("hi"), &out);
    enc->Encode(Of(StreamEvent::Type::kEnd), &out);
    EXPECT_TRUE(enc->finished());
    EXPECT_NE(out.find("hi"), std::string::npos);
  }
}

}  // namespace
}  // namespace tg::adapter::translate
