#include "fake_keyauth.h"

#include <google/protobuf/util/time_util.h>

#include <utility>

namespace tg::fakes {

void FakeKeyAuthService::AddKey(const std::string& key, Key k) {
  std::lock_guard lock(mu_);
  keys_[key] = std::move(k);
}

void FakeKeyAuthService::Revoke(const std::string& key_id, int64_t revision, bool still_verifies) {
  std::lock_guard lock(mu_);
  if (!still_verifies) {
    std::erase_if(keys_, [&](const auto& kv) { return kv.second.key_id == key_id; });
  }
  tg::v1::KeyEvent e;
  e.set_revision(revision);
  e.mutable_revoked()->set_key_id(key_id);
  events_.push_back(std::move(e));
  cv_.notify_all();
}

int FakeKeyAuthService::verifications() const {
  std::lock_guard lock(mu_);
  return verifications_;
}

void FakeKeyAuthService::Stop() {
  std::lock_guard lock(mu_);
  stopping_ = true;
  cv_.notify_all();
}

grpc::Status FakeKeyAuthService::VerifyKey(grpc::ServerContext*,
                                           const tg::v1::VerifyKeyRequest* req,
                                           tg::v1::VerifyKeyResponse* resp) {
  std::lock_guard lock(mu_);
  ++verifications_;
  auto it = keys_.find(req->key());
  if (it == keys_.end()) return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "invalid API key");
  resp->set_key_id(it->second.key_id);
  resp->set_gateway_id(it->second.gateway_id);
  if (it->second.expires_at) {
    *resp->mutable_expires_at() = google::protobuf::util::TimeUtil::MillisecondsToTimestamp(
        std::chrono::duration_cast<std::chrono::milliseconds>(
            it->second.expires_at->time_since_epoch())
            .count());
  }
  return grpc::Status::OK;
}

grpc::Status FakeKeyAuthService::WatchKeys(grpc::ServerContext* ctx,
                                           const tg::v1::WatchKeysRequest*,
                                           grpc::ServerWriter<tg::v1::KeyEvent>* writer) {
  size_t sent = 0;
  {
    std::lock_guard lock(mu_);
    tg::v1::KeyEvent reset;
    reset.set_reset(true);
    writer->Write(reset);
    sent = events_.size();
  }
  while (!ctx->IsCancelled()) {
    std::vector<tg::v1::KeyEvent> out;
    {
      std::unique_lock lock(mu_);
      cv_.wait_for(lock, std::chrono::milliseconds(5),
                   [&] { return events_.size() > sent || stopping_; });
      if (stopping_) break;
      for (; sent < events_.size(); ++sent) out.push_back(events_[sent]);
    }
    for (const auto& e : out) {
      if (!writer->Write(e)) return grpc::Status::CANCELLED;
    }
  }
  return grpc::Status::OK;
}

std::optional<tg::v1::CreateKeyRequest> FakeKeyAuthService::last_create() const {
  std::lock_guard lock(mu_);
  return last_create_;
}

std::vector<std::string> FakeKeyAuthService::deleted_gateways() const {
  std::lock_guard lock(mu_);
  return deleted_gateways_;
}

void FakeKeyAuthService::FailGatewayDelete(bool fail) {
  std::lock_guard lock(mu_);
  fail_gateway_delete_ = fail;
}

grpc::Status FakeKeyAuthService::CreateKey(grpc::ServerContext*,
                                           const tg::v1::CreateKeyRequest* req,
                                           tg::v1::KeyResult* resp) {
  std::lock_guard lock(mu_);
  last_create_ = *req;
  tg::v1::ApiKey* k = resp->mutable_key();
  *k = req->key();
  k->set_id("key-" + std::to_string(++ids_));
  k->set_gateway_id(req->gateway_id());
  k->set_key("tg_THE-SECRET-KEY-VALUE");
  k->set_prefix("tg_THE-SECRE");
  admin_keys_[k->id()] = *k;
  admin_keys_[k->id()].clear_key();
  resp->set_revision(7);
  return grpc::Status::OK;
}

grpc::Status FakeKeyAuthService::GetKey(grpc::ServerContext*, const tg::v1::GetKeyRequest* req,
                                        tg::v1::KeyResult* resp) {
  std::lock_guard lock(mu_);
  auto it = admin_keys_.find(req->id());
  if (it == admin_keys_.end()) return grpc::Status(grpc::StatusCode::NOT_FOUND, "key not found");
  *resp->mutable_key() = it->second;
  return grpc::Status::OK;
}

grpc::Status FakeKeyAuthService::ListKeys(grpc::ServerContext*, const tg::v1::ListKeysRequest* req,
                                          tg::v1::ListKeysResponse* resp) {
  std::lock_guard lock(mu_);
  for (const auto& [id, k] : admin_keys_) {
    if (k.gateway_id() == req->gateway_id()) *resp->add_keys() = k;
  }
  return grpc::Status::OK;
}

grpc::Status FakeKeyAuthService::DeleteKey(grpc::ServerContext*,
                                           const tg::v1::DeleteKeyRequest* req,
                                           tg::v1::DeleteKeyResult*) {
  std::lock_guard lock(mu_);
  if (admin_keys_.erase(req->id()) == 0) {
    return grpc::Status(grpc::StatusCode::NOT_FOUND, "key not found");
  }
  return grpc::Status::OK;
}

grpc::Status FakeKeyAuthService::DeleteGatewayKeys(grpc::ServerContext*,
                                                   const tg::v1::DeleteGatewayKeysRequest* req,
                                                   tg::v1::DeleteKeyResult*) {
  std::lock_guard lock(mu_);
  deleted_gateways_.push_back(req->gateway_id());
  if (fail_gateway_delete_) return grpc::Status(grpc::StatusCode::UNAVAILABLE, "db down");
  return grpc::Status::OK;
}

}  // namespace tg::fakes
