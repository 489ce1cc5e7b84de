#include "service/target_info.h"

#include "tg/common/json_util.h"

namespace tg::adapter {

translate::TargetInfo TargetInfoOf(const tg::v1::Target& t, const tg::v1::Credentials& c) {
  translate::TargetInfo info;
  info.provider = t.provider();
  info.path = t.path();
  info.host = t.host();
  info.port = t.has_port() ? t.port() : 0;
  info.protocol = t.protocol();
  if (t.has_provider_options()) info.provider_options_json = json::PrintProto(t.provider_options());
  for (const auto& [k, v] : t.headers()) info.headers.emplace_back(k, v);
  info.aws_region = c.aws_region();
  info.azure_endpoint = c.azure_endpoint();
  info.azure_version = c.azure_version();
  info.azure_use_managed_identity = c.azure_use_managed_identity();
  return info;
}

}  // namespace tg::adapter
