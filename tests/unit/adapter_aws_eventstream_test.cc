// Eventstream framing: AWS's published vectors (aws-sdk-go
// private/protocol/eventstream/testdata, shared by the SDKs' codecs), round
// trips through the encoder, arbitrary splits, and every corruption.

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tg/adapter/aws/eventstream.h"

namespace tg::adapter::aws {
namespace {

std::string Hex(std::string_view hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    out += static_cast<char>(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16));
  }
  return out;
}

constexpr char kPayload[] = "{'foo':'bar'}";

// The reference's vector: content-type=application/json, payload {'foo':'bar'}.
const std::string kOneStringHeader =
    Hex("0000003d0000002007fd83960c636f6e74656e742d747970650700106170706c69636174696f6e2f6a736f6e7b"
        "27666f6f273a27626172277d8d9c08b1");
const std::string kEmpty = Hex("000000100000000005c248eb7d98c8ff");
const std::string kNoHeaders = Hex("0000001d00000000fd528c5a7b27666f6f273a27626172277dc3653936");
const std::string kInt32Header = Hex(
    "0000002d0000001041c424b80a6576656e742d74797065040000a00c7b27666f6f273a27626172277d36f480a0");
const std::string kAllHeaders = Hex(
    "000000cc000000af0fae64ca0a6576656e742d74797065040000a00c0c636f6e74656e742d7479706507001061"
    "70706c69636174696f6e2f6a736f6e0a626f6f6c2066616c73650109626f6f6c207472756500046279746502cf"
    "08627974652062756606001449276d2061206c6974746c6520746561706f74210974696d657374616d70080000"
    "000000845fed05696e74313603002a05696e7436340500000000028757b20475756964090102030405060708090a"
    "0b0c0d0e0f107b27666f6f273a27626172277daba5f10c");

std::vector<EventHeader> AllHeaders() {
  return {
      {"event-type", HeaderValue::Int32(40972)},
      {"content-type", HeaderValue::String("application/json")},
      {"bool false", HeaderValue::Bool(false)},
      {"bool true", HeaderValue::Bool(true)},
      {"byte", HeaderValue::Byte(-49)},
      {"byte buf", HeaderValue::Bytes("I'm a little teapot!")},
      {"timestamp", HeaderValue::Timestamp(8675309)},
      {"int16", HeaderValue::Int16(42)},
      {"int64", HeaderValue::Int64(42424242)},
      {"uuid", HeaderValue::Uuid(Hex("0102030405060708090a0b0c0d0e0f10"))},
  };
}

std::vector<EventMessage> DecodeAll(std::string_view bytes, EventStreamError* error = nullptr) {
  EventStreamDecoder decoder;
  std::vector<EventMessage> out;
  EventStreamError e = decoder.Feed(bytes, &out);
  if (error != nullptr) *error = e;
  return out;
}

TEST(EventStreamTest, DecodesPublishedVectors) {
  auto one = DecodeAll(kOneStringHeader);
  ASSERT_EQ(one.size(), 1u);
  EXPECT_EQ(one[0].StringHeader("content-type"), "application/json");
  EXPECT_EQ(one[0].payload, kPayload);

  auto empty = DecodeAll(kEmpty);
  ASSERT_EQ(empty.size(), 1u);
  EXPECT_TRUE(empty[0].headers.empty());
  EXPECT_TRUE(empty[0].payload.empty());

  auto no_headers = DecodeAll(kNoHeaders);
  ASSERT_EQ(no_headers.size(), 1u);
  EXPECT_EQ(no_headers[0].payload, kPayload);

  auto int32 = DecodeAll(kInt32Header);
  ASSERT_EQ(int32.size(), 1u);
  ASSERT_EQ(int32[0].headers.size(), 1u);
  EXPECT_EQ(int32[0].headers[0], (EventHeader{"event-type", HeaderValue::Int32(40972)}));
}

TEST(EventStreamTest, DecodesEveryHeaderType) {
  auto all = DecodeAll(kAllHeaders);
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].headers, AllHeaders());
  EXPECT_EQ(all[0].payload, kPayload);
  EXPECT_EQ(all[0].Find("byte")->integer, -49);
  EXPECT_EQ(all[0].Find("bool true")->integer, 1);
  EXPECT_EQ(all[0].Find("missing"), nullptr);
  EXPECT_EQ(all[0].StringHeader("int16"), "");  // not a string
}

TEST(EventStreamTest, EncoderReproducesPublishedVectors) {
  EXPECT_EQ(
      EncodeEventMessage({{"content-type", HeaderValue::String("application/json")}}, kPayload),
      kOneStringHeader);
  EXPECT_EQ(EncodeEventMessage({}, ""), kEmpty);
  EXPECT_EQ(EncodeEventMessage({}, kPayload), kNoHeaders);
  EXPECT_EQ(EncodeEventMessage(AllHeaders(), kPayload), kAllHeaders);
}

TEST(EventStreamTest, NegativeExtremesRoundTrip) {
  std::vector<EventHeader> headers = {
      {"b", HeaderValue::Byte(-128)},
      {"s", HeaderValue::Int16(-32768)},
      {"i", HeaderValue::Int32(INT32_MIN)},
      {"l", HeaderValue::Int64(INT64_MIN)},
      {"t", HeaderValue::Timestamp(-1)},
      {"e", HeaderValue::String("")},
      {"big", HeaderValue::Bytes(std::string(65535, 'x'))},
  };
  auto out = DecodeAll(EncodeEventMessage(headers, std::string(1000, '\0')));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].headers, headers);
  EXPECT_EQ(out[0].payload, std::string(1000, '\0'));
}

TEST(EventStreamTest, BedrockEventsAndExceptions) {
  std::string stream =
      EncodeEvent("messageStart", R"({"p":"abcd","role":"assistant"})") +
      EncodeEvent("contentBlockDelta", R"({"contentBlockIndex":0,"delta":{"text":"Hi"}})") +
      EncodeException("throttlingException", R"({"message":"Too many requests"})") +
      EncodeEventMessage({{":message-type", HeaderValue::String("error")},
                          {":error-code", HeaderValue::String("InternalFailure")},
                          {":error-message", HeaderValue::String("boom")}},
                         "");
  auto out = DecodeAll(stream);
  ASSERT_EQ(out.size(), 4u);
  EXPECT_EQ(out[0].message_type(), "event");
  EXPECT_EQ(out[0].type(), "messageStart");
  EXPECT_EQ(out[0].content_type(), "application/json");
  EXPECT_EQ(out[1].type(), "contentBlockDelta");
  EXPECT_EQ(out[1].payload, R"({"contentBlockIndex":0,"delta":{"text":"Hi"}})");
  EXPECT_EQ(out[2].message_type(), "exception");
  EXPECT_EQ(out[2].type(), "throttlingException");
  EXPECT_EQ(out[2].payload, R"({"message":"Too many requests"})");
  EXPECT_EQ(out[3].message_type(), "error");
  EXPECT_EQ(out[3].type(), "InternalFailure");
}

TEST(EventStreamTest, AnySplitYieldsTheSameMessages) {
  std::string stream = EncodeEvent("a", "h\xc3\xa9llo \xe4\xb8\x96\xe7\x95\x8c") + kAllHeaders +
                       kEmpty + EncodeEvent("messageStop", R"({"stopReason":"end_turn"})");
  // Byte by byte.
  {
    EventStreamDecoder decoder;
    std::vector<EventMessage> out;
    for (char c : stream) {
      ASSERT_EQ(decoder.Feed(std::string_view(&c, 1), &out), EventStreamError::kNone);
    }
    EXPECT_TRUE(decoder.AtBoundary());
    ASSERT_EQ(out.size(), 4u);
    EXPECT_EQ(out[0].payload, "h\xc3\xa9llo \xe4\xb8\x96\xe7\x95\x8c");
    EXPECT_EQ(out[1].headers, AllHeaders());
    EXPECT_EQ(out[3].type(), "messageStop");
  }
  // Every chunk size, and every single cut point.
  for (size_t chunk = 2; chunk <= stream.size(); ++chunk) {
    EventStreamDecoder decoder;
    std::vector<EventMessage> out;
    for (size_t pos = 0; pos < stream.size(); pos += chunk) {
      ASSERT_EQ(decoder.Feed(std::string_view(stream).substr(pos, chunk), &out),
                EventStreamError::kNone);
    }
    ASSERT_EQ(out.size(), 4u) << "chunk " << chunk;
    EXPECT_TRUE(decoder.AtBoundary());
  }
  for (size_t cut = 0; cut <= stream.size(); ++cut) {
    EventStreamDecoder decoder;
    std::vector<EventMessage> out;
    decoder.Feed(std::string_view(stream).substr(0, cut), &out);
    decoder.Feed(std::string_view(stream).substr(cut), &out);
    ASSERT_EQ(out.size(), 4u) << "cut " << cut;
    EXPECT_EQ(out[1].headers, AllHeaders());
  }
}

TEST(EventStreamTest, BadPreludeCrc) {
  // Published negative vectors: a corrupted headers_length and a corrupted
  // total_length both fail the prelude CRC (before waiting for more bytes).
  EventStreamError error;
  std::string bad_headers_len = kOneStringHeader;
  bad_headers_len[7] = 0x21;
  EXPECT_TRUE(DecodeAll(bad_headers_len, &error).empty());
  EXPECT_EQ(error, EventStreamError::kPreludeCrc);

  std::string bad_len = kOneStringHeader;
  bad_len[3] = 0x3e;
  EXPECT_TRUE(DecodeAll(bad_len, &error).empty());
  EXPECT_EQ(error, EventStreamError::kPreludeCrc);
}

TEST(EventStreamTest, BadMessageCrc) {
  EventStreamError error;
  std::string bad_header = kOneStringHeader;
  bad_header[45] = 'a';  // the published vector: payload "{afoo':'bar'}"
  EXPECT_TRUE(DecodeAll(bad_header, &error).empty());
  EXPECT_EQ(error, EventStreamError::kMessageCrc);

  std::string bad_payload = kNoHeaders;
  bad_payload[12] = '[';
  EventStreamDecoder decoder;
  std::vector<EventMessage> out;
  EXPECT_EQ(decoder.Feed(bad_payload, &out), EventStreamError::kMessageCrc);
  // The framing is lost for good: even a valid frame is refused afterwards.
  EXPECT_EQ(decoder.Feed(kEmpty, &out), EventStreamError::kMessageCrc);
  EXPECT_TRUE(out.empty());
  EXPECT_FALSE(decoder.AtBoundary());
  EXPECT_FALSE(decoder.error_message().empty());
}

TEST(EventStreamTest, GoodMessagesBeforeACorruptOneAreDelivered) {
  std::string corrupt = kNoHeaders;
  corrupt[13] = 'x';
  EventStreamError error;
  auto out = DecodeAll(kEmpty + kOneStringHeader + corrupt, &error);
  EXPECT_EQ(error, EventStreamError::kMessageCrc);
  EXPECT_EQ(out.size(), 2u);
}

TEST(EventStreamTest, TruncatedFrameIsNotAtBoundary) {
  std::string frame = EncodeEvent("contentBlockDelta", "payload");
  for (size_t cut = 1; cut < frame.size(); ++cut) {
    EventStreamDecoder decoder;
    std::vector<EventMessage> out;
    EXPECT_EQ(decoder.Feed(std::string_view(frame).substr(0, cut), &out), EventStreamError::kNone);
    EXPECT_TRUE(out.empty());
    EXPECT_FALSE(decoder.AtBoundary()) << "cut " << cut;
    EXPECT_EQ(decoder.buffered_bytes(), cut);
  }
}

// Builds a frame with valid CRCs around arbitrary header bytes.
std::string RawFrame(uint32_t total, uint32_t headers_len, std::string_view body) {
  std::string f;
  for (uint32_t v : {total, headers_len}) {
    for (int i = 3; i >= 0; --i) f += static_cast<char>((v >> (8 * i)) & 0xff);
  }
  // A bitwise CRC32 of the test's own, independent of the code under test.
  auto crc = [](std::string_view s) {
    uint32_t c = 0xffffffffu;
    for (unsigned char b : s) {
      c ^= b;
      for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1u)));
    }
    return ~c;
  };
  auto append_u32 = [&f](uint32_t v) {
    for (int i = 3; i >= 0; --i) f += static_cast<char>((v >> (8 * i)) & 0xff);
  };
  append_u32(crc(f));
  f += body;
  append_u32(crc(f));
  return f;
}

TEST(EventStreamTest, OversizedAndImpossibleLengths) {
  // Refused from the prelude alone: nothing is buffered waiting for 16 MiB + 1.
  std::string huge = RawFrame(16 * 1024 * 1024 + 1, 0, "");
  EventStreamDecoder decoder;
  std::vector<EventMessage> out;
  EXPECT_EQ(decoder.Feed(std::string_view(huge).substr(0, 12), &out), EventStreamError::kLength);
  EXPECT_EQ(decoder.buffered_bytes(), 0u);

  EventStreamError error;
  DecodeAll(RawFrame(15, 0, ""), &error);  // shorter than prelude + CRC
  EXPECT_EQ(error, EventStreamError::kLength);
  DecodeAll(RawFrame(20, 8, "abcd"), &error);  // headers longer than the message allows
  EXPECT_EQ(error, EventStreamError::kLength);

  EventStreamDecoderOptions small;
  small.max_message_bytes = 64;
  EventStreamDecoder limited(small);
  EXPECT_EQ(limited.Feed(EncodeEvent("x", std::string(100, 'p')), &out), EventStreamError::kLength);
}

TEST(EventStreamTest, MalformedHeaders) {
  EventStreamError error;
  // A string header claiming 0xffff bytes inside an 8-byte section.
  std::string h = std::string("\x01x\x07\xff\xff", 5) + "abc";
  DecodeAll(RawFrame(16 + h.size(), h.size(), h), &error);
  EXPECT_EQ(error, EventStreamError::kHeader);
  // Unknown header type 10.
  h = std::string("\x01x\x0a", 3);
  DecodeAll(RawFrame(16 + h.size(), h.size(), h), &error);
  EXPECT_EQ(error, EventStreamError::kHeader);
  // Zero-length name.
  h = std::string("\x00\x00", 2);
  DecodeAll(RawFrame(16 + h.size(), h.size(), h), &error);
  EXPECT_EQ(error, EventStreamError::kHeader);
  // An int64 cut short.
  h = std::string("\x01x\x05\x00\x00", 5);
  DecodeAll(RawFrame(16 + h.size(), h.size(), h), &error);
  EXPECT_EQ(error, EventStreamError::kHeader);
  EXPECT_EQ(EventStreamErrorName(error), "header");
}

}  // namespace
}  // namespace tg::adapter::aws
