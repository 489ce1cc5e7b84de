// The providers' own SDKs, unchanged, against the whole gateway: the official
// npm packages `openai` and `@anthropic-ai/sdk` (tests/sdk/sdk_check.mjs, run
// with node) talk to tg-edge's proxy, with tg-config, tg-keyauth, tg-balancer
// and tg-adapter as separate processes on a real PostgreSQL and Redis, in
// front of the fake providers (in this process). The upstream round-robins an
// OpenAI and an Anthropic target, as the seeds do, so each SDK is served by
// both providers.
//
// Skipped without node on PATH or without tests/sdk/node_modules (install it
// with `npm ci --prefix tests/sdk`; scripts/test does).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <rapidjson/document.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "fake_provider.h"
#include "process.h"
#include "stack.h"
#include "test_db.h"

extern char** environ;

namespace tg::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using std::chrono::steady_clock;

constexpr char kSdkDir[] = TG_SDK_DIR;
constexpr auto kScriptTimeout = seconds(120);

const char* RedisAddr() { return std::getenv("TG_TEST_REDIS_ADDR"); }

// The `node` executable on PATH, or "".
std::string FindNode() {
  const char* path = std::getenv("PATH");
  std::string dirs = path != nullptr ? path : "";
  size_t start = 0;
  while (start <= dirs.size()) {
    size_t end = dirs.find(':', start);
    if (end == std::string::npos) end = dirs.size();
    std::string dir = dirs.substr(start, end - start);
    if (dir.empty()) dir = ".";
    std::string candidate = dir + "/node";
    struct stat st {};
    if (stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
        access(candidate.c_str(), X_OK) == 0) {
      return candidate;
    }
    start = end + 1;
  }
  return "";
}

struct ScriptResult {
  std::optional<int> exit_code;  // nullopt: killed by a signal or by the timeout
  bool timed_out = false;
  std::string output;  // stdout and stderr, interleaved
  std::string error;   // why it could not be run
};

// Runs `argv` with `env_overrides` added to this process's environment (minus
// OPENAI_* / ANTHROPIC_* settings the SDKs would pick up), its stdout and
// stderr captured; killed after `timeout`.
ScriptResult RunCaptured(const std::vector<std::string>& argv,
                         const std::vector<std::pair<std::string, std::string>>& env_overrides,
                         std::chrono::milliseconds timeout) {
  ScriptResult result;
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string kv = *e;
    if (kv.rfind("OPENAI_", 0) == 0 || kv.rfind("ANTHROPIC_", 0) == 0) continue;
    bool overridden = false;
    for (const auto& [k, v] : env_overrides) overridden |= kv.rfind(k + "=", 0) == 0;
    if (!overridden) env.push_back(kv);
  }
  for (const auto& [k, v] : env_overrides) env.push_back(k + "=" + v);

  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) {
    result.error = "pipe2 failed";
    return result;
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, fds[1], 1);
  posix_spawn_file_actions_adddup2(&actions, fds[1], 2);
  std::vector<char*> args, envp;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  for (auto& kv : env) envp.push_back(kv.data());
  envp.push_back(nullptr);
  pid_t pid = -1;
  int rc = posix_spawn(&pid, argv[0].c_str(), &actions, nullptr, args.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  close(fds[1]);
  if (rc != 0) {
    close(fds[0]);
    result.error = "posix_spawn " + argv[0] + ": " + std::strerror(rc);
    return result;
  }

  auto deadline = steady_clock::now() + timeout;
  char buf[4096];
  for (;;) {
    auto left = std::chrono::duration_cast<milliseconds>(deadline - steady_clock::now()).count();
    if (left <= 0) {
      result.timed_out = true;
      break;
    }
    pollfd p{fds[0], POLLIN, 0};
    int n = poll(&p, 1, static_cast<int>(std::min<long long>(left, 1000)));
    if (n < 0 && errno != EINTR) break;
    if (n <= 0) continue;
    ssize_t got = read(fds[0], buf, sizeof buf);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) break;  // EOF: the script (and anything it started) closed the pipe
    result.output.append(buf, static_cast<size_t>(got));
  }
  close(fds[0]);
  if (result.timed_out) kill(pid, SIGKILL);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!result.timed_out && WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
  return result;
}

// Why the SDK checks cannot run here ("" when they can): node 20+ on PATH
// (found into *node) and the npm `packages` installed under tests/sdk.
std::string SdkSkipReason(std::string* node, const std::vector<std::string>& packages) {
  *node = FindNode();
  if (node->empty()) return "node is not on PATH: the SDK checks need Node.js 20+";
  ScriptResult version = RunCaptured({*node, "-p", "process.versions.node"}, {}, seconds(30));
  if (version.exit_code != 0 || std::atoi(version.output.c_str()) < 20) {
    return *node + " is not Node.js 20+ (the SDKs' minimum): " + version.output + version.error;
  }
  for (const auto& package : packages) {
    if (!std::filesystem::is_directory(std::string(kSdkDir) + "/node_modules/" + package)) {
      return std::string(kSdkDir) + "/node_modules lacks " + package + ": run `npm ci --prefix " +
             kSdkDir + "` (scripts/test does when npm is available)";
    }
  }
  return "";
}

class SdkE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    if (std::string why = SdkSkipReason(&node_, {"openai", "@anthropic-ai/sdk"}); !why.empty()) {
      GTEST_SKIP() << why;
    }
    if (!TestDatabase::Available() || RedisAddr() == nullptr) {
      GTEST_SKIP() << "TG_TEST_PG_DSN / TG_TEST_REDIS_ADDR not set";
    }

    fake_ = std::make_unique<fakes::FakeProvider>();
    std::string error;
    ASSERT_TRUE(fake_->Start(&error)) << error;
    StackOptions o;
    o.balancer = true;
    o.adapter = true;
    o.redis_addr = RedisAddr();
    stack_ = std::make_unique<Stack>("e2e_sdk", o);
    ASSERT_TRUE(stack_->StartAll()) << "the stack did not start";

    gateway_ = stack_->MustCreate("/api/v1/gateways", R"({"name": "sdk", "subdomain": "sdk"})");
    auto r = stack_->Admin("POST", "/api/v1/gateways/" + gateway_ + "/keys",
                           R"({"name": "sdk", "expires_at": "2099-01-01T00:00:00Z"})");
    ASSERT_EQ(r.status, 201) << r.body;
    auto d = Json(r.body);
    ASSERT_TRUE(d.IsObject() && d.HasMember("key") && d["key"].IsString()) << r.body;
    key_ = d["key"].GetString();

    // The seeds' load-balanced upstream: OpenAI and Anthropic, round-robin.
    const std::string openai = Target(
        "openai", fake_->credentials().openai_key,
        R"("default_model": "gpt-4o-mini", "models": ["gpt-3.5-turbo", "gpt-4", "gpt-4o-mini"])");
    const std::string anthropic =
        Target("anthropic", fake_->credentials().anthropic_key,
               R"("default_model": "claude-3-sonnet", "models": ["claude-3-sonnet"],
                  "headers": {"anthropic-version": "2023-06-01"})");
    std::string up = stack_->MustCreate(
        "/api/v1/gateways/" + gateway_ + "/upstreams",
        R"({"name": "ai-providers-upstream", "algorithm": "round-robin", "targets": [)" + openai +
            ", " + anthropic +
            R"(], "health_checks": {"passive": true, "threshold": 3, "interval": 60}})");
    std::string svc =
        stack_->MustCreate("/api/v1/gateways/" + gateway_ + "/services",
                           R"({"name": "sdk", "type": "upstream", "upstream_id": ")" + up + "\"}");
    stack_->MustCreate("/api/v1/gateways/" + gateway_ + "/rules",
                       R"({"path": "/sdk", "service_id": ")" + svc +
                           R"(", "methods": ["POST"], "strip_path": true})");
    ASSERT_FALSE(HasFailure());
  }

  // A provider target on the fake provider, with its API key.
  std::string Target(const std::string& provider, const std::string& api_key,
                     const std::string& extra) const {
    return R"({"provider": ")" + provider + R"(", "host": "127.0.0.1", "port": )" +
           std::to_string(fake_->port()) + R"(, "protocol": "http", )" + extra +
           R"(, "credentials": {"api_key": ")" + api_key + R"("}})";
  }

  std::string node_;
  std::unique_ptr<fakes::FakeProvider> fake_;
  std::unique_ptr<Stack> stack_;
  std::string gateway_, key_;
};

TEST_F(SdkE2E, OfficialOpenAiAndAnthropicSdksWorkUnchanged) {
  // The configuration reaches tg-edge asynchronously (config watch): wait
  // until the rule routes before handing over to the SDKs.
  ASSERT_TRUE(WaitFor(
      [&] {
        auto r = Http("POST", stack_->ProxyUrl("/sdk/v1/chat/completions"),
                      R"({"model": "gpt-4", "messages": [{"role": "user", "content": "ping"}]})",
                      {"Authorization: Bearer " + key_, "Content-Type: application/json"});
        return r.status == 200;
      },
      seconds(15)))
      << "the /sdk rule never answered 200";
  fake_->ClearRequests();

  ScriptResult run = RunCaptured({node_, std::string(kSdkDir) + "/sdk_check.mjs"},
                                 {{"TG_PROXY_URL", stack_->ProxyUrl("")},
                                  {"TG_KEY", key_},
                                  {"TG_PREFIX", "/sdk"},
                                  {"TG_FAKE_URL", fake_->base_url()}},
                                 kScriptTimeout);
  ASSERT_TRUE(run.error.empty()) << run.error;
  EXPECT_FALSE(run.timed_out) << "sdk_check.mjs did not finish within " << kScriptTimeout.count()
                              << " s; its output so far:\n"
                              << run.output;
  EXPECT_EQ(run.exit_code, std::optional<int>(0)) << "sdk_check.mjs failed; its output:\n"
                                                  << run.output;
  if (run.exit_code == 0) std::cout << run.output;  // the per-check lines (on failure: above)

  // Both providers served the SDKs' requests, with the targets' credentials:
  // the gateway key never went upstream.
  auto requests = fake_->Requests();
  int openai = 0, anthropic = 0;
  for (const auto& q : requests) {
    if (q.api == fakes::Api::kOpenAiChat || q.api == fakes::Api::kOpenAiResponses) ++openai;
    if (q.api == fakes::Api::kAnthropic) ++anthropic;
    // 400: the provider errors the script injects; never a refused credential.
    EXPECT_TRUE(q.status == 200 || q.status == 400)
        << q.status << " for " << q.method << " " << q.path << ": " << q.body;
    for (const auto& [name, value] : q.headers) {
      EXPECT_EQ(value.find(key_), std::string::npos)
          << "the gateway key went upstream in " << name << " to " << q.path;
    }
    EXPECT_EQ(q.body.find(key_), std::string::npos) << "the gateway key went upstream in the body";
    EXPECT_EQ(q.query.find(key_), std::string::npos)
        << "the gateway key went upstream in the query";
  }
  EXPECT_GT(openai, 0) << "the OpenAI target served none of the SDKs' " << requests.size()
                       << " requests";
  EXPECT_GT(anthropic, 0) << "the Anthropic target served none of the SDKs' " << requests.size()
                          << " requests";
  std::cout << "fake provider: " << requests.size() << " requests, " << openai << " on OpenAI, "
            << anthropic << " on Anthropic\n";
}

// A gateway rate limit seen by the official OpenAI SDK (issue 16): one
// request per 2 s for the key. The second call gets a 429 with
// retry-after-ms; the SDK's own retry waits that long and then succeeds.
TEST_F(SdkE2E, TheOpenAiSdkRetryHonoursTheGatewaysRetryAfter) {
  const std::string gw = stack_->MustCreate("/api/v1/gateways", R"({"name": "limited",
      "required_plugins": [{"name": "rate_limiter", "enabled": true, "stage": "pre_request",
        "settings": {"limits": {"per_api_key": {"limit": 1, "window": "2s"}},
                     "actions": {"type": "reject"}}}]})");
  const std::string openai = Target("openai", fake_->credentials().openai_key,
                                    R"("default_model": "gpt-4", "models": ["gpt-4"])");
  std::string up = stack_->MustCreate("/api/v1/gateways/" + gw + "/upstreams",
                                      R"({"name": "u", "targets": [)" + openai + "]}");
  std::string svc =
      stack_->MustCreate("/api/v1/gateways/" + gw + "/services",
                         R"({"name": "s", "type": "upstream", "upstream_id": ")" + up + "\"}");
  stack_->MustCreate("/api/v1/gateways/" + gw + "/rules",
                     R"({"path": "/lim", "service_id": ")" + svc +
                         R"(", "methods": ["POST"], "strip_path": true})");
  const std::string key = stack_->MustCreateKey(gw);
  // Routed (GET …/models is answered from the configuration, never limited);
  // then a full window so that the script starts with the whole allowance.
  ASSERT_TRUE(WaitFor(
      [&] {
        return Http("GET", stack_->ProxyUrl("/lim/v1/models"), "", {"X-Api-Key: " + key}).status ==
               200;
      },
      seconds(15)));

  ScriptResult run =
      RunCaptured({node_, std::string(kSdkDir) + "/rate_limit_check.mjs"},
                  {{"TG_PROXY_URL", stack_->ProxyUrl("")}, {"TG_KEY", key}, {"TG_PREFIX", "/lim"}},
                  kScriptTimeout);
  ASSERT_TRUE(run.error.empty()) << run.error;
  ASSERT_EQ(run.exit_code, std::optional<int>(0)) << run.output;
  std::cout << run.output;
  auto d = Json(run.output);
  ASSERT_TRUE(d.IsObject() && d["exchanges"].IsArray()) << run.output;
  const auto& ex = d["exchanges"];
  ASSERT_EQ(ex.Size(), 3u) << "200, then 429 and the SDK's retry: " << run.output;
  EXPECT_EQ(ex[0]["status"].GetInt(), 200);
  EXPECT_EQ(ex[1]["status"].GetInt(), 429);
  EXPECT_EQ(ex[2]["status"].GetInt(), 200);
  ASSERT_TRUE(ex[1]["retry_after_ms"].IsString()) << run.output;
  const long wait_ms = std::strtol(ex[1]["retry_after_ms"].GetString(), nullptr, 10);
  EXPECT_GT(wait_ms, 1000) << "about the 2 s window";
  EXPECT_LE(wait_ms, 2000);
  EXPECT_STREQ(ex[1]["limit"].GetString(), "1");
  EXPECT_STREQ(ex[1]["remaining"].GetString(), "0");
  // The SDK waited what the gateway said before it retried.
  EXPECT_GE(ex[2]["at_ms"].GetInt64() - ex[1]["at_ms"].GetInt64(), wait_ms - 50) << run.output;
}

// The fake providers themselves against the Google GenAI and AWS SDKs
// (tests/sdk/provider_sdk_check.mjs, no gateway): the Gemini and Bedrock
// endpoints the gateway is tested against, chat and embeddings, SigV4
// included, are what the official SDKs send and accept.
TEST(ProviderSdks, TheFakesGeminiAndBedrockEndpointsAreWhatTheOfficialSdksSpeak) {
  std::string node;
  if (std::string why = SdkSkipReason(
          &node, {"@google/genai", "@aws-sdk/client-bedrock-runtime", "@smithy/node-http-handler"});
      !why.empty()) {
    GTEST_SKIP() << why;
  }
  fakes::FakeProvider fake;
  std::string error;
  ASSERT_TRUE(fake.Start(&error)) << error;
  const fakes::FakeCredentials& c = fake.credentials();
  ScriptResult run = RunCaptured({node, std::string(kSdkDir) + "/provider_sdk_check.mjs"},
                                 {{"TG_FAKE_URL", fake.base_url()},
                                  {"TG_GEMINI_KEY", c.gemini_key},
                                  {"TG_AWS_ACCESS_KEY_ID", c.aws.access_key_id},
                                  {"TG_AWS_SECRET_ACCESS_KEY", c.aws.secret_access_key},
                                  {"TG_AWS_REGION", c.aws_region}},
                                 kScriptTimeout);
  ASSERT_TRUE(run.error.empty()) << run.error;
  EXPECT_FALSE(run.timed_out) << run.output;
  EXPECT_EQ(run.exit_code, std::optional<int>(0)) << "provider_sdk_check.mjs failed:\n"
                                                  << run.output;
  if (run.exit_code == 0) std::cout << run.output;
  int gemini_embed = 0, bedrock_invoke = 0, converse = 0;
  for (const auto& q : fake.Requests()) {
    gemini_embed += q.api == fakes::Api::kGeminiEmbeddings && q.status == 200;
    bedrock_invoke += q.api == fakes::Api::kBedrockInvoke && q.status == 200;
    converse += q.api == fakes::Api::kBedrock && q.status == 200;
  }
  EXPECT_EQ(gemini_embed, 2);
  EXPECT_EQ(bedrock_invoke, 2);
  EXPECT_EQ(converse, 1);
}

}  // namespace
}  // namespace tg::testing
