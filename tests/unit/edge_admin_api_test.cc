// The admin handler without backends: authentication, routing, body errors
// and status mapping, all decided before (or without) a successful RPC.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <jwt.h>

#include <future>
#include <memory>

#include "edge_test_http.h"
#include "test_tls.h"
#include "tg/common/crypto.h"
#include "tg/common/jwt.h"
#include "tg/edge/admin_api.h"

namespace tg::edge {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr char kSecret[] = "unit-test-5b0f3c8e9a1d47e2b6c4f08a13d9e7c2";

std::string ValidToken() {
  return jwt::SignHs256(kSecret, "admin", std::chrono::system_clock::now(), std::chrono::hours(1));
}

std::string HeaderOf(const HttpResponse& r, std::string_view name) {
  for (const auto& [k, v] : r.headers) {
    if (k == name) return v;
  }
  return "";
}

// A token signed by libjwt with another HMAC algorithm and the right secret.
std::string Hs512Token() {
  jwt_t* j = nullptr;
  jwt_new(&j);
  jwt_add_grant(j, "sub", "admin");
  jwt_add_grant_int(j, "exp", std::time(nullptr) + 3600);
  jwt_set_alg(j, JWT_ALG_HS512, reinterpret_cast<const unsigned char*>(kSecret),
              sizeof(kSecret) - 1);
  char* s = jwt_encode_str(j);
  std::string out = s != nullptr ? s : "";
  free(s);
  jwt_free(j);
  return out;
}

std::string AlgNoneToken() {
  return crypto::Base64UrlEncode(R"({"alg":"none","typ":"JWT"})") + "." +
         crypto::Base64UrlEncode(R"({"sub":"admin","exp":4102444800})") + ".";
}

class EdgeAdminApiTest : public ::testing::Test {
 protected:
  EdgeAdminApiTest() {
    AdminApiOptions o;
    o.jwt_secret = kSecret;
    o.rpc_timeout = std::chrono::milliseconds(3000);
    // Nothing listens on port 1: calls that get that far fail with UNAVAILABLE.
    auto dead = tg::testing::TestChannel(1, kConfigIdentity);
    api_ = std::make_unique<AdminApi>(o, dead, dead, nullptr);
  }

  HttpResponse Call(const std::string& method, const std::string& path,
                    const std::string& body = "",
                    std::optional<std::string> authorization = std::nullopt) {
    HttpRequest r;
    r.method = method;
    r.target = path;
    r.path = path.substr(0, path.find('?'));
    r.body = body;
    r.headers.emplace_back("Authorization", authorization.value_or("Bearer " + ValidToken()));
    auto promise = std::make_shared<std::promise<HttpResponse>>();
    auto future = promise->get_future();
    api_->Handle(std::move(r), HttpResponder([promise](HttpResponse resp) {
                   promise->set_value(std::move(resp));
                 }));
    EXPECT_EQ(future.wait_for(std::chrono::seconds(10)), std::future_status::ready);
    return future.get();
  }

  HttpResponse CallNoAuth(const std::string& method, const std::string& path) {
    HttpRequest r;
    r.method = method;
    r.path = r.target = path;
    std::promise<HttpResponse> promise;
    api_->Handle(std::move(r), HttpResponder([&promise](HttpResponse resp) {
                   promise.set_value(std::move(resp));
                 }));
    return promise.get_future().get();  // answered inline: nothing reaches a backend
  }

  std::unique_ptr<AdminApi> api_;
};

// ---------------------------------------------------------------- JWT

TEST_F(EdgeAdminApiTest, MissingTokenIs401) {
  auto r = CallNoAuth("GET", "/api/v1/gateways");
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(r.body, R"({"error":"missing admin token"})");
  EXPECT_EQ(HeaderOf(r, "WWW-Authenticate"), "Bearer");
  EXPECT_EQ(HeaderOf(r, "Content-Type"), "application/json");
}

TEST_F(EdgeAdminApiTest, NonBearerOrEmptyTokenIsMissing) {
  for (const char* auth : {"", "Basic YWRtaW46YWRtaW4=", "Bearer", "Bearer   ", "Token abc"}) {
    auto r = Call("GET", "/api/v1/gateways", "", auth);
    EXPECT_EQ(r.status, 401) << auth;
    EXPECT_EQ(r.body, R"({"error":"missing admin token"})") << auth;
  }
}

TEST_F(EdgeAdminApiTest, MalformedToken) {
  for (const char* auth : {"Bearer abc", "Bearer a.b", "Bearer a.b.c.d", "Bearer !!.??.xx"}) {
    auto r = Call("GET", "/api/v1/gateways", "", auth);
    EXPECT_EQ(r.status, 401) << auth;
    EXPECT_EQ(r.body, R"({"error":"malformed admin token"})") << auth;
  }
}

TEST_F(EdgeAdminApiTest, BadSignature) {
  auto token = jwt::SignHs256("another-secret", "admin", std::chrono::system_clock::now(),
                              std::chrono::hours(1));
  auto r = Call("GET", "/api/v1/gateways", "", "Bearer " + token);
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(r.body, R"({"error":"invalid admin token signature"})");
}

TEST_F(EdgeAdminApiTest, TamperedPayloadFailsSignature) {
  auto token = ValidToken();
  auto first = token.find('.');
  auto second = token.find('.', first + 1);
  std::string forged = token.substr(0, first + 1) +
                       crypto::Base64UrlEncode(R"({"sub":"root","exp":4102444800})") +
                       token.substr(second);
  auto r = Call("GET", "/api/v1/gateways", "", "Bearer " + forged);
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(r.body, R"({"error":"invalid admin token signature"})");
}

TEST_F(EdgeAdminApiTest, AlgNoneIsRejected) {
  std::string token = AlgNoneToken();
  auto verdict = jwt::VerifyHs256(token, kSecret, std::chrono::system_clock::now());
  ASSERT_NE(verdict, jwt::Verdict::kOk);
  auto r = Call("GET", "/api/v1/gateways", "", "Bearer " + token);
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(r.body, "{\"error\":\"" + std::string(jwt::VerdictMessage(verdict)) + "\"}");
}

TEST_F(EdgeAdminApiTest, OtherAlgorithmIsRejected) {
  std::string token = Hs512Token();
  ASSERT_FALSE(token.empty());
  auto r = Call("GET", "/api/v1/gateways", "", "Bearer " + token);
  EXPECT_EQ(r.status, 401);
  EXPECT_THAT(r.body, StartsWith(R"({"error":")"));
  EXPECT_NE(r.body, R"({"error":"ok"})");
}

// Before: a token without `exp` never expired.
TEST_F(EdgeAdminApiTest, TokenWithoutExpiryIsRejected) {
  std::string unsigned_part = crypto::Base64UrlEncode(R"({"alg":"HS256","typ":"JWT"})") + "." +
                              crypto::Base64UrlEncode(R"({"sub":"admin","iat":1700000000})");
  std::string token =
      unsigned_part + "." + crypto::Base64UrlEncode(crypto::HmacSha256(kSecret, unsigned_part));
  auto r = Call("GET", "/api/v1/gateways", "", "Bearer " + token);
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(r.body, R"({"error":"admin token has no exp claim"})");
}

TEST_F(EdgeAdminApiTest, ExpiredToken) {
  auto token =
      jwt::SignHs256(kSecret, "admin", std::chrono::system_clock::now() - std::chrono::hours(2),
                     std::chrono::hours(1));
  auto r = Call("GET", "/api/v1/gateways", "", "Bearer " + token);
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(r.body, R"({"error":"admin token expired"})");
}

TEST_F(EdgeAdminApiTest, ValidTokenPassesAuthentication) {
  // Authenticated, then routed: an unknown path under /api is a 404, not a 401.
  auto r = Call("GET", "/api/v1/nothing");
  EXPECT_EQ(r.status, 404);
  // The scheme is case-insensitive.
  r = Call("GET", "/api/v1/nothing", "", "bearer " + ValidToken());
  EXPECT_EQ(r.status, 404);
}

TEST_F(EdgeAdminApiTest, TokenCheckedBeforeRouting) {
  EXPECT_EQ(CallNoAuth("GET", "/api/v1/nothing").status, 401);
  EXPECT_EQ(CallNoAuth("PATCH", "/api/v1/gateways").status, 401);
}

// ---------------------------------------------------------------- routing

TEST_F(EdgeAdminApiTest, UnknownPathIs404) {
  auto r = Call("GET", "/api/v1/gateways/g/widgets");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.body, R"({"error":"not found"})");
  EXPECT_EQ(CallNoAuth("GET", "/").status, 404);
  EXPECT_EQ(CallNoAuth("GET", "/metrics").status, 404);
}

TEST_F(EdgeAdminApiTest, WrongMethodIs405WithAllow) {
  auto r = Call("PUT", "/api/v1/gateways");
  EXPECT_EQ(r.status, 405);
  EXPECT_EQ(HeaderOf(r, "Allow"), "GET, POST");
  EXPECT_EQ(r.body, R"({"error":"method not allowed"})");

  r = Call("PUT", "/api/v1/gateways/g/keys/k", R"({"name":"x"})");
  EXPECT_EQ(r.status, 405);
  EXPECT_EQ(HeaderOf(r, "Allow"), "GET, DELETE");

  r = Call("PATCH", "/api/v1/gateways/g/upstreams/u/");
  EXPECT_EQ(r.status, 405);
  EXPECT_EQ(HeaderOf(r, "Allow"), "GET, PUT, DELETE");

  r = Call("POST", "/api/v1/gateways/g");
  EXPECT_EQ(r.status, 405);

  r = CallNoAuth("POST", "/healthz");
  EXPECT_EQ(r.status, 405);
  EXPECT_EQ(HeaderOf(r, "Allow"), "GET");
}

TEST_F(EdgeAdminApiTest, HealthzWithoutWatchIs503) {
  auto r = CallNoAuth("GET", "/healthz");
  EXPECT_EQ(r.status, 503);
  EXPECT_THAT(r.body, HasSubstr(R"("status":"unavailable")"));
}

// ---------------------------------------------------------------- bodies

TEST_F(EdgeAdminApiTest, MalformedJsonIs400) {
  auto r = Call("POST", "/api/v1/gateways", R"({"name": "x")");
  EXPECT_EQ(r.status, 400);
  EXPECT_THAT(r.body, HasSubstr("malformed JSON"));

  r = Call("POST", "/api/v1/gateways", "");
  EXPECT_EQ(r.status, 400);

  r = Call("POST", "/api/v1/gateways", "[1, 2]");
  EXPECT_EQ(r.status, 400);
  EXPECT_THAT(r.body, HasSubstr("JSON object"));
}

TEST_F(EdgeAdminApiTest, WrongTypeNamesTheField) {
  auto r = Call("POST", "/api/v1/gateways/g/upstreams",
                R"({"name": "u", "targets": [{"provider": "openai", "weight": "heavy"}]})");
  EXPECT_EQ(r.status, 400);
  EXPECT_THAT(r.body, HasSubstr("targets[0].weight"));

  r = Call("PUT", "/api/v1/gateways/g/upstreams/u",
           R"({"name": "u", "health_checks": {"threshold": true}})");
  EXPECT_EQ(r.status, 400);
  EXPECT_THAT(r.body, HasSubstr("health_checks.threshold"));

  r = Call("POST", "/api/v1/gateways/g/rules", R"({"path": "/v1", "methods": [5]})");
  EXPECT_EQ(r.status, 400);
  EXPECT_THAT(r.body, HasSubstr("methods"));

  r = Call("POST", "/api/v1/gateways/g/rules", R"({"path": "/v1", "methods": {}})");
  EXPECT_EQ(r.status, 400);
  EXPECT_THAT(r.body, HasSubstr("methods"));

  r = Call("POST", "/api/v1/gateways", R"({"name": 42})");
  EXPECT_EQ(r.status, 400);
  EXPECT_THAT(r.body, HasSubstr("name"));

  r = Call("POST", "/api/v1/gateways/g/keys", R"({"name": "k", "expires_at": "tomorrow"})");
  EXPECT_EQ(r.status, 400);
  EXPECT_THAT(r.body, HasSubstr("expires_at"));
}

TEST_F(EdgeAdminApiTest, UnknownFieldNamesTheField) {
  auto r = Call("POST", "/api/v1/gateways/g/services", R"({"name": "s", "colour": "red"})");
  EXPECT_EQ(r.status, 400);
  EXPECT_THAT(r.body, HasSubstr("colour"));

  r = Call("POST", "/api/v1/gateways/g/upstreams",
           R"({"name": "u", "targets": [{"provider": "openai", "wieght": 5}]})");
  EXPECT_EQ(r.status, 400);
  EXPECT_THAT(r.body, HasSubstr("wieght"));
}

// ---------------------------------------------------------------- gRPC status

TEST(EdgeAdminStatus, GrpcToHttp) {
  using C = grpc::StatusCode;
  EXPECT_EQ(HttpStatusFromGrpc(C::INVALID_ARGUMENT), 400);
  EXPECT_EQ(HttpStatusFromGrpc(C::NOT_FOUND), 404);
  EXPECT_EQ(HttpStatusFromGrpc(C::ALREADY_EXISTS), 409);
  EXPECT_EQ(HttpStatusFromGrpc(C::FAILED_PRECONDITION), 409);
  EXPECT_EQ(HttpStatusFromGrpc(C::UNAUTHENTICATED), 401);
  EXPECT_EQ(HttpStatusFromGrpc(C::PERMISSION_DENIED), 403);
  EXPECT_EQ(HttpStatusFromGrpc(C::UNAVAILABLE), 503);
  EXPECT_EQ(HttpStatusFromGrpc(C::DEADLINE_EXCEEDED), 504);
  for (auto c : {C::UNKNOWN, C::INTERNAL, C::DATA_LOSS, C::UNIMPLEMENTED, C::ABORTED,
                 C::OUT_OF_RANGE, C::RESOURCE_EXHAUSTED, C::CANCELLED}) {
    EXPECT_EQ(HttpStatusFromGrpc(c), 500) << c;
  }
}

TEST(EdgeAdminStatus, ErrorBodies) {
  using C = grpc::StatusCode;
  auto r = ErrorFromGrpc(grpc::Status(C::NOT_FOUND, "upstream u not found"));
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.body, R"({"error":"upstream u not found"})");

  r = ErrorFromGrpc(grpc::Status(C::FAILED_PRECONDITION, "upstream is used by service \"s\""));
  EXPECT_EQ(r.status, 409);
  EXPECT_EQ(r.body, R"({"error":"upstream is used by service \"s\""})");

  // 500s never show internal details.
  r = ErrorFromGrpc(grpc::Status(C::INTERNAL, "pqxx: relation \"x\" does not exist"));
  EXPECT_EQ(r.status, 500);
  EXPECT_EQ(r.body, R"({"error":"internal error"})");

  // A service's own UNAVAILABLE message is shown, the transport's is not.
  r = ErrorFromGrpc(grpc::Status(C::UNAVAILABLE, "database unavailable, retry later"));
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(r.body, R"({"error":"database unavailable, retry later"})");
  r = ErrorFromGrpc(grpc::Status(C::UNAVAILABLE,
                                 "failed to connect to all addresses; last error: UNKNOWN: "
                                 "ipv4:10.0.0.7:50051: Connection refused"));
  EXPECT_EQ(r.status, 503);
  EXPECT_THAT(r.body, ::testing::Not(HasSubstr("10.0.0.7")));

  r = ErrorFromGrpc(grpc::Status(C::DEADLINE_EXCEEDED, "Deadline Exceeded"));
  EXPECT_EQ(r.status, 504);
}

TEST_F(EdgeAdminApiTest, UnreachableBackendIs503) {
  auto r = Call("GET", "/api/v1/gateways");
  EXPECT_EQ(r.status, 503);
  EXPECT_THAT(r.body, ::testing::Not(HasSubstr("127.0.0.1")));
  r = Call("GET", "/api/v1/gateways/g/keys");
  EXPECT_EQ(r.status, 503);
}

TEST(EdgeAdminOptions, SecretRequired) {
  AdminApiOptions o;
  EXPECT_NE(ValidateAdminApiOptions(o), "");
  o.jwt_secret = kSecret;
  EXPECT_EQ(ValidateAdminApiOptions(o), "");
}

// Before: any non-empty secret was accepted, the k8s placeholder included.
TEST(EdgeAdminOptions, ShortAndPlaceholderSecretsAreRefused) {
  AdminApiOptions o;
  o.jwt_secret = "x";
  EXPECT_THAT(ValidateAdminApiOptions(o), HasSubstr("at least 32 bytes"));
  o.jwt_secret = "CHANGE-ME";
  EXPECT_THAT(ValidateAdminApiOptions(o), HasSubstr("placeholder"));
  o.jwt_secret = "local-dev-admin-secret-change-me";  // deploy/tg.env.example
  EXPECT_THAT(ValidateAdminApiOptions(o), HasSubstr("placeholder"));
  o.jwt_secret = std::string(40, 'a');
  EXPECT_THAT(ValidateAdminApiOptions(o), HasSubstr("placeholder"));
  EXPECT_THAT(ValidateAdminApiOptions(o), HasSubstr("openssl rand -hex 32"));
}

// ---------------------------------------------------------------- over HTTP

class EdgeAdminHttpTest : public ::testing::Test {
 protected:
  void SetUp() override {
    AdminApiOptions o;
    o.jwt_secret = kSecret;
    auto dead = tg::testing::TestChannel(1, kConfigIdentity);
    api_ = std::make_unique<AdminApi>(o, dead, dead, nullptr);
    HttpServerOptions h;
    h.name = "admin";
    h.access_log = false;
    std::string error;
    server_ = HttpServer::Start(h, api_.get(), &error);
    ASSERT_NE(server_, nullptr) << error;
  }
  void TearDown() override {
    if (server_) server_->Stop();
    api_.reset();
    server_.reset();
  }
  std::unique_ptr<AdminApi> api_;
  std::unique_ptr<HttpServer> server_;
};

TEST_F(EdgeAdminHttpTest, BodyOverOneMebibyteIs413) {
  std::string body(1024 * 1024 + 1, ' ');
  auto r = testing::HttpCall(server_->port(), "POST", "/api/v1/gateways", body,
                             {"Authorization: Bearer " + ValidToken()});
  EXPECT_EQ(r.status, 413) << r.error;
  EXPECT_EQ(r.body, R"j({"error":"request body too large (limit 1048576 bytes)"})j");
  EXPECT_EQ(r.headers["connection"], "close");
}

TEST_F(EdgeAdminHttpTest, BodyOfExactlyOneMebibyteIsAccepted) {
  // Reaches the handler, which finds no JSON in it.
  std::string body(1024 * 1024, ' ');
  auto r = testing::HttpCall(server_->port(), "POST", "/api/v1/gateways", body,
                             {"Authorization: Bearer " + ValidToken()});
  EXPECT_EQ(r.status, 400) << r.error;
  EXPECT_THAT(r.body, HasSubstr("malformed JSON"));
}

TEST_F(EdgeAdminHttpTest, Unauthenticated) {
  auto r = testing::HttpCall(server_->port(), "GET", "/api/v1/gateways");
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(r.body, R"({"error":"missing admin token"})");
  EXPECT_EQ(r.headers["content-type"], "application/json");
}

}  // namespace
}  // namespace tg::edge
