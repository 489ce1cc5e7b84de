#include "tg/common/json_util.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/util/json_util.h>
#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "tg/common/bounded_json.h"
#include "tg/common/utf8.h"

namespace tg::json {

void AppendQuoted(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  // Ill-formed UTF-8 (a raw request target, a provider's bytes) becomes
  // U+FFFD, so that whatever is quoted here is valid JSON and valid UTF-8.
  std::string sanitized;
  if (!utf8::IsValid(s)) {
    sanitized = utf8::Sanitize(s);
    s = sanitized;
  }
  out += '"';
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20 || c == 0x7f) {
          out += "\\u00";
          out += kHex[c >> 4];
          out += kHex[c & 0xf];
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += '"';
}

namespace {

// Replaces `# ...` comments outside strings with spaces (offsets stay valid
// for error messages). `//` and `/* */` are left to RapidJSON.
std::string StripHashComments(std::string_view in) {
  std::string out(in);
  bool in_string = false;
  for (size_t i = 0; i < out.size(); ++i) {
    char c = out[i];
    if (in_string) {
      if (c == '\\')
        ++i;
      else if (c == '"')
        in_string = false;
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '#') {
      while (i < out.size() && out[i] != '\n') out[i++] = ' ';
    }
  }
  return out;
}

}  // namespace

bool NormalizeLenient(std::string_view in, std::string* out, std::string* error) {
  std::string cleaned = StripHashComments(in);
  rapidjson::Document doc;
  ParseOptions options;
  options.lenient = true;
  ParseResult parsed = Parse(cleaned, &doc, options);
  if (!parsed.ok()) {
    *error = parsed.message;
    return false;
  }
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> writer(buf);
  doc.Accept(writer);
  out->assign(buf.GetString(), buf.GetSize());
  return true;
}

namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;

bool CheckMessage(const rapidjson::Value& v, const Descriptor* d, const std::string& path,
                  std::string* error);

std::string Join(const std::string& path, const std::string& name) {
  return path.empty() ? name : path + "." + name;
}

// One value of `field` (an element when the field is repeated).
bool CheckValue(const rapidjson::Value& v, const FieldDescriptor* f, const std::string& path,
                std::string* error) {
  auto fail = [&](const char* what) {
    *error = path + " must be " + what;
    return false;
  };
  if (v.IsNull()) return true;  // JSON null means "unset" in the protobuf mapping
  switch (f->cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT32:
    case FieldDescriptor::CPPTYPE_UINT32:
      return v.IsInt() || v.IsUint() ? true : fail("an integer");
    case FieldDescriptor::CPPTYPE_INT64:
    case FieldDescriptor::CPPTYPE_UINT64:
      // The mapping writes 64-bit integers as strings; accept both forms.
      return v.IsInt64() || v.IsUint64() || v.IsString() ? true : fail("an integer");
    case FieldDescriptor::CPPTYPE_DOUBLE:
    case FieldDescriptor::CPPTYPE_FLOAT:
      return v.IsNumber() ? true : fail("a number");
    case FieldDescriptor::CPPTYPE_BOOL:
      return v.IsBool() ? true : fail("true or false");
    case FieldDescriptor::CPPTYPE_STRING:
      return v.IsString() ? true : fail("a string");
    case FieldDescriptor::CPPTYPE_ENUM:
      return v.IsString() || v.IsInt() ? true : fail("a string");
    case FieldDescriptor::CPPTYPE_MESSAGE: {
      const std::string& type = f->message_type()->full_name();
      if (type == "google.protobuf.Timestamp" || type == "google.protobuf.Duration") {
        return v.IsString() ? true : fail("an RFC 3339 string");
      }
      if (type == "google.protobuf.Struct") return v.IsObject() ? true : fail("an object");
      if (type == "google.protobuf.Value") return true;
      if (type == "google.protobuf.ListValue") return v.IsArray() ? true : fail("an array");
      return CheckMessage(v, f->message_type(), path, error);
    }
  }
  return true;
}

// protobuf's JSON parser is lenient where an API must not be ("yes" for a
// bool, "60" for an int32, a lone string for a list): this walk rejects every
// JSON type that is not the field's own, naming the field.
bool CheckMessage(const rapidjson::Value& v, const Descriptor* d, const std::string& path,
                  std::string* error) {
  if (!v.IsObject()) {
    *error = (path.empty() ? std::string("request body") : path) + " must be an object";
    return false;
  }
  for (auto m = v.MemberBegin(); m != v.MemberEnd(); ++m) {
    std::string name(m->name.GetString(), m->name.GetStringLength());
    const FieldDescriptor* f = d->FindFieldByName(name);
    if (f == nullptr) {
      for (int i = 0; i < d->field_count() && f == nullptr; ++i) {
        if (d->field(i)->json_name() == name) f = d->field(i);
      }
    }
    std::string field_path = Join(path, name);
    if (f == nullptr) {
      *error = "unknown field \"" + field_path + "\"";
      return false;
    }
    const rapidjson::Value& value = m->value;
    if (value.IsNull()) continue;
    if (f->is_map()) {
      if (!value.IsObject()) {
        *error = field_path + " must be an object";
        return false;
      }
      const FieldDescriptor* vf = f->message_type()->FindFieldByName("value");
      for (auto e = value.MemberBegin(); e != value.MemberEnd(); ++e) {
        std::string key(e->name.GetString(), e->name.GetStringLength());
        if (!CheckValue(e->value, vf, field_path + "." + key, error)) return false;
      }
    } else if (f->is_repeated()) {
      if (!value.IsArray()) {
        *error = field_path + " must be an array";
        return false;
      }
      for (rapidjson::SizeType i = 0; i < value.Size(); ++i) {
        if (!CheckValue(value[i], f, field_path + "[" + std::to_string(i) + "]", error))
          return false;
      }
    } else if (!CheckValue(value, f, field_path, error)) {
      return false;
    }
  }
  return true;
}

}  // namespace

bool ParseProto(std::string_view json, google::protobuf::Message* msg, std::string* error) {
  std::string strict;
  if (!NormalizeLenient(json, &strict, error)) return false;
  if (strict.empty() || strict.front() != '{') {
    *error = "request body must be a JSON object";
    return false;
  }
  {
    rapidjson::Document doc;
    ParseOptions options;
    if (ParseResult parsed = Parse(strict, &doc, options); !parsed.ok()) {
      *error = parsed.message;
      return false;
    }
    if (!CheckMessage(doc, msg->GetDescriptor(), "", error)) return false;
  }
  google::protobuf::util::JsonParseOptions opts;
  opts.ignore_unknown_fields = false;
  auto status = google::protobuf::util::JsonStringToMessage(strict, msg, opts);
  if (!status.ok()) {
    *error = "invalid request body: " + std::string(status.message());
    return false;
  }
  return true;
}

std::string PrintProto(const google::protobuf::Message& msg) {
  google::protobuf::util::JsonPrintOptions opts;
  opts.preserve_proto_field_names = true;
  std::string out;
  (void)google::protobuf::util::MessageToJsonString(msg, &out, opts);
  return out;
}

}  // namespace tg::json
