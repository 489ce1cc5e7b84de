#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>

namespace tg {

// Reads `--name=value` command-line flags, falling back to the environment
// variable TG_NAME (upper-cased, dashes as underscores), then to a default.
// Only main.cc uses this: everything else takes options structs.
class Flags {
 public:
  Flags(int argc, char** argv);

  std::string String(const std::string& name, const std::string& fallback = "") const;
  int64_t Int(const std::string& name, int64_t fallback) const;
  bool Bool(const std::string& name, bool fallback) const;
  std::optional<std::string> Get(const std::string& name) const;

  static std::string EnvName(const std::string& flag);

 private:
  std::unordered_map<std::string, std::string> args_;
};

}  // namespace tg
