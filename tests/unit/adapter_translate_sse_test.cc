// SSE parser edge cases: line endings, splits anywhere, multi-line data,
// comments, `data:` with and without the space, event names.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tg/adapter/translate/sse_parser.h"

namespace tg::adapter::translate {
namespace {

std::vector<SseEvent> ParseAll(std::string_view input, size_t split = 0) {
  SseParser parser;
  std::vector<SseEvent> out;
  if (split == 0) split = input.size() + 1;
  for (size_t pos = 0; pos < input.size(); pos += split) {
    parser.Feed(input.substr(pos, split), &out);
  }
  parser.Finish(&out);
  return out;
}

// Every split size gives the same events as the whole input.
void ExpectSplitInvariant(std::string_view input) {
  std::vector<SseEvent> whole = ParseAll(input);
  for (size_t split = 1; split <= input.size(); ++split) {
    std::vector<SseEvent> parts = ParseAll(input, split);
    ASSERT_EQ(parts.size(), whole.size()) << "split " << split;
    for (size_t i = 0; i < whole.size(); ++i) {
      EXPECT_EQ(parts[i].event, whole[i].event) << "split " << split;
      EXPECT_EQ(parts[i].data, whole[i].data) << "split " << split;
    }
  }
}

TEST(SseParserTest, ParsesDataEvents) {
  auto ev = ParseAll("data: {\"a\":1}\n\ndata: [DONE]\n\n");
  ASSERT_EQ(ev.size(), 2u);
  EXPECT_EQ(ev[0].data, "{\"a\":1}");
  EXPECT_EQ(ev[0].event, "");
  EXPECT_EQ(ev[1].data, "[DONE]");
}

TEST(SseParserTest, ReadsEventNames) {
  auto ev =
      ParseAll("event: message_start\ndata: {}\n\nevent: ping\ndata: {\"type\":\"ping\"}\n\n");
  ASSERT_EQ(ev.size(), 2u);
  EXPECT_EQ(ev[0].event, "message_start");
  EXPECT_EQ(ev[1].event, "ping");
  EXPECT_EQ(ev[1].data, "{\"type\":\"ping\"}");
}

TEST(SseParserTest, AcceptsCrLfAndCrLineEndings) {
  auto crlf = ParseAll("data: one\r\n\r\ndata: two\r\n\r\n");
  ASSERT_EQ(crlf.size(), 2u);
  EXPECT_EQ(crlf[0].data, "one");
  EXPECT_EQ(crlf[1].data, "two");
  auto cr = ParseAll("event: e\rdata: one\r\rdata: two\r\r");
  ASSERT_EQ(cr.size(), 2u);
  EXPECT_EQ(cr[0].event, "e");
  EXPECT_EQ(cr[0].data, "one");
  EXPECT_EQ(cr[1].data, "two");
}

TEST(SseParserTest, CrLfSplitBetweenFeedsIsOneLineEnd) {
  SseParser parser;
  std::vector<SseEvent> out;
  parser.Feed("data: a\r", &out);
  parser.Feed("\n\r", &out);
  parser.Feed("\ndata: b\r\n\r\n", &out);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].data, "a");
  EXPECT_EQ(out[1].data, "b");
}

TEST(SseParserTest, JoinsMultiLineDataWithNewline) {
  auto ev = ParseAll("data: first\ndata: second\ndata:third\n\n");
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].data, "first\nsecond\nthird");
}

TEST(SseParserTest, DataWithoutSpaceAndOnlyOneSpaceRemoved) {
  auto ev = ParseAll("data:{\"x\":1}\n\ndata:  two spaces\n\n");
  ASSERT_EQ(ev.size(), 2u);
  EXPECT_EQ(ev[0].data, "{\"x\":1}");
  EXPECT_EQ(ev[1].data, " two spaces");
}

TEST(SseParserTest, IgnoresCommentsAndUnknownFields) {
  auto ev = ParseAll(": OPENROUTER PROCESSING\n\nid: 7\nretry: 100\n: keep-alive\ndata: x\n\n");
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].data, "x");
}

TEST(SseParserTest, BlankLinesWithoutDataDispatchNothingAndResetEventName) {
  auto ev = ParseAll("\n\n\nevent: lonely\n\ndata: d\n\n");
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].event, "");
  EXPECT_EQ(ev[0].data, "d");
}

TEST(SseParserTest, EmptyDataLineIsAnEvent) {
  auto ev = ParseAll("data\n\ndata:\n\n");
  ASSERT_EQ(ev.size(), 2u);
  EXPECT_EQ(ev[0].data, "");
  EXPECT_EQ(ev[1].data, "");
}

TEST(SseParserTest, FinishDispatchesATrailingEventWithoutBlankLine) {
  auto ev = ParseAll("data: a\n\ndata: last");
  ASSERT_EQ(ev.size(), 2u);
  EXPECT_EQ(ev[1].data, "last");
}

TEST(SseParserTest, SplitAnywhereGivesTheSameEvents) {
  ExpectSplitInvariant(
      "event: message_start\r\ndata: {\"type\":\"message_start\"}\r\n\r\n"
      ": comment\n"
      "data: line1\ndata:line2\n\n"
      "event: x\rdata: cr\r\r"
      "data: {\"é\":\"ünïcödé\"}\n\n");
}

TEST(SseParserTest, OverlongLineIsReportedNotBuffered) {
  SseParser parser;
  std::vector<SseEvent> out;
  std::string chunk(1 << 20, 'x');
  parser.Feed("data: ", &out);
  for (int i = 0; i < 17 && !parser.overflowed(); ++i) parser.Feed(chunk, &out);
  EXPECT_TRUE(parser.overflowed());
  EXPECT_TRUE(out.empty());
}

}  // namespace
}  // namespace tg::adapter::translate

namespace tg::adapter::translate {
namespace {

// Issue 11: `data:` lines that never end with a blank line grew tg-adapter
// by the whole stream (61 → 264 MiB in 24 s). Each line is short; the event
// they build is what must be bounded.
TEST(SseParserTest, EventWithoutBlankLineIsBoundedNotBuffered) {
  SseParser parser;
  std::vector<SseEvent> out;
  const std::string line = "data: " + std::string(1000, 'x') + "\n";
  size_t fed = 0;
  while (!parser.overflowed() && fed < (8u << 20)) {
    parser.Feed(line, &out);
    fed += line.size();
  }
  EXPECT_TRUE(parser.overflowed());
  // The limit counts the event's data; the lines' "data: " prefixes come on top.
  EXPECT_LE(fed, limits::kMaxSseEventBytes * 101 / 100 + line.size());
  EXPECT_TRUE(out.empty());
}

TEST(SseParserTest, EventsUpToTheLimitPass) {
  SseParser parser(64);
  std::vector<SseEvent> out;
  parser.Feed("data: " + std::string(50, 'a') + "\n\n", &out);
  parser.Feed("data: " + std::string(50, 'b') + "\n\n", &out);  // each event on its own
  EXPECT_FALSE(parser.overflowed());
  EXPECT_EQ(out.size(), 2u);
  parser.Feed("data: " + std::string(40, 'c') + "\ndata: " + std::string(40, 'd') + "\n", &out);
  EXPECT_TRUE(parser.overflowed());
}

}  // namespace
}  // namespace tg::adapter::translate
