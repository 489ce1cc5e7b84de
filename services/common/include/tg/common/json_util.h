#pragma once

#include <google/protobuf/message.h>

#include <string>
#include <string_view>

namespace tg::json {

// Appends `s` as a quoted, escaped JSON string.
void AppendQuoted(std::string& out, std::string_view s);

// Turns a request body into strict JSON. The seeds' example bodies are what
// users paste, and they carry trailing commas (`{"name": "x",}`) and shell-style
// or JavaScript comments (`"weight": 60,  # 60% of traffic`); both are
// accepted here, outside strings. Returns false with a message on anything
// else that is not JSON.
bool NormalizeLenient(std::string_view in, std::string* out, std::string* error);

// Parses a (lenient) JSON object into `msg` using protobuf's JSON mapping.
// Unknown fields are rejected; the error names the field.
bool ParseProto(std::string_view json, google::protobuf::Message* msg, std::string* error);

// Prints `msg` with original (snake_case) field names.
std::string PrintProto(const google::protobuf::Message& msg);

}  // namespace tg::json
