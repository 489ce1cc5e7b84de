#pragma once

// The error bodies client SDKs parse, in one vocabulary for the whole
// gateway: tg-edge's own errors (no key, no route, balancer down) and the
// provider errors tg-adapter translates use the same type for a status.
// OpenAI Responses clients take OpenAI's shape.

#include <string>
#include <string_view>

namespace tg::client_error {

// OpenAI's `error.type` for a status: invalid_request_error (400, 404-less
// client errors, 413), authentication_error, permission_error,
// not_found_error, rate_limit_error, server_error (5xx).
std::string_view OpenAiType(int status);

// Anthropic's `error.type`: invalid_request_error, authentication_error,
// permission_error, not_found_error, request_too_large, rate_limit_error,
// timeout_error (504), overloaded_error (503, 529), api_error (other 5xx).
std::string_view AnthropicType(int status);

// {"error":{"message","type","param":null,"code"}}; an empty `code` is null.
std::string OpenAiBody(int status, std::string_view message, std::string_view code = "");

// {"type":"error","error":{"type","message"}}.
std::string AnthropicBody(int status, std::string_view message);

}  // namespace tg::client_error
