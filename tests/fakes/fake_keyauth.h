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

// tg-keyauth as a key cache sees it, for tests: VerifyKey from a table of
// keys (counted), WatchKeys sending a reset and then every Revoke.
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
};

}  // namespace tg::fakes
