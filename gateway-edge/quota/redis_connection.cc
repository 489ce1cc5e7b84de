#include "tg/edge/quota/redis_connection.h"

#include <sys/time.h>

#include <chrono>
#include <utility>

namespace tg::edge::quota {
namespace {

timeval ToTimeval(std::chrono::milliseconds ms) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(ms.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((ms.count() % 1000) * 1000);
  return tv;
}

}  // namespace

std::string_view ReplyText(const redisReply* r) {
  if (r == nullptr || r->str == nullptr) return {};
  return std::string_view(r->str, r->len);
}

bool RedisConnection::Connect() {
  Close();
  ctx_ = redisConnectWithTimeout(options_.host.c_str(), options_.port,
                                 ToTimeval(options_.connect_timeout));
  if (ctx_ == nullptr || ctx_->err != 0) {
    error_ = ctx_ == nullptr ? "cannot allocate a Redis context" : ctx_->errstr;
    Close();
    return false;
  }
  redisSetTimeout(ctx_, ToTimeval(options_.command_timeout));
  redisEnableKeepAlive(ctx_);
  if (!options_.password.empty()) {
    RedisReply r = Command({"AUTH", options_.password});
    if (!r) return false;
    if (r->type == REDIS_REPLY_ERROR) return Fail("AUTH failed");  // never the password
  }
  if (options_.db != 0) {
    RedisReply r = Command({"SELECT", std::to_string(options_.db)});
    if (!r) return false;
    if (r->type == REDIS_REPLY_ERROR) {
      return Fail("SELECT failed: " + std::string(ReplyText(r.get())));
    }
  }
  return true;
}

void RedisConnection::Close() {
  if (ctx_ != nullptr) redisFree(ctx_);
  ctx_ = nullptr;
}

bool RedisConnection::Fail(std::string error) {
  error_ = std::move(error);
  Close();
  return false;
}

void RedisConnection::Append(const std::vector<std::string_view>& args) {
  if (ctx_ == nullptr) return;
  std::vector<const char*> argv;
  std::vector<size_t> lens;
  argv.reserve(args.size());
  lens.reserve(args.size());
  for (std::string_view a : args) {
    argv.push_back(a.data());
    lens.push_back(a.size());
  }
  redisAppendCommandArgv(ctx_, static_cast<int>(argv.size()), argv.data(), lens.data());
}

RedisReply RedisConnection::Get() {
  if (ctx_ == nullptr) return nullptr;
  void* raw = nullptr;
  if (redisGetReply(ctx_, &raw) != REDIS_OK || raw == nullptr) {
    error_ = ctx_->errstr[0] != '\0' ? ctx_->errstr : "connection lost";
    Close();
    return nullptr;
  }
  return RedisReply(static_cast<redisReply*>(raw));
}

}  // namespace tg::edge::quota
