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

// Forwards SAX events to `sink` (a Document, or a scanner that keeps
// nothing), refusing a container that would exceed the depth limit and, when
// validating, a string that decodes to something that is not UTF-8 (the
// reader then stops with kParseErrorTermination).
template <class Sink>
class DepthLimiter {
 public:
  DepthLimiter(Sink& sink, size_t max_depth, bool validate_utf8)
      : sink_(sink), max_depth_(max_depth), validate_utf8_(validate_utf8) {}

  bool Null() { return sink_.Null(); }
  bool Bool(bool b) { return sink_.Bool(b); }
  bool Int(int i) { return sink_.Int(i); }
  bool Uint(unsigned u) { return sink_.Uint(u); }
  bool Int64(int64_t i) { return sink_.Int64(i); }
  bool Uint64(uint64_t u) { return sink_.Uint64(u); }
  bool Double(double d) { return sink_.Double(d); }
  bool RawNumber(const char* s, rapidjson::SizeType n, bool copy) {
    return sink_.RawNumber(s, n, copy);
  }
  bool String(const char* s, rapidjson::SizeType n, bool copy) {
    return CheckString(s, n) && sink_.String(s, n, copy);
  }
  bool Key(const char* s, rapidjson::SizeType n, bool copy) {
    return CheckString(s, n) && sink_.Key(s, n, copy);
  }
  bool StartObject() { return Enter() && sink_.StartObject(); }
  bool EndObject(rapidjson::SizeType n) {
    --depth_;
    return sink_.EndObject(n);
  }
  bool StartArray() { return Enter() && sink_.StartArray(); }
  bool EndArray(rapidjson::SizeType n) {
    --depth_;
    return sink_.EndArray(n);
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

  Sink& sink_;
  const size_t max_depth_;
  const bool validate_utf8_;
  size_t depth_ = 0;
  bool too_deep_ = false;
  bool bad_string_ = false;
};

// Keeps the first top-level "model" and "stream" and nothing else.
class RoutingScanner {
 public:
  explicit RoutingScanner(RoutingFields* out) : out_(out) {}

  // Every handler returns true: the scan reads the whole text; only the
  // bounds stop it.
  bool Null() { return Other(); }
  bool Bool(bool b) {
    if (Pending() == kStream) out_->stream = b;
    return Other();
  }
  bool Int(int) { return Other(); }
  bool Uint(unsigned) { return Other(); }
  bool Int64(int64_t) { return Other(); }
  bool Uint64(uint64_t) { return Other(); }
  bool Double(double) { return Other(); }
  bool RawNumber(const char*, rapidjson::SizeType, bool) { return Other(); }
  bool String(const char* s, rapidjson::SizeType n, bool) {
    if (Pending() == kModel) out_->model = std::string(s, n);
    return Other();
  }
  bool Key(const char* s, rapidjson::SizeType n, bool) {
    pending_ = kNone;
    if (depth_ != 1) return true;
    const std::string_view key(s, n);
    if (key == "model" && !seen_model_) {
      seen_model_ = true;
      pending_ = kModel;
    } else if (key == "stream" && !seen_stream_) {
      seen_stream_ = true;
      pending_ = kStream;
    }
    return true;
  }
  bool StartObject() {
    if (depth_ == 0) out_->object = true;
    Open();
    return true;
  }
  bool EndObject(rapidjson::SizeType) {
    --depth_;
    return true;
  }
  bool StartArray() {
    Open();
    return true;
  }
  bool EndArray(rapidjson::SizeType) {
    --depth_;
    return true;
  }

 private:
  enum Member { kNone, kModel, kStream };

  // Which routing member this scalar is the value of (kNone: none).
  Member Pending() const { return depth_ == 1 ? pending_ : kNone; }
  bool Other() {
    pending_ = kNone;
    return true;
  }
  // A container: the value of a pending member is not a scalar, so the name
  // is used up with no value kept.
  void Open() {
    pending_ = kNone;
    ++depth_;
  }

  RoutingFields* out_;
  size_t depth_ = 0;
  Member pending_ = kNone;
  bool seen_model_ = false;
  bool seen_stream_ = false;
};

// Runs the bounded reader over `text` into `sink`; `populate` wraps the run
// (a Document's Populate, or a plain call).
template <unsigned kFlags, class Sink, class Populate>
ParseResult Run(std::string_view text, Sink& sink, size_t max_depth, Populate populate) {
  ParseResult result;
  rapidjson::MemoryStream ms(text.data() != nullptr ? text.data() : "", text.size());
  rapidjson::EncodedInputStream<rapidjson::UTF8<>, rapidjson::MemoryStream> is(ms);
  rapidjson::Reader reader;
  DepthLimiter<Sink> limiter(sink, max_depth,
                             (kFlags & rapidjson::kParseValidateEncodingFlag) != 0);
  populate([&] {
    return !reader.Parse<kFlags | rapidjson::kParseIterativeFlag>(is, limiter).IsError();
  });
  if (!reader.HasParseError()) return result;
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

template <unsigned kFlags>
ParseResult ParseWith(std::string_view text, Document* doc, size_t max_depth) {
  ParseResult result = Run<kFlags>(text, *doc, max_depth, [&](auto run) {
    auto generate = [&](Document&) { return run(); };
    doc->Populate(generate);  // Populate takes its generator by lvalue reference
  });
  if (!result.ok()) doc->SetNull();
  return result;
}

template <unsigned kFlags>
ParseResult ScanWith(std::string_view text, RoutingFields* fields, size_t max_depth) {
  RoutingScanner scanner(fields);
  return Run<kFlags>(text, scanner, max_depth, [](auto run) { run(); });
}

// The flags are template arguments: one instantiation per combination used.
template <template <unsigned> class Fn, class Out>
ParseResult Dispatch(std::string_view text, Out* out, const ParseOptions& options) {
  using rapidjson::kParseCommentsFlag;
  using rapidjson::kParseDefaultFlags;
  using rapidjson::kParseTrailingCommasFlag;
  using rapidjson::kParseValidateEncodingFlag;
  constexpr unsigned kLenient = kParseCommentsFlag | kParseTrailingCommasFlag;
  constexpr unsigned kUtf8 = kParseValidateEncodingFlag;
  const size_t d = options.max_depth;
  const unsigned key = (options.lenient ? 1u : 0u) | (options.validate_utf8 ? 2u : 0u);
  switch (key) {
    case 0:
      return Fn<kParseDefaultFlags>::Call(text, out, d);
    case 1:
      return Fn<kLenient>::Call(text, out, d);
    case 2:
      return Fn<kUtf8>::Call(text, out, d);
    default:
      return Fn<kLenient | kUtf8>::Call(text, out, d);
  }
}

template <unsigned kFlags>
struct ParseFn {
  static ParseResult Call(std::string_view t, Document* d, size_t depth) {
    return ParseWith<kFlags>(t, d, depth);
  }
};

template <unsigned kFlags>
struct ScanFn {
  static ParseResult Call(std::string_view t, RoutingFields* f, size_t depth) {
    return ScanWith<kFlags>(t, f, depth);
  }
};

ParseResult TooLarge(const ParseOptions& options) {
  ParseResult r;
  r.failure = ParseFailure::kTooLarge;
  r.message = "JSON text larger than " + std::to_string(options.max_bytes) + " bytes";
  return r;
}

}  // namespace

ParseResult Parse(std::string_view text, rapidjson::Document* doc, const ParseOptions& options) {
  doc->SetNull();
  if (text.size() > options.max_bytes) return TooLarge(options);
  return Dispatch<ParseFn>(text, doc, options);
}

ParseResult ScanRoutingFields(std::string_view text, RoutingFields* fields,
                              const ParseOptions& options) {
  *fields = RoutingFields{};
  if (text.size() > options.max_bytes) return TooLarge(options);
  ParseResult result = Dispatch<ScanFn>(text, fields, options);
  if (!result.ok()) *fields = RoutingFields{};
  return result;
}

}  // namespace tg::json
