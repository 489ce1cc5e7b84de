#pragma once

#include <optional>
#include <string>

#include "tg/common/canonical_names.h"
#include "tg/v1/resources.pb.h"

namespace tg::config {

// Validation and normalisation of resources, pure and without I/O. Each
// Validate* returns the first problem as a message that starts with the
// offending field's JSON path ("targets[1].weight must be between 1 and 100"),
// or nullopt when the resource is valid. Normalize* fills documented defaults
// so that what GET returns is what is in effect.

// Gateways' required_plugins and rules' plugin_chain are checked entry by
// entry with tg::plugins::CompilePlugin (tg/common/plugin_settings.h), whose
// messages read "required_plugins[0].settings.limits: ...".
std::optional<std::string> ValidateGateway(const tg::v1::Gateway& g);

// Assigns ids to targets that have none, upper-cases nothing, keeps every
// field the user gave. `algorithm` defaults to round-robin.
void NormalizeUpstream(tg::v1::Upstream* u);
std::optional<std::string> ValidateUpstream(const tg::v1::Upstream& u);

// `type` is inferred when absent (upstream_id → upstream, host → endpoint).
void NormalizeService(tg::v1::Service* s);
std::optional<std::string> ValidateService(const tg::v1::Service& s);

// Methods are upper-cased; strip_path defaults to false and active to true.
void NormalizeRule(tg::v1::Rule* r);
std::optional<std::string> ValidateRule(const tg::v1::Rule& r);

// Canonical names (tg/common/canonical_names.h: tg::CanonicalAlgorithm,
// tg::CanonicalProvider), so that the data plane compares one spelling.
using ::tg::CanonicalAlgorithm;
using ::tg::CanonicalProvider;

}  // namespace tg::config
