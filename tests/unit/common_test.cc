#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <rapidjson/document.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <map>
#include <pqxx/pqxx>
#include <sstream>
#include <thread>

#include "tg/common/client_error.h"
#include "tg/common/crypto.h"
#include "tg/common/flags.h"
#include "tg/common/json_util.h"
#include "tg/common/jwt.h"
#include "tg/common/log.h"
#include "tg/common/percent.h"
#include "tg/common/pg.h"
#include "tg/v1/resources.pb.h"

namespace tg {
namespace {

using std::chrono::seconds;
using std::chrono::system_clock;

TEST(Crypto, Sha256KnownVector) {
  EXPECT_EQ(crypto::HexEncode(crypto::Sha256("abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(Crypto, HmacSha256Rfc4231Case2) {
  EXPECT_EQ(crypto::HexEncode(crypto::HmacSha256("Jefe", "what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST(Crypto, Base64RoundTripsAndRejectsGarbage) {
  for (std::string s : {"", "f", "fo", "foo", "foob", "fooba", "foobar"}) {
    EXPECT_EQ(crypto::Base64Decode(crypto::Base64Encode(s)).value(), s);
    EXPECT_EQ(crypto::Base64UrlDecode(crypto::Base64UrlEncode(s)).value(), s);
  }
  EXPECT_EQ(crypto::Base64Encode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(crypto::Base64Encode("fo"), "Zm8=");
  EXPECT_EQ(crypto::Base64UrlEncode("\xfb\xff"), "-_8");
  EXPECT_FALSE(crypto::Base64Decode("Zm9v!").has_value());
}

TEST(Crypto, ConstantTimeEquals) {
  EXPECT_TRUE(crypto::ConstantTimeEquals("secret", "secret"));
  EXPECT_FALSE(crypto::ConstantTimeEquals("secret", "secreT"));
  EXPECT_FALSE(crypto::ConstantTimeEquals("secret", "secret2"));
  EXPECT_TRUE(crypto::ConstantTimeEquals("", ""));
}

TEST(Crypto, UuidsAreV4AndUnique) {
  auto a = crypto::NewUuid();
  auto b = crypto::NewUuid();
  EXPECT_NE(a, b);
  EXPECT_TRUE(crypto::IsUuid(a));
  EXPECT_EQ(a[14], '4');
  EXPECT_FALSE(crypto::IsUuid("not-a-uuid"));
  EXPECT_FALSE(crypto::IsUuid("'; DROP TABLE gateways; --------------"));
}

TEST(SecretBox, SealsOpensAndDetectsTampering) {
  auto box = crypto::SecretBox::FromKey(std::string(32, 'k')).value();
  auto sealed = box.Seal("sk-proj-very-secret");
  EXPECT_TRUE(crypto::SecretBox::IsSealed(sealed));
  EXPECT_EQ(sealed.find("very-secret"), std::string::npos);
  EXPECT_NE(box.Seal("sk-proj-very-secret"), sealed) << "nonce must be fresh per seal";
  EXPECT_EQ(box.Open(sealed).value(), "sk-proj-very-secret");

  std::string tampered = sealed;
  tampered[tampered.size() - 3] = tampered[tampered.size() - 3] == 'A' ? 'B' : 'A';
  EXPECT_FALSE(box.Open(tampered).has_value());
  auto other = crypto::SecretBox::FromKey(std::string(32, 'o')).value();
  EXPECT_FALSE(other.Open(sealed).has_value());
  EXPECT_FALSE(crypto::SecretBox::FromKey("short").has_value());
}

TEST(Jwt, AcceptsOwnTokensAndRejectsEveryBadOne) {
  auto now = system_clock::now();
  auto token = jwt::SignHs256("s3cret-s3cret-s3cret", "admin", now, seconds(60));
  EXPECT_EQ(jwt::VerifyHs256(token, "s3cret-s3cret-s3cret", now), jwt::Verdict::kOk);
  EXPECT_EQ(jwt::VerifyHs256(token, "another-secret-entirely", now), jwt::Verdict::kBadSignature);
  EXPECT_EQ(jwt::VerifyHs256(token, "s3cret-s3cret-s3cret", now + seconds(61)),
            jwt::Verdict::kExpired);
  EXPECT_EQ(jwt::VerifyHs256("not.a.jwt", "s3cret-s3cret-s3cret", now), jwt::Verdict::kMalformed);
  EXPECT_EQ(jwt::VerifyHs256("abc", "s3cret-s3cret-s3cret", now), jwt::Verdict::kMalformed);

  // alg "none" with an empty signature must never pass.
  std::string header = crypto::Base64UrlEncode(R"({"alg":"none","typ":"JWT"})");
  std::string payload = crypto::Base64UrlEncode(R"({"sub":"admin"})");
  EXPECT_NE(jwt::VerifyHs256(header + "." + payload + ".", "s3cret-s3cret-s3cret", now),
            jwt::Verdict::kOk);

  // A token whose payload was changed after signing.
  auto dot1 = token.find('.');
  auto dot2 = token.find('.', dot1 + 1);
  std::string forged = token.substr(0, dot1 + 1) +
                       crypto::Base64UrlEncode(R"({"sub":"root","exp":99999999999})") +
                       token.substr(dot2);
  EXPECT_EQ(jwt::VerifyHs256(forged, "s3cret-s3cret-s3cret", now), jwt::Verdict::kBadSignature);
}

// A token with the given header and claims, signed HS256 with `secret`.
std::string SignedToken(std::string_view header, std::string_view claims, std::string_view secret) {
  std::string input = crypto::Base64UrlEncode(header) + "." + crypto::Base64UrlEncode(claims);
  return input + "." + crypto::Base64UrlEncode(crypto::HmacSha256(secret, input));
}

// Before: libjwt accepted a token without `exp` for ever.
TEST(Jwt, ExpiryIsRequiredAndClaimsAreChecked) {
  const std::string secret = "0d9b5c7e2f4a6183b5c7d9e1f3a5b7c9d1e3f5a7b9c1d3e5";
  const auto now = system_clock::time_point(seconds(1'700'000'000));
  constexpr char kHs256[] = R"({"alg":"HS256","typ":"JWT"})";
  auto verify = [&](std::string_view claims, const jwt::VerifyOptions& o = {}) {
    return jwt::VerifyHs256(SignedToken(kHs256, claims, secret), secret, now, o);
  };
  EXPECT_EQ(verify(R"({"sub":"admin"})"), jwt::Verdict::kMissingExpiry);
  EXPECT_EQ(verify(R"({"sub":"admin","exp":"1800000000"})"), jwt::Verdict::kMalformed);
  EXPECT_EQ(verify(R"({"exp":1800000000})"), jwt::Verdict::kOk);
  EXPECT_EQ(verify(R"({"exp":1700000000})"), jwt::Verdict::kExpired);
  EXPECT_EQ(verify(R"({"exp":1800000000,"nbf":1700000100})"), jwt::Verdict::kNotYetValid);
  jwt::VerifyOptions leeway;
  leeway.leeway = seconds(120);
  EXPECT_EQ(verify(R"({"exp":1800000000,"nbf":1700000100})", leeway), jwt::Verdict::kOk);

  jwt::VerifyOptions strict;
  strict.issuer = "trustgate";
  strict.audience = "admin-api";
  EXPECT_EQ(verify(R"({"exp":1800000000})", strict), jwt::Verdict::kWrongIssuer);
  EXPECT_EQ(verify(R"({"exp":1800000000,"iss":"other","aud":"admin-api"})", strict),
            jwt::Verdict::kWrongIssuer);
  EXPECT_EQ(verify(R"({"exp":1800000000,"iss":"trustgate"})", strict),
            jwt::Verdict::kWrongAudience);
  EXPECT_EQ(verify(R"({"exp":1800000000,"iss":"trustgate","aud":"admin-api"})", strict),
            jwt::Verdict::kOk);
  EXPECT_EQ(verify(R"({"exp":1800000000,"iss":"trustgate","aud":["x","admin-api"]})", strict),
            jwt::Verdict::kOk);
  jwt::SignOptions so;
  so.issuer = "trustgate";
  so.audience = "admin-api";
  EXPECT_EQ(
      jwt::VerifyHs256(jwt::SignHs256(secret, "admin", now, seconds(60), so), secret, now, strict),
      jwt::Verdict::kOk);

  // The header decides nothing but HS256: none, HS512, RS256 and crit are refused.
  for (const char* header : {R"({"alg":"none"})", R"({"alg":"HS512"})", R"({"alg":"RS256"})"}) {
    EXPECT_EQ(jwt::VerifyHs256(SignedToken(header, R"({"exp":1800000000})", secret), secret, now),
              jwt::Verdict::kWrongAlgorithm)
        << header;
  }
  EXPECT_EQ(jwt::VerifyHs256(
                SignedToken(R"({"alg":"HS256","crit":["b64"]})", R"({"exp":1800000000})", secret),
                secret, now),
            jwt::Verdict::kMalformed);
  std::string none = crypto::Base64UrlEncode(R"({"alg":"none"})") + "." +
                     crypto::Base64UrlEncode(R"({"exp":1800000000})") + ".";
  EXPECT_EQ(jwt::VerifyHs256(none, secret, now), jwt::Verdict::kWrongAlgorithm);

  // Bounded: a huge or deeply nested token is malformed, not a crash.
  EXPECT_EQ(jwt::VerifyHs256(std::string(jwt::kMaxTokenBytes + 1, 'a'), secret, now),
            jwt::Verdict::kMalformed);
  std::string deep(3000, '[');
  EXPECT_EQ(jwt::VerifyHs256(SignedToken(deep, "{}", secret), secret, now),
            jwt::Verdict::kMalformed);
  // A truncated signature is a bad signature, whatever its prefix.
  std::string good = SignedToken(kHs256, R"({"exp":1800000000})", secret);
  EXPECT_EQ(jwt::VerifyHs256(good.substr(0, good.size() - 4), secret, now),
            jwt::Verdict::kBadSignature);
}

TEST(Jwt, SecretsMustBeLongAndNotPlaceholders) {
  auto refused_as = [](std::string_view secret, std::string_view why) {
    std::string problem = jwt::CheckSecret(secret);
    EXPECT_NE(problem.find(why), std::string::npos) << secret << ": " << problem;
  };
  refused_as("", "not set");
  refused_as("CHANGE-ME", "placeholder");  // deploy/k8s/secret.yaml
  refused_as("changeme", "placeholder");
  refused_as("local-dev-admin-secret-change-me", "placeholder");  // deploy/tg.env.example
  refused_as("s3cret-s3cret-s3cret", "at least 32");
  refused_as("secret", "at least 32");
  refused_as(std::string(64, 'x'), "placeholder");
  refused_as("x", "openssl rand -hex 32");
  EXPECT_EQ(jwt::CheckSecret(crypto::HexEncode(crypto::RandomBytes(32))), "");
  EXPECT_EQ(jwt::CheckSecret(crypto::Base64Encode(crypto::RandomBytes(32))), "");
}

TEST(LenientJson, AcceptsTheSeedsTrailingCommaAndComments) {
  std::string out, err;
  ASSERT_TRUE(json::NormalizeLenient("{\n\"name\": \"multi-provider-gateway\",\n}", &out, &err))
      << err;
  EXPECT_EQ(out, R"({"name":"multi-provider-gateway"})");
  ASSERT_TRUE(
      json::NormalizeLenient("{\"weight\": 60,    # 60% of traffic\n \"p\": 1 // x\n}", &out, &err))
      << err;
  EXPECT_EQ(out, R"({"weight":60,"p":1})");
  ASSERT_TRUE(json::NormalizeLenient(R"({"s": "a # not a comment"})", &out, &err));
  EXPECT_EQ(out, R"({"s":"a # not a comment"})");
}

TEST(LenientJson, RejectsWhatIsNotJson) {
  std::string out, err;
  EXPECT_FALSE(json::NormalizeLenient("{\"name\": ", &out, &err));
  EXPECT_NE(err.find("malformed JSON"), std::string::npos);
  EXPECT_FALSE(json::NormalizeLenient("{} trailing", &out, &err));
  EXPECT_FALSE(json::NormalizeLenient("", &out, &err));
}

TEST(ProtoJson, WrongTypeAndUnknownFieldNameTheField) {
  tg::v1::Upstream u;
  std::string err;
  EXPECT_FALSE(json::ParseProto(R"({"name":"x","targets":[{"weight":"heavy"}]})", &u, &err));
  EXPECT_NE(err.find("weight"), std::string::npos) << err;
  tg::v1::Gateway g;
  EXPECT_FALSE(json::ParseProto(R"({"name":"x","colour":"red"})", &g, &err));
  EXPECT_NE(err.find("colour"), std::string::npos) << err;
  EXPECT_FALSE(json::ParseProto(R"(["not","an","object"])", &g, &err));
  EXPECT_FALSE(json::ParseProto(R"({"name": 12})", &g, &err));
}

TEST(ProtoJson, EveryJsonTypeMustBeTheFieldsOwn) {
  struct Case {
    const char* body;
    const char* error;
  };
  const Case cases[] = {
      {R"({"name":"u","targets":[{"weight":"60"}]})", "targets[0].weight must be an integer"},
      {R"({"name":"u","targets":[{"weight":60.5}]})", "targets[0].weight must be an integer"},
      {R"({"name":"u","targets":{}})", "targets must be an array"},
      {R"({"name":"u","targets":[{"models":"gpt-4"}]})", "targets[0].models must be an array"},
      {R"({"name":"u","targets":[{"headers":{"x":1}}]})", "targets[0].headers.x must be a string"},
      {R"({"name":"u","targets":[{"provider_options":"responses"}]})",
       "targets[0].provider_options must be an object"},
      {R"({"name":"u","health_checks":{"threshold":true}})",
       "health_checks.threshold must be an integer"},
      {R"({"name":"u","targets":[{"credentials":{"api_key":42}}]})",
       "targets[0].credentials.api_key must be a string"},
      {R"({"name":"u","created_at":12})", "created_at must be an RFC 3339 string"},
      {R"({"name":"u","targets":[{"colour":"red"}]})", "unknown field \"targets[0].colour\""},
  };
  for (const auto& c : cases) {
    tg::v1::Upstream u;
    std::string err;
    EXPECT_FALSE(json::ParseProto(c.body, &u, &err)) << c.body;
    EXPECT_NE(err.find(c.error), std::string::npos) << c.body << " gave: " << err;
  }
  tg::v1::Rule rule;
  std::string err;
  EXPECT_FALSE(json::ParseProto(R"({"path":"/v1","strip_path":"yes"})", &rule, &err));
  EXPECT_EQ(err, "strip_path must be true or false");
  EXPECT_FALSE(json::ParseProto(R"({"path":"/v1","methods":"POST"})", &rule, &err));
  EXPECT_EQ(err, "methods must be an array");
  EXPECT_TRUE(json::ParseProto(R"({"path":"/v1","serviceId":"s","methods":["POST"]})", &rule, &err))
      << "protobuf's lowerCamel names are accepted too: " << err;
  tg::v1::Upstream ok;
  EXPECT_TRUE(json::ParseProto(
      R"({"name":"u","targets":[{"weight":60,"models":["a"],"provider_options":{"api":"responses"},
          "headers":{"x":"y"}}],"health_checks":{"passive":true,"threshold":3},"algorithm":null})",
      &ok, &err))
      << err;
}

TEST(ProtoJson, PrintsOriginalFieldNamesAndOmitsUnset) {
  tg::v1::Target t;
  t.set_default_model("gpt-4o-mini");
  t.set_stream(false);
  auto s = json::PrintProto(t);
  EXPECT_NE(s.find("\"default_model\":\"gpt-4o-mini\""), std::string::npos) << s;
  EXPECT_NE(s.find("\"stream\":false"), std::string::npos) << s;
  EXPECT_EQ(s.find("weight"), std::string::npos) << s;
}

// A server that completes the TCP handshake (the kernel does) and then never
// says a word: what a hung PostgreSQL looks like to libpq.
TEST(Pg, ConnectTimeoutBoundsAServerThatNeverAnswers) {
  const char* saved = std::getenv("PGCONNECT_TIMEOUT");
  std::string restore = saved ? saved : "";
  ::unsetenv("PGCONNECT_TIMEOUT");
  pg::SetDefaultConnectTimeout(2);
  EXPECT_STREQ(std::getenv("PGCONNECT_TIMEOUT"), "2");
  pg::SetDefaultConnectTimeout(9);  // an operator's own setting wins
  EXPECT_STREQ(std::getenv("PGCONNECT_TIMEOUT"), "2");

  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(listen(fd, 16), 0);
  socklen_t len = sizeof addr;
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_THROW(pqxx::connection("host=127.0.0.1 port=" + std::to_string(ntohs(addr.sin_port)) +
                                " user=nobody dbname=nothing"),
               std::exception);
  const auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_GE(took, std::chrono::milliseconds(1500));  // it did wait for the server
  EXPECT_LT(took, std::chrono::seconds(10));         // and gave up, not after minutes
  close(fd);
  if (saved) {
    ::setenv("PGCONNECT_TIMEOUT", restore.c_str(), 1);
  } else {
    ::unsetenv("PGCONNECT_TIMEOUT");
  }
}

// Points stderr's descriptor somewhere else for the life of the object.
class StderrRedirect {
 public:
  explicit StderrRedirect(int fd) : saved_(dup(STDERR_FILENO)) { dup2(fd, STDERR_FILENO); }
  ~StderrRedirect() {
    dup2(saved_, STDERR_FILENO);
    close(saved_);
  }

 private:
  int saved_;
};

TEST(Log, LinesArriveWholeAndInOrderFromManyThreads) {
  char path[] = "/tmp/tg-log-test-XXXXXX";
  int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  const auto before = log::Stats();
  {
    StderrRedirect redirect(fd);
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([t] {
        for (int i = 0; i < 500; ++i) {
          log::Info("line", {{"thread", std::to_string(t)}, {"i", std::to_string(i)}});
        }
      });
    }
    for (auto& th : threads) th.join();
    log::Flush();
  }
  close(fd);
  std::ifstream in(path);
  std::string line;
  std::map<std::string, int> next;  // per thread, the next i expected
  int lines = 0;
  while (std::getline(in, line)) {
    rapidjson::Document d;
    d.Parse(line.c_str());
    ASSERT_TRUE(d.IsObject()) << line;
    std::string t = d["thread"].GetString();
    EXPECT_EQ(std::stoi(d["i"].GetString()), next[t]++) << "thread " << t;
    ++lines;
  }
  EXPECT_EQ(lines, 2000);
  EXPECT_EQ(log::Stats().written - before.written, 2000u);
  unlink(path);
}

TEST(Log, AStuckReaderCostsDroppedLinesNeverABlockedCaller) {
  int pipefd[2];
  ASSERT_EQ(pipe(pipefd), 0);
  log::SetBufferLimit(4096);
  const auto before = log::Stats();
  auto slowest = std::chrono::nanoseconds(0);
  std::thread reader;
  {
    StderrRedirect redirect(pipefd[1]);
    // Nobody reads the pipe yet: once its 64 KiB are full the writer thread
    // blocks, the buffer fills, and lines must be dropped, not waited for.
    for (int i = 0; i < 20000; ++i) {
      auto t0 = std::chrono::steady_clock::now();
      log::Info("filling the pipe", {{"i", std::to_string(i)}, {"pad", std::string(100, 'x')}});
      slowest = std::max(slowest, std::chrono::steady_clock::now() - t0);
    }
    EXPECT_GT(log::Stats().dropped, before.dropped);
    // Now drain the pipe so that everything queued gets out.
    reader = std::thread([fd = pipefd[0]] {
      char buf[65536];
      while (read(fd, buf, sizeof buf) > 0) {
      }
    });
    log::Flush();
  }                  // stderr is the real one again
  close(pipefd[1]);  // the reader sees end of file
  reader.join();
  close(pipefd[0]);
  log::SetBufferLimit(8 * 1024 * 1024);
  EXPECT_LT(slowest, std::chrono::milliseconds(50));
  const auto after = log::Stats();
  EXPECT_EQ((after.written - before.written) + (after.dropped - before.dropped), 20000u);
}

TEST(Flags, CommandLineWinsOverEnvironment) {
  setenv("TG_UNIT_FLAG_X", "from-env", 1);
  char a0[] = "prog";
  char a1[] = "--other=1";
  char* argv[] = {a0, a1};
  Flags f(2, argv);
  EXPECT_EQ(f.String("unit-flag-x"), "from-env");
  EXPECT_EQ(f.Int("other", 0), 1);
  EXPECT_EQ(f.String("missing", "dflt"), "dflt");
  EXPECT_EQ(Flags::EnvName("pg-dsn"), "TG_PG_DSN");
}

// A service's command line is checked against its options table, which also
// holds the defaults.
TEST(Flags, ServicesRefuseWhatTheyDoNotKnowAndPrintTheirOptions) {
  using T = FlagSpec::Type;
  const std::vector<FlagSpec> table = {{"unit-listen", T::kString, "127.0.0.1:1", "where"},
                                       {"unit-workers", T::kInt, "4", "how many"},
                                       {"unit-on", T::kBool, "true", "whether"}};
  auto parse = [&](std::vector<std::string> args, int* code) {
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    return Flags::ForService(static_cast<int>(argv.size()), argv.data(), "tg-unit", "a test", table,
                             code);
  };
  int code = -1;
  auto ok = parse({"tg-unit", "--unit-workers=7", "--log-level=debug"}, &code);
  ASSERT_TRUE(ok.has_value());
  EXPECT_EQ(code, 0);
  EXPECT_EQ(ok->Int("unit-workers"), 7);
  EXPECT_EQ(ok->String("unit-listen"), "127.0.0.1:1") << "the table's default";
  EXPECT_TRUE(ok->Bool("unit-on"));
  EXPECT_EQ(ok->String("log-level"), "debug") << "common service flags are known";

  EXPECT_FALSE(parse({"tg-unit", "--unit-wrokers=7"}, &code).has_value());
  EXPECT_EQ(code, 2) << "an unknown flag";
  EXPECT_FALSE(parse({"tg-unit", "serve"}, &code).has_value());
  EXPECT_EQ(code, 2) << "a positional argument";
  EXPECT_FALSE(parse({"tg-unit", "--unit-workers=seven"}, &code).has_value());
  EXPECT_EQ(code, 2) << "an int that does not parse";
  setenv("TG_UNIT_ON", "maybe", 1);
  EXPECT_FALSE(parse({"tg-unit"}, &code).has_value());
  EXPECT_EQ(code, 2) << "a bool in the environment that does not parse";
  unsetenv("TG_UNIT_ON");
  testing::internal::CaptureStdout();
  EXPECT_FALSE(parse({"tg-unit", "--help"}, &code).has_value());
  const std::string help = testing::internal::GetCapturedStdout();
  EXPECT_EQ(code, 0);
  EXPECT_NE(help.find("--unit-workers=<int>  (TG_UNIT_WORKERS)"), std::string::npos) << help;
  EXPECT_NE(help.find("[default: 4]"), std::string::npos) << help;
}

}  // namespace
}  // namespace tg

namespace tg {
namespace {

// One error vocabulary: the edge's own errors and the adapter's translated
// ones give a status the same type, in each SDK's shape.
TEST(ClientErrorTest, OneTypePerStatusInEachFormat) {
  EXPECT_EQ(client_error::OpenAiType(400), "invalid_request_error");
  EXPECT_EQ(client_error::OpenAiType(413), "invalid_request_error");
  EXPECT_EQ(client_error::OpenAiType(401), "authentication_error");
  EXPECT_EQ(client_error::OpenAiType(429), "rate_limit_error");
  EXPECT_EQ(client_error::OpenAiType(503), "server_error");
  EXPECT_EQ(client_error::AnthropicType(413), "request_too_large");
  EXPECT_EQ(client_error::AnthropicType(529), "overloaded_error");
  EXPECT_EQ(client_error::AnthropicType(504), "timeout_error");
  EXPECT_EQ(client_error::AnthropicType(500), "api_error");
  EXPECT_EQ(
      client_error::OpenAiBody(503, "balancer \"down\""),
      R"({"error":{"message":"balancer \"down\"","type":"server_error","param":null,"code":null}})");
  EXPECT_EQ(
      client_error::OpenAiBody(400, "x", "content_filter"),
      R"({"error":{"message":"x","type":"invalid_request_error","param":null,"code":"content_filter"}})");
  EXPECT_EQ(client_error::AnthropicBody(404, "no route"),
            R"({"type":"error","error":{"type":"not_found_error","message":"no route"}})");
}

TEST(Percent, DecodesWhatIsWellFormedAndKeepsTheRest) {
  EXPECT_EQ(percent::Decode("a%2Fb%3a%20c"), "a/b: c");
  EXPECT_EQ(percent::Decode("100%"), "100%");      // no digits after it
  EXPECT_EQ(percent::Decode("%zz%4"), "%zz%4");    // not hex, too short
  EXPECT_EQ(percent::Decode("a+b"), "a+b");        // SigV4, OTLP headers
  EXPECT_EQ(percent::Decode("a+b", true), "a b");  // form encoding
  EXPECT_EQ(percent::HexValue('F'), 15);
  EXPECT_EQ(percent::HexValue('g'), -1);
}

}  // namespace
}  // namespace tg
