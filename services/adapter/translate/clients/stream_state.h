#pragma once

// Reading a client stream encoder's saved state (ClientStreamEncoder::
// SaveState). The state travels from one invocation to another through the
// edge: it is read as untrusted JSON, every number bounded.

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "tg/adapter/translate/chat.h"
#include "tg/adapter/translate/client_codec.h"
#include "tg/adapter/translate/json.h"

namespace tg::adapter::translate::stream_state {

// Indexes (blocks, items, tool calls) a saved state may name.
inline constexpr int64_t kMaxIndex = 4096;

// The state object when `text` is JSON saved by an encoder of `kind`.
inline bool Open(std::string_view text, std::string_view kind, json::Document* doc) {
  if (!json::ParseStrict(text, doc) || !doc->IsObject()) return false;
  return json::GetString(*doc, "kind") == kind;
}

// An integer member within [lo, hi], else nullopt.
inline std::optional<int64_t> Int(const json::Value& obj, std::string_view key, int64_t lo,
                                  int64_t hi) {
  const json::Value* v = json::Find(obj, key);
  if (v == nullptr || !v->IsInt64()) return std::nullopt;
  const int64_t n = v->GetInt64();
  if (n < lo || n > hi) return std::nullopt;
  return n;
}

// An array of integers within [lo, hi] (at most kMaxIndex of them), else nullopt.
inline std::optional<std::vector<int>> Ints(const json::Value& obj, std::string_view key,
                                            int64_t lo, int64_t hi) {
  const json::Value* a = json::GetArray(obj, key);
  if (a == nullptr || a->Size() > kMaxIndex) return std::nullopt;
  std::vector<int> out;
  out.reserve(a->Size());
  for (const auto& v : a->GetArray()) {
    if (!v.IsInt64() || v.GetInt64() < lo || v.GetInt64() > hi) return std::nullopt;
    out.push_back(static_cast<int>(v.GetInt64()));
  }
  return out;
}

inline void WriteInts(json::Writer& w, std::string_view key, const std::vector<int>& values) {
  json::WriteKey(w, key);
  w.StartArray();
  for (int v : values) w.Int(v);
  w.EndArray();
}

inline void WriteUsage(json::Writer& w, const Usage& u) {
  w.Key("usage");
  w.StartArray();
  for (int64_t n : {u.prompt_tokens, u.completion_tokens, u.total_tokens, u.cached_tokens,
                    u.reasoning_tokens}) {
    w.Int64(n);
  }
  w.EndArray();
}

// The usage WriteUsage wrote (five counts, none negative), else false.
inline bool ReadUsage(const json::Value& obj, Usage* u) {
  const json::Value* a = json::GetArray(obj, "usage");
  if (a == nullptr || a->Size() != 5) return false;
  int64_t n[5];
  for (rapidjson::SizeType i = 0; i < 5; ++i) {
    if (!(*a)[i].IsInt64() || (*a)[i].GetInt64() < 0) return false;
    n[i] = (*a)[i].GetInt64();
  }
  *u = Usage{n[0], n[1], n[2], n[3], n[4]};
  return true;
}

// What every encoder's state holds: its kind, the answer's id, model and
// created time, whether it started and finished, and the usage so far.
struct Common {
  std::string id;
  std::string model;
  int64_t created = 0;
  bool started = false;
  bool finished = false;
  Usage usage;
};

// Opens the state object and writes the common members; the encoder adds its
// own, then closes it (w.EndObject()).
inline void Begin(json::Writer& w, std::string_view kind, const StreamEncoderOptions& o,
                  bool started, bool finished, const Usage& usage) {
  w.StartObject();
  json::WriteKey(w, "kind");
  json::WriteString(w, kind);
  w.Key("id");
  json::WriteString(w, o.id);
  w.Key("model");
  json::WriteString(w, o.model);
  w.Key("created");
  w.Int64(o.created);
  w.Key("started");
  w.Bool(started);
  w.Key("finished");
  w.Bool(finished);
  WriteUsage(w, usage);
}

// Parses a state of `kind` and reads the common members; false when it is
// not one (or they are out of range).
inline bool Read(std::string_view text, std::string_view kind, json::Document* doc, Common* c) {
  if (!Open(text, kind, doc) || !ReadUsage(*doc, &c->usage)) return false;
  auto created = Int(*doc, "created", 0, INT64_MAX);
  if (!created) return false;
  c->id = std::string(json::GetString(*doc, "id"));
  c->model = std::string(json::GetString(*doc, "model"));
  c->created = *created;
  c->started = json::GetBool(*doc, "started");
  c->finished = json::GetBool(*doc, "finished");
  return true;
}

// The common members into an encoder's options (its include_usage stays).
inline void Apply(const Common& c, StreamEncoderOptions* o) {
  o->id = c.id;
  o->model = c.model;
  o->created = c.created;
}

}  // namespace tg::adapter::translate::stream_state
