#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "tg/v1/keyauth.grpc.pb.h"

namespace tg::fakes {

// tg-keyauth as its callers see it, for tests: the one fake tg-keyauth.
// VerifyKey from a table of keys (counted), WatchKeys sending a reset and
// then every Revoke; the admin RPCs tg-edge transcodes (CreateKey, GetKey,
// ListKeys, DeleteKey, DeleteGatewayKeys) on keys of their own, recorded.
class FakeKeyAuthService final : public tg::v1::KeyAuthService::Service {
 public:
  struct Key {
    std::string key_id;
    std::string gateway_id;
    std::optional<std::chrono::system_clock::time_point> expires_at;
  };
  void AddKey(const std::string& key, Key k);
  // Every WatchKeys gets the event, and VerifyKey refuses the key from then
  // on, unless `still_verifies`: as a replica lagging behind the revocation
  // would, it keeps vouching for it.
  void Revoke(const std::string& key_id, int64_t revision, bool still_verifies = false);
  int verifications() const;
  void Stop();  // ends every WatchKeys

  // What tg-edge sent: the last CreateKey, every DeleteGatewayKeys' gateway.
  std::optional<tg::v1::CreateKeyRequest> last_create() const;
  std::vector<std::string> deleted_gateways() const;
  void FailGatewayDelete(bool fail);  // DeleteGatewayKeys answers UNAVAILABLE

  grpc::Status CreateKey(grpc::ServerContext*, const tg::v1::CreateKeyRequest* req,
                         tg::v1::KeyResult* resp) override;
  grpc::Status GetKey(grpc::ServerContext*, const tg::v1::GetKeyRequest* req,
                      tg::v1::KeyResult* resp) override;
  grpc::Status ListKeys(grpc::ServerContext*, const tg::v1::ListKeysRequest* req,
                        tg::v1::ListKeysResponse* resp) override;
  grpc::Status DeleteKey(grpc::ServerContext*, const tg::v1::DeleteKeyRequest* req,
                         tg::v1::DeleteKeyResult*) override;
  grpc::Status DeleteGatewayKeys(grpc::ServerContext*, const tg::v1::DeleteGatewayKeysRequest* req,
                                 tg::v1::DeleteKeyResult*) override;
  grpc::Status VerifyKey(grpc::ServerContext*, const tg::v1::VerifyKeyRequest* req,
                         tg::v1::VerifyKeyResponse* resp) override;
  grpc::Status WatchKeys(grpc::ServerContext* ctx, const tg::v1::WatchKeysRequest*,
                         grpc::ServerWriter<tg::v1::KeyEvent>* writer) override;

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, Key> keys_;
  std::vector<tg::v1::KeyEvent> events_;
  int verifications_ = 0;
  bool stopping_ = false;
  // The admin RPCs' keys, by id.
  int ids_ = 0;
  std::map<std::string, tg::v1::ApiKey> admin_keys_;
  std::optional<tg::v1::CreateKeyRequest> last_create_;
  std::vector<std::string> deleted_gateways_;
  bool fail_gateway_delete_ = false;
};

}  // namespace tg::fakes
