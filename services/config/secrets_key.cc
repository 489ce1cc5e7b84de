#include "tg/config/secrets_key.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

namespace tg::config {
namespace {

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

std::optional<crypto::SecretBox> FromBase64(const std::string& b64, std::string* error) {
  auto raw = crypto::Base64Decode(Trim(b64));
  if (!raw || raw->size() != crypto::SecretBox::kKeySize) {
    *error = "secrets key must be the base64 encoding of exactly 32 bytes";
    return std::nullopt;
  }
  return crypto::SecretBox::FromKey(std::move(*raw));
}

}  // namespace

std::optional<crypto::SecretBox> LoadSecretsKey(const SecretsKeyOptions& options,
                                                std::string* error) {
  if (!options.key_base64.empty()) return FromBase64(options.key_base64, error);
  if (options.key_file.empty()) {
    *error = "no secrets key: set TG_SECRETS_KEY or TG_SECRETS_KEY_FILE";
    return std::nullopt;
  }
  std::ifstream in(options.key_file);
  if (in) {
    std::stringstream ss;
    ss << in.rdbuf();
    return FromBase64(ss.str(), error);
  }
  // First run: create the file exclusively, so two replicas starting together
  // cannot both write a key; the loser reads the winner's.
  int fd = ::open(options.key_file.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0600);
  if (fd < 0) {
    std::ifstream again(options.key_file);
    if (again) {
      std::stringstream ss;
      ss << again.rdbuf();
      return FromBase64(ss.str(), error);
    }
    *error = "cannot create secrets key file " + options.key_file;
    return std::nullopt;
  }
  std::string b64 = crypto::Base64Encode(crypto::RandomBytes(crypto::SecretBox::kKeySize)) + "\n";
  bool ok = ::write(fd, b64.data(), b64.size()) == static_cast<ssize_t>(b64.size());
  ok = ::fsync(fd) == 0 && ok;
  ::close(fd);
  if (!ok) {
    *error = "cannot write secrets key file " + options.key_file;
    return std::nullopt;
  }
  return FromBase64(b64, error);
}

}  // namespace tg::config
