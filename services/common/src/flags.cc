#include "tg/common/flags.h"

#include <cctype>
#include <cstdlib>

namespace tg {

Flags::Flags(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg.rfind("--", 0) != 0) continue;
    auto eq = arg.find('=');
    if (eq == std::string::npos) {
      args_[arg.substr(2)] = "true";
    } else {
      args_[arg.substr(2, eq - 2)] = arg.substr(eq + 1);
    }
  }
}

std::string Flags::EnvName(const std::string& flag) {
  std::string env = "TG_";
  for (char c : flag) env += c == '-' ? '_' : static_cast<char>(std::toupper(c));
  return env;
}

std::optional<std::string> Flags::Get(const std::string& name) const {
  if (auto it = args_.find(name); it != args_.end()) return it->second;
  if (const char* v = std::getenv(EnvName(name).c_str()); v != nullptr && *v != '\0') {
    return std::string(v);
  }
  return std::nullopt;
}

std::string Flags::String(const std::string& name, const std::string& fallback) const {
  return Get(name).value_or(fallback);
}

int64_t Flags::Int(const std::string& name, int64_t fallback) const {
  auto v = Get(name);
  if (!v) return fallback;
  try {
    return std::stoll(*v);
  } catch (...) {
    return fallback;
  }
}

bool Flags::Bool(const std::string& name, bool fallback) const {
  auto v = Get(name);
  if (!v) return fallback;
  return *v == "1" || *v == "true" || *v == "yes" || *v == "on";
}

}  // namespace tg
