#include "tg/common/json_util.h"

#include <google/protobuf/util/json_util.h>
#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

namespace tg::json {

void AppendQuoted(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out += '"';
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
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
      if (c == '\\') ++i;
      else if (c == '"') in_string = false;
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
  constexpr unsigned kFlags = rapidjson::kParseCommentsFlag | rapidjson::kParseTrailingCommasFlag |
                              rapidjson::kParseFullPrecisionFlag;
  doc.Parse<kFlags>(cleaned.data(), cleaned.size());
  if (doc.HasParseError()) {
    *error = std::string("malformed JSON at offset ") + std::to_string(doc.GetErrorOffset()) + ": " +
             rapidjson::GetParseError_En(doc.GetParseError());
    return false;
  }
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> writer(buf);
  doc.Accept(writer);
  out->assign(buf.GetString(), buf.GetSize());
  return true;
}

bool ParseProto(std::string_view json, google::protobuf::Message* msg, std::string* error) {
  std::string strict;
  if (!NormalizeLenient(json, &strict, error)) return false;
  if (strict.empty() || strict.front() != '{') {
    *error = "request body must be a JSON object";
    return false;
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
