#include "tg/common/idempotency.h"

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>

#include "tg/common/crypto.h"

namespace tg::idempotency {

const std::string_view kSchema = R"sql(
CREATE TABLE IF NOT EXISTS idempotency_keys (
  key_hash     bytea PRIMARY KEY,
  request_hash bytea NOT NULL,
  answer       text NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS idempotency_keys_created_at ON idempotency_keys (created_at);
)sql";

Claim MakeClaim(std::string_view scope, std::string_view key,
                const google::protobuf::Message& request) {
  Claim c;
  // Length-prefixed so that no (scope, key) pair can collide with another.
  std::string id = std::to_string(scope.size()) + ":" + std::string(scope) + std::string(key);
  c.key_hash = crypto::Sha256(id);
  std::string bytes;
  {
    google::protobuf::io::StringOutputStream out(&bytes);
    google::protobuf::io::CodedOutputStream coded(&out);
    coded.SetSerializationDeterministic(true);
    request.SerializeToCodedStream(&coded);
  }
  c.request_hash = crypto::Sha256(bytes);
  return c;
}

Found Lookup(pqxx::transaction_base& tx, const Claim& claim, std::string* answer) {
  auto r = tx.exec_params(
      "SELECT request_hash = decode($2, 'hex'), answer FROM idempotency_keys "
      "WHERE key_hash = decode($1, 'hex') AND created_at > now() - interval '24 hours'",
      crypto::HexEncode(claim.key_hash), crypto::HexEncode(claim.request_hash));
  if (r.empty()) return Found::kNone;
  if (!r[0][0].as<bool>()) return Found::kOtherRequest;
  *answer = r[0][1].as<std::string>();
  return Found::kSameRequest;
}

void Remember(pqxx::transaction_base& tx, const Claim& claim, std::string_view answer) {
  tx.exec("DELETE FROM idempotency_keys WHERE created_at <= now() - interval '24 hours'");
  tx.exec_params(
      "INSERT INTO idempotency_keys (key_hash, request_hash, answer) "
      "VALUES (decode($1, 'hex'), decode($2, 'hex'), $3)",
      crypto::HexEncode(claim.key_hash), crypto::HexEncode(claim.request_hash),
      std::string(answer));
}

}  // namespace tg::idempotency
