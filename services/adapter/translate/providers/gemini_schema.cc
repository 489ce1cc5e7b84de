#include "tg/adapter/translate/providers/gemini_schema.h"

#include <string_view>

namespace tg::adapter::translate {

using json::Allocator;
using json::Value;

namespace {

constexpr int kMaxDepth = 16;

bool IsCopiedAsIs(std::string_view key) {
  static constexpr std::string_view kKeys[] = {
      "title",         "description",   "nullable",        "minItems", "maxItems",
      "minLength",     "maxLength",     "pattern",         "minimum",  "maximum",
      "minProperties", "maxProperties", "propertyOrdering"};
  for (std::string_view k : kKeys) {
    if (k == key) return true;
  }
  return false;
}

bool IsSupportedFormat(std::string_view f) {
  return f == "date-time" || f == "enum" || f == "int32" || f == "int64" || f == "float" ||
         f == "double";
}

const Value* ResolveRef(std::string_view ref, const Value& root) {
  for (std::string_view prefix : {"#/$defs/", "#/definitions/"}) {
    if (ref.starts_with(prefix)) {
      const Value* defs = json::Find(root, prefix.substr(2, prefix.size() - 3));
      return defs != nullptr ? json::Find(*defs, ref.substr(prefix.size())) : nullptr;
    }
  }
  return nullptr;
}

Value Clean(const Value& schema, const Value& root, Allocator& a, int depth) {
  Value out(rapidjson::kObjectType);
  if (!schema.IsObject() || depth > kMaxDepth) return out;
  if (const Value* ref = json::Find(schema, "$ref"); ref != nullptr && ref->IsString()) {
    const Value* target = ResolveRef(json::AsString(ref), root);
    if (target != nullptr) {
      out = Clean(*target, root, a, depth + 1);
      if (const Value* d = json::Find(schema, "description"); d && d->IsString()) {
        json::Set(out, "description", Value(*d, a), a);
      }
    }
    return out;
  }
  const Value* properties = json::GetObject(schema, "properties");
  for (const auto& m : schema.GetObject()) {
    std::string_view key(m.name.GetString(), m.name.GetStringLength());
    const Value& v = m.value;
    if (key == "type") {
      if (v.IsString()) {
        out.AddMember("type", Value(v, a), a);
      } else if (v.IsArray()) {
        // ["string","null"]: Gemini has one type plus `nullable`.
        bool nullable = false;
        const Value* first = nullptr;
        for (const Value& t : v.GetArray()) {
          if (json::AsString(&t) == "null") {
            nullable = true;
          } else if (first == nullptr && t.IsString()) {
            first = &t;
          }
        }
        if (first != nullptr) out.AddMember("type", Value(*first, a), a);
        if (nullable) out.AddMember("nullable", true, a);
      }
    } else if (key == "format") {
      if (IsSupportedFormat(json::AsString(&v))) out.AddMember("format", Value(v, a), a);
    } else if (key == "enum" || key == "const") {
      Value values(rapidjson::kArrayType);
      if (key == "const" && v.IsString()) values.PushBack(Value(v, a), a);
      if (key == "enum" && v.IsArray()) {
        for (const Value& e : v.GetArray()) {
          if (e.IsString()) values.PushBack(Value(e, a), a);
        }
      }
      if (!values.Empty() && json::Find(out, "enum") == nullptr) {
        out.AddMember("enum", values, a);
        if (json::Find(schema, "type") == nullptr) out.AddMember("type", "string", a);
      }
    } else if (key == "properties" && v.IsObject()) {
      Value props(rapidjson::kObjectType);
      for (const auto& p : v.GetObject()) {
        props.AddMember(Value(p.name, a), Clean(p.value, root, a, depth + 1), a);
      }
      out.AddMember("properties", props, a);
    } else if (key == "required" && v.IsArray()) {
      Value req(rapidjson::kArrayType);
      for (const Value& r : v.GetArray()) {
        if (properties != nullptr && json::Find(*properties, json::AsString(&r)) != nullptr) {
          req.PushBack(Value(r, a), a);
        }
      }
      if (!req.Empty()) out.AddMember("required", req, a);
    } else if (key == "items") {
      const Value* item = v.IsArray() && !v.Empty() ? &v[0] : &v;  // tuples: the first shape
      out.AddMember("items", Clean(*item, root, a, depth + 1), a);
    } else if ((key == "anyOf" || key == "oneOf") && v.IsArray()) {
      Value any(rapidjson::kArrayType);
      for (const Value& s : v.GetArray()) any.PushBack(Clean(s, root, a, depth + 1), a);
      if (!any.Empty() && json::Find(out, "anyOf") == nullptr) out.AddMember("anyOf", any, a);
    } else if (IsCopiedAsIs(key)) {
      out.AddMember(Value(m.name, a), Value(v, a), a);
    }
    // Everything else ($schema, $defs, additionalProperties, default,
    // examples, allOf, not, if/then/else, patternProperties, strict, …) is
    // dropped: Gemini rejects it.
  }
  return out;
}

}  // namespace

Value CleanGeminiSchema(const Value& schema, const Value& root, Allocator& a) {
  return Clean(schema, root, a, 0);
}

}  // namespace tg::adapter::translate
