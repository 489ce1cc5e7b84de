#include "tg/common/bounded_json.h"

#include <rapidjson/encodedstream.h>
#include <rapidjson/error/en.h>
#include <rapidjson/memorystream.h>
#include <rapidjson/reader.h>

#include <cstring>

namespace tg::json {
namespace {

using Document = rapidjson::Document;

// True when `s` holds the UTF-8 form of a UTF-16 surrogate (ED A0..BF ..).
// RapidJSON validates its input, but writes a lone low surrogate escape
// (`"\udc00"`) as those bytes, which are not UTF-8.
bool HasEncodedSurrogate(const char* s, size_t n) {
  const char* end = s + n;
  while (s < end) {
    const void* hit = std::memchr(s, 0xED, static_cast<size_t>(end - s));
    if (hit == nullptr) return false;
    const char* p = static_cast<const char*>(hit);
    if (p + 1 < end && static_cast<unsigned char>(p[1]) >= 0xA0) return true;
    s = p + 1;
  }
  return false;
}

// Forwards SAX events to the document, refusing a container that would
// exceed the depth limit and, when validating, a string that decodes to
// something that is not UTF-8 (the reader then stops with
// kParseErrorTermination).
class DepthLimiter {
 public:
  DepthLimiter(Document& doc, size_t max_depth, bool validate_utf8)
      : doc_(doc), max_depth_(max_depth), validate_utf8_(validate_utf8) {}

  bool Null() { return doc_.Null(); }
  bool Bool(bool b) { return doc_.Bool(b); }
  bool Int(int i) { return doc_.Int(i); }
  bool Uint(unsigned u) { return doc_.Uint(u); }
  bool Int64(int64_t i) { return doc_.Int64(i); }
  bool Uint64(uint64_t u) { return doc_.Uint64(u); }
  bool Double(double d) { return doc_.Double(d); }
  bool RawNumber(const char* s, rapidjson::SizeType n, bool copy) {
    return doc_.RawNumber(s, n, copy);
  }
  bool String(const char* s, rapidjson::SizeType n, bool copy) {
    return CheckString(s, n) && doc_.String(s, n, copy);
  }
  bool Key(const char* s, rapidjson::SizeType n, bool copy) {
    return CheckString(s, n) && doc_.Key(s, n, copy);
  }
  bool StartObject() { return Enter() && doc_.StartObject(); }
  bool EndObject(rapidjson::SizeType n) {
    --depth_;
    return doc_.EndObject(n);
  }
  bool StartArray() { return Enter() && doc_.StartArray(); }
  bool EndArray(rapidjson::SizeType n) {
    --depth_;
    return doc_.EndArray(n);
  }

  bool too_deep() const { return too_deep_; }
  bool bad_string() const { return bad_string_; }

 private:
  bool CheckString(const char* s, size_t n) {
    if (validate_utf8_ && HasEncodedSurrogate(s, n)) {
      bad_string_ = true;
      return false;
    }
    return true;
  }

  bool Enter() {
    if (++depth_ > max_depth_) {
      too_deep_ = true;
      return false;
    }
    return true;
  }

  Document& doc_;
  const size_t max_depth_;
  const bool validate_utf8_;
  size_t depth_ = 0;
  bool too_deep_ = false;
  bool bad_string_ = false;
};

template <unsigned kFlags>
ParseResult ParseWith(std::string_view text, Document* doc, size_t max_depth) {
  ParseResult result;
  rapidjson::MemoryStream ms(text.data() != nullptr ? text.data() : "", text.size());
  rapidjson::EncodedInputStream<rapidjson::UTF8<>, rapidjson::MemoryStream> is(ms);
  rapidjson::Reader reader;
  DepthLimiter limiter(*doc, max_depth, (kFlags & rapidjson::kParseValidateEncodingFlag) != 0);
  auto generate = [&](Document&) {
    return !reader.Parse<kFlags | rapidjson::kParseIterativeFlag>(is, limiter).IsError();
  };
  doc->Populate(generate);
  if (!reader.HasParseError()) return result;
  doc->SetNull();
  result.offset = reader.GetErrorOffset();
  const auto code = reader.GetParseErrorCode();
  if (limiter.too_deep()) {
    result.failure = ParseFailure::kTooDeep;
    result.message = "JSON nested deeper than " + std::to_string(max_depth) + " levels";
  } else if (code == rapidjson::kParseErrorStringInvalidEncoding || limiter.bad_string()) {
    result.failure = ParseFailure::kEncoding;
    result.message =
        "JSON string is not valid UTF-8 (offset " + std::to_string(result.offset) + ")";
  } else {
    result.failure = ParseFailure::kSyntax;
    result.message = "malformed JSON at offset " + std::to_string(result.offset) + ": " +
                     rapidjson::GetParseError_En(code);
  }
  return result;
}

}  // namespace

ParseResult Parse(std::string_view text, rapidjson::Document* doc, const ParseOptions& options) {
  doc->SetNull();
  if (text.size() > options.max_bytes) {
    ParseResult r;
    r.failure = ParseFailure::kTooLarge;
    r.message = "JSON text larger than " + std::to_string(options.max_bytes) + " bytes";
    return r;
  }
  using rapidjson::kParseCommentsFlag;
  using rapidjson::kParseDefaultFlags;
  using rapidjson::kParseTrailingCommasFlag;
  using rapidjson::kParseValidateEncodingFlag;
  constexpr unsigned kLenient = kParseCommentsFlag | kParseTrailingCommasFlag;
  constexpr unsigned kUtf8 = kParseValidateEncodingFlag;
  const size_t d = options.max_depth;
  // The flags are template arguments: one instantiation per combination used.
  const unsigned key = (options.lenient ? 1u : 0u) | (options.validate_utf8 ? 2u : 0u);
  switch (key) {
    case 0:
      return ParseWith<kParseDefaultFlags>(text, doc, d);
    case 1:
      return ParseWith<kLenient>(text, doc, d);
    case 2:
      return ParseWith<kUtf8>(text, doc, d);
    default:
      return ParseWith<kLenient | kUtf8>(text, doc, d);
  }
}

}  // namespace tg::json
