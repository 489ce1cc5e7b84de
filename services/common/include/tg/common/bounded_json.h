#pragma once

// The one JSON parser of the gateway for bytes it does not control (client
// bodies, provider answers, stream events, admin bodies, IMDS): RapidJSON's
// iterative (non-recursive) parser behind a handler that refuses nesting
// deeper than a limit, with a size bound and UTF-8 validation. Nothing that
// walks a parsed document recursively (translators, writers, protobuf's JSON
// mapping) then meets more than `max_depth` levels.

#include <rapidjson/document.h>

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "tg/common/input_limits.h"

namespace tg::json {

struct ParseOptions {
  // Arrays and objects nested deeper than this are refused (a scalar or an
  // empty container at the top is depth 0 or 1).
  size_t max_depth = limits::kMaxJsonDepth;
  // Texts longer than this are refused before parsing.
  size_t max_bytes = limits::kMaxJsonBytes;
  // Comments (`//`, `/* */`) and trailing commas, for bodies users paste.
  bool lenient = false;
  // Strings must be valid UTF-8 (protobuf string fields require it).
  bool validate_utf8 = true;
  // No full-precision option: RapidJSON 1.1.0's full-precision strtod reads
  // out of bounds on some number literals (GetCachedPower10, found by
  // fuzz/admin_json); the default path rounds to within 1 ULP.
};

enum class ParseFailure {
  kNone = 0,
  kSyntax,    // not JSON
  kTooDeep,   // nesting above max_depth
  kTooLarge,  // text above max_bytes
  kEncoding,  // a string is not valid UTF-8
};

struct ParseResult {
  ParseFailure failure = ParseFailure::kNone;
  size_t offset = 0;    // where the parse stopped (kSyntax, kTooDeep, kEncoding)
  std::string message;  // "JSON nested deeper than 128 levels", "malformed JSON at offset 3: …"

  bool ok() const { return failure == ParseFailure::kNone; }
  explicit operator bool() const { return ok(); }
};

// Parses `text` into `doc` (its previous value is discarded; on failure it is
// null). Never recurses per nesting level, never aborts, whatever the input.
ParseResult Parse(std::string_view text, rapidjson::Document* doc,
                  const ParseOptions& options = {});

// What the edge routes a chat body on: the top-level "model" and "stream".
struct RoutingFields {
  bool object = false;               // the text is a JSON object
  std::optional<std::string> model;  // the first top-level "model", when it is a string
  std::optional<bool> stream;        // the first top-level "stream", when it is a boolean
};

// The same pass and the same bounds, errors and messages as Parse, but no
// document: the body is checked whole (syntax, depth, size, UTF-8) and only
// the routing fields are kept. As Parse + FindMember would read them: the
// first member of each name counts, whatever its type; nested ones never do.
ParseResult ScanRoutingFields(std::string_view text, RoutingFields* fields,
                              const ParseOptions& options = {});

}  // namespace tg::json
