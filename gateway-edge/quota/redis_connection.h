#pragma once

#include <hiredis/hiredis.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "tg/edge/quota/redis_quota_store.h"

namespace tg::edge::quota {

struct RedisReplyDeleter {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};
using RedisReply = std::unique_ptr<redisReply, RedisReplyDeleter>;

// A reply's string (status, error or bulk); empty for anything else.
std::string_view ReplyText(const redisReply* r);

// One synchronous hiredis connection of tg-edge (rate-limit buckets, spend),
// to the host, port, password, db and timeouts of a RedisQuotaOptions. Any
// I/O failure closes it (hiredis leaves a context unusable after one) and the
// next Ensure connects again. Not thread-safe: one owner at a time. error()
// never holds the password.
class RedisConnection {
 public:
  explicit RedisConnection(const RedisQuotaOptions& options) : options_(options) {}
  ~RedisConnection() { Close(); }
  RedisConnection(const RedisConnection&) = delete;
  RedisConnection& operator=(const RedisConnection&) = delete;

  bool connected() const { return ctx_ != nullptr; }
  const std::string& error() const { return error_; }
  // Connects (AUTH, SELECT) unless connected; false with error() on failure.
  bool Ensure() { return connected() || Connect(); }
  // A fresh connection; false with error() on failure.
  bool Connect();
  void Close();

  // Queues one command (pipelined until Get); nothing when not connected.
  void Append(const std::vector<std::string_view>& args);
  // The next reply, or nullptr after an I/O error (the connection is closed).
  RedisReply Get();
  RedisReply Command(const std::vector<std::string_view>& args) {
    Append(args);
    return Get();
  }
  // Records an error and closes the connection; false.
  bool Fail(std::string error);
  // Records an error (e.g. an error reply) and keeps the connection.
  void SetError(std::string error) { error_ = std::move(error); }

 private:
  const RedisQuotaOptions& options_;
  redisContext* ctx_ = nullptr;
  std::string error_;
};

}  // namespace tg::edge::quota
