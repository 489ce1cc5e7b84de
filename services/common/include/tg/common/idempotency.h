#pragma once

#include <google/protobuf/message.h>

#include <optional>
#include <pqxx/pqxx>
#include <string>
#include <string_view>

#include "tg/common/idempotency_key.h"

namespace tg::idempotency {

// Idempotent creates (the admin API's `Idempotency-Key` header).
//
// A create that carries a key records, in its own write transaction, the
// SHA-256 of (scope, key), the SHA-256 of the request and the answer it gave.
// A later create with the same scope and key, looked up in the same kind of
// transaction after the change-log write lock (so concurrent retries on any
// replica are serialized), gets that answer back instead of creating again,
// or a mismatch when its request differs. Records expire after 24 hours.

// SQL creating the table; part of the migrations of tg-config and tg-keyauth
// (IF NOT EXISTS: whichever migrates first creates it).
extern const std::string_view kSchema;

struct Claim {
  std::string key_hash;      // SHA-256(scope, key): the record's identity
  std::string request_hash;  // SHA-256 of the request, deterministically serialized
};

// `scope` names the collection the create is for (component, resource kind
// and parent id), so one key may be used once per collection.
Claim MakeClaim(std::string_view scope, std::string_view key,
                const google::protobuf::Message& request);

enum class Found { kNone, kSameRequest, kOtherRequest };

// Looks the claim up (unexpired records only); *answer gets the stored answer
// when the request is the same. Call after pg::BeginWrite.
Found Lookup(pqxx::transaction_base& tx, const Claim& claim, std::string* answer);

// Records the answer in the create's own transaction (before its commit), and
// drops records older than 24 hours.
void Remember(pqxx::transaction_base& tx, const Claim& claim, std::string_view answer);

}  // namespace tg::idempotency
