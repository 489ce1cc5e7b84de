#pragma once

#include "tg/adapter/translate/provider_codec.h"
#include "tg/v1/resources.pb.h"

namespace tg::adapter {

// What the codecs need to know of a target and of its credentials' non-secret
// fields (region, Azure endpoint and version, managed identity). The model and
// whether to stream are the caller's to set.
translate::TargetInfo TargetInfoOf(const tg::v1::Target& target,
                                   const tg::v1::Credentials& credentials);

}  // namespace tg::adapter
