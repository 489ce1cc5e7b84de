#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "tg/v1/resources.pb.h"

namespace tg::balancer {

// Every upstream of every gateway at one config revision. An upstream that did
// not change between two sets is the same object in both, so consumers can
// skip it by pointer.
struct UpstreamSet {
  int64_t revision = 0;
  std::vector<std::shared_ptr<const tg::v1::Upstream>> upstreams;
};

// Where upstreams come from: tg-config's Watch in production, a fake in tests.
class UpstreamSource {
 public:
  virtual ~UpstreamSource() = default;
  // nullptr until the first configuration has arrived.
  virtual std::shared_ptr<const UpstreamSet> Current() const = 0;
  // Runs on the source's thread after every change of Current() (a revision
  // that only moved counts). Set before the source starts.
  virtual void SetOnChange(std::function<void()> on_change) = 0;
};

}  // namespace tg::balancer
