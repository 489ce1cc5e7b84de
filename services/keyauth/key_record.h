#pragma once

#include <google/protobuf/timestamp.pb.h>

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "tg/v1/resources.pb.h"

namespace tg::keyauth {

using TimePoint = std::chrono::system_clock::time_point;

// One stored API key: everything but the key itself, which is never kept.
// Times have microsecond precision, as PostgreSQL stores them, so what a
// client is told at creation is what it later reads back.
struct KeyRecord {
  std::string id;
  std::string gateway_id;
  std::string name;
  std::string prefix;
  std::string hash;  // SHA-256 of the key, 32 raw bytes
  std::optional<TimePoint> expires_at;
  TimePoint created_at;
  TimePoint updated_at;
};

// Truncates to what PostgreSQL keeps.
TimePoint ToMicros(TimePoint t);

TimePoint FromProtoTime(const google::protobuf::Timestamp& ts);
google::protobuf::Timestamp ToProtoTime(TimePoint t);
// RFC 3339 in UTC ("2025-01-02T03:04:05.123456Z"): change-log docs and SQL parameters.
std::string FormatTime(TimePoint t);
std::optional<TimePoint> ParseTime(std::string_view text);
TimePoint FromUnixMicros(int64_t micros);

// The admin view of a key: no `key`, no hash.
void ToProto(const KeyRecord& record, tg::v1::ApiKey* out);

// The change-log document of a key: its non-secret fields plus the hash in hex,
// so that every replica can index it without reading api_keys.
std::string ToChangeDoc(const KeyRecord& record);
std::optional<KeyRecord> FromChangeDoc(std::string_view doc);

}  // namespace tg::keyauth
