#pragma once

#include <grpcpp/support/status.h>

#include <atomic>
#include <chrono>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "tg/common/change_log.h"
#include "tg/common/worker_pool.h"
#include "tg/config/config_store.h"
#include "tg/v1/config.pb.h"

namespace tg::config {

// Follows the change log (LISTEN/NOTIFY plus a poll as a safety net) so that
// this replica knows every replica's writes, keeps the whole configuration in
// memory at the latest revision, and remembers a window of recent changes so
// that a Watch can resume from a revision.
//
// Entities are held as stored (credentials sealed); Watch streams open or mask
// them per caller.
class ConfigFeed {
 public:
  struct Options {
    std::chrono::milliseconds poll{250};  // re-read even without a notification
    size_t window = 10000;                // changes kept for resuming watches
  };

  // Something to wake when new changes (or just time) pass; Watch streams.
  class Listener {
   public:
    virtual ~Listener() = default;
    virtual void OnFeedAdvanced() = 0;
  };

  // The registration a listener holds. Notifications stop, synchronously,
  // once Cancel returns.
  class Subscription {
   public:
    explicit Subscription(Listener* l) : listener_(l) {}
    void Notify();
    void Cancel();
    // Set once the feed has read every change committed before the
    // subscription began: only then may a stream send its first event.
    std::atomic<bool> caught_up{false};

   private:
    std::mutex mu_;
    Listener* listener_;
  };

  ConfigFeed(ConfigStore& store, std::string dsn, Options options);
  ~ConfigFeed();

  // Loads the snapshot and starts following. UNAVAILABLE when PostgreSQL is.
  grpc::Status Start();
  void Stop();
  // Tells every Watch stream to end (UNAVAILABLE) so that clients move to
  // another replica at once instead of waiting for the server's drain.
  void Close();
  bool closed() const { return closed_; }

  // The subscription is caught up (and notified) from a task on `workers`,
  // which reads the change log without blocking the caller.
  std::shared_ptr<Subscription> Subscribe(Listener* listener, WorkerPool& workers);
  void Unsubscribe(const std::shared_ptr<Subscription>& sub);

  enum class Next { kEvent, kNone, kGap };
  // The first change after `after`; kGap when the window no longer holds it.
  Next NextAfter(int64_t after, int64_t* revision, tg::v1::ConfigChange* change) const;

  // The whole configuration and the revision it is at.
  void Snapshot(tg::v1::ConfigSnapshot* out, int64_t* revision) const;
  int64_t revision() const;

  // Reads new changes now (also called by the follow thread).
  void PollOnce();

 private:
  void Run();
  void Apply(int64_t revision, const pg::ChangeRow& row);
  void NotifyAll();

  ConfigStore& store_;
  std::string dsn_;
  Options options_;

  mutable std::mutex mu_;
  int64_t revision_ = 0;
  int64_t window_start_ = 0;  // changes after this revision are all in window_
  std::map<std::string, tg::v1::Gateway> gateways_;
  std::map<std::string, tg::v1::Upstream> upstreams_;
  std::map<std::string, tg::v1::Service> services_;
  std::map<std::string, tg::v1::Rule> rules_;
  std::deque<std::pair<int64_t, tg::v1::ConfigChange>> window_;

  std::mutex subs_mu_;
  std::vector<std::shared_ptr<Subscription>> subs_;

  std::mutex poll_mu_;  // one reader of the change log at a time
  std::atomic<bool> stop_{false};
  std::atomic<bool> closed_{false};
  std::thread thread_;
};

}  // namespace tg::config
