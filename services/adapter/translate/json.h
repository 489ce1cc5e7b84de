#pragma once

// Small RapidJSON helpers shared by the codecs: tolerant getters (a missing or
// mistyped member reads as empty, which is what a translator wants for
// optional fields) and writers.

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "tg/common/bounded_json.h"

namespace tg::adapter::translate::json {

using Value = rapidjson::Value;
using Document = rapidjson::Document;
using Allocator = rapidjson::Document::AllocatorType;
using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

// Parses `text`, tolerating comments and trailing commas (users paste the
// documentation's bodies), within tg::json's bounds (depth, size, UTF-8).
// Returns false with a message otherwise.
bool Parse(std::string_view text, Document* doc, std::string* error);

// Parses strict JSON from a provider (an answer, a stream event, tool
// arguments) within the same bounds; `result` (optional) gets the reason.
bool ParseStrict(std::string_view text, Document* doc, ::tg::json::ParseResult* result = nullptr);

// The message for a provider's JSON that was refused for more than its
// syntax (depth, size, encoding), or "" for a plain syntax error, which each
// caller reports in its own words.
std::string RefusedBeyondSyntax(const ::tg::json::ParseResult& result);

// The member `key` of `obj`, or nullptr when obj is not an object or lacks it.
const Value* Find(const Value& obj, std::string_view key);
Value* FindMutable(Value& obj, std::string_view key);

// The string value of `v`, or "" when v is null or not a string.
std::string_view AsString(const Value* v);
inline std::string_view GetString(const Value& obj, std::string_view key) {
  return AsString(Find(obj, key));
}
// Integers (and integral doubles) of member `key`, else `fallback`.
int64_t GetInt(const Value& obj, std::string_view key, int64_t fallback = 0);
bool GetBool(const Value& obj, std::string_view key, bool fallback = false);
// The member if it is an array / object, else nullptr.
const Value* GetArray(const Value& obj, std::string_view key);
const Value* GetObject(const Value& obj, std::string_view key);
inline bool IsNonNull(const Value* v) { return v != nullptr && !v->IsNull(); }

// RapidJSON rejects a null pointer even for an empty string, and an empty
// std::string_view may have one.
inline const char* Data(std::string_view s) { return s.data() != nullptr ? s.data() : ""; }

// A string value holding a copy of `s`.
inline Value Str(std::string_view s, Allocator& a) {
  return Value(Data(s), static_cast<rapidjson::SizeType>(s.size()), a);
}
// A string value that references `s` without copying: `s` must outlive it.
inline Value Ref(std::string_view s) { return Value(rapidjson::StringRef(Data(s), s.size())); }
// Sets (replacing) the member `key` of object `obj`; the key is copied.
void Set(Value& obj, std::string_view key, Value value, Allocator& a);

// Compact JSON text of `v`.
std::string Write(const Value& v);
std::string WritePretty(const Value& v);

inline void WriteString(Writer& w, std::string_view s) {
  w.String(Data(s), static_cast<rapidjson::SizeType>(s.size()));
}
inline void WriteKey(Writer& w, std::string_view s) {
  w.Key(Data(s), static_cast<rapidjson::SizeType>(s.size()));
}

// RapidJSON's default pool chunk is 64 KiB: allocated and freed on every
// call, it makes malloc trim and re-fault those pages each request (most of
// the cost of a translation). Small chunks fit a typical request in one
// allocation malloc recycles; large strings still get a chunk of their size.
inline constexpr size_t kPoolChunkBytes = 8 << 10;

// A document whose first 4 KiB of values live inline (on the stack for a
// local), for building a provider body or parsing one answer or stream event.
// Parse() reuses the same memory for one small text after another (stream
// events), so a long stream does not grow. Not movable: the document points
// at its own allocator.
class ScratchDocument {
 public:
  ScratchDocument() : allocator_(buffer_, sizeof(buffer_), kPoolChunkBytes), doc_(&allocator_) {}
  ScratchDocument(const ScratchDocument&) = delete;
  ScratchDocument& operator=(const ScratchDocument&) = delete;

  // Parses `text` (strict JSON, bounded like ParseStrict), discarding the
  // previous value.
  bool Parse(std::string_view text, ::tg::json::ParseResult* result = nullptr) {
    doc_.SetNull();
    allocator_.Clear();
    return ParseStrict(text, &doc_, result);
  }
  Document& doc() { return doc_; }
  const Document& doc() const { return doc_; }

 private:
  char buffer_[4096];
  rapidjson::MemoryPoolAllocator<> allocator_;
  Document doc_;
};

// Text of the string/text-part content of an OpenAI message: a string as it
// is, an array of parts with their `text` members joined by `separator`.
std::string ContentText(const Value* content, std::string_view separator = "");

}  // namespace tg::adapter::translate::json
