// ReportBatcher against an in-process tg.v1.BalancerService over real gRPC.
#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <vector>

#include "test_tls.h"
#include "tg/common/grpc_server.h"
#include "tg/edge/report_batcher.h"

namespace tg::edge {
namespace {

using std::chrono::milliseconds;

// Records each ReportBatch; holds every call while `hold` is set.
class HoldingBalancer final : public tg::v1::BalancerService::Service {
 public:
  grpc::Status ReportBatch(grpc::ServerContext* ctx, const tg::v1::ReportBatchRequest* req,
                           tg::v1::ReportBatchResponse* resp) override {
    std::unique_lock lock(mu);
    batches.push_back(req->reports_size());
    for (const auto& r : req->reports()) ids.push_back(r.pick_id());
    arrived.notify_all();
    released.wait(lock, [&] { return !hold || ctx->IsCancelled(); });
    resp->set_applied(req->reports_size());
    return grpc::Status::OK;
  }
  void Release() {
    std::lock_guard lock(mu);
    hold = false;
    released.notify_all();
  }
  bool WaitBatches(size_t n) {
    std::unique_lock lock(mu);
    return arrived.wait_for(lock, std::chrono::seconds(5), [&] { return batches.size() >= n; });
  }

  std::mutex mu;
  std::condition_variable arrived, released;
  bool hold = true;
  std::vector<int> batches;
  std::vector<std::string> ids;
};

tg::v1::ReportRequest Report(int i) {
  tg::v1::ReportRequest r;
  r.set_pick_id("p" + std::to_string(i));
  r.set_outcome(tg::v1::OUTCOME_SUCCESS);
  return r;
}

class ReportBatcherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string error;
    server_ = GrpcServer::Start({.listen = "127.0.0.1:0",
                                 .health_names = {},
                                 .tls = tg::testing::TestTls(kBalancerIdentity)},
                                {&balancer_}, &error);
    ASSERT_NE(server_, nullptr) << error;
    stub_ = tg::v1::BalancerService::NewStub(
        tg::testing::TestChannel(server_->port(), kBalancerIdentity));
  }
  void TearDown() override {
    balancer_.Release();
    server_->Shutdown();
  }

  HoldingBalancer balancer_;
  std::unique_ptr<GrpcServer> server_;
  std::unique_ptr<tg::v1::BalancerService::Stub> stub_;
};

TEST_F(ReportBatcherTest, WhatArrivesDuringACallGoesOutTogetherInOrder) {
  {
    ReportBatcher batcher(stub_.get(), ReportBatcher::Options{});
    batcher.Add(Report(0));  // goes out at once
    ASSERT_TRUE(balancer_.WaitBatches(1));
    for (int i = 1; i <= 99; ++i) batcher.Add(Report(i));  // wait for the first call
    balancer_.Release();
    ASSERT_TRUE(balancer_.WaitBatches(2));
    EXPECT_EQ(batcher.dropped(), 0u);
  }  // the destructor waits for the calls
  std::lock_guard lock(balancer_.mu);
  EXPECT_EQ(balancer_.batches, (std::vector<int>{1, 99}));
  ASSERT_EQ(balancer_.ids.size(), 100u);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(balancer_.ids[i], "p" + std::to_string(i));
}

TEST_F(ReportBatcherTest, AHungBalancerHoldsShutdownForTwoDeadlinesAtMost) {
  auto batcher = std::make_unique<ReportBatcher>(
      stub_.get(), ReportBatcher::Options{.deadline = milliseconds(300), .max_batch = 10});
  for (int i = 0; i < 1000; ++i) batcher->Add(Report(i));  // 100 batches' worth
  ASSERT_TRUE(balancer_.WaitBatches(1));
  // The held call times out, one more batch is tried (and times out), the
  // rest is dropped: sent one after another, 100 batches would take 30 s.
  const auto t0 = std::chrono::steady_clock::now();
  batcher.reset();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, milliseconds(2000));
  std::lock_guard lock(balancer_.mu);
  EXPECT_EQ(balancer_.batches, (std::vector<int>{1, 10}));
}

}  // namespace
}  // namespace tg::edge
