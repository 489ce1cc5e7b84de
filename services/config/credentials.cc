#include "tg/config/credentials.h"

#include <array>

namespace tg::config {
namespace {

using Field = std::string* (tg::v1::Credentials::*)();
using ConstField = const std::string& (tg::v1::Credentials::*)() const;

struct SecretField {
  Field mut;
  ConstField get;
};

const std::array<SecretField, 5>& SecretFields() {
  using C = tg::v1::Credentials;
  static const std::array<SecretField, 5> kFields = {{
      {&C::mutable_api_key, &C::api_key},
      {&C::mutable_header_value, &C::header_value},
      {&C::mutable_aws_access_key_id, &C::aws_access_key_id},
      {&C::mutable_aws_secret_access_key, &C::aws_secret_access_key},
      {&C::mutable_aws_session_token, &C::aws_session_token},
  }};
  return kFields;
}

}  // namespace

std::string Mask(const std::string& secret) {
  if (secret.empty()) return "";
  // Never derive a mask from ciphertext: callers open before masking, and a
  // sealed value reaching here must not show its tail as if it were the key's.
  if (crypto::SecretBox::IsSealed(secret)) return "****";
  if (secret.size() < 16) return "****";
  // The last four bytes, moved forward to a character boundary: a tail that
  // began inside a UTF-8 sequence would not be UTF-8, and protobuf refuses
  // such a string (found by fuzz/admin_json).
  size_t start = secret.size() - 4;
  while (start < secret.size() && (static_cast<unsigned char>(secret[start]) & 0xC0) == 0x80) {
    ++start;
  }
  return "****" + secret.substr(start);
}

void MaskCredentials(tg::v1::Credentials* c) {
  for (const auto& f : SecretFields()) {
    std::string* v = (c->*f.mut)();
    *v = Mask(*v);
  }
}

void SealCredentials(const crypto::SecretBox& box, tg::v1::Credentials* c) {
  for (const auto& f : SecretFields()) {
    std::string* v = (c->*f.mut)();
    if (!v->empty() && !crypto::SecretBox::IsSealed(*v)) *v = box.Seal(*v);
  }
}

bool OpenCredentials(const crypto::SecretBox& box, tg::v1::Credentials* c) {
  bool ok = true;
  for (const auto& f : SecretFields()) {
    std::string* v = (c->*f.mut)();
    if (v->empty() || !crypto::SecretBox::IsSealed(*v)) continue;
    if (auto plain = box.Open(*v)) {
      *v = std::move(*plain);
    } else {
      v->clear();
      ok = false;
    }
  }
  return ok;
}

void KeepMaskedSecrets(const tg::v1::Credentials& stored, tg::v1::Credentials* incoming) {
  for (const auto& f : SecretFields()) {
    std::string* in = (incoming->*f.mut)();
    const std::string& old = (stored.*f.get)();
    if (!in->empty() && !old.empty() && *in == Mask(old)) *in = old;
  }
}

void MaskUpstream(tg::v1::Upstream* u) {
  for (auto& t : *u->mutable_targets()) {
    if (t.has_credentials()) MaskCredentials(t.mutable_credentials());
  }
}

void MaskService(tg::v1::Service* s) {
  if (s->has_credentials()) MaskCredentials(s->mutable_credentials());
}

void SealUpstream(const crypto::SecretBox& box, tg::v1::Upstream* u) {
  for (auto& t : *u->mutable_targets()) {
    if (t.has_credentials()) SealCredentials(box, t.mutable_credentials());
  }
}

void SealService(const crypto::SecretBox& box, tg::v1::Service* s) {
  if (s->has_credentials()) SealCredentials(box, s->mutable_credentials());
}

bool OpenUpstream(const crypto::SecretBox& box, tg::v1::Upstream* u) {
  bool ok = true;
  for (auto& t : *u->mutable_targets()) {
    if (t.has_credentials()) ok = OpenCredentials(box, t.mutable_credentials()) && ok;
  }
  return ok;
}

bool OpenService(const crypto::SecretBox& box, tg::v1::Service* s) {
  return !s->has_credentials() || OpenCredentials(box, s->mutable_credentials());
}

void KeepMaskedSecrets(const tg::v1::Upstream& stored, tg::v1::Upstream* incoming) {
  for (int i = 0; i < incoming->targets_size(); ++i) {
    auto* t = incoming->mutable_targets(i);
    const tg::v1::Target* match = nullptr;
    for (const auto& s : stored.targets()) {
      if (!t->id().empty() && s.id() == t->id()) match = &s;
    }
    if (match == nullptr && t->id().empty() && i < stored.targets_size()) {
      match = &stored.targets(i);
      t->set_id(match->id());  // the same slot keeps its identity (and health history)
    }
    if (match != nullptr && t->has_credentials()) {
      KeepMaskedSecrets(match->credentials(), t->mutable_credentials());
    }
  }
}

}  // namespace tg::config
