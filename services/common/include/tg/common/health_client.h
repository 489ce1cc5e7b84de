#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <memory>
#include <string>

namespace tg {

// Asks grpc.health.v1 over `channel` (DialInternal: health needs a client
// certificate like every internal call); returns "SERVING", "NOT_SERVING",
// "SERVICE_UNKNOWN", "UNKNOWN" or "UNREACHABLE: <reason>".
std::string CheckHealth(const std::shared_ptr<grpc::Channel>& channel, const std::string& service,
                        std::chrono::milliseconds timeout);

}  // namespace tg
