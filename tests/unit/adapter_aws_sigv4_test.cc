// SigV4 against AWS's published test-suite vectors (aws-sig-v4-test-suite:
// AKIDEXAMPLE, us-east-1, service "service", 20150830T123600Z, host
// example.amazonaws.com), plus Bedrock's double-encoded model path.

#include <gtest/gtest.h>

#include <chrono>
#include <ctime>

#include "tg/adapter/aws/sigv4.h"
#include "tg/common/crypto.h"

namespace tg::adapter::aws {
namespace {

using std::chrono::system_clock;

constexpr char kAkid[] = "AKIDEXAMPLE";
constexpr char kSecret[] = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
constexpr char kEmptyHash[] = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

system_clock::time_point SuiteTime() {
  std::tm tm{};
  tm.tm_year = 2015 - 1900;
  tm.tm_mon = 7;
  tm.tm_mday = 30;
  tm.tm_hour = 12;
  tm.tm_min = 36;
  return system_clock::from_time_t(timegm(&tm));
}

SigV4Options SuiteOptions() {
  SigV4Options o;
  o.region = "us-east-1";
  o.service = "service";
  return o;
}

Credentials SuiteCredentials(std::string token = "") { return {kAkid, kSecret, std::move(token)}; }

SigningRequest SuiteRequest(std::string method, std::string path, std::string query = "") {
  SigningRequest r;
  r.method = std::move(method);
  r.path = std::move(path);
  r.query = std::move(query);
  r.headers = {{"Host", "example.amazonaws.com"}};
  return r;
}

std::string ExpectedAuthorization(const std::string& signed_headers, const std::string& sig) {
  return "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
         "SignedHeaders=" +
         signed_headers + ", Signature=" + sig;
}

TEST(SigV4Test, FormatsAmzDate) { EXPECT_EQ(FormatAmzDate(SuiteTime()), "20150830T123600Z"); }

TEST(SigV4Test, GetVanilla) {
  SigV4Signature s =
      SignV4(SuiteRequest("GET", "/"), SuiteCredentials(), SuiteOptions(), SuiteTime());
  EXPECT_EQ(s.canonical_request,
            std::string("GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\n"
                        "host;x-amz-date\n") +
                kEmptyHash);
  EXPECT_EQ(s.string_to_sign,
            "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n"
            "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63");
  EXPECT_EQ(s.signature, "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
  EXPECT_EQ(
      s.authorization,
      ExpectedAuthorization("host;x-amz-date",
                            "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"));
  ASSERT_EQ(s.headers.size(), 2u);
  EXPECT_EQ(s.headers[0],
            std::make_pair(std::string("X-Amz-Date"), std::string("20150830T123600Z")));
  EXPECT_EQ(s.headers[1].first, "Authorization");
}

TEST(SigV4Test, PostVanilla) {
  SigV4Signature s =
      SignV4(SuiteRequest("POST", "/"), SuiteCredentials(), SuiteOptions(), SuiteTime());
  EXPECT_EQ(s.signature, "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b");
}

TEST(SigV4Test, GetVanillaQueryOrderKeyCase) {
  SigV4Signature s = SignV4(SuiteRequest("GET", "/", "Param2=value2&Param1=value1"),
                            SuiteCredentials(), SuiteOptions(), SuiteTime());
  EXPECT_EQ(s.canonical_request.substr(0, s.canonical_request.find("\nhost")),
            "GET\n/\nParam1=value1&Param2=value2");
  EXPECT_TRUE(s.string_to_sign.ends_with(
      "816cd5b414d056048ba4f7c5386d6e0533120fb1fcfa93762cf0fc39e2cf19e0"));
  EXPECT_EQ(s.signature, "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500");
}

TEST(SigV4Test, GetVanillaQueryOrderValue) {
  SigV4Signature s = SignV4(SuiteRequest("GET", "/", "Param1=value2&Param1=value1"),
                            SuiteCredentials(), SuiteOptions(), SuiteTime());
  EXPECT_EQ(s.signature, "5772eed61e12b33fae39ee5e7012498b51d56abc0abb7c60486157bd471c4694");
}

TEST(SigV4Test, GetVanillaUtf8Query) {
  // The request line carries U+1234 as UTF-8; on the wire it is percent-encoded.
  SigV4Signature s = SignV4(SuiteRequest("GET", "/", "%E1%88%B4=bar"), SuiteCredentials(),
                            SuiteOptions(), SuiteTime());
  EXPECT_EQ(s.signature, "2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04");
}

TEST(SigV4Test, PostXWwwFormUrlencoded) {
  SigningRequest r = SuiteRequest("POST", "/");
  r.headers.emplace_back("Content-Type", "application/x-www-form-urlencoded");
  r.body = "Param1=value1";
  SigV4Signature s = SignV4(r, SuiteCredentials(), SuiteOptions(), SuiteTime());
  EXPECT_EQ(s.canonical_request,
            "POST\n/\n\ncontent-type:application/x-www-form-urlencoded\n"
            "host:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\n"
            "content-type;host;x-amz-date\n"
            "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e");
  EXPECT_TRUE(s.string_to_sign.ends_with(
      "42a5e5bb34198acb3e84da4f085bb7927f2bc277ca766e6d19c73c2154021281"));
  EXPECT_EQ(
      s.authorization,
      ExpectedAuthorization("content-type;host;x-amz-date",
                            "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a"));
}

TEST(SigV4Test, GetHeaderValueTrim) {
  SigningRequest r = SuiteRequest("GET", "/");
  r.headers.emplace_back("My-Header1", " value1");
  r.headers.emplace_back("My-Header2", "\"a   b   c\"");
  SigV4Signature s = SignV4(r, SuiteCredentials(), SuiteOptions(), SuiteTime());
  EXPECT_NE(s.canonical_request.find("my-header1:value1\nmy-header2:\"a b c\"\n"),
            std::string::npos);
  EXPECT_EQ(s.signed_headers, "host;my-header1;my-header2;x-amz-date");
  EXPECT_EQ(s.signature, "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736");
}

TEST(SigV4Test, RepeatedHeadersJoinInOrder) {
  SigningRequest r = SuiteRequest("GET", "/");
  for (const char* v : {"value2", "value2", "value1"}) r.headers.emplace_back("My-Header1", v);
  EXPECT_EQ(SignV4(r, SuiteCredentials(), SuiteOptions(), SuiteTime()).signature,
            "c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea");  // key-duplicate

  r = SuiteRequest("GET", "/");
  for (const char* v : {"value4", "value1", "value3", "value2"}) {
    r.headers.emplace_back("My-Header1", v);
  }
  EXPECT_EQ(SignV4(r, SuiteCredentials(), SuiteOptions(), SuiteTime()).signature,
            "08c7e5a9acfcfeb3ab6b2185e75ce8b1deb5e634ec47601a50643f830c755c01");  // value-order
}

TEST(SigV4Test, GetUnreserved) {
  SigV4Signature s = SignV4(
      SuiteRequest("GET", "/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"),
      SuiteCredentials(), SuiteOptions(), SuiteTime());
  EXPECT_EQ(s.signature, "07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f");
}

TEST(SigV4Test, GetSlashesNormalized) {
  SigV4Signature s =
      SignV4(SuiteRequest("GET", "//example//"), SuiteCredentials(), SuiteOptions(), SuiteTime());
  EXPECT_EQ(s.canonical_request.substr(0, 14), "GET\n/example/\n");
  EXPECT_EQ(s.signature, "9a624bd73a37c9a373b5312afbebe7a714a789de108f0bdfe846570885f57e84");
}

TEST(SigV4Test, SessionTokenIsSigned) {
  // get-vanilla-with-session-token (aws-c-auth's copy of the suite).
  SigV4Signature s =
      SignV4(SuiteRequest("GET", "/"),
             SuiteCredentials("6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267"),
             SuiteOptions(), SuiteTime());
  EXPECT_EQ(s.signed_headers, "host;x-amz-date;x-amz-security-token");
  EXPECT_EQ(s.signature, "07ec1639c89043aa0e3e2de82b96708f198cceab042d4a97044c66dd9f74e7f8");
  ASSERT_EQ(s.headers.size(), 3u);
  EXPECT_EQ(s.headers[1].first, "X-Amz-Security-Token");
}

TEST(SigV4Test, PostStsHeaderBefore) {
  const std::string token =
      "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSP"
      "fIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/"
      "kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7"
      "WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKmlzm"
      "8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA==";
  SigV4Signature s =
      SignV4(SuiteRequest("POST", "/"), SuiteCredentials(token), SuiteOptions(), SuiteTime());
  EXPECT_TRUE(s.string_to_sign.ends_with(
      "c237e1b440d4c63c32ca95b5b99481081cb7b13c7e40434868e71567c1a882f6"));
  EXPECT_EQ(s.signature, "85d96828115b5dc0cfc3bd16ad9e210dd772bbebba041836c64533a82be05ead");
}

TEST(SigV4Test, SigningKeyMatchesAwsDocumentation) {
  EXPECT_EQ(crypto::HexEncode(SigningKey(kSecret, "20150830", "us-east-1", "iam")),
            "c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9");
}

TEST(SigV4Test, CanonicalUriNormalizesAndDoubleEncodes) {
  SigV4Options o = SuiteOptions();
  EXPECT_EQ(CanonicalUri("", o), "/");
  EXPECT_EQ(CanonicalUri("/", o), "/");
  EXPECT_EQ(CanonicalUri("/./", o), "/");                       // get-slash-dot-slash
  EXPECT_EQ(CanonicalUri("/./example", o), "/example");         // get-slash-pointless-dot
  EXPECT_EQ(CanonicalUri("/example/..", o), "/");               // get-relative
  EXPECT_EQ(CanonicalUri("/example1/example2/../..", o), "/");  // get-relative-relative
  EXPECT_EQ(CanonicalUri("//example//", o), "/example/");       // get-slashes
  EXPECT_EQ(CanonicalUri("/example%20space/", o), "/example%2520space/");
  EXPECT_EQ(CanonicalUri("/a%2Fb", o), "/a%252Fb");  // an encoded slash stays in its segment

  o.double_encode_path = false;  // S3
  o.normalize_path = false;
  EXPECT_EQ(CanonicalUri("/example%20space/", o), "/example%20space/");
  EXPECT_EQ(CanonicalUri("//example//", o), "//example//");
}

TEST(SigV4Test, CanonicalQuery) {
  EXPECT_EQ(CanonicalQuery(""), "");
  EXPECT_EQ(CanonicalQuery("b&a=1"), "a=1&b=");
  EXPECT_EQ(CanonicalQuery("q=a+b"), "q=a%2Bb");  // a plus is a plus
  EXPECT_EQ(CanonicalQuery("q=a%20b"), "q=a%20b");
  EXPECT_EQ(CanonicalQuery("x=a.b&x=a%2Fb"), "x=a%2Fb&x=a.b");
  EXPECT_EQ(CanonicalQuery("api-version=2024-10-21&key=k"), "api-version=2024-10-21&key=k");
}

TEST(SigV4Test, UriEncodeModelId) {
  EXPECT_EQ(UriEncode("anthropic.claude-3-haiku-20240307-v1:0", false),
            "anthropic.claude-3-haiku-20240307-v1%3A0");
  EXPECT_EQ(UriEncode("arn:aws:bedrock:us-east-1:123:inference-profile/x", false),
            "arn%3Aaws%3Abedrock%3Aus-east-1%3A123%3Ainference-profile%2Fx");
  EXPECT_EQ(UriEncode("a b/c", true), "a%20b/c");
}

// Bedrock Converse: the model id's ':' is '%3A' in the URL and '%253A' in the
// canonical request. Expected signatures computed independently (Python
// hmac/hashlib, urllib.parse.quote of the wire path).
SigningRequest BedrockRequest() {
  SigningRequest r;
  r.method = "POST";
  r.path = "/model/" + UriEncode("anthropic.claude-3-haiku-20240307-v1:0", false) + "/converse";
  r.headers = {{"Host", "bedrock-runtime.us-east-1.amazonaws.com"},
               {"Content-Type", "application/json"}};
  r.body = R"({"messages":[{"role":"user","content":[{"text":"Hello"}]}]})";
  return r;
}

SigV4Options BedrockOptions() {
  SigV4Options o;
  o.region = "us-east-1";
  o.service = "bedrock";
  return o;
}

TEST(SigV4Test, BedrockConverseDoubleEncodesModelId) {
  SigningRequest r = BedrockRequest();
  EXPECT_EQ(r.path, "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse");
  SigV4Signature s = SignV4(r, SuiteCredentials(), BedrockOptions(), SuiteTime());
  EXPECT_TRUE(s.canonical_request.starts_with(
      "POST\n/model/anthropic.claude-3-haiku-20240307-v1%253A0/converse\n\n"));
  EXPECT_EQ(s.signed_headers, "content-type;host;x-amz-date");
  EXPECT_EQ(s.signature, "19f9ff5f31b96d4983cc87f7191e49e8c39475e434ea6b9d581028226bdc060c");
  EXPECT_NE(s.authorization.find("Credential=AKIDEXAMPLE/20150830/us-east-1/bedrock/aws4_request"),
            std::string::npos);

  SigV4Signature t =
      SignV4(r, SuiteCredentials("FwoGZXIvYXdzEXAMPLETOKEN"), BedrockOptions(), SuiteTime());
  EXPECT_EQ(t.signature, "96bf908c1076a76ea3f1a46a6e76f2eca6453235d28af927fb58fdd9c9a72db8");
}

TEST(SigV4Test, CallerDateAndAuthorizationHeadersAreReplaced) {
  SigningRequest r = BedrockRequest();
  r.headers.emplace_back("X-Amz-Date", "19990101T000000Z");
  r.headers.emplace_back("Authorization", "stale");
  r.headers.emplace_back("User-Agent", "tg-adapter");  // not signed
  EXPECT_EQ(SignV4(r, SuiteCredentials(), BedrockOptions(), SuiteTime()).signature,
            "19f9ff5f31b96d4983cc87f7191e49e8c39475e434ea6b9d581028226bdc060c");
}

TEST(SigV4Test, ContentSha256IsSignedWhenAsked) {
  SigV4Options o = BedrockOptions();
  o.sign_content_sha256 = true;
  SigV4Signature s = SignV4(BedrockRequest(), SuiteCredentials(), o, SuiteTime());
  EXPECT_EQ(s.signed_headers, "content-type;host;x-amz-content-sha256;x-amz-date");
  EXPECT_EQ(s.headers[1].first, "X-Amz-Content-Sha256");
}

// Verification, as the fake Bedrock does it.
SigningRequest Received(const SigningRequest& sent, const SigV4Signature& sig) {
  SigningRequest r = sent;
  for (const auto& h : sig.headers) r.headers.push_back(h);
  return r;
}

TEST(SigV4VerifyTest, AcceptsWhatSignV4Signs) {
  for (const std::string token : {"", "session-token"}) {
    SigningRequest sent = BedrockRequest();
    SigV4Signature sig = SignV4(sent, SuiteCredentials(token), BedrockOptions(), SuiteTime());
    auto now = SuiteTime() + std::chrono::minutes(3);
    SigV4Verification v =
        VerifySigV4(Received(sent, sig), SuiteCredentials(token), BedrockOptions(), &now);
    EXPECT_TRUE(v.ok) << v.error_type << ": " << v.message;
  }
}

TEST(SigV4VerifyTest, RejectsWrongSecretTamperingAndSkew) {
  SigningRequest sent = BedrockRequest();
  SigV4Signature sig = SignV4(sent, SuiteCredentials(), BedrockOptions(), SuiteTime());

  Credentials other = SuiteCredentials();
  other.secret_access_key = "another-secret";
  SigV4Verification v = VerifySigV4(Received(sent, sig), other, BedrockOptions());
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.error_type, "InvalidSignatureException");
  EXPECT_EQ(v.message.find("another-secret"), std::string::npos);

  SigningRequest tampered = Received(sent, sig);
  std::string body = R"({"messages":[{"role":"user","content":[{"text":"Hellp"}]}]})";
  tampered.body = body;
  EXPECT_EQ(VerifySigV4(tampered, SuiteCredentials(), BedrockOptions()).error_type,
            "InvalidSignatureException");

  // The same signature on a path whose ':' was not encoded (a client that
  // encoded only once) does not verify.
  tampered = Received(sent, sig);
  tampered.path = "/model/anthropic.claude-3-haiku-20240307-v1:0/converse";
  EXPECT_EQ(VerifySigV4(tampered, SuiteCredentials(), BedrockOptions()).error_type,
            "InvalidSignatureException");

  auto late = SuiteTime() + std::chrono::minutes(20);
  EXPECT_EQ(
      VerifySigV4(Received(sent, sig), SuiteCredentials(), BedrockOptions(), &late).error_type,
      "InvalidSignatureException");

  SigV4Options wrong_service = BedrockOptions();
  wrong_service.service = "s3";
  EXPECT_EQ(VerifySigV4(Received(sent, sig), SuiteCredentials(), wrong_service).error_type,
            "InvalidSignatureException");
}

TEST(SigV4VerifyTest, RejectsUnknownKeyTokenAndMissingAuthorization) {
  SigningRequest sent = BedrockRequest();
  SigV4Signature sig = SignV4(sent, SuiteCredentials(), BedrockOptions(), SuiteTime());

  Credentials other = SuiteCredentials();
  other.access_key_id = "AKIDOTHER";
  EXPECT_EQ(VerifySigV4(Received(sent, sig), other, BedrockOptions()).error_type,
            "UnrecognizedClientException");
  EXPECT_EQ(VerifySigV4(Received(sent, sig), SuiteCredentials("expected-token"), BedrockOptions())
                .error_type,
            "UnrecognizedClientException");
  EXPECT_EQ(VerifySigV4(sent, SuiteCredentials(), BedrockOptions()).error_type,
            "MissingAuthenticationTokenException");

  SigningRequest garbled = sent;
  garbled.headers.emplace_back("Authorization", "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE");
  EXPECT_EQ(VerifySigV4(garbled, SuiteCredentials(), BedrockOptions()).error_type,
            "IncompleteSignatureException");
}

}  // namespace
}  // namespace tg::adapter::aws
