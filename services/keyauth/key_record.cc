#include "tg/keyauth/key_record.h"

#include <google/protobuf/util/time_util.h>
#include <rapidjson/document.h>

#include "tg/common/bounded_json.h"
#include "tg/common/crypto.h"
#include "tg/common/json_util.h"

namespace tg::keyauth {

using google::protobuf::util::TimeUtil;

TimePoint ToMicros(TimePoint t) { return std::chrono::floor<std::chrono::microseconds>(t); }

TimePoint FromProtoTime(const google::protobuf::Timestamp& ts) {
  return TimePoint(std::chrono::duration_cast<TimePoint::duration>(
      std::chrono::seconds(ts.seconds()) + std::chrono::nanoseconds(ts.nanos())));
}

google::protobuf::Timestamp ToProtoTime(TimePoint t) {
  auto micros = std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count();
  return TimeUtil::MicrosecondsToTimestamp(micros);
}

std::string FormatTime(TimePoint t) { return TimeUtil::ToString(ToProtoTime(t)); }

std::optional<TimePoint> ParseTime(std::string_view text) {
  google::protobuf::Timestamp ts;
  if (!TimeUtil::FromString(std::string(text), &ts)) return std::nullopt;
  return FromProtoTime(ts);
}

TimePoint FromUnixMicros(int64_t micros) {
  return TimePoint(
      std::chrono::duration_cast<TimePoint::duration>(std::chrono::microseconds(micros)));
}

void ToProto(const KeyRecord& r, tg::v1::ApiKey* out) {
  out->set_id(r.id);
  out->set_gateway_id(r.gateway_id);
  out->set_name(r.name);
  out->set_prefix(r.prefix);
  if (r.expires_at) *out->mutable_expires_at() = ToProtoTime(*r.expires_at);
  *out->mutable_created_at() = ToProtoTime(r.created_at);
  *out->mutable_updated_at() = ToProtoTime(r.updated_at);
}

std::string ToChangeDoc(const KeyRecord& r) {
  std::string out;
  out.reserve(320);
  auto field = [&out](std::string_view name, std::string_view value, bool first = false) {
    if (!first) out += ',';
    json::AppendQuoted(out, name);
    out += ':';
    json::AppendQuoted(out, value);
  };
  out += '{';
  field("id", r.id, true);
  field("gateway_id", r.gateway_id);
  field("name", r.name);
  field("prefix", r.prefix);
  field("hash", crypto::HexEncode(r.hash));
  if (r.expires_at) field("expires_at", FormatTime(*r.expires_at));
  field("created_at", FormatTime(r.created_at));
  field("updated_at", FormatTime(r.updated_at));
  out += '}';
  return out;
}

namespace {

std::optional<std::string> HexDecode(std::string_view hex) {
  if (hex.size() % 2 != 0) return std::nullopt;
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out;
  out.reserve(hex.size() / 2);
  for (size_t i = 0; i < hex.size(); i += 2) {
    int hi = nibble(hex[i]);
    int lo = nibble(hex[i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out += static_cast<char>((hi << 4) | lo);
  }
  return out;
}

}  // namespace

std::optional<KeyRecord> FromChangeDoc(std::string_view doc) {
  rapidjson::Document d;
  if (!json::Parse(doc, &d).ok() || !d.IsObject()) return std::nullopt;
  auto str = [&d](const char* name) -> std::optional<std::string_view> {
    if (!d.HasMember(name) || !d[name].IsString()) return std::nullopt;
    const auto& v = d[name];
    return std::string_view(v.GetString(), v.GetStringLength());
  };
  auto id = str("id");
  auto gateway_id = str("gateway_id");
  auto name = str("name");
  auto prefix = str("prefix");
  auto hash_hex = str("hash");
  auto created = str("created_at");
  auto updated = str("updated_at");
  if (!id || !gateway_id || !name || !prefix || !hash_hex || !created || !updated) {
    return std::nullopt;
  }
  KeyRecord r;
  r.id = *id;
  r.gateway_id = *gateway_id;
  r.name = *name;
  r.prefix = *prefix;
  auto hash = HexDecode(*hash_hex);
  auto created_at = ParseTime(*created);
  auto updated_at = ParseTime(*updated);
  if (!hash || hash->size() != 32 || !created_at || !updated_at) return std::nullopt;
  r.hash = std::move(*hash);
  r.created_at = *created_at;
  r.updated_at = *updated_at;
  if (auto expires = str("expires_at")) {
    auto t = ParseTime(*expires);
    if (!t) return std::nullopt;
    r.expires_at = *t;
  }
  return r;
}

}  // namespace tg::keyauth
