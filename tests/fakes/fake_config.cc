#include "fake_config.h"

#include <gtest/gtest.h>

#include <chrono>
#include <utility>

#include "tg/common/json_util.h"

namespace tg::fakes {

FakeConfigService::FakeConfigService(tg::v1::ConfigSnapshot snapshot, int64_t revision)
    : snapshot_(std::move(snapshot)), revision_(revision) {}

tg::v1::ConfigSnapshot FakeConfigService::SnapshotFromJson(const std::string& text) {
  tg::v1::ConfigSnapshot snapshot;
  std::string error;
  EXPECT_TRUE(json::ParseProto(text, &snapshot, &error)) << error;
  return snapshot;
}

grpc::Status FakeConfigService::Watch(grpc::ServerContext* ctx, const tg::v1::WatchRequest* req,
                                      grpc::ServerWriter<tg::v1::WatchEvent>* writer) {
  size_t sent = 0;
  {
    std::lock_guard lock(mu_);
    ++watches_;
    tg::v1::WatchEvent first;
    first.set_revision(revision_);
    *first.mutable_snapshot() = snapshot_;
    if (!req->include_credentials()) {
      for (auto& u : *first.mutable_snapshot()->mutable_upstreams()) {
        for (auto& t : *u.mutable_targets()) t.clear_credentials();
      }
    }
    writer->Write(first);
    sent = pushed_.size();  // the snapshot stands for what was pushed before it
  }
  while (!ctx->IsCancelled()) {
    std::vector<tg::v1::WatchEvent> out;
    {
      std::unique_lock lock(mu_);
      cv_.wait_for(lock, std::chrono::milliseconds(20),
                   [&] { return pushed_.size() > sent || stopping_; });
      if (stopping_) break;
      for (; sent < pushed_.size(); ++sent) out.push_back(pushed_[sent]);
    }
    for (const auto& e : out) {
      if (!writer->Write(e)) return grpc::Status::CANCELLED;
    }
  }
  return grpc::Status::OK;
}

grpc::Status FakeConfigService::GetGateway(grpc::ServerContext*,
                                           const tg::v1::GetGatewayRequest* req,
                                           tg::v1::GatewayResult* resp) {
  std::lock_guard lock(mu_);
  for (const auto& g : snapshot_.gateways()) {
    if (g.id() == req->id()) {
      *resp->mutable_gateway() = g;
      return grpc::Status::OK;
    }
  }
  return grpc::Status(grpc::StatusCode::NOT_FOUND, "no such gateway");
}

void FakeConfigService::SetSnapshot(tg::v1::ConfigSnapshot snapshot, int64_t revision) {
  std::lock_guard lock(mu_);
  snapshot_ = std::move(snapshot);
  revision_ = revision;
}

void FakeConfigService::Push(tg::v1::WatchEvent event) {
  std::lock_guard lock(mu_);
  pushed_.push_back(std::move(event));
  cv_.notify_all();
}

void FakeConfigService::Stop() {
  std::lock_guard lock(mu_);
  stopping_ = true;
  cv_.notify_all();
}

int FakeConfigService::watches() const {
  std::lock_guard lock(mu_);
  return watches_;
}

}  // namespace tg::fakes
