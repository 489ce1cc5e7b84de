// Size: the SQL of every config entity (gateways, upstreams, services, rules) behind one store.
#include "tg/config/config_store.h"

#include <google/protobuf/util/json_util.h>

#include <optional>

#include "tg/common/change_log.h"
#include "tg/common/idempotency.h"
#include "tg/common/log.h"
#include "tg/config/credentials.h"
#include "tg/config/validation.h"

namespace tg::config {
namespace {

using grpc::Status;
using grpc::StatusCode;

constexpr std::string_view kSchemaV1 = R"sql(
CREATE TABLE gateways (
  id         text PRIMARY KEY,
  subdomain  text,
  doc        text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE UNIQUE INDEX gateways_subdomain ON gateways (subdomain) WHERE subdomain IS NOT NULL;
CREATE TABLE upstreams (
  id         text PRIMARY KEY,
  gateway_id text NOT NULL REFERENCES gateways (id) ON DELETE CASCADE,
  doc        text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX upstreams_gateway ON upstreams (gateway_id);
CREATE TABLE services (
  id          text PRIMARY KEY,
  gateway_id  text NOT NULL REFERENCES gateways (id) ON DELETE CASCADE,
  upstream_id text REFERENCES upstreams (id),
  doc         text NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX services_gateway ON services (gateway_id);
CREATE INDEX services_upstream ON services (upstream_id);
CREATE TABLE rules (
  id         text PRIMARY KEY,
  gateway_id text NOT NULL REFERENCES gateways (id) ON DELETE CASCADE,
  service_id text NOT NULL REFERENCES services (id),
  doc        text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX rules_gateway ON rules (gateway_id);
CREATE INDEX rules_service ON rules (service_id);
)sql";

std::string ToDoc(const google::protobuf::Message& m) {
  std::string out;
  google::protobuf::util::JsonPrintOptions opts;
  opts.preserve_proto_field_names = true;
  (void)google::protobuf::util::MessageToJsonString(m, &out, opts);
  return out;
}

Status Invalid(std::string msg) { return Status(StatusCode::INVALID_ARGUMENT, std::move(msg)); }
Status NotFound(const std::string& what) {
  return Status(StatusCode::NOT_FOUND, what + " not found");
}

// An id from a URL: anything that is not a UUID cannot name an entity.
bool ValidId(const std::string& id) { return crypto::IsUuid(id); }

template <typename T>
bool LoadOne(pqxx::transaction_base& tx, const std::string& table, const std::string& gw,
             const std::string& id, T* out, bool for_update = false) {
  std::string sql = "SELECT doc FROM " + table + " WHERE id = $1";
  if (!gw.empty()) sql += " AND gateway_id = $2";
  if (for_update) sql += " FOR UPDATE";
  auto r = gw.empty() ? tx.exec_params(sql, id) : tx.exec_params(sql, id, gw);
  if (r.empty()) return false;
  return ParseDoc(r[0][0].as<std::string>(), out);
}

template <typename T>
std::vector<T> LoadAll(pqxx::transaction_base& tx, const std::string& table,
                       const std::string& gw) {
  std::string sql = "SELECT doc FROM " + table;
  if (!gw.empty()) sql += " WHERE gateway_id = $1";
  sql += " ORDER BY created_at, id";
  auto r = gw.empty() ? tx.exec(sql) : tx.exec_params(sql, gw);
  std::vector<T> out;
  out.reserve(r.size());
  for (const auto& row : r) {
    T item;
    if (ParseDoc(row[0].as<std::string>(), &item)) out.push_back(std::move(item));
  }
  return out;
}

bool GatewayExists(pqxx::transaction_base& tx, const std::string& gw) {
  return !tx.exec_params("SELECT 1 FROM gateways WHERE id = $1", gw).empty();
}

int64_t Record(pqxx::transaction_base& tx, const std::string& kind, const std::string& id,
               const std::string& gw, bool deleted, const std::string& doc) {
  return pg::AppendChange(tx, pg::Change{"config", kind, id, gw, deleted, doc});
}

// The create's idempotency claim, when it carries a key. `request` is the
// entity as the caller sent it; `scope` the collection it is created in.
std::optional<idempotency::Claim> ClaimOf(const WriteContext& w, const std::string& scope,
                                          const google::protobuf::Message& request) {
  if (w.idempotency_key.empty()) return std::nullopt;
  return idempotency::MakeClaim("config/" + scope, w.idempotency_key, request);
}

// The remembered answer of a repeated create (its status), or nullopt when
// the create must run.
std::optional<Status> Replay(pqxx::transaction_base& tx,
                             const std::optional<idempotency::Claim>& claim,
                             google::protobuf::Message* out) {
  if (!claim) return std::nullopt;
  std::string answer;
  switch (idempotency::Lookup(tx, *claim, &answer)) {
    case idempotency::Found::kNone:
      return std::nullopt;
    case idempotency::Found::kOtherRequest:
      return Status(StatusCode::FAILED_PRECONDITION, std::string(idempotency::kMismatchMessage));
    case idempotency::Found::kSameRequest:
      break;
  }
  out->Clear();
  if (!ParseDoc(answer, out)) return Status(StatusCode::INTERNAL, "internal error");
  return Status::OK;
}

void Remember(pqxx::transaction_base& tx, const std::optional<idempotency::Claim>& claim,
              const google::protobuf::Message& out) {
  if (claim) idempotency::Remember(tx, *claim, ToDoc(out));
}

}  // namespace

bool ParseDoc(const std::string& doc, google::protobuf::Message* msg) {
  google::protobuf::util::JsonParseOptions opts;
  opts.ignore_unknown_fields = true;  // docs written by a newer version stay readable
  return google::protobuf::util::JsonStringToMessage(doc, msg, opts).ok();
}

ConfigStore::ConfigStore(pg::Pool& pool, crypto::SecretBox box, Clock now)
    : pool_(pool), box_(std::move(box)), now_(std::move(now)) {}

std::vector<pg::Migration> ConfigStore::Migrations() {
  return {{1, pg::kChangeLogSchema}, {2, kSchemaV1}, {3, idempotency::kSchema}};
}

Status ConfigStore::Run(const std::function<Status(pqxx::connection&)>& fn) {
  Status result;
  try {
    pool_.Run([&](pqxx::connection& c) { result = fn(c); });
  } catch (const pg::Unavailable& e) {
    return Status(StatusCode::UNAVAILABLE, "database unavailable, retry later");
  } catch (const pqxx::unique_violation&) {
    return Status(StatusCode::ALREADY_EXISTS, "already exists");
  } catch (const pqxx::foreign_key_violation&) {
    return Status(StatusCode::FAILED_PRECONDITION, "still referenced by another resource");
  } catch (const pg::WriteAborted& e) {
    return e.cancelled ? Status(StatusCode::CANCELLED, "write cancelled: nothing was written")
                       : Status(StatusCode::DEADLINE_EXCEEDED,
                                "write deadline exceeded: nothing was written");
  } catch (const pqxx::sql_error& e) {
    if (pg::IsStatementTimeout(e)) {
      // statement_timeout (the write's remaining deadline, or the default)
      return Status(StatusCode::DEADLINE_EXCEEDED, "database did not answer in time");
    }
    log::Error("config store failure", {{"sqlstate", e.sqlstate()}});
    return Status(StatusCode::INTERNAL, "internal error");
  } catch (const std::exception& e) {
    log::Error("config store failure", {{"error", e.what()}});
    return Status(StatusCode::INTERNAL, "internal error");
  }
  return result;
}

// ---- gateways ---------------------------------------------------------------

Status ConfigStore::CreateGateway(tg::v1::Gateway g, tg::v1::GatewayResult* out,
                                  const WriteContext& w) {
  if (auto e = ValidateGateway(g)) return Invalid(*e);
  auto claim = ClaimOf(w, "gateways", g);
  g.set_id(crypto::NewUuid());
  *g.mutable_created_at() = now_();
  *g.mutable_updated_at() = g.created_at();
  return Run([&](pqxx::connection& c) {
    pqxx::work tx(c);
    pg::BeginWrite(tx, w.bounds);
    if (auto replay = Replay(tx, claim, out)) return *replay;
    if (!g.subdomain().empty() &&
        !tx.exec_params("SELECT 1 FROM gateways WHERE subdomain = $1", g.subdomain()).empty()) {
      return Status(StatusCode::ALREADY_EXISTS,
                    "subdomain \"" + g.subdomain() + "\" is already in use");
    }
    std::string doc = ToDoc(g);
    tx.exec_params("INSERT INTO gateways (id, subdomain, doc) VALUES ($1, NULLIF($2, ''), $3)",
                   g.id(), g.subdomain(), doc);
    out->set_revision(Record(tx, "gateway", g.id(), "", false, doc));
    *out->mutable_gateway() = g;
    Remember(tx, claim, *out);
    pg::CommitWrite(tx, w.bounds);
    return Status::OK;
  });
}

Status ConfigStore::GetGateway(const std::string& id, tg::v1::GatewayResult* out) {
  if (!ValidId(id)) return NotFound("gateway");
  return Run([&](pqxx::connection& c) {
    pqxx::read_transaction tx(c);
    if (!LoadOne(tx, "gateways", "", id, out->mutable_gateway())) return NotFound("gateway");
    out->set_revision(pg::CurrentRevision(tx));
    return Status::OK;
  });
}

Status ConfigStore::ListGateways(tg::v1::ListGatewaysResponse* out) {
  return Run([&](pqxx::connection& c) {
    pqxx::read_transaction tx(c);
    for (auto& g : LoadAll<tg::v1::Gateway>(tx, "gateways", ""))
      *out->add_gateways() = std::move(g);
    out->set_revision(pg::CurrentRevision(tx));
    return Status::OK;
  });
}

Status ConfigStore::UpdateGateway(tg::v1::Gateway g, tg::v1::GatewayResult* out,
                                  const WriteContext& w) {
  if (!ValidId(g.id())) return NotFound("gateway");
  if (auto e = ValidateGateway(g)) return Invalid(*e);
  return Run([&](pqxx::connection& c) {
    pqxx::work tx(c);
    pg::BeginWrite(tx, w.bounds);
    tg::v1::Gateway old;
    if (!LoadOne(tx, "gateways", "", g.id(), &old, true)) return NotFound("gateway");
    if (!g.subdomain().empty() &&
        !tx.exec_params("SELECT 1 FROM gateways WHERE subdomain = $1 AND id <> $2", g.subdomain(),
                        g.id())
             .empty()) {
      return Status(StatusCode::ALREADY_EXISTS,
                    "subdomain \"" + g.subdomain() + "\" is already in use");
    }
    *g.mutable_created_at() = old.created_at();
    *g.mutable_updated_at() = now_();
    std::string doc = ToDoc(g);
    tx.exec_params("UPDATE gateways SET subdomain = NULLIF($2, ''), doc = $3 WHERE id = $1", g.id(),
                   g.subdomain(), doc);
    out->set_revision(Record(tx, "gateway", g.id(), "", false, doc));
    pg::CommitWrite(tx, w.bounds);
    *out->mutable_gateway() = g;
    return Status::OK;
  });
}

Status ConfigStore::DeleteGateway(const std::string& id, tg::v1::DeleteResult* out,
                                  const WriteContext& w) {
  if (!ValidId(id)) return NotFound("gateway");
  return Run([&](pqxx::connection& c) {
    pqxx::work tx(c);
    pg::BeginWrite(tx, w.bounds);
    // Children go with their gateway: rules first, then services, then
    // upstreams, so no reference check stands in the way.
    tx.exec_params("DELETE FROM rules WHERE gateway_id = $1", id);
    tx.exec_params("DELETE FROM services WHERE gateway_id = $1", id);
    tx.exec_params("DELETE FROM upstreams WHERE gateway_id = $1", id);
    if (tx.exec_params("DELETE FROM gateways WHERE id = $1", id).affected_rows() == 0) {
      return NotFound("gateway");
    }
    out->set_revision(Record(tx, "gateway", id, "", true, ""));
    pg::CommitWrite(tx, w.bounds);
    return Status::OK;
  });
}

// ---- upstreams --------------------------------------------------------------

Status ConfigStore::CreateUpstream(tg::v1::Upstream u, tg::v1::UpstreamResult* out,
                                   const WriteContext& w) {
  if (!ValidId(u.gateway_id())) return NotFound("gateway");
  auto claim = ClaimOf(w, "upstreams/" + u.gateway_id(), u);
  NormalizeUpstream(&u);
  if (auto e = ValidateUpstream(u)) return Invalid(*e);
  u.set_id(crypto::NewUuid());
  *u.mutable_created_at() = now_();
  *u.mutable_updated_at() = u.created_at();
  return Run([&](pqxx::connection& c) {
    pqxx::work tx(c);
    pg::BeginWrite(tx, w.bounds);
    if (auto replay = Replay(tx, claim, out)) return *replay;
    if (!GatewayExists(tx, u.gateway_id())) return NotFound("gateway");
    tg::v1::Upstream sealed = u;
    SealUpstream(box_, &sealed);
    std::string doc = ToDoc(sealed);
    tx.exec_params("INSERT INTO upstreams (id, gateway_id, doc) VALUES ($1, $2, $3)", u.id(),
                   u.gateway_id(), doc);
    out->set_revision(Record(tx, "upstream", u.id(), u.gateway_id(), false, doc));
    MaskUpstream(&u);
    *out->mutable_upstream() = std::move(u);
    Remember(tx, claim, *out);
    pg::CommitWrite(tx, w.bounds);
    return Status::OK;
  });
}

Status ConfigStore::GetUpstream(const std::string& gw, const std::string& id,
                                tg::v1::UpstreamResult* out) {
  if (!ValidId(gw) || !ValidId(id)) return NotFound("upstream");
  return Run([&](pqxx::connection& c) {
    pqxx::read_transaction tx(c);
    if (!LoadOne(tx, "upstreams", gw, id, out->mutable_upstream())) return NotFound("upstream");
    OpenUpstream(box_, out->mutable_upstream());
    MaskUpstream(out->mutable_upstream());
    out->set_revision(pg::CurrentRevision(tx));
    return Status::OK;
  });
}

Status ConfigStore::ListUpstreams(const std::string& gw, tg::v1::ListUpstreamsResponse* out) {
  if (!ValidId(gw)) return NotFound("gateway");
  return Run([&](pqxx::connection& c) {
    pqxx::read_transaction tx(c);
    if (!GatewayExists(tx, gw)) return NotFound("gateway");
    for (auto& u : LoadAll<tg::v1::Upstream>(tx, "upstreams", gw)) {
      OpenUpstream(box_, &u);
      MaskUpstream(&u);
      *out->add_upstreams() = std::move(u);
    }
    out->set_revision(pg::CurrentRevision(tx));
    return Status::OK;
  });
}

Status ConfigStore::UpdateUpstream(tg::v1::Upstream u, tg::v1::UpstreamResult* out,
                                   const WriteContext& w) {
  if (!ValidId(u.gateway_id()) || !ValidId(u.id())) return NotFound("upstream");
  return Run([&](pqxx::connection& c) {
    pqxx::work tx(c);
    pg::BeginWrite(tx, w.bounds);
    tg::v1::Upstream old;
    if (!LoadOne(tx, "upstreams", u.gateway_id(), u.id(), &old, true)) return NotFound("upstream");
    OpenUpstream(box_, &old);
    KeepMaskedSecrets(old, &u);
    NormalizeUpstream(&u);
    if (auto e = ValidateUpstream(u)) return Invalid(*e);
    *u.mutable_created_at() = old.created_at();
    *u.mutable_updated_at() = now_();
    tg::v1::Upstream sealed = u;
    SealUpstream(box_, &sealed);
    std::string doc = ToDoc(sealed);
    tx.exec_params("UPDATE upstreams SET doc = $2 WHERE id = $1", u.id(), doc);
    out->set_revision(Record(tx, "upstream", u.id(), u.gateway_id(), false, doc));
    pg::CommitWrite(tx, w.bounds);
    MaskUpstream(&u);
    *out->mutable_upstream() = std::move(u);
    return Status::OK;
  });
}

Status ConfigStore::DeleteUpstream(const std::string& gw, const std::string& id,
                                   tg::v1::DeleteResult* out, const WriteContext& w) {
  if (!ValidId(gw) || !ValidId(id)) return NotFound("upstream");
  return Run([&](pqxx::connection& c) {
    pqxx::work tx(c);
    pg::BeginWrite(tx, w.bounds);
    if (tx.exec_params("SELECT 1 FROM upstreams WHERE id = $1 AND gateway_id = $2", id, gw)
            .empty()) {
      return NotFound("upstream");
    }
    auto users =
        tx.exec_params("SELECT id FROM services WHERE upstream_id = $1 ORDER BY id LIMIT 1", id);
    if (!users.empty()) {
      return Status(StatusCode::FAILED_PRECONDITION,
                    "upstream is used by service " + users[0][0].as<std::string>());
    }
    tx.exec_params("DELETE FROM upstreams WHERE id = $1", id);
    out->set_revision(Record(tx, "upstream", id, gw, true, ""));
    pg::CommitWrite(tx, w.bounds);
    return Status::OK;
  });
}

// ---- services ---------------------------------------------------------------

namespace {

Status CheckServiceRefs(pqxx::transaction_base& tx, const tg::v1::Service& s) {
  if (s.type() != "upstream") return Status::OK;
  if (!ValidId(s.upstream_id()) ||
      tx.exec_params("SELECT 1 FROM upstreams WHERE id = $1 AND gateway_id = $2", s.upstream_id(),
                     s.gateway_id())
          .empty()) {
    return Invalid("upstream_id does not name an upstream of this gateway");
  }
  return Status::OK;
}

}  // namespace

Status ConfigStore::CreateService(tg::v1::Service s, tg::v1::ServiceResult* out,
                                  const WriteContext& w) {
  if (!ValidId(s.gateway_id())) return NotFound("gateway");
  auto claim = ClaimOf(w, "services/" + s.gateway_id(), s);
  NormalizeService(&s);
  if (auto e = ValidateService(s)) return Invalid(*e);
  s.set_id(crypto::NewUuid());
  *s.mutable_created_at() = now_();
  *s.mutable_updated_at() = s.created_at();
  return Run([&](pqxx::connection& c) {
    pqxx::work tx(c);
    pg::BeginWrite(tx, w.bounds);
    if (auto replay = Replay(tx, claim, out)) return *replay;
    if (!GatewayExists(tx, s.gateway_id())) return NotFound("gateway");
    if (auto st = CheckServiceRefs(tx, s); !st.ok()) return st;
    tg::v1::Service sealed = s;
    SealService(box_, &sealed);
    std::string doc = ToDoc(sealed);
    tx.exec_params(
        "INSERT INTO services (id, gateway_id, upstream_id, doc) VALUES ($1, $2, NULLIF($3, ''), "
        "$4)",
        s.id(), s.gateway_id(), s.type() == "upstream" ? s.upstream_id() : "", doc);
    out->set_revision(Record(tx, "service", s.id(), s.gateway_id(), false, doc));
    MaskService(&s);
    *out->mutable_service() = std::move(s);
    Remember(tx, claim, *out);
    pg::CommitWrite(tx, w.bounds);
    return Status::OK;
  });
}

Status ConfigStore::GetService(const std::string& gw, const std::string& id,
                               tg::v1::ServiceResult* out) {
  if (!ValidId(gw) || !ValidId(id)) return NotFound("service");
  return Run([&](pqxx::connection& c) {
    pqxx::read_transaction tx(c);
    if (!LoadOne(tx, "services", gw, id, out->mutable_service())) return NotFound("service");
    OpenService(box_, out->mutable_service());
    MaskService(out->mutable_service());
    out->set_revision(pg::CurrentRevision(tx));
    return Status::OK;
  });
}

Status ConfigStore::ListServices(const std::string& gw, tg::v1::ListServicesResponse* out) {
  if (!ValidId(gw)) return NotFound("gateway");
  return Run([&](pqxx::connection& c) {
    pqxx::read_transaction tx(c);
    if (!GatewayExists(tx, gw)) return NotFound("gateway");
    for (auto& s : LoadAll<tg::v1::Service>(tx, "services", gw)) {
      OpenService(box_, &s);
      MaskService(&s);
      *out->add_services() = std::move(s);
    }
    out->set_revision(pg::CurrentRevision(tx));
    return Status::OK;
  });
}

Status ConfigStore::UpdateService(tg::v1::Service s, tg::v1::ServiceResult* out,
                                  const WriteContext& w) {
  if (!ValidId(s.gateway_id()) || !ValidId(s.id())) return NotFound("service");
  NormalizeService(&s);
  if (auto e = ValidateService(s)) return Invalid(*e);
  return Run([&](pqxx::connection& c) {
    pqxx::work tx(c);
    pg::BeginWrite(tx, w.bounds);
    tg::v1::Service old;
    if (!LoadOne(tx, "services", s.gateway_id(), s.id(), &old, true)) return NotFound("service");
    if (auto st = CheckServiceRefs(tx, s); !st.ok()) return st;
    OpenService(box_, &old);
    if (s.has_credentials()) KeepMaskedSecrets(old.credentials(), s.mutable_credentials());
    *s.mutable_created_at() = old.created_at();
    *s.mutable_updated_at() = now_();
    tg::v1::Service sealed = s;
    SealService(box_, &sealed);
    std::string doc = ToDoc(sealed);
    tx.exec_params("UPDATE services SET upstream_id = NULLIF($2, ''), doc = $3 WHERE id = $1",
                   s.id(), s.type() == "upstream" ? s.upstream_id() : "", doc);
    out->set_revision(Record(tx, "service", s.id(), s.gateway_id(), false, doc));
    pg::CommitWrite(tx, w.bounds);
    MaskService(&s);
    *out->mutable_service() = std::move(s);
    return Status::OK;
  });
}

Status ConfigStore::DeleteService(const std::string& gw, const std::string& id,
                                  tg::v1::DeleteResult* out, const WriteContext& w) {
  if (!ValidId(gw) || !ValidId(id)) return NotFound("service");
  return Run([&](pqxx::connection& c) {
    pqxx::work tx(c);
    pg::BeginWrite(tx, w.bounds);
    if (tx.exec_params("SELECT 1 FROM services WHERE id = $1 AND gateway_id = $2", id, gw)
            .empty()) {
      return NotFound("service");
    }
    auto users =
        tx.exec_params("SELECT id FROM rules WHERE service_id = $1 ORDER BY id LIMIT 1", id);
    if (!users.empty()) {
      return Status(StatusCode::FAILED_PRECONDITION,
                    "service is used by rule " + users[0][0].as<std::string>());
    }
    tx.exec_params("DELETE FROM services WHERE id = $1", id);
    out->set_revision(Record(tx, "service", id, gw, true, ""));
    pg::CommitWrite(tx, w.bounds);
    return Status::OK;
  });
}

// ---- rules ------------------------------------------------------------------

namespace {

Status CheckRuleRefs(pqxx::transaction_base& tx, const tg::v1::Rule& r) {
  if (!ValidId(r.service_id()) ||
      tx.exec_params("SELECT 1 FROM services WHERE id = $1 AND gateway_id = $2", r.service_id(),
                     r.gateway_id())
          .empty()) {
    return Invalid("service_id does not name a service of this gateway");
  }
  return Status::OK;
}

}  // namespace

Status ConfigStore::CreateRule(tg::v1::Rule r, tg::v1::RuleResult* out, const WriteContext& w) {
  if (!ValidId(r.gateway_id())) return NotFound("gateway");
  auto claim = ClaimOf(w, "rules/" + r.gateway_id(), r);
  NormalizeRule(&r);
  if (auto e = ValidateRule(r)) return Invalid(*e);
  r.set_id(crypto::NewUuid());
  *r.mutable_created_at() = now_();
  *r.mutable_updated_at() = r.created_at();
  return Run([&](pqxx::connection& c) {
    pqxx::work tx(c);
    pg::BeginWrite(tx, w.bounds);
    if (auto replay = Replay(tx, claim, out)) return *replay;
    if (!GatewayExists(tx, r.gateway_id())) return NotFound("gateway");
    if (auto st = CheckRuleRefs(tx, r); !st.ok()) return st;
    std::string doc = ToDoc(r);
    tx.exec_params("INSERT INTO rules (id, gateway_id, service_id, doc) VALUES ($1, $2, $3, $4)",
                   r.id(), r.gateway_id(), r.service_id(), doc);
    out->set_revision(Record(tx, "rule", r.id(), r.gateway_id(), false, doc));
    *out->mutable_rule() = std::move(r);
    Remember(tx, claim, *out);
    pg::CommitWrite(tx, w.bounds);
    return Status::OK;
  });
}

Status ConfigStore::GetRule(const std::string& gw, const std::string& id, tg::v1::RuleResult* out) {
  if (!ValidId(gw) || !ValidId(id)) return NotFound("rule");
  return Run([&](pqxx::connection& c) {
    pqxx::read_transaction tx(c);
    if (!LoadOne(tx, "rules", gw, id, out->mutable_rule())) return NotFound("rule");
    out->set_revision(pg::CurrentRevision(tx));
    return Status::OK;
  });
}

Status ConfigStore::ListRules(const std::string& gw, tg::v1::ListRulesResponse* out) {
  if (!ValidId(gw)) return NotFound("gateway");
  return Run([&](pqxx::connection& c) {
    pqxx::read_transaction tx(c);
    if (!GatewayExists(tx, gw)) return NotFound("gateway");
    for (auto& r : LoadAll<tg::v1::Rule>(tx, "rules", gw)) *out->add_rules() = std::move(r);
    out->set_revision(pg::CurrentRevision(tx));
    return Status::OK;
  });
}

Status ConfigStore::UpdateRule(tg::v1::Rule r, tg::v1::RuleResult* out, const WriteContext& w) {
  if (!ValidId(r.gateway_id()) || !ValidId(r.id())) return NotFound("rule");
  NormalizeRule(&r);
  if (auto e = ValidateRule(r)) return Invalid(*e);
  return Run([&](pqxx::connection& c) {
    pqxx::work tx(c);
    pg::BeginWrite(tx, w.bounds);
    tg::v1::Rule old;
    if (!LoadOne(tx, "rules", r.gateway_id(), r.id(), &old, true)) return NotFound("rule");
    if (auto st = CheckRuleRefs(tx, r); !st.ok()) return st;
    *r.mutable_created_at() = old.created_at();
    *r.mutable_updated_at() = now_();
    std::string doc = ToDoc(r);
    tx.exec_params("UPDATE rules SET service_id = $2, doc = $3 WHERE id = $1", r.id(),
                   r.service_id(), doc);
    out->set_revision(Record(tx, "rule", r.id(), r.gateway_id(), false, doc));
    pg::CommitWrite(tx, w.bounds);
    *out->mutable_rule() = std::move(r);
    return Status::OK;
  });
}

Status ConfigStore::DeleteRule(const std::string& gw, const std::string& id,
                               tg::v1::DeleteResult* out, const WriteContext& w) {
  if (!ValidId(gw) || !ValidId(id)) return NotFound("rule");
  return Run([&](pqxx::connection& c) {
    pqxx::work tx(c);
    pg::BeginWrite(tx, w.bounds);
    if (tx.exec_params("DELETE FROM rules WHERE id = $1 AND gateway_id = $2", id, gw)
            .affected_rows() == 0) {
      return NotFound("rule");
    }
    out->set_revision(Record(tx, "rule", id, gw, true, ""));
    pg::CommitWrite(tx, w.bounds);
    return Status::OK;
  });
}

// ---- snapshot ---------------------------------------------------------------

Status ConfigStore::LoadSnapshot(tg::v1::ConfigSnapshot* out, int64_t* revision) {
  return Run([&](pqxx::connection& c) {
    pqxx::transaction<pqxx::repeatable_read> tx(c);
    for (auto& g : LoadAll<tg::v1::Gateway>(tx, "gateways", ""))
      *out->add_gateways() = std::move(g);
    for (auto& u : LoadAll<tg::v1::Upstream>(tx, "upstreams", ""))
      *out->add_upstreams() = std::move(u);
    for (auto& s : LoadAll<tg::v1::Service>(tx, "services", ""))
      *out->add_services() = std::move(s);
    for (auto& r : LoadAll<tg::v1::Rule>(tx, "rules", "")) *out->add_rules() = std::move(r);
    *revision = pg::CurrentRevision(tx);
    tx.commit();
    return Status::OK;
  });
}

}  // namespace tg::config
