#include "fake_config.h"

#include <google/protobuf/util/time_util.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <utility>

#include "tg/common/json_util.h"

namespace tg::fakes {
namespace {

google::protobuf::Timestamp Now() { return google::protobuf::util::TimeUtil::GetCurrentTime(); }

grpc::Status NotFound(const std::string& what, const std::string& id) {
  return grpc::Status(grpc::StatusCode::NOT_FOUND, what + " " + id + " not found");
}

template <typename Repeated>
auto* FindById(Repeated* items, const std::string& id) {
  auto it = std::find_if(items->begin(), items->end(), [&](const auto& x) { return x.id() == id; });
  return it == items->end() ? nullptr : &*it;
}

}  // namespace

FakeConfigService::FakeConfigService(tg::v1::ConfigSnapshot snapshot, int64_t revision)
    : state_(std::move(snapshot)), revision_(revision), state_revision_(revision) {}

tg::v1::ConfigSnapshot FakeConfigService::SnapshotFromJson(const std::string& text) {
  tg::v1::ConfigSnapshot snapshot;
  std::string error;
  EXPECT_TRUE(json::ParseProto(text, &snapshot, &error)) << error;
  return snapshot;
}

void FakeConfigService::SetSnapshot(tg::v1::ConfigSnapshot snapshot, int64_t revision) {
  std::lock_guard lock(mu_);
  state_ = std::move(snapshot);
  revision_ = state_revision_ = revision;
  state_end_ = log_.size();
}

void FakeConfigService::Push(tg::v1::WatchEvent event) {
  std::lock_guard lock(mu_);
  revision_ = std::max(revision_, event.revision());
  log_.push_back({std::move(event), Clock::now()});
  cv_.notify_all();
}

void FakeConfigService::SetHeartbeat(std::chrono::milliseconds every) {
  std::lock_guard lock(mu_);
  heartbeat_ = every;
}

void FakeConfigService::FailNext(const std::string& method, grpc::Status status) {
  std::lock_guard lock(mu_);
  failures_[method] = std::move(status);
}

void FakeConfigService::SetPublishDelay(std::chrono::milliseconds delay) {
  std::lock_guard lock(mu_);
  publish_delay_ = delay;
}

void FakeConfigService::SetPublish(bool publish) {
  std::lock_guard lock(mu_);
  publish_ = publish;
}

void FakeConfigService::EndStreams() {
  std::lock_guard lock(mu_);
  ++stream_generation_;
  cv_.notify_all();
}

void FakeConfigService::Stop() {
  std::lock_guard lock(mu_);
  stopping_ = true;
  cv_.notify_all();
}

int64_t FakeConfigService::revision() const {
  std::lock_guard lock(mu_);
  return revision_;
}

int FakeConfigService::watches() const {
  std::lock_guard lock(mu_);
  return watches_;
}

std::vector<tg::v1::WatchRequest> FakeConfigService::watch_requests() const {
  std::lock_guard lock(mu_);
  return watch_requests_;
}

std::optional<tg::v1::CreateUpstreamRequest> FakeConfigService::last_upstream_create() const {
  std::lock_guard lock(mu_);
  return last_upstream_create_;
}

std::optional<tg::v1::UpdateUpstreamRequest> FakeConfigService::last_upstream_update() const {
  std::lock_guard lock(mu_);
  return last_upstream_update_;
}

std::optional<grpc::Status> FakeConfigService::Injected(const std::string& method) {
  auto it = failures_.find(method);
  if (it == failures_.end()) return std::nullopt;
  grpc::Status s = it->second;
  failures_.erase(it);
  return s;
}

int64_t FakeConfigService::Publish(const tg::v1::ConfigChange& change) {
  revision_ = std::max(revision_, state_revision_) + 1;
  state_revision_ = revision_;
  if (publish_) {
    Logged l;
    l.event.set_revision(revision_);
    *l.event.mutable_change() = change;
    l.release_at = Clock::now() + publish_delay_;
    log_.push_back(std::move(l));
    cv_.notify_all();
  }
  // The state holds the change (published late, or never, or not): a Watch
  // that starts now gets it in its snapshot, as a real tg-config's snapshot
  // holds every committed change.
  state_end_ = log_.size();
  return revision_;
}

grpc::Status FakeConfigService::Watch(grpc::ServerContext* ctx, const tg::v1::WatchRequest* req,
                                      grpc::ServerWriter<tg::v1::WatchEvent>* writer) {
  std::unique_lock lock(mu_);
  ++watches_;
  watch_requests_.push_back(*req);
  if (stopping_) return grpc::Status(grpc::StatusCode::UNAVAILABLE, "shutting down");
  const uint64_t generation = stream_generation_;
  tg::v1::WatchEvent first;
  first.set_revision(state_revision_);
  *first.mutable_snapshot() = state_;
  if (!req->include_credentials()) {
    for (auto& u : *first.mutable_snapshot()->mutable_upstreams()) {
      for (auto& t : *u.mutable_targets()) t.clear_credentials();
    }
  }
  size_t next = state_end_;
  int64_t delivered = first.revision();
  lock.unlock();
  if (!writer->Write(first)) return grpc::Status::OK;
  lock.lock();
  auto last_write = Clock::now();
  while (!stopping_ && !ctx->IsCancelled() && generation == stream_generation_) {
    const auto now = Clock::now();
    tg::v1::WatchEvent ev;
    if (next < log_.size() && log_[next].release_at <= now) {
      ev = log_[next++].event;
      delivered = std::max(delivered, ev.revision());
    } else if (heartbeat_.count() > 0 && now - last_write > heartbeat_) {
      ev.set_heartbeat(true);
      ev.set_revision(delivered);  // what this stream has delivered so far
    } else {
      cv_.wait_for(lock, std::chrono::milliseconds(20));
      continue;
    }
    lock.unlock();
    const bool ok = writer->Write(ev);
    lock.lock();
    if (!ok) break;
    last_write = Clock::now();
  }
  return grpc::Status::OK;
}

grpc::Status FakeConfigService::CreateGateway(grpc::ServerContext*,
                                              const tg::v1::CreateGatewayRequest* req,
                                              tg::v1::GatewayResult* resp) {
  std::lock_guard lock(mu_);
  if (auto s = Injected("CreateGateway")) return *s;
  tg::v1::Gateway g = req->gateway();
  g.set_id(NextId("gw-"));
  *g.mutable_created_at() = Now();
  *g.mutable_updated_at() = Now();
  *state_.add_gateways() = g;
  tg::v1::ConfigChange c;
  *c.mutable_gateway() = g;
  *resp->mutable_gateway() = g;
  resp->set_revision(Publish(c));
  return grpc::Status::OK;
}

grpc::Status FakeConfigService::GetGateway(grpc::ServerContext*,
                                           const tg::v1::GetGatewayRequest* req,
                                           tg::v1::GatewayResult* resp) {
  std::lock_guard lock(mu_);
  if (auto s = Injected("GetGateway")) return *s;
  const tg::v1::Gateway* g = FindById(state_.mutable_gateways(), req->id());
  if (g == nullptr) return NotFound("gateway", req->id());
  *resp->mutable_gateway() = *g;
  resp->set_revision(revision_);
  return grpc::Status::OK;
}

grpc::Status FakeConfigService::ListGateways(grpc::ServerContext*,
                                             const tg::v1::ListGatewaysRequest*,
                                             tg::v1::ListGatewaysResponse* resp) {
  std::lock_guard lock(mu_);
  if (auto s = Injected("ListGateways")) return *s;
  *resp->mutable_gateways() = state_.gateways();
  resp->set_revision(revision_);
  return grpc::Status::OK;
}

grpc::Status FakeConfigService::UpdateGateway(grpc::ServerContext*,
                                              const tg::v1::UpdateGatewayRequest* req,
                                              tg::v1::GatewayResult* resp) {
  std::lock_guard lock(mu_);
  if (auto s = Injected("UpdateGateway")) return *s;
  tg::v1::Gateway* g = FindById(state_.mutable_gateways(), req->gateway().id());
  if (g == nullptr) return NotFound("gateway", req->gateway().id());
  g->set_name(req->gateway().name());
  g->set_subdomain(req->gateway().subdomain());
  *g->mutable_updated_at() = Now();
  tg::v1::ConfigChange c;
  *c.mutable_gateway() = *g;
  *resp->mutable_gateway() = *g;
  resp->set_revision(Publish(c));
  return grpc::Status::OK;
}

grpc::Status FakeConfigService::DeleteGateway(grpc::ServerContext*,
                                              const tg::v1::DeleteGatewayRequest* req,
                                              tg::v1::DeleteResult* resp) {
  std::lock_guard lock(mu_);
  if (auto s = Injected("DeleteGateway")) return *s;
  auto* gateways = state_.mutable_gateways();
  const int before = gateways->size();
  gateways->erase(std::remove_if(gateways->begin(), gateways->end(),
                                 [&](const auto& g) { return g.id() == req->id(); }),
                  gateways->end());
  if (gateways->size() == before) return NotFound("gateway", req->id());
  auto of_gateway = [&](const auto& x) { return x.gateway_id() == req->id(); };
  auto* upstreams = state_.mutable_upstreams();
  upstreams->erase(std::remove_if(upstreams->begin(), upstreams->end(), of_gateway),
                   upstreams->end());
  auto* rules = state_.mutable_rules();
  rules->erase(std::remove_if(rules->begin(), rules->end(), of_gateway), rules->end());
  tg::v1::ConfigChange c;
  c.mutable_deleted()->set_kind(tg::v1::RESOURCE_KIND_GATEWAY);
  c.mutable_deleted()->set_id(req->id());
  resp->set_revision(Publish(c));
  return grpc::Status::OK;
}

grpc::Status FakeConfigService::CreateUpstream(grpc::ServerContext*,
                                               const tg::v1::CreateUpstreamRequest* req,
                                               tg::v1::UpstreamResult* resp) {
  std::lock_guard lock(mu_);
  last_upstream_create_ = *req;
  if (auto s = Injected("CreateUpstream")) return *s;
  if (FindById(state_.mutable_gateways(), req->upstream().gateway_id()) == nullptr) {
    return NotFound("gateway", req->upstream().gateway_id());
  }
  if (req->upstream().name().empty()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "name: required");
  }
  tg::v1::Upstream u = req->upstream();
  u.set_id(NextId("up-"));
  for (auto& t : *u.mutable_targets()) {
    if (!t.credentials().api_key().empty()) t.mutable_credentials()->set_api_key("****");
  }
  *u.mutable_created_at() = Now();
  *u.mutable_updated_at() = Now();
  *state_.add_upstreams() = u;
  tg::v1::ConfigChange c;
  *c.mutable_upstream() = u;
  *resp->mutable_upstream() = u;
  resp->set_revision(Publish(c));
  return grpc::Status::OK;
}

grpc::Status FakeConfigService::GetUpstream(grpc::ServerContext*,
                                            const tg::v1::GetUpstreamRequest* req,
                                            tg::v1::UpstreamResult* resp) {
  std::lock_guard lock(mu_);
  if (auto s = Injected("GetUpstream")) return *s;
  const tg::v1::Upstream* u = FindById(state_.mutable_upstreams(), req->id());
  if (u == nullptr || u->gateway_id() != req->gateway_id()) return NotFound("upstream", req->id());
  *resp->mutable_upstream() = *u;
  resp->set_revision(revision_);
  return grpc::Status::OK;
}

grpc::Status FakeConfigService::ListUpstreams(grpc::ServerContext*,
                                              const tg::v1::ListUpstreamsRequest* req,
                                              tg::v1::ListUpstreamsResponse* resp) {
  std::lock_guard lock(mu_);
  if (auto s = Injected("ListUpstreams")) return *s;
  for (const auto& u : state_.upstreams()) {
    if (u.gateway_id() == req->gateway_id()) *resp->add_upstreams() = u;
  }
  resp->set_revision(revision_);
  return grpc::Status::OK;
}

grpc::Status FakeConfigService::UpdateUpstream(grpc::ServerContext*,
                                               const tg::v1::UpdateUpstreamRequest* req,
                                               tg::v1::UpstreamResult* resp) {
  std::lock_guard lock(mu_);
  last_upstream_update_ = *req;
  if (auto s = Injected("UpdateUpstream")) return *s;
  tg::v1::Upstream* stored = FindById(state_.mutable_upstreams(), req->upstream().id());
  if (stored == nullptr || stored->gateway_id() != req->upstream().gateway_id()) {
    return NotFound("upstream", req->upstream().id());
  }
  tg::v1::Upstream u = req->upstream();
  *u.mutable_created_at() = stored->created_at();
  *u.mutable_updated_at() = Now();
  *stored = u;
  tg::v1::ConfigChange c;
  *c.mutable_upstream() = u;
  *resp->mutable_upstream() = u;
  resp->set_revision(Publish(c));
  return grpc::Status::OK;
}

grpc::Status FakeConfigService::DeleteUpstream(grpc::ServerContext*,
                                               const tg::v1::DeleteUpstreamRequest* req,
                                               tg::v1::DeleteResult* resp) {
  std::lock_guard lock(mu_);
  if (auto s = Injected("DeleteUpstream")) return *s;
  auto* upstreams = state_.mutable_upstreams();
  const int before = upstreams->size();
  upstreams->erase(std::remove_if(upstreams->begin(), upstreams->end(),
                                  [&](const auto& u) { return u.id() == req->id(); }),
                   upstreams->end());
  if (upstreams->size() == before) return NotFound("upstream", req->id());
  tg::v1::ConfigChange c;
  c.mutable_deleted()->set_kind(tg::v1::RESOURCE_KIND_UPSTREAM);
  c.mutable_deleted()->set_id(req->id());
  c.mutable_deleted()->set_gateway_id(req->gateway_id());
  resp->set_revision(Publish(c));
  return grpc::Status::OK;
}

grpc::Status FakeConfigService::ListServices(grpc::ServerContext*,
                                             const tg::v1::ListServicesRequest* req,
                                             tg::v1::ListServicesResponse* resp) {
  std::lock_guard lock(mu_);
  if (auto s = Injected("ListServices")) return *s;
  for (const auto& svc : state_.services()) {
    if (svc.gateway_id() == req->gateway_id()) *resp->add_services() = svc;
  }
  resp->set_revision(revision_);
  return grpc::Status::OK;
}

grpc::Status FakeConfigService::CreateRule(grpc::ServerContext*,
                                           const tg::v1::CreateRuleRequest* req,
                                           tg::v1::RuleResult* resp) {
  std::lock_guard lock(mu_);
  if (auto s = Injected("CreateRule")) return *s;
  tg::v1::Rule r = req->rule();
  r.set_id(NextId("rule-"));
  *state_.add_rules() = r;
  tg::v1::ConfigChange c;
  *c.mutable_rule() = r;
  *resp->mutable_rule() = r;
  resp->set_revision(Publish(c));
  return grpc::Status::OK;
}

}  // namespace tg::fakes
