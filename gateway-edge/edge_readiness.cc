#include "tg/edge/edge_readiness.h"

#include <ctime>
#include <string>
#include <vector>

#include "tg/common/json_util.h"

namespace tg::edge {
namespace {

std::string Iso8601(std::chrono::system_clock::time_point t) {
  const std::time_t secs = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

HttpResponse Unavailable(const char* reason) {
  std::string body = R"({"status":"unavailable","reason":)";
  json::AppendQuoted(body, reason);
  body += "}";
  return JsonResponse(503, std::move(body));
}

bool Reachable(const std::shared_ptr<grpc::Channel>& channel) {
  return channel == nullptr || channel->GetState(false) != GRPC_CHANNEL_TRANSIENT_FAILURE;
}

}  // namespace

HttpResponse ReadinessAnswer(const ReadinessState& s) {
  if (s.shutting_down) return Unavailable("shutting down");
  if (!s.config.loaded) return Unavailable("no configuration loaded yet (config watch connecting)");

  std::vector<std::string> reasons;
  if (!s.config.connected) {
    std::string r = "config watch down";
    if (s.config.down_since) {
      const auto secs =
          std::chrono::duration_cast<std::chrono::seconds>(s.now - *s.config.down_since).count();
      r += " since " + Iso8601(*s.config.down_since) + " (" + std::to_string(secs) + " s)";
    }
    r += ": serving from the configuration snapshot at revision " +
         std::to_string(s.config_revision);
    reasons.push_back(std::move(r));
  }
  if (!s.keys_watching) {
    reasons.emplace_back(
        "key revocation watch down: cached keys are re-checked with tg-keyauth after 1 s");
  }
  if (!s.balancer_reachable) reasons.emplace_back("tg-balancer unreachable");
  if (!s.adapter_reachable) reasons.emplace_back("tg-adapter unreachable");

  std::string body = reasons.empty() ? R"({"status":"ok")" : R"({"status":"degraded")";
  body += R"(,"config_revision":)" + std::to_string(s.config_revision);
  if (!reasons.empty()) {
    body += R"(,"reasons":[)";
    for (size_t i = 0; i < reasons.size(); ++i) {
      if (i > 0) body += ",";
      json::AppendQuoted(body, reasons[i]);
    }
    body += "]";
  }
  body += "}";
  return JsonResponse(200, std::move(body));
}

EdgeReadiness::EdgeReadiness(const ConfigWatcher* config, const KeyCache* keys,
                             std::shared_ptr<grpc::Channel> balancer,
                             std::shared_ptr<grpc::Channel> adapter)
    : config_(config), keys_(keys), balancer_(std::move(balancer)), adapter_(std::move(adapter)) {}

HttpResponse EdgeReadiness::Answer() const {
  ReadinessState s;
  s.shutting_down = shutting_down_.load();
  s.config = config_->health();
  s.config_revision = config_->revision();
  s.keys_watching = keys_ == nullptr || keys_->watching();
  s.balancer_reachable = Reachable(balancer_);
  s.adapter_reachable = Reachable(adapter_);
  s.now = std::chrono::system_clock::now();
  return ReadinessAnswer(s);
}

}  // namespace tg::edge
