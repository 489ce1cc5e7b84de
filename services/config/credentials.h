#pragma once

#include <string>

#include "tg/common/crypto.h"
#include "tg/v1/resources.pb.h"

namespace tg::config {

// The secret fields of Credentials: encrypted at rest, masked in answers.
// (header_name, aws_region, azure_endpoint, azure_version and the managed
// identity flag are configuration, not secrets.)
//
// Masking keeps the last four characters of secrets of at least 16
// characters, enough to tell two keys apart without weakening them:
// "sk-proj-abcdefgh1234" → "****1234"; shorter ones become "****".
std::string Mask(const std::string& secret);

void MaskCredentials(tg::v1::Credentials* c);
void SealCredentials(const crypto::SecretBox& box, tg::v1::Credentials* c);
// false when a sealed value cannot be opened (wrong key or tampering).
bool OpenCredentials(const crypto::SecretBox& box, tg::v1::Credentials* c);

// For an update: every secret field of `incoming` that equals the mask of the
// corresponding field of `stored` (both in clear) takes the stored value, so a
// client may PUT back what GET returned without erasing secrets.
void KeepMaskedSecrets(const tg::v1::Credentials& stored, tg::v1::Credentials* incoming);

// The same over whole resources: every target / the service.
void MaskUpstream(tg::v1::Upstream* u);
void MaskService(tg::v1::Service* s);
void SealUpstream(const crypto::SecretBox& box, tg::v1::Upstream* u);
void SealService(const crypto::SecretBox& box, tg::v1::Service* s);
bool OpenUpstream(const crypto::SecretBox& box, tg::v1::Upstream* u);
bool OpenService(const crypto::SecretBox& box, tg::v1::Service* s);

// Targets are matched by id, then by position when the incoming target has
// no id (PUT of a body without ids keeps secrets of the same slot).
void KeepMaskedSecrets(const tg::v1::Upstream& stored, tg::v1::Upstream* incoming);

}  // namespace tg::config
