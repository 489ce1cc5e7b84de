#pragma once

#include "tg/adapter/translate/json.h"

namespace tg::adapter::translate {

// JSON Schema (as OpenAI tools carry it) → the OpenAPI subset Gemini's
// functionDeclarations.parameters accepts. Gemini answers 400 to keywords
// outside it ($schema, additionalProperties, const, $ref, oneOf, …), so only
// the supported keywords are kept:
//   type (an array like ["string","null"] becomes type + nullable), format
//   (only date-time, enum, int32, int64, float, double), title, description,
//   nullable, enum (strings only), properties, required (only names in
//   properties), items, anyOf (oneOf becomes anyOf), minItems, maxItems,
//   minLength, maxLength, pattern, minimum, maximum, minProperties,
//   maxProperties, propertyOrdering;
//   const: "x" becomes enum: ["x"]; local $ref (#/$defs/…, #/definitions/…)
//   are inlined, to a bounded depth (recursive schemas are cut off there).
// `root` is the schema $refs resolve against (the whole parameters object).
json::Value CleanGeminiSchema(const json::Value& schema, const json::Value& root,
                              json::Allocator& a);

}  // namespace tg::adapter::translate
