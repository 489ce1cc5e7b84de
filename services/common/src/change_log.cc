#include "tg/common/change_log.h"

#include <thread>

#include "tg/common/log.h"

namespace tg::pg {

const std::string_view kChangeLogSchema = R"sql(
CREATE SEQUENCE IF NOT EXISTS change_revision;
CREATE TABLE IF NOT EXISTS change_log (
  revision   bigint PRIMARY KEY,
  topic      text NOT NULL,
  kind       text NOT NULL,
  entity_id  text NOT NULL,
  gateway_id text NOT NULL DEFAULT '',
  deleted    boolean NOT NULL,
  doc        text NOT NULL DEFAULT '',
  at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS change_log_topic_revision ON change_log (topic, revision);
)sql";

namespace {
constexpr long long kWriteLock = 0x7467'7772'6974;  // "tgwrit"
constexpr int64_t kPruneEvery = 1000;               // revisions between prunes
}  // namespace

void LockWrites(pqxx::transaction_base& tx) {
  tx.exec("SELECT pg_advisory_xact_lock(" + std::to_string(kWriteLock) + ")");
}

int64_t AppendChange(pqxx::transaction_base& tx, const Change& c) {
  auto rev = tx.exec("SELECT nextval('change_revision')")[0][0].as<int64_t>();
  tx.exec_params(
      "INSERT INTO change_log (revision, topic, kind, entity_id, gateway_id, deleted, doc) "
      "VALUES ($1, $2, $3, $4, $5, $6, $7)",
      rev, c.topic, c.kind, c.entity_id, c.gateway_id, c.deleted, c.doc);
  tx.exec_params("SELECT pg_notify($1, $2)", "tg_" + c.topic, std::to_string(rev));
  if (rev % kPruneEvery == 0) {
    // Watchers older than a week resume with a snapshot instead.
    tx.exec("DELETE FROM change_log WHERE at < now() - interval '7 days'");
  }
  return rev;
}

std::vector<ChangeRow> ReadChanges(pqxx::transaction_base& tx, std::string_view topic,
                                   int64_t after, int limit) {
  auto r = tx.exec_params(
      "SELECT revision, kind, entity_id, gateway_id, deleted, doc FROM change_log "
      "WHERE topic = $1 AND revision > $2 ORDER BY revision LIMIT $3",
      std::string(topic), after, limit);
  std::vector<ChangeRow> rows;
  rows.reserve(r.size());
  for (const auto& row : r) {
    ChangeRow cr;
    cr.revision = row[0].as<int64_t>();
    cr.change.topic = std::string(topic);
    cr.change.kind = row[1].as<std::string>();
    cr.change.entity_id = row[2].as<std::string>();
    cr.change.gateway_id = row[3].as<std::string>();
    cr.change.deleted = row[4].as<bool>();
    cr.change.doc = row[5].as<std::string>();
    rows.push_back(std::move(cr));
  }
  return rows;
}

int64_t CurrentRevision(pqxx::transaction_base& tx) {
  // last_value is the last revision handed out; with LockWrites it is also
  // committed once no write transaction is open. Reading max() of the log is
  // exact for what this transaction can see.
  return tx.exec("SELECT COALESCE(max(revision), 0) FROM change_log")[0][0].as<int64_t>();
}

struct ChangeListener::Receiver : pqxx::notification_receiver {
  Receiver(pqxx::connection_base& c, const std::string& channel, int* pending)
      : pqxx::notification_receiver(c, channel), pending_(pending) {}
  void operator()(const std::string&, int) override { ++*pending_; }
  int* pending_;
};

ChangeListener::ChangeListener(std::string dsn, std::string topic)
    : dsn_(std::move(dsn)), channel_("tg_" + std::move(topic)) {}

ChangeListener::~ChangeListener() {
  receiver_.reset();
  conn_.reset();
}

void ChangeListener::Connect() {
  try {
    conn_ = std::make_unique<pqxx::connection>(dsn_);
    receiver_ = std::make_unique<Receiver>(*conn_, channel_, &pending_);
  } catch (const std::exception&) {
    receiver_.reset();
    conn_.reset();
  }
}

bool ChangeListener::Wait(std::chrono::milliseconds timeout) {
  if (!conn_) {
    Connect();
    if (!conn_) {
      std::this_thread::sleep_for(timeout);
      return false;
    }
    return true;  // (re)connected: the caller must re-read, it may have missed notifications
  }
  pending_ = 0;
  try {
    auto secs = timeout.count() / 1000;
    auto usecs = (timeout.count() % 1000) * 1000;
    conn_->await_notification(secs, usecs);
  } catch (const std::exception&) {
    log::Warn("change listener lost its connection", {{"channel", channel_}});
    receiver_.reset();
    conn_.reset();
    return false;
  }
  return pending_ > 0;
}

}  // namespace tg::pg
