#pragma once

#include <google/protobuf/timestamp.pb.h>
#include <grpcpp/support/status.h>

#include <functional>
#include <string>
#include <vector>

#include "tg/common/crypto.h"
#include "tg/common/pg.h"
#include "tg/v1/config.pb.h"

namespace tg::config {

// What a write carries besides its entity.
struct WriteContext {
  pg::WriteBounds bounds;       // the RPC's deadline and cancellation
  std::string idempotency_key;  // creates only; "" = none (tg/common/idempotency.h)
};

// PostgreSQL persistence of gateways, upstreams, services and rules.
//
// Each entity is one row: its id, its parent's id, the columns constraints
// need (subdomain, upstream_id, service_id) and `doc`, the entity's protobuf
// JSON with credential secrets sealed (AES-256-GCM). Every write is one
// transaction that takes the change-log write lock, checks, writes, appends
// its change and returns the new revision (see tg/common/change_log.h).
//
// Methods block: call them from a worker thread. Errors come back as the
// gRPC status the API promises (INVALID_ARGUMENT, NOT_FOUND, ALREADY_EXISTS,
// FAILED_PRECONDITION, UNAVAILABLE, DEADLINE_EXCEEDED, CANCELLED); answers
// have credentials masked. Writes honour WriteContext::bounds (pg::BeginWrite,
// pg::CommitWrite) and creates its idempotency key.
class ConfigStore {
 public:
  using Clock = std::function<google::protobuf::Timestamp()>;

  ConfigStore(pg::Pool& pool, crypto::SecretBox box, Clock now);

  static std::vector<pg::Migration> Migrations();

  grpc::Status CreateGateway(tg::v1::Gateway g, tg::v1::GatewayResult* out,
                             const WriteContext& w = {});
  grpc::Status GetGateway(const std::string& id, tg::v1::GatewayResult* out);
  grpc::Status ListGateways(tg::v1::ListGatewaysResponse* out);
  grpc::Status UpdateGateway(tg::v1::Gateway g, tg::v1::GatewayResult* out,
                             const WriteContext& w = {});
  grpc::Status DeleteGateway(const std::string& id, tg::v1::DeleteResult* out,
                             const WriteContext& w = {});

  grpc::Status CreateUpstream(tg::v1::Upstream u, tg::v1::UpstreamResult* out,
                              const WriteContext& w = {});
  grpc::Status GetUpstream(const std::string& gw, const std::string& id,
                           tg::v1::UpstreamResult* out);
  grpc::Status ListUpstreams(const std::string& gw, tg::v1::ListUpstreamsResponse* out);
  grpc::Status UpdateUpstream(tg::v1::Upstream u, tg::v1::UpstreamResult* out,
                              const WriteContext& w = {});
  grpc::Status DeleteUpstream(const std::string& gw, const std::string& id,
                              tg::v1::DeleteResult* out, const WriteContext& w = {});

  grpc::Status CreateService(tg::v1::Service s, tg::v1::ServiceResult* out,
                             const WriteContext& w = {});
  grpc::Status GetService(const std::string& gw, const std::string& id, tg::v1::ServiceResult* out);
  grpc::Status ListServices(const std::string& gw, tg::v1::ListServicesResponse* out);
  grpc::Status UpdateService(tg::v1::Service s, tg::v1::ServiceResult* out,
                             const WriteContext& w = {});
  grpc::Status DeleteService(const std::string& gw, const std::string& id,
                             tg::v1::DeleteResult* out, const WriteContext& w = {});

  grpc::Status CreateRule(tg::v1::Rule r, tg::v1::RuleResult* out, const WriteContext& w = {});
  grpc::Status GetRule(const std::string& gw, const std::string& id, tg::v1::RuleResult* out);
  grpc::Status ListRules(const std::string& gw, tg::v1::ListRulesResponse* out);
  grpc::Status UpdateRule(tg::v1::Rule r, tg::v1::RuleResult* out, const WriteContext& w = {});
  grpc::Status DeleteRule(const std::string& gw, const std::string& id, tg::v1::DeleteResult* out,
                          const WriteContext& w = {});

  // The whole configuration (credentials still sealed) and its revision, read
  // in one repeatable-read transaction.
  grpc::Status LoadSnapshot(tg::v1::ConfigSnapshot* out, int64_t* revision);

  const crypto::SecretBox& box() const { return box_; }
  pg::Pool& pool() { return pool_; }

 private:
  grpc::Status Run(const std::function<grpc::Status(pqxx::connection&)>& fn);

  pg::Pool& pool_;
  crypto::SecretBox box_;
  Clock now_;
};

// The change log's doc of an entity → the entity, for the Watch feed.
bool ParseDoc(const std::string& doc, google::protobuf::Message* msg);

}  // namespace tg::config
