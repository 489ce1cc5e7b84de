// The default ports live in tg/common/service_ports.h; the mains take their
// defaults from it. scripts/up and the deploy files name the same ports by
// hand: this test reads them and holds them to the header.
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <regex>
#include <sstream>
#include <string>

#include "tg/common/service_ports.h"

namespace tg {
namespace {

std::string Read(const std::string& relative) {
  std::ifstream in(std::string(TG_SOURCE_DIR) + "/" + relative);
  EXPECT_TRUE(in.good()) << relative;
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Every TG_*_LISTEN / TG_*_ADDR setting in `text`: its name and the port of
// the first address given for it (on its line or, for a Kubernetes env entry
// `- name: X` + `value: "…"`, the next one).
std::multimap<std::string, int> PortsIn(const std::string& text) {
  std::multimap<std::string, int> found;
  static const std::regex kSetting(
      R"((TG_[A-Z_]+_(?:LISTEN|ADDR))\b[^\n]*?(?:\n[^\n]*?value:[^\n]*?)?:(\d{2,5})\b)");
  for (auto it = std::sregex_iterator(text.begin(), text.end(), kSetting);
       it != std::sregex_iterator(); ++it) {
    found.emplace((*it)[1].str(), std::stoi((*it)[2].str()));
  }
  return found;
}

int Expected(const std::string& name) {
  static const std::map<std::string, int> kPorts = {
      {"TG_CONFIG_LISTEN", ports::kConfig},
      {"TG_CONFIG_ADDR", ports::kConfig},
      {"TG_KEYAUTH_LISTEN", ports::kKeyauth},
      {"TG_KEYAUTH_ADDR", ports::kKeyauth},
      {"TG_BALANCER_LISTEN", ports::kBalancer},
      {"TG_BALANCER_ADDR", ports::kBalancer},
      {"TG_ADAPTER_LISTEN", ports::kAdapter},
      {"TG_ADAPTER_ADDR", ports::kAdapter},
      {"TG_ADMIN_LISTEN", ports::kAdmin},
      {"TG_PROXY_LISTEN", ports::kProxy},
      {"TG_METRICS_LISTEN", ports::kEdgeMetrics},
      {"TG_CONFIG_METRICS_LISTEN", ports::kConfigMetrics},
      {"TG_KEYAUTH_METRICS_LISTEN", ports::kKeyauthMetrics},
      {"TG_BALANCER_METRICS_LISTEN", ports::kBalancerMetrics},
      {"TG_ADAPTER_METRICS_LISTEN", ports::kAdapterMetrics},
  };
  auto it = kPorts.find(name);
  return it == kPorts.end() ? -1 : it->second;
}

TEST(ServicePorts, ScriptsAndDeployFilesUseTheDefaultPorts) {
  int checked = 0;
  for (const char* file :
       {"scripts/up", "deploy/docker-compose.yml", "deploy/k8s/settings.yaml",
        "deploy/k8s/tg-config.yaml", "deploy/k8s/tg-keyauth.yaml", "deploy/k8s/tg-balancer.yaml",
        "deploy/k8s/tg-adapter.yaml", "deploy/k8s/tg-edge.yaml"}) {
    for (const auto& [name, port] : PortsIn(Read(file))) {
      const int expected = Expected(name);
      if (expected < 0) continue;  // not a service address (e.g. TG_OTLP_…)
      EXPECT_EQ(port, expected) << file << ": " << name;
      ++checked;
    }
  }
  // scripts/up sets 10, docker-compose and Kubernetes one per service and more.
  EXPECT_GE(checked, 30);
}

TEST(ServicePorts, TheCheckSeesAMismatch) {
  auto found = PortsIn(
      "export TG_CONFIG_LISTEN=${TG_CONFIG_LISTEN:-127.0.0.1:50099}\n"
      "            - name: TG_METRICS_LISTEN\n"
      "              value: \"0.0.0.0:9999\"\n");
  ASSERT_EQ(found.size(), 2u);
  EXPECT_EQ(found.find("TG_CONFIG_LISTEN")->second, 50099);
  EXPECT_EQ(found.find("TG_METRICS_LISTEN")->second, 9999);
  EXPECT_EQ(ports::Loopback(ports::kConfig), "127.0.0.1:50051");
}

}  // namespace
}  // namespace tg
