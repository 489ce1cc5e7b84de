#include "tg/config/snapshot_parts.h"

#include <utility>

namespace tg::config {
namespace {

// Fills parts in order, starting a new one when the next entity would take
// the current one past the bound.
class PartWriter {
 public:
  PartWriter(size_t part_bytes, std::vector<tg::v1::SnapshotPart>* out)
      : part_bytes_(part_bytes), out_(out) {}

  template <typename Entity, typename Add>
  void Put(Entity&& entity, Add add) {
    // The entity's bytes plus its field tag and length prefix.
    const size_t size = entity.ByteSizeLong() + 8;
    if (out_->empty() || (used_ > 0 && used_ + size > part_bytes_)) {
      out_->emplace_back();
      used_ = 0;
    }
    *add(out_->back().mutable_entities()) = std::forward<Entity>(entity);
    used_ += size;
  }

 private:
  const size_t part_bytes_;
  std::vector<tg::v1::SnapshotPart>* out_;
  size_t used_ = 0;
};

}  // namespace

std::vector<tg::v1::SnapshotPart> SplitSnapshot(tg::v1::ConfigSnapshot&& snapshot,
                                                size_t part_bytes) {
  std::vector<tg::v1::SnapshotPart> parts;
  PartWriter w(part_bytes, &parts);
  for (auto& g : *snapshot.mutable_gateways()) {
    w.Put(std::move(g), [](tg::v1::ConfigSnapshot* s) { return s->add_gateways(); });
  }
  for (auto& u : *snapshot.mutable_upstreams()) {
    w.Put(std::move(u), [](tg::v1::ConfigSnapshot* s) { return s->add_upstreams(); });
  }
  for (auto& sv : *snapshot.mutable_services()) {
    w.Put(std::move(sv), [](tg::v1::ConfigSnapshot* s) { return s->add_services(); });
  }
  for (auto& r : *snapshot.mutable_rules()) {
    w.Put(std::move(r), [](tg::v1::ConfigSnapshot* s) { return s->add_rules(); });
  }
  if (parts.empty()) parts.emplace_back();  // an empty configuration is one (empty) part
  parts.back().set_last(true);
  snapshot.Clear();
  return parts;
}

}  // namespace tg::config
