#include "tg/adapter/translate/json.h"

#include <rapidjson/prettywriter.h>

#include <cmath>

namespace tg::adapter::translate::json {

bool Parse(std::string_view text, Document* doc, std::string* error) {
  ::tg::json::ParseOptions options;
  options.lenient = true;
  ::tg::json::ParseResult r = ::tg::json::Parse(text, doc, options);
  if (!r.ok() && error != nullptr) *error = std::move(r.message);
  return r.ok();
}

bool ParseStrict(std::string_view text, Document* doc, ::tg::json::ParseResult* result) {
  ::tg::json::ParseResult r = ::tg::json::Parse(text, doc);
  const bool ok = r.ok();
  if (result != nullptr) *result = std::move(r);
  return ok;
}

std::string RefusedBeyondSyntax(const ::tg::json::ParseResult& result) {
  using ::tg::json::ParseFailure;
  if (result.failure == ParseFailure::kNone || result.failure == ParseFailure::kSyntax) return {};
  return "provider JSON refused: " + result.message;
}

const Value* Find(const Value& obj, std::string_view key) {
  if (!obj.IsObject()) return nullptr;
  auto it = obj.FindMember(Ref(key));
  return it == obj.MemberEnd() ? nullptr : &it->value;
}

Value* FindMutable(Value& obj, std::string_view key) {
  if (!obj.IsObject()) return nullptr;
  auto it = obj.FindMember(Ref(key));
  return it == obj.MemberEnd() ? nullptr : &it->value;
}

std::string_view AsString(const Value* v) {
  if (v == nullptr || !v->IsString()) return {};
  return std::string_view(v->GetString(), v->GetStringLength());
}

int64_t GetInt(const Value& obj, std::string_view key, int64_t fallback) {
  const Value* v = Find(obj, key);
  if (v == nullptr) return fallback;
  if (v->IsInt64()) return v->GetInt64();
  if (v->IsUint64()) return static_cast<int64_t>(v->GetUint64());
  if (v->IsDouble()) {
    double d = v->GetDouble();
    // Outside int64's range the cast would be undefined (a client's
    // "max_tokens": 1e300): such a value is as unusable as a fraction.
    constexpr double kTwoTo63 = 9223372036854775808.0;
    if (std::isfinite(d) && d == std::floor(d) && d >= -kTwoTo63 && d < kTwoTo63) {
      return static_cast<int64_t>(d);
    }
  }
  return fallback;
}

bool GetBool(const Value& obj, std::string_view key, bool fallback) {
  const Value* v = Find(obj, key);
  return v != nullptr && v->IsBool() ? v->GetBool() : fallback;
}

const Value* GetArray(const Value& obj, std::string_view key) {
  const Value* v = Find(obj, key);
  return v != nullptr && v->IsArray() ? v : nullptr;
}

const Value* GetObject(const Value& obj, std::string_view key) {
  const Value* v = Find(obj, key);
  return v != nullptr && v->IsObject() ? v : nullptr;
}

void Set(Value& obj, std::string_view key, Value value, Allocator& a) {
  if (Value* existing = FindMutable(obj, key)) {
    *existing = std::move(value);
    return;
  }
  obj.AddMember(Str(key, a), value, a);
}

std::string Write(const Value& v) {
  rapidjson::StringBuffer buf;
  Writer w(buf);
  v.Accept(w);
  return std::string(buf.GetString(), buf.GetSize());
}

std::string WritePretty(const Value& v) {
  rapidjson::StringBuffer buf;
  rapidjson::PrettyWriter<rapidjson::StringBuffer> w(buf);
  w.SetIndent(' ', 2);
  v.Accept(w);
  return std::string(buf.GetString(), buf.GetSize());
}

std::string ContentText(const Value* content, std::string_view separator) {
  if (content == nullptr) return {};
  if (content->IsString()) return std::string(AsString(content));
  std::string out;
  if (!content->IsArray()) return out;
  bool first = true;
  for (const Value& part : content->GetArray()) {
    const Value* text = Find(part, "text");
    if (text == nullptr || !text->IsString()) continue;
    if (!first) out.append(separator);
    out.append(AsString(text));
    first = false;
  }
  return out;
}

}  // namespace tg::adapter::translate::json
