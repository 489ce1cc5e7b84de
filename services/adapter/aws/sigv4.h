#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tg::adapter::aws {

// AWS Signature Version 4 (header form), as Bedrock Runtime requires it.
// Pure: the time is a parameter and nothing here performs I/O, so the same
// code signs outgoing requests (tg-adapter) and verifies them (the fake
// Bedrock in tests/fakes).

struct Credentials {
  std::string access_key_id;
  std::string secret_access_key;
  std::string session_token;  // temporary (STS) credentials only; signed as X-Amz-Security-Token
};

using HeaderList = std::vector<std::pair<std::string, std::string>>;

// A request as it will go on the wire.
struct SigningRequest {
  std::string method;  // "POST"
  // The path exactly as sent, already percent-encoded once:
  // "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse".
  std::string path;
  std::string query;  // the query as sent, without '?'; "" when none
  // Every header that will be sent and signed; it must contain Host. Names
  // are case-insensitive; a repeated name is signed as "a,b" in order.
  HeaderList headers;
  std::string_view body;  // the exact body bytes
};

struct SigV4Options {
  std::string region;   // "us-east-1"
  std::string service;  // signing name: "bedrock" for Bedrock Runtime
  // Every service but S3 percent-encodes the (already encoded) path again
  // for the canonical URI: "%3A" signs as "%253A".
  bool double_encode_path = true;
  // Every service but S3 removes "." / ".." segments and empty segments.
  bool normalize_path = true;
  // Also send and sign x-amz-content-sha256 (S3 wants it; Bedrock accepts it).
  bool sign_content_sha256 = false;
};

struct SigV4Signature {
  // Headers to add to the request before sending it, in this order:
  // X-Amz-Date, [X-Amz-Security-Token], [X-Amz-Content-Sha256], Authorization.
  HeaderList headers;
  std::string authorization;
  std::string signature;       // lower-case hex
  std::string signed_headers;  // "content-type;host;x-amz-date"
  // Intermediate texts (no secret in them), for tests and debugging.
  std::string canonical_request;
  std::string string_to_sign;
};

// Signs `request` at `now`. Any X-Amz-Date / X-Amz-Security-Token /
// Authorization already in request.headers is ignored: the result's headers
// replace them.
SigV4Signature SignV4(const SigningRequest& request, const Credentials& credentials,
                      const SigV4Options& options, std::chrono::system_clock::time_point now);

// Checks the Authorization header of a received request (the fake Bedrock).
struct SigV4Verification {
  bool ok = false;
  // AWS's exception name when !ok: MissingAuthenticationTokenException,
  // IncompleteSignatureException, UnrecognizedClientException,
  // InvalidSignatureException.
  std::string error_type;
  std::string message;  // AWS's wording; never contains a secret
};

// `request.headers` are all the headers received. `now`, when given, also
// checks that X-Amz-Date is within `max_skew` of it.
SigV4Verification VerifySigV4(const SigningRequest& request, const Credentials& expected,
                              const SigV4Options& options,
                              const std::chrono::system_clock::time_point* now = nullptr,
                              std::chrono::seconds max_skew = std::chrono::minutes(15));

// Building blocks, exposed for tests and for callers that build URLs.

// "20150830T123600Z" (UTC).
std::string FormatAmzDate(std::chrono::system_clock::time_point t);
// RFC 3986 encoding of everything but A-Z a-z 0-9 - . _ ~ (and '/' when
// keep_slash), upper-case hex: how a model id becomes a path segment
// (UriEncode("a.b-v1:0", false) == "a.b-v1%3A0").
std::string UriEncode(std::string_view s, bool keep_slash);
std::string CanonicalUri(std::string_view wire_path, const SigV4Options& options);
// Pairs decoded, re-encoded, sorted by name then value: "b=2&a=1" -> "a=1&b=2".
std::string CanonicalQuery(std::string_view wire_query);
// kSigning = HMAC chain over "AWS4"+secret, date, region, service, "aws4_request" (raw bytes).
std::string SigningKey(std::string_view secret_access_key, std::string_view yyyymmdd,
                       std::string_view region, std::string_view service);

}  // namespace tg::adapter::aws
