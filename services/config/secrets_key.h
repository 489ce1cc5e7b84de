#pragma once

#include <optional>
#include <string>

#include "tg/common/crypto.h"

namespace tg::config {

// Where the credentials encryption key comes from: TG_SECRETS_KEY (base64 of
// 32 bytes) when given, else a key file, created with mode 0600 and a fresh
// random key on first run. Every tg-config replica must use the same key.
struct SecretsKeyOptions {
  std::string key_base64;  // wins when set
  std::string key_file;    // used (and created) otherwise
};

// nullopt with *error when the key is malformed or the file cannot be used.
std::optional<crypto::SecretBox> LoadSecretsKey(const SecretsKeyOptions& options,
                                                std::string* error);

}  // namespace tg::config
