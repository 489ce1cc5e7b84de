#pragma once

#include <cstddef>
#include <vector>

#include "tg/v1/config.pb.h"

namespace tg::config {

// Splits a snapshot into SnapshotParts whose encodings stay near
// `part_bytes` (whole entities each; an entity larger than that gets a part
// of its own), the last one marked `last`. Entities are moved out of
// `snapshot`. Concatenating the parts' entities gives the snapshot back.
std::vector<tg::v1::SnapshotPart> SplitSnapshot(tg::v1::ConfigSnapshot&& snapshot,
                                                size_t part_bytes);

}  // namespace tg::config
