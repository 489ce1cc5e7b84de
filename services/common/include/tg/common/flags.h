#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace tg {

// One option of a service: its flag, its type, its default and what it does.
// The environment variable is Flags::EnvName(name) (TG_ + upper-cased, dashes
// as underscores). Each service's main.cc holds its table: the one place for
// its defaults, which `--help` prints.
struct FlagSpec {
  enum class Type { kString, kInt, kBool };
  const char* name;
  Type type;
  std::string fallback;  // the default, as text ("" none); how it is derived when computed
  const char* help;
};

// Reads `--name=value` command-line flags, falling back to the environment
// variable TG_NAME (upper-cased, dashes as underscores), then to a default.
// Only main.cc uses this: everything else takes options structs.
class Flags {
 public:
  // Any flag, nothing checked (tools, tests).
  Flags(int argc, char** argv);

  // A service's command line, checked against its table plus
  // CommonServiceFlags(). `--help` (or -h) prints the options and *exit_code
  // is 0; an unknown flag, a positional argument, or an int/bool flag or
  // environment value that does not parse prints why (stderr) and *exit_code
  // is 2. In those cases nullopt: main returns *exit_code.
  static std::optional<Flags> ForService(int argc, char** argv, std::string_view program,
                                         std::string_view about, std::vector<FlagSpec> options,
                                         int* exit_code);

  // The flags every service reads: log-level, grpc-tls-dir/-ca/-cert/-key,
  // grpc-insecure.
  static std::vector<FlagSpec> CommonServiceFlags();

  // Without a fallback: the table's default ("", 0, false when the flag has
  // no table entry or no default).
  std::string String(const std::string& name) const;
  std::string String(const std::string& name, const std::string& fallback) const;
  int64_t Int(const std::string& name) const;
  int64_t Int(const std::string& name, int64_t fallback) const;
  bool Bool(const std::string& name) const;
  bool Bool(const std::string& name, bool fallback) const;
  std::optional<std::string> Get(const std::string& name) const;

  static std::string EnvName(const std::string& flag);
  // "1", "true", "yes", "on" / "0", "false", "no", "off"; nullopt otherwise.
  static std::optional<bool> ParseBool(std::string_view v);
  static std::optional<int64_t> ParseInt(std::string_view v);

 private:
  const FlagSpec* Spec(const std::string& name) const;

  std::unordered_map<std::string, std::string> args_;
  std::vector<std::string> positional_;
  std::vector<FlagSpec> specs_;
};

}  // namespace tg
