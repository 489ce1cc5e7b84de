#pragma once

// tg-adapter in process, as its integration tests use it: the fake provider,
// a fake tg-config holding one upstream "u1" whose targets point at the fake
// with the fake's credentials, a real ConfigWatcher, the libcurl client and
// the ProviderAdapterService over mutual TLS.
//
//   SetUp: StartFake(); AddTarget(...)...; StartAdapter(options, …);
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <thread>

#include "fake_config.h"
#include "fake_provider.h"
#include "test_tls.h"
#include "tg/adapter/http/curl_http_client.h"
#include "tg/adapter/service/adapter_service.h"
#include "tg/common/config_watcher.h"
#include "tg/common/grpc_server.h"
#include "tg/common/worker_pool.h"
#include "tg/v1/adapter.grpc.pb.h"

namespace tg::adapter::it {

// A loopback port nothing listens on.
inline int ClosedPort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(a);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

class AdapterFixture : public ::testing::Test {
 protected:
  void StartFake() {
    std::string error;
    ASSERT_TRUE(fake_.Start(&error)) << error;
    upstream_ = snapshot_.add_upstreams();
    upstream_->set_id("u1");
    upstream_->set_name("ai");
  }

  // A target of "u1" for `provider` at the fake (or at `port`), with the
  // fake's credentials for it.
  tg::v1::Target* AddTarget(const std::string& id, const std::string& provider, int port = -1) {
    const auto& c = fake_.credentials();
    auto* t = upstream_->add_targets();
    t->set_id(id);
    t->set_provider(provider);
    if (provider != "azure") {
      t->set_host("127.0.0.1");
      t->set_port(port < 0 ? fake_.port() : port);
      t->set_protocol("http");
    }
    auto* cr = t->mutable_credentials();
    if (provider == "openai") cr->set_api_key(c.openai_key);
    if (provider == "anthropic") cr->set_api_key(c.anthropic_key);
    if (provider == "gemini") cr->set_api_key(c.gemini_key);
    if (provider == "azure") {
      cr->set_api_key(c.azure_key);
      cr->set_azure_endpoint(fake_.base_url());
    }
    if (provider == "bedrock") {
      cr->set_aws_access_key_id(c.aws.access_key_id);
      cr->set_aws_secret_access_key(c.aws.secret_access_key);
      cr->set_aws_region(c.aws_region);
    }
    return t;
  }

  // Serves the targets added through a fake tg-config, waits for the
  // watcher to hold them, and starts the adapter with `options`.
  void StartAdapter(AdapterServiceOptions options, size_t workers, bool entra) {
    for (const auto& t : upstream_->targets()) {
      targets_[t.id()] = t;
      targets_[t.id()].clear_credentials();  // as the balancer hands them out
    }
    std::string error;
    config_ = std::make_unique<fakes::FakeConfigService>(snapshot_);
    config_server_ = GrpcServer::Start({.listen = "127.0.0.1:0",
                                        .health_names = {},
                                        .shutdown_grace = std::chrono::seconds(0),
                                        .tls = tg::testing::TestTls(kConfigIdentity)},
                                       {config_.get()}, &error);
    ASSERT_NE(config_server_, nullptr) << error;
    ConfigWatcherOptions wo;
    wo.include_credentials = true;
    watcher_ = std::make_unique<ConfigWatcher>(
        tg::testing::TestChannel(config_server_->port(), kConfigIdentity, kAdapterIdentity), wo);
    watcher_->Start();
    auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (watcher_->revision() < 3 && std::chrono::steady_clock::now() < until) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    ASSERT_EQ(watcher_->revision(), 3);

    http::CurlHttpClientOptions ho;
    ho.egress.allow_private = true;  // the fake provider listens on loopback
    client_ = std::make_unique<http::CurlHttpClient>(ho);
    if (entra) {
      EntraTokenSource::Options eo;
      eo.endpoint = fake_.base_url() + "/metadata/identity/oauth2/token";
      entra_ = std::make_unique<EntraTokenSource>(*client_, eo);
    }
    workers_ = std::make_unique<WorkerPool>(workers);
    service_ =
        std::make_unique<AdapterServiceImpl>(*watcher_, *client_, entra_.get(), *workers_, options);
    server_ = GrpcServer::Start({.listen = "127.0.0.1:0",
                                 .health_names = {},
                                 .shutdown_grace = std::chrono::seconds(1),
                                 .tls = tg::testing::TestTls(kAdapterIdentity)},
                                {service_.get()}, &error);
    ASSERT_NE(server_, nullptr) << error;
  }

  // A stub to the adapter as `caller` (tg-edge calls Invoke, tg-balancer Probe).
  std::unique_ptr<tg::v1::ProviderAdapterService::Stub> Stub(std::string_view caller) {
    return tg::v1::ProviderAdapterService::NewStub(
        tg::testing::TestChannel(server_->port(), kAdapterIdentity, caller));
  }

  void TearDown() override {
    if (server_) server_->Shutdown();
    server_.reset();
    service_.reset();
    if (watcher_) watcher_->Stop();
    if (config_server_) config_server_->Shutdown();
    client_.reset();  // cancels what is left before the workers and the fake go
    workers_.reset();
    fake_.Stop();
  }

  fakes::FakeProvider fake_;
  tg::v1::ConfigSnapshot snapshot_;
  tg::v1::Upstream* upstream_ = nullptr;
  std::map<std::string, tg::v1::Target> targets_;  // credentials cleared
  std::unique_ptr<fakes::FakeConfigService> config_;
  std::unique_ptr<GrpcServer> config_server_;
  std::unique_ptr<ConfigWatcher> watcher_;
  std::unique_ptr<http::CurlHttpClient> client_;
  std::unique_ptr<EntraTokenSource> entra_;
  std::unique_ptr<WorkerPool> workers_;
  std::unique_ptr<AdapterServiceImpl> service_;
  std::unique_ptr<GrpcServer> server_;
};

}  // namespace tg::adapter::it
