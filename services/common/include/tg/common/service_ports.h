#pragma once

// The suite's default ports, in one place: each main's option defaults are
// built from these, and tests/unit/common_service_ports_test.cc checks that
// scripts/up and the deploy files (docker-compose, Kubernetes) say the same.

#include <string>

namespace tg::ports {

// gRPC.
inline constexpr int kConfig = 50051;
inline constexpr int kKeyauth = 50052;
inline constexpr int kBalancer = 50053;
inline constexpr int kAdapter = 50054;
// tg-edge's HTTP listeners.
inline constexpr int kAdmin = 8080;
inline constexpr int kProxy = 8081;
// /metrics and /healthz.
inline constexpr int kEdgeMetrics = 9090;
inline constexpr int kConfigMetrics = 9091;
inline constexpr int kKeyauthMetrics = 9092;
inline constexpr int kBalancerMetrics = 9093;
inline constexpr int kAdapterMetrics = 9094;

// "127.0.0.1:<port>": where a service listens, or is dialled, by default
// (internal gRPC stays on loopback unless told otherwise).
inline std::string Loopback(int port) { return "127.0.0.1:" + std::to_string(port); }
// "0.0.0.0:<port>": listeners meant to be reached from outside.
inline std::string AnyAddress(int port) { return "0.0.0.0:" + std::to_string(port); }

}  // namespace tg::ports
