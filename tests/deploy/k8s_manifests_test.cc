// Size: one check per promise docs/OPERATIONS.md makes about the deploy files.
// The deployment files under deploy/ are code too: these tests parse them with
// yaml-cpp and check the promises docs/OPERATIONS.md makes about them (kinds,
// probes, non-root, placeholder secrets, compose start order), so a manifest
// edit that breaks one fails here rather than in a cluster.
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace {

namespace fs = std::filesystem;

const fs::path kDeployDir = TG_DEPLOY_DIR;
const fs::path kK8sDir = kDeployDir / "k8s";

// The five services: name -> gRPC port (0 for the HTTP edge) and metrics port.
struct ServiceSpec {
  int grpc_port;
  int metrics_port;
};
const std::map<std::string, ServiceSpec> kServices = {
    {"tg-config", {50051, 9091}},  {"tg-keyauth", {50052, 9092}}, {"tg-balancer", {50053, 9093}},
    {"tg-adapter", {50054, 9094}}, {"tg-edge", {0, 9090}},
};

// A node that tests false: what a missing key yields, without yaml-cpp's
// exception on indexing past it.
YAML::Node Missing() { return YAML::Node(YAML::NodeType::Undefined); }

// n[k0][k1]...; a key of digits indexes a sequence. Missing() when absent.
YAML::Node At(const YAML::Node& n, std::initializer_list<std::string_view> path) {
  YAML::Node cur = n;
  for (std::string_view key : path) {
    YAML::Node next = Missing();
    if (cur && cur.IsMap()) {
      // The const operator[]: the other one adds the key it does not find.
      if (YAML::Node v = std::as_const(cur)[std::string(key)]) next.reset(v);
    } else if (cur && cur.IsSequence() && !key.empty() &&
               std::all_of(key.begin(), key.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      size_t i = std::stoul(std::string(key));
      if (i < cur.size()) next.reset(std::as_const(cur)[i]);
    }
    cur.reset(next);  // rebind; `cur = next` would overwrite the document's node
    if (!cur) break;
  }
  return cur;
}

std::string Str(const YAML::Node& n) { return n && n.IsScalar() ? n.Scalar() : std::string(); }

int Int(const YAML::Node& n) {
  try {
    return n && n.IsScalar() ? n.as<int>() : -1;
  } catch (const YAML::Exception&) {
    return -1;
  }
}

std::string ReadFile(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// yaml-cpp resolves aliases but not YAML merge keys (`<<: *anchor`), which
// the compose file uses: look the key up in the map, then in what it merges.
YAML::Node Lookup(const YAML::Node& map, const std::string& key) {
  if (!map || !map.IsMap()) return Missing();
  if (YAML::Node v = map[key]) return v;
  const YAML::Node merged = map["<<"];
  if (!merged) return Missing();
  if (merged.IsMap()) return Lookup(merged, key);
  if (merged.IsSequence()) {
    for (const auto& m : merged) {
      if (YAML::Node v = Lookup(m, key)) return v;
    }
  }
  return Missing();
}

struct Resource {
  std::string file;
  YAML::Node doc;
  std::string kind() const { return Str(doc["kind"]); }
  std::string name() const { return Str(At(doc, {"metadata", "name"})); }
};

std::vector<fs::path> ManifestFiles() {
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(kK8sDir)) {
    if (e.is_regular_file() && e.path().extension() == ".yaml") files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

bool IsKustomization(const fs::path& p) { return p.filename() == "kustomization.yaml"; }

// Every Kubernetes object of deploy/k8s (kustomization.yaml apart).
std::vector<Resource> LoadResources() {
  std::vector<Resource> out;
  for (const auto& f : ManifestFiles()) {
    if (IsKustomization(f)) continue;
    for (const auto& doc : YAML::LoadAllFromFile(f.string())) {
      if (doc.IsNull()) continue;  // an empty document (a trailing ---)
      out.push_back({f.filename().string(), doc});
    }
  }
  return out;
}

std::vector<Resource> OfKind(const std::vector<Resource>& all, const std::string& kind) {
  std::vector<Resource> out;
  std::copy_if(all.begin(), all.end(), std::back_inserter(out),
               [&](const Resource& r) { return r.kind() == kind; });
  return out;
}

const Resource* Find(const std::vector<Resource>& all, const std::string& kind,
                     const std::string& name) {
  for (const auto& r : all) {
    if (r.kind() == kind && r.name() == name) return &r;
  }
  return nullptr;
}

std::set<std::string> Names(const std::vector<Resource>& rs) {
  std::set<std::string> out;
  for (const auto& r : rs) out.insert(r.name());
  return out;
}

std::set<std::string> ServiceNames() {
  std::set<std::string> out;
  for (const auto& [name, spec] : kServices) out.insert(name);
  return out;
}

// The single container of a Deployment's pod template.
YAML::Node Container(const Resource& deployment) {
  return At(deployment.doc, {"spec", "template", "spec", "containers", "0"});
}

std::set<int> ContainerPorts(const YAML::Node& container) {
  std::set<int> out;
  for (const auto& p : container["ports"]) out.insert(Int(p["containerPort"]));
  return out;
}

class K8sManifests : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { resources_ = new std::vector<Resource>(LoadResources()); }
  static void TearDownTestSuite() {
    delete resources_;
    resources_ = nullptr;
  }
  static const std::vector<Resource>& all() { return *resources_; }

 private:
  static std::vector<Resource>* resources_;
};
std::vector<Resource>* K8sManifests::resources_ = nullptr;

TEST(K8sFiles, EveryYamlFileParses) {
  const auto files = ManifestFiles();
  ASSERT_GE(files.size(), 2u) << "no manifests in " << kK8sDir;
  for (const auto& f : files) {
    SCOPED_TRACE(f.string());
    std::vector<YAML::Node> docs;
    EXPECT_NO_THROW(docs = YAML::LoadAllFromFile(f.string()));
    EXPECT_FALSE(docs.empty());
  }
}

TEST_F(K8sManifests, EveryDocumentHasApiVersionKindNameAndTheNamespace) {
  ASSERT_FALSE(all().empty());
  for (const auto& r : all()) {
    SCOPED_TRACE(r.file + ": " + r.kind() + "/" + r.name());
    ASSERT_TRUE(r.doc.IsMap());
    EXPECT_FALSE(Str(r.doc["apiVersion"]).empty());
    EXPECT_FALSE(r.kind().empty());
    EXPECT_FALSE(r.name().empty());
    if (r.kind() != "Namespace") {
      EXPECT_EQ(Str(At(r.doc, {"metadata", "namespace"})), "trustgate");
    }
  }
}

TEST_F(K8sManifests, ExpectedKindsExist) {
  EXPECT_NE(Find(all(), "Namespace", "trustgate"), nullptr);
  EXPECT_EQ(OfKind(all(), "ConfigMap").size(), 1u);
  EXPECT_EQ(OfKind(all(), "Secret").size(), 1u);
  EXPECT_EQ(Names(OfKind(all(), "Deployment")), ServiceNames());
  for (const auto& name : ServiceNames()) {
    EXPECT_NE(Find(all(), "Service", name), nullptr) << name;
    EXPECT_NE(Find(all(), "PodDisruptionBudget", name), nullptr) << name;
  }
  EXPECT_EQ(Names(OfKind(all(), "HorizontalPodAutoscaler")),
            (std::set<std::string>{"tg-edge", "tg-adapter"}));
}

TEST_F(K8sManifests, ApiVersionsAreTheStableOnes) {
  const std::map<std::string, std::string> expected = {
      {"Namespace", "v1"},
      {"ConfigMap", "v1"},
      {"Secret", "v1"},
      {"Service", "v1"},
      {"Deployment", "apps/v1"},
      {"HorizontalPodAutoscaler", "autoscaling/v2"},
      {"PodDisruptionBudget", "policy/v1"},
  };
  for (const auto& r : all()) {
    auto it = expected.find(r.kind());
    ASSERT_NE(it, expected.end()) << "unexpected kind " << r.kind() << " in " << r.file;
    EXPECT_EQ(Str(r.doc["apiVersion"]), it->second) << r.file << ": " << r.kind();
  }
}

TEST_F(K8sManifests, DeploymentsAreReplicatedAndSelectTheirOwnPods) {
  for (const auto& d : OfKind(all(), "Deployment")) {
    SCOPED_TRACE(d.name());
    EXPECT_GE(Int(At(d.doc, {"spec", "replicas"})), 2);
    const auto selector = At(d.doc, {"spec", "selector", "matchLabels"});
    const auto labels = At(d.doc, {"spec", "template", "metadata", "labels"});
    ASSERT_TRUE(selector.IsMap());
    for (const auto& kv : selector) {
      EXPECT_EQ(Str(labels[kv.first.Scalar()]), Str(kv.second)) << kv.first.Scalar();
    }
    EXPECT_EQ(Str(At(Container(d), {"command", "0"})), d.name());
    EXPECT_TRUE(At(Container(d), {"resources", "requests", "cpu"}));
    EXPECT_TRUE(At(Container(d), {"resources", "requests", "memory"}));
    EXPECT_TRUE(At(Container(d), {"resources", "limits", "memory"}));
  }
}

// The gRPC ports take only mutual TLS, which kubelet's native gRPC probes
// cannot do: the probes ask the metrics port's /healthz, which follows the
// gRPC server's overall health.
TEST_F(K8sManifests, GrpcDeploymentsProbeTheMetricsHealthz) {
  for (const auto& [name, spec] : kServices) {
    if (spec.grpc_port == 0) continue;
    SCOPED_TRACE(name);
    const Resource* d = Find(all(), "Deployment", name);
    ASSERT_NE(d, nullptr);
    const auto c = Container(*d);
    EXPECT_TRUE(ContainerPorts(c).count(spec.grpc_port));
    int metrics_port = 0;
    for (const auto& p : c["ports"]) {
      if (Str(p["name"]) == "metrics") metrics_port = Int(p["containerPort"]);
    }
    EXPECT_EQ(metrics_port, spec.metrics_port);
    for (const char* probe : {"startupProbe", "readinessProbe", "livenessProbe"}) {
      SCOPED_TRACE(probe);
      EXPECT_FALSE(At(c, {probe, "grpc"})) << "native gRPC probes cannot do mutual TLS";
      const auto http = At(c, {probe, "httpGet"});
      ASSERT_TRUE(http.IsMap());
      EXPECT_EQ(Str(http["path"]), "/healthz");
      EXPECT_TRUE(Str(http["port"]) == "metrics" || Int(http["port"]) == spec.metrics_port)
          << Str(http["port"]);
    }
  }
}

// Each pod mounts its own identity's TLS Secret, and the kustomization
// generates one per service from tg-certs' files (never the CA's key).
TEST_F(K8sManifests, EveryDeploymentMountsItsOwnGrpcIdentity) {
  const YAML::Node k = YAML::LoadFile((kK8sDir / "kustomization.yaml").string());
  std::map<std::string, std::string> generated;  // secret -> joined files
  for (const auto& g : k["secretGenerator"]) {
    std::string files;
    for (const auto& f : g["files"]) files += Str(f) + " ";
    generated[Str(g["name"])] = files;
    EXPECT_EQ(Str(g["type"]), "kubernetes.io/tls");
    EXPECT_EQ(files.find("ca-key"), std::string::npos) << files;
  }
  const auto settings = OfKind(all(), "ConfigMap").at(0).doc["data"];
  EXPECT_EQ(Str(settings["TG_GRPC_TLS_CA"]), "/etc/trustgate/tls/ca.crt");
  EXPECT_EQ(Str(settings["TG_GRPC_TLS_CERT"]), "/etc/trustgate/tls/tls.crt");
  EXPECT_EQ(Str(settings["TG_GRPC_TLS_KEY"]), "/etc/trustgate/tls/tls.key");
  EXPECT_FALSE(settings["TG_GRPC_INSECURE"]);
  for (const auto& [name, spec] : kServices) {
    SCOPED_TRACE(name);
    const Resource* d = Find(all(), "Deployment", name);
    ASSERT_NE(d, nullptr);
    std::string volume;
    for (const auto& m : Container(*d)["volumeMounts"]) {
      if (Str(m["mountPath"]) == "/etc/trustgate/tls") {
        volume = Str(m["name"]);
        EXPECT_TRUE(m["readOnly"] && m["readOnly"].as<bool>());
      }
    }
    ASSERT_FALSE(volume.empty());
    std::string secret;
    for (const auto& v : At(d->doc, {"spec", "template", "spec", "volumes"})) {
      if (Str(v["name"]) == volume) secret = Str(At(v, {"secret", "secretName"}));
    }
    EXPECT_EQ(secret, name + "-tls");
    ASSERT_TRUE(generated.count(secret)) << "no secretGenerator for " << secret;
    EXPECT_NE(generated[secret].find("tls.crt=tls/" + name + ".pem"), std::string::npos);
    EXPECT_NE(generated[secret].find("tls.key=tls/" + name + "-key.pem"), std::string::npos);
    EXPECT_EQ(Int(At(d->doc, {"spec", "template", "spec", "securityContext", "fsGroup"})), 10001);
  }
}

TEST_F(K8sManifests, EdgeIsReadyOnHealthz) {
  const Resource* d = Find(all(), "Deployment", "tg-edge");
  ASSERT_NE(d, nullptr);
  const auto c = Container(*d);
  EXPECT_EQ(Str(At(c, {"readinessProbe", "httpGet", "path"})), "/healthz");
  EXPECT_EQ(Int(At(c, {"readinessProbe", "httpGet", "port"})), 8080);
  EXPECT_TRUE(c["livenessProbe"].IsMap());
  EXPECT_TRUE(ContainerPorts(c).count(8080));
  EXPECT_TRUE(ContainerPorts(c).count(8081));
}

TEST_F(K8sManifests, EveryDeploymentRunsAsNonRootOnAReadOnlyRoot) {
  for (const auto& d : OfKind(all(), "Deployment")) {
    SCOPED_TRACE(d.name());
    const auto pod = At(d.doc, {"spec", "template", "spec", "securityContext"});
    const auto c = Container(d)["securityContext"];
    const bool non_root = (pod["runAsNonRoot"] && pod["runAsNonRoot"].as<bool>()) ||
                          (c["runAsNonRoot"] && c["runAsNonRoot"].as<bool>());
    EXPECT_TRUE(non_root);
    if (pod["runAsUser"]) {
      EXPECT_NE(Int(pod["runAsUser"]), 0);
    }
    if (c["runAsUser"]) {
      EXPECT_NE(Int(c["runAsUser"]), 0);
    }
    ASSERT_TRUE(c.IsMap());
    EXPECT_TRUE(c["readOnlyRootFilesystem"] && c["readOnlyRootFilesystem"].as<bool>());
    EXPECT_TRUE(c["allowPrivilegeEscalation"] && !c["allowPrivilegeEscalation"].as<bool>());
  }
}

// The metrics flag of a service: tg-edge's TG_METRICS_LISTEN, the others'
// TG_<SERVICE>_METRICS_LISTEN (scripts/up runs them all from one environment).
std::string MetricsVar(const std::string& service) {
  if (service == "tg-edge") return "TG_METRICS_LISTEN";
  std::string upper = service.substr(3);
  for (auto& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return "TG_" + upper + "_METRICS_LISTEN";
}

TEST_F(K8sManifests, MetricsPortsAreAnnotatedForScraping) {
  for (const auto& [name, spec] : kServices) {
    SCOPED_TRACE(name);
    const Resource* d = Find(all(), "Deployment", name);
    ASSERT_NE(d, nullptr);
    const auto annotations = At(d->doc, {"spec", "template", "metadata", "annotations"});
    EXPECT_EQ(Str(annotations["prometheus.io/scrape"]), "true");
    EXPECT_EQ(Str(annotations["prometheus.io/port"]), std::to_string(spec.metrics_port));
    EXPECT_EQ(Str(annotations["prometheus.io/path"]), "/metrics");
    EXPECT_TRUE(ContainerPorts(Container(*d)).count(spec.metrics_port));
    std::string listen;
    for (const auto& e : Container(*d)["env"]) {
      if (Str(e["name"]) == MetricsVar(name)) listen = Str(e["value"]);
    }
    EXPECT_EQ(listen, "0.0.0.0:" + std::to_string(spec.metrics_port));
  }
}

TEST_F(K8sManifests, SettingsAndSecretReferencesResolve) {
  const auto configmaps = OfKind(all(), "ConfigMap");
  const auto secrets = OfKind(all(), "Secret");
  ASSERT_EQ(configmaps.size(), 1u);
  ASSERT_EQ(secrets.size(), 1u);
  const auto& cm = configmaps[0];
  const auto& secret = secrets[0];
  for (const auto& d : OfKind(all(), "Deployment")) {
    SCOPED_TRACE(d.name());
    const auto c = Container(d);
    bool uses_settings = false;
    for (const auto& src : c["envFrom"]) {
      if (src["configMapRef"]) {
        EXPECT_EQ(Str(At(src, {"configMapRef", "name"})), cm.name());
        uses_settings = true;
      }
      if (src["secretRef"]) {
        EXPECT_EQ(Str(At(src, {"secretRef", "name"})), secret.name());
      }
    }
    EXPECT_TRUE(uses_settings);
    for (const auto& e : c["env"]) {
      const auto ref = At(e, {"valueFrom", "secretKeyRef"});
      if (!ref) continue;
      EXPECT_EQ(Str(ref["name"]), secret.name());
      EXPECT_TRUE(At(secret.doc, {"stringData", Str(ref["key"])}))
          << "missing key " << Str(ref["key"]);
    }
  }
}

// gRPC clients dial dns:/// names of headless Services, so that the channel
// sees every replica (docs/OPERATIONS.md, "Scaling out").
TEST_F(K8sManifests, InternalGrpcServicesAreHeadlessAndDialedThroughDns) {
  const auto cm = OfKind(all(), "ConfigMap").at(0).doc["data"];
  const std::map<std::string, std::string> addr_var = {{"tg-config", "TG_CONFIG_ADDR"},
                                                       {"tg-keyauth", "TG_KEYAUTH_ADDR"},
                                                       {"tg-balancer", "TG_BALANCER_ADDR"},
                                                       {"tg-adapter", "TG_ADAPTER_ADDR"}};
  for (const auto& [name, var] : addr_var) {
    SCOPED_TRACE(name);
    const Resource* svc = Find(all(), "Service", name);
    ASSERT_NE(svc, nullptr);
    EXPECT_EQ(Str(At(svc->doc, {"spec", "clusterIP"})), "None");
    const int port = kServices.at(name).grpc_port;
    bool has_port = false;
    for (const auto& p : At(svc->doc, {"spec", "ports"})) has_port |= Int(p["port"]) == port;
    EXPECT_TRUE(has_port);
    EXPECT_EQ(Str(cm[var]),
              "dns:///" + name + ".trustgate.svc.cluster.local:" + std::to_string(port));
  }
}

TEST_F(K8sManifests, ServicesAndBudgetsSelectTheirDeploymentsPods) {
  for (const auto& name : ServiceNames()) {
    SCOPED_TRACE(name);
    const Resource* d = Find(all(), "Deployment", name);
    ASSERT_NE(d, nullptr);
    const auto labels = At(d->doc, {"spec", "template", "metadata", "labels"});
    const Resource* svc = Find(all(), "Service", name);
    const Resource* pdb = Find(all(), "PodDisruptionBudget", name);
    ASSERT_NE(svc, nullptr);
    ASSERT_NE(pdb, nullptr);
    const auto svc_selector = At(svc->doc, {"spec", "selector"});
    const auto pdb_selector = At(pdb->doc, {"spec", "selector", "matchLabels"});
    for (const auto& selector : {svc_selector, pdb_selector}) {
      ASSERT_TRUE(selector.IsMap());
      for (const auto& kv : selector) {
        EXPECT_EQ(Str(labels[kv.first.Scalar()]), Str(kv.second)) << kv.first.Scalar();
      }
    }
  }
}

TEST_F(K8sManifests, AutoscalersTargetTheirDeploymentOnCpu) {
  for (const auto& h : OfKind(all(), "HorizontalPodAutoscaler")) {
    SCOPED_TRACE(h.name());
    const auto spec = h.doc["spec"];
    EXPECT_EQ(Str(At(spec, {"scaleTargetRef", "kind"})), "Deployment");
    EXPECT_EQ(Str(At(spec, {"scaleTargetRef", "name"})), h.name());
    EXPECT_GE(Int(spec["minReplicas"]), 2);
    EXPECT_GT(Int(spec["maxReplicas"]), Int(spec["minReplicas"]));
    EXPECT_EQ(Str(At(spec, {"metrics", "0", "resource", "name"})), "cpu");
  }
}

// Placeholders only: a committed manifest must never carry a real secret.
TEST_F(K8sManifests, SecretsHoldOnlyPlaceholders) {
  for (const auto& s : OfKind(all(), "Secret")) {
    SCOPED_TRACE(s.name());
    const auto data = s.doc["data"];
    EXPECT_TRUE(!data || data.size() == 0) << "use stringData with CHANGE-ME placeholders";
    const auto string_data = s.doc["stringData"];
    ASSERT_TRUE(string_data.IsMap());
    EXPECT_GE(string_data.size(), 1u);
    for (const auto& kv : string_data) {
      const std::string v = Str(kv.second);
      EXPECT_TRUE(v.empty() || v.find("CHANGE-ME") != std::string::npos)
          << kv.first.Scalar() << " looks like a real value";
    }
  }
}

TEST(K8sFiles, KustomizationListsEveryManifest) {
  const YAML::Node k = YAML::LoadFile((kK8sDir / "kustomization.yaml").string());
  EXPECT_EQ(Str(k["kind"]), "Kustomization");
  EXPECT_EQ(Str(k["namespace"]), "trustgate");
  std::set<std::string> listed;
  for (const auto& r : k["resources"]) listed.insert(Str(r));
  std::set<std::string> present;
  for (const auto& f : ManifestFiles()) {
    if (!IsKustomization(f)) present.insert(f.filename().string());
  }
  EXPECT_EQ(listed, present);
}

// ---------------------------------------------------------------- compose

class Compose : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_NO_THROW(root_ = YAML::LoadFile((kDeployDir / "docker-compose.yml").string()));
    services_ = At(root_, {"services"});
    ASSERT_TRUE(services_.IsMap());
  }
  YAML::Node root_;
  YAML::Node services_;
};

TEST_F(Compose, HasTheTenServices) {
  std::set<std::string> names;
  for (const auto& kv : services_) names.insert(kv.first.Scalar());
  std::set<std::string> expected = ServiceNames();
  expected.insert({"postgres", "redis", "jaeger", "prometheus", "tg-certs"});
  EXPECT_EQ(names, expected);
}

TEST_F(Compose, EveryTrustGateServiceHasAHealthcheckAndWaitsForItsDependencies) {
  for (const auto& [name, spec] : kServices) {
    SCOPED_TRACE(name);
    const YAML::Node s = At(services_, {name});
    ASSERT_TRUE(s.IsMap());

    const YAML::Node test = Lookup(s["healthcheck"], "test");
    ASSERT_TRUE(test.IsSequence());
    std::string joined;
    for (const auto& t : test) joined += Str(t) + " ";
    if (spec.grpc_port != 0) {
      EXPECT_NE(joined.find("tg-healthcheck 127.0.0.1:" + std::to_string(spec.grpc_port)),
                std::string::npos)
          << joined;
    } else {
      EXPECT_NE(joined.find("/healthz"), std::string::npos) << joined;
    }

    const YAML::Node deps = s["depends_on"];
    ASSERT_TRUE(deps.IsMap()) << "depends_on must use the long form with conditions";
    ASSERT_GE(deps.size(), 1u);
    bool waits_for_health = false;
    for (const auto& kv : deps) {
      const std::string dep = kv.first.Scalar();
      const std::string condition = Str(kv.second["condition"]);
      ASSERT_TRUE(At(services_, {dep})) << "depends on unknown service " << dep;
      EXPECT_TRUE(condition == "service_healthy" || condition == "service_started" ||
                  condition == "service_completed_successfully")
          << dep;
      if (condition == "service_healthy") {
        waits_for_health = true;
        EXPECT_TRUE(At(services_, {dep, "healthcheck"}))
            << dep << " has no healthcheck to wait for";
      }
    }
    EXPECT_TRUE(waits_for_health);
    EXPECT_EQ(Str(At(deps, {"tg-certs", "condition"})), "service_completed_successfully");
  }
}

// tg-certs fills the shared `tls` volume once; every service mounts it
// read-only and finds its own certificate by name.
TEST_F(Compose, ServicesMountTheCertificatesTgCertsMakes) {
  const YAML::Node certs = At(services_, {"tg-certs"});
  ASSERT_TRUE(certs.IsMap());
  EXPECT_EQ(Str(Lookup(certs, "command")[0]), "tg-certs");
  EXPECT_EQ(Str(Lookup(certs, "command")[1]), "--out=/etc/trustgate/tls");
  EXPECT_EQ(Str(Lookup(certs, "volumes")[0]), "tls:/etc/trustgate/tls");
  EXPECT_TRUE(At(root_, {"volumes"})["tls"]);
  for (const auto& [name, spec] : kServices) {
    SCOPED_TRACE(name);
    const YAML::Node s = At(services_, {name});
    bool mounted = false;
    for (const auto& v : Lookup(s, "volumes")) mounted |= Str(v) == "tls:/etc/trustgate/tls:ro";
    EXPECT_TRUE(mounted);
    EXPECT_EQ(Str(Lookup(Lookup(s, "environment"), "TG_GRPC_TLS_DIR")), "/etc/trustgate/tls");
  }
}

TEST_F(Compose, TrustGateServicesShareTheImageAndTheObservabilitySettings) {
  for (const auto& [name, spec] : kServices) {
    SCOPED_TRACE(name);
    const YAML::Node s = At(services_, {name});
    EXPECT_EQ(Str(Lookup(Lookup(s, "build"), "dockerfile")), "deploy/Dockerfile");
    EXPECT_EQ(Str(Lookup(s, "command")[0]), name);
    const YAML::Node env = Lookup(s, "environment");
    EXPECT_EQ(Str(Lookup(env, MetricsVar(name))), "0.0.0.0:" + std::to_string(spec.metrics_port));
    EXPECT_EQ(Str(Lookup(env, "OTEL_EXPORTER_OTLP_ENDPOINT")), "http://jaeger:4318");
    EXPECT_TRUE(Lookup(s, "env_file").IsSequence());
  }
  EXPECT_EQ(Str(Lookup(At(services_, {"tg-balancer", "environment"}), "TG_REDIS_URL")),
            "redis://redis:6379");
  EXPECT_TRUE(At(services_, {"postgres", "volumes"}).IsSequence());
}

TEST_F(Compose, PrometheusScrapesEveryMetricsPort) {
  const YAML::Node prom = YAML::LoadFile((kDeployDir / "prometheus.yml").string());
  std::set<std::string> targets;
  for (const auto& job : prom["scrape_configs"]) {
    for (const auto& sc : job["static_configs"]) {
      for (const auto& t : sc["targets"]) targets.insert(Str(t));
    }
  }
  for (const auto& [name, spec] : kServices) {
    EXPECT_TRUE(targets.count(name + ":" + std::to_string(spec.metrics_port))) << name;
  }
}

TEST(ComposeEnvFile, DocumentsEverySecretTheServicesNeed) {
  const std::string env = ReadFile(kDeployDir / "tg.env.example");
  for (const char* key :
       {"TG_ADMIN_JWT_SECRET=", "TG_SECRETS_KEY=", "TG_PG_DSN=", "POSTGRES_PASSWORD="}) {
    EXPECT_NE(env.find(std::string("\n") + key), std::string::npos) << key;
  }
}

TEST(Dockerfile, BuildsEveryExecutable) {
  const std::string dockerfile = ReadFile(kDeployDir / "Dockerfile");
  for (const char* exe : {"tg-config", "tg-keyauth", "tg-balancer", "tg-adapter", "tg-edge",
                          "tg-healthcheck", "tg-admin-token", "tg-certs"}) {
    EXPECT_NE(dockerfile.find(std::string("/src/build/bin/") + exe), std::string::npos) << exe;
  }
  EXPECT_NE(dockerfile.find("libyaml-cpp-dev"), std::string::npos);
  EXPECT_NE(dockerfile.find("USER 10001"), std::string::npos);
}

}  // namespace
