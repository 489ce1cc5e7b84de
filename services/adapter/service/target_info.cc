#include "tg/adapter/service/target_info.h"

namespace tg::adapter {
namespace {

std::string StringOption(const google::protobuf::Struct& options, const std::string& key) {
  auto it = options.fields().find(key);
  if (it == options.fields().end() || !it->second.has_string_value()) return {};
  return it->second.string_value();
}

}  // namespace

translate::TargetInfo TargetInfoOf(const tg::v1::Target& t, const tg::v1::Credentials& c) {
  translate::TargetInfo info;
  info.provider = t.provider();
  info.path = t.path();
  info.host = t.host();
  info.port = t.has_port() ? t.port() : 0;
  info.protocol = t.protocol();
  if (t.has_provider_options()) {
    info.api = StringOption(t.provider_options(), "api");
    info.api_version = StringOption(t.provider_options(), "api_version");
  }
  for (const auto& [k, v] : t.headers()) info.headers.emplace_back(k, v);
  info.aws_region = c.aws_region();
  info.azure_endpoint = c.azure_endpoint();
  info.azure_version = c.azure_version();
  info.azure_use_managed_identity = c.azure_use_managed_identity();
  return info;
}

}  // namespace tg::adapter
