#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>

#include "tg/keyauth/key_index.h"
#include "tg/keyauth/key_store.h"
#include "tg/keyauth/revocation_hub.h"

namespace tg::keyauth {

struct KeyFeedOptions {
  std::string dsn;                               // for the LISTEN connection
  std::chrono::milliseconds poll_interval{500};  // read the log at least this often
  int batch_size = 1000;                         // change-log rows per read
};

// Follows the "keys" change log written by every replica: applies each change
// to the index and hands revocations to the hub. NOTIFY makes it prompt;
// polling every poll_interval regardless makes it certain (a lost notification
// or a LISTEN connection being re-established costs at most one interval).
class KeyFeed {
 public:
  KeyFeed(KeyFeedOptions options, KeyStore* store, KeyIndex* index, RevocationHub* hub);
  ~KeyFeed();  // Stop()
  KeyFeed(const KeyFeed&) = delete;
  KeyFeed& operator=(const KeyFeed&) = delete;

  // Loads every key (start-up). Throws what KeyStore throws.
  void Load();
  // Starts the thread; Load() first.
  void Start();
  // Joins the thread; at most one poll interval.
  void Stop();

  // Returns once the index reflects `revision`: a replica's own writes are
  // then visible to its own VerifyKey before the RPC that made them answers.
  // Throws what KeyStore throws.
  void CatchUp(int64_t revision);

  int64_t revision() const;

 private:
  void Run();
  void PollLocked();

  const KeyFeedOptions options_;
  KeyStore* store_;
  KeyIndex* index_;
  RevocationHub* hub_;

  mutable std::mutex poll_mu_;  // one reader of the log at a time, in revision order
  int64_t revision_ = 0;        // guarded by poll_mu_

  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace tg::keyauth
