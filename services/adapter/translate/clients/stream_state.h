#pragma once

// Reading a client stream encoder's saved state (ClientStreamEncoder::
// SaveState). The state travels from one invocation to another through the
// edge: it is read as untrusted JSON, every number bounded.

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "translate/chat.h"
#include "translate/json.h"

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

}  // namespace tg::adapter::translate::stream_state
