#pragma once

// Base64 (RFC 4648), written once: crypto's Base64* (keys, JWTs, SigV4) and
// the adapter's translation layer (embeddings as base64 float32) use it. No
// dependencies, so it lives in tg_json with the other encodings.

#include <optional>
#include <string>
#include <string_view>

namespace tg::base64 {

std::string Encode(std::string_view data);  // standard alphabet, padded
std::optional<std::string> Decode(std::string_view b64);
// RFC 4648 §5 alphabet, no padding.
std::string UrlEncode(std::string_view data);
std::optional<std::string> UrlDecode(std::string_view b64);

}  // namespace tg::base64
