// tg-certs --out=DIR [--identities=a,b,...] [--days=N] [--ca-days=N] [--new-ca] [--renew]
//
// Makes DIR hold the private CA of the internal gRPC identities (ca.pem,
// ca-key.pem) and one certificate per identity (<identity>.pem,
// <identity>-key.pem; keys mode 0600): ECDSA P-256, common name and DNS name
// = the identity. Idempotent: an existing CA is kept unless --new-ca, and an
// identity's certificate is kept while it is valid for more than a third of
// --days unless --renew. Default identities: the five services and
// tg-operator. See docs/OPERATIONS.md, "Internal identities".
#include <cstdio>
#include <string>
#include <vector>

#include "tg/common/cert_authority.h"
#include "tg/common/flags.h"

namespace {

std::vector<std::string> SplitCommas(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    size_t comma = s.find(',', start);
    if (comma == std::string::npos) comma = s.size();
    if (comma > start) out.push_back(s.substr(start, comma - start));
    start = comma + 1;
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::printf(
          "usage: tg-certs --out=DIR [--identities=a,b,...] [--days=N] [--ca-days=N] "
          "[--new-ca] [--renew]\n");
      return 0;
    }
  }
  // `--out DIR` as well as `--out=DIR` for the flags that take a value.
  std::vector<std::string> args(argv, argv + argc);
  for (size_t i = 1; i + 1 < args.size(); ++i) {
    for (const char* name : {"--out", "--identities", "--days", "--ca-days"}) {
      if (args[i] == name && args[i + 1].rfind("--", 0) != 0) {
        args[i] += "=" + args[i + 1];
        args.erase(args.begin() + static_cast<long>(i) + 1);
        break;
      }
    }
  }
  std::vector<char*> argp;
  for (auto& a : args) argp.push_back(a.data());
  tg::Flags flags(static_cast<int>(argp.size()), argp.data());
  tg::certs::CertDirOptions options;
  options.dir = flags.String("out");
  options.identities = SplitCommas(flags.String(
      "identities", "tg-edge,tg-config,tg-keyauth,tg-balancer,tg-adapter,tg-operator"));
  options.days = static_cast<int>(flags.Int("days", 365));
  options.ca_days = static_cast<int>(flags.Int("ca-days", 3650));
  options.new_ca = flags.Bool("new-ca", false);
  options.renew = flags.Bool("renew", false);
  if (options.dir.empty()) {
    std::fprintf(stderr, "tg-certs: --out=DIR is required (see --help)\n");
    return 2;
  }
  std::vector<std::string> log;
  std::string error;
  const bool ok = tg::certs::EnsureCertDir(options, &log, &error);
  for (const auto& line : log) std::printf("tg-certs: %s\n", line.c_str());
  if (!ok) {
    std::fprintf(stderr, "tg-certs: %s\n", error.c_str());
    return 1;
  }
  return 0;
}
