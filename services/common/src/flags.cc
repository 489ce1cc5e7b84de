#include "tg/common/flags.h"

#include <cctype>
#include <charconv>
#include <cstdio>
#include <cstdlib>

namespace tg {

Flags::Flags(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg.rfind("--", 0) != 0) {
      positional_.push_back(std::move(arg));
      continue;
    }
    auto eq = arg.find('=');
    if (eq == std::string::npos) {
      args_[arg.substr(2)] = "true";
    } else {
      args_[arg.substr(2, eq - 2)] = arg.substr(eq + 1);
    }
  }
}

std::vector<FlagSpec> Flags::CommonServiceFlags() {
  using T = FlagSpec::Type;
  return {
      {"log-level", T::kString, "info", "debug, info, warn or error"},
      {"grpc-tls-dir", T::kString, "",
       "directory of the internal CA and per-service certificates (tg-certs)"},
      {"grpc-tls-ca", T::kString, "<grpc-tls-dir>/ca.pem", "internal CA certificate"},
      {"grpc-tls-cert", T::kString, "<grpc-tls-dir>/<service>.pem", "this service's certificate"},
      {"grpc-tls-key", T::kString, "<grpc-tls-dir>/<service>-key.pem", "this service's key"},
      {"grpc-insecure", T::kBool, "false",
       "internal gRPC in plaintext, without authentication (tests only)"},
  };
}

namespace {

void PrintUsage(std::string_view program, std::string_view about,
                const std::vector<FlagSpec>& specs) {
  std::printf("%.*s: %.*s\n\nUsage: %.*s [--flag=value ...]\n", static_cast<int>(program.size()),
              program.data(), static_cast<int>(about.size()), about.data(),
              static_cast<int>(program.size()), program.data());
  std::printf("Each flag may also be set in the environment variable shown.\n\n");
  for (const FlagSpec& s : specs) {
    const char* kind = s.type == FlagSpec::Type::kInt    ? "int"
                       : s.type == FlagSpec::Type::kBool ? "bool"
                                                         : "string";
    std::printf("  --%s=<%s>  (%s)\n      %s", s.name, kind, Flags::EnvName(s.name).c_str(),
                s.help);
    if (!s.fallback.empty()) std::printf(" [default: %s]", s.fallback.c_str());
    std::printf("\n");
  }
}

}  // namespace

std::optional<Flags> Flags::ForService(int argc, char** argv, std::string_view program,
                                       std::string_view about, std::vector<FlagSpec> options,
                                       int* exit_code) {
  Flags flags(argc, argv);
  for (FlagSpec& s : CommonServiceFlags()) options.push_back(s);
  flags.specs_ = std::move(options);
  const std::string name(program);
  if (flags.args_.count("help") != 0 || (argc > 1 && std::string_view(argv[1]) == "-h")) {
    PrintUsage(program, about, flags.specs_);
    *exit_code = 0;
    return std::nullopt;
  }
  auto refuse = [&](const std::string& why) {
    std::fprintf(stderr, "%s: %s (see %s --help)\n", name.c_str(), why.c_str(), name.c_str());
    *exit_code = 2;
    return std::nullopt;
  };
  if (!flags.positional_.empty()) {
    return refuse("unexpected argument \"" + flags.positional_.front() + "\"");
  }
  for (const auto& [flag, value] : flags.args_) {
    if (flags.Spec(flag) == nullptr) return refuse("unknown flag --" + flag);
  }
  for (const FlagSpec& s : flags.specs_) {
    std::optional<std::string> v;
    std::string where = std::string("--") + s.name;
    if (auto it = flags.args_.find(s.name); it != flags.args_.end()) {
      v = it->second;
    } else if (const char* env = std::getenv(EnvName(s.name).c_str()); env && *env) {
      v = env;
      where = EnvName(s.name);
    }
    if (!v) continue;
    if (s.type == FlagSpec::Type::kInt && !ParseInt(*v)) {
      return refuse(where + "=" + *v + " is not an integer");
    }
    if (s.type == FlagSpec::Type::kBool && !ParseBool(*v)) {
      return refuse(where + "=" + *v + " is not a boolean (true/false, 1/0, yes/no, on/off)");
    }
  }
  *exit_code = 0;
  return flags;
}

const FlagSpec* Flags::Spec(const std::string& name) const {
  for (const FlagSpec& s : specs_) {
    if (name == s.name) return &s;
  }
  return nullptr;
}

std::string Flags::EnvName(const std::string& flag) {
  std::string env = "TG_";
  for (char c : flag) env += c == '-' ? '_' : static_cast<char>(std::toupper(c));
  return env;
}

std::optional<bool> Flags::ParseBool(std::string_view v) {
  if (v == "1" || v == "true" || v == "yes" || v == "on") return true;
  if (v == "0" || v == "false" || v == "no" || v == "off") return false;
  return std::nullopt;
}

std::optional<int64_t> Flags::ParseInt(std::string_view v) {
  int64_t n = 0;
  auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  if (ec != std::errc() || end != v.data() + v.size() || v.empty()) return std::nullopt;
  return n;
}

std::optional<std::string> Flags::Get(const std::string& name) const {
  if (auto it = args_.find(name); it != args_.end()) return it->second;
  if (const char* v = std::getenv(EnvName(name).c_str()); v != nullptr && *v != '\0') {
    return std::string(v);
  }
  return std::nullopt;
}

std::string Flags::String(const std::string& name) const {
  const FlagSpec* s = Spec(name);
  return String(name, s != nullptr ? s->fallback : "");
}

std::string Flags::String(const std::string& name, const std::string& fallback) const {
  return Get(name).value_or(fallback);
}

int64_t Flags::Int(const std::string& name) const {
  const FlagSpec* s = Spec(name);
  return Int(name, s != nullptr ? ParseInt(s->fallback).value_or(0) : 0);
}

int64_t Flags::Int(const std::string& name, int64_t fallback) const {
  auto v = Get(name);
  if (!v) return fallback;
  return ParseInt(*v).value_or(fallback);
}

bool Flags::Bool(const std::string& name) const {
  const FlagSpec* s = Spec(name);
  return Bool(name, s != nullptr && ParseBool(s->fallback).value_or(false));
}

bool Flags::Bool(const std::string& name, bool fallback) const {
  auto v = Get(name);
  if (!v) return fallback;
  return ParseBool(*v).value_or(false);
}

}  // namespace tg
