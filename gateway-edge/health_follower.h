#pragma once

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>

#include "tg/edge/local_picker.h"
#include "tg/v1/balancer.grpc.pb.h"

namespace tg::edge {

// Follows tg-balancer's WatchHealth and hands each message to a LocalPicker.
// When the stream ends (tg-balancer restarting, paused, unreachable) the
// picker keeps the last verdicts and the proxy keeps picking from them; the
// follower reconnects with backoff (waiting for the channel to connect), and
// the first message of the new stream replaces whatever changed meanwhile.
// One thread, blocked in the stream's Read.
struct HealthFollowerOptions {
  std::chrono::milliseconds initial_backoff{200};
  std::chrono::milliseconds max_backoff{5000};
};

class HealthFollower {
 public:
  using Options = HealthFollowerOptions;

  HealthFollower(std::shared_ptr<grpc::Channel> channel, LocalPicker* picker, Options options = {});
  ~HealthFollower();  // Stop()
  HealthFollower(const HealthFollower&) = delete;
  HealthFollower& operator=(const HealthFollower&) = delete;

  void Start();
  void Stop();  // cancels the stream and joins; idempotent

  // A stream is open and has delivered its first message.
  bool connected() const { return connected_.load(); }

 private:
  void Run();

  const Options options_;
  std::unique_ptr<tg::v1::BalancerService::Stub> stub_;
  LocalPicker* const picker_;
  std::atomic<bool> connected_{false};

  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  grpc::ClientContext* ctx_ = nullptr;  // the stream in progress, to cancel it
  std::thread thread_;
};

}  // namespace tg::edge
