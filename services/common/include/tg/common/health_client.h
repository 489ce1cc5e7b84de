#pragma once

#include <chrono>
#include <string>

namespace tg {

// Asks grpc.health.v1 at `address`; returns "SERVING", "NOT_SERVING",
// "SERVICE_UNKNOWN", "UNKNOWN" or "UNREACHABLE: <reason>".
std::string CheckHealth(const std::string& address, const std::string& service,
                        std::chrono::milliseconds timeout);

}  // namespace tg
