#pragma once

// One spelling per name for the whole suite: tg-config stores these, the
// data plane (tg-balancer, tg-adapter) compares them.

#include <string>

namespace tg {

// round-robin | weighted-round-robin (alias weighted) | least-connections
// (alias least-conn) | random; "" when unknown.
inline std::string CanonicalAlgorithm(const std::string& a) {
  if (a == "round-robin") return "round-robin";
  if (a == "weighted-round-robin" || a == "weighted") return "weighted-round-robin";
  if (a == "least-connections" || a == "least-conn") return "least-connections";
  if (a == "random") return "random";
  return "";
}

// openai | anthropic | gemini (alias google) | bedrock | azure; "" when unknown.
inline std::string CanonicalProvider(const std::string& p) {
  if (p == "openai" || p == "anthropic" || p == "bedrock" || p == "azure") return p;
  if (p == "gemini" || p == "google") return "gemini";
  return "";
}

}  // namespace tg
