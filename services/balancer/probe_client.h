#pragma once

#include <functional>
#include <map>
#include <string>

#include "tg/v1/resources.pb.h"

namespace tg::balancer {

// One active health probe to send.
struct ProbeTask {
  std::string upstream_id;
  tg::v1::Target target;  // public: credentials cleared
  std::string path;
  std::map<std::string, std::string> headers;
  int64_t min_config_revision = 0;
};

struct ProbeOutcome {
  bool answered = false;  // the prober (tg-adapter) answered; false: the probe was not made
  bool healthy = false;   // the target answered 2xx
  int32_t http_status = 0;
  std::string
      error_class{};  // "http_503", "connect", "timeout", …; the RPC's failure when !answered
};

// Where probes go: tg-adapter's Probe RPC (AdapterProbeClient), a fake in
// tests.
class ProbeClient {
 public:
  virtual ~ProbeClient() = default;
  // Sends one probe; `done` runs exactly once, on any thread, never inside
  // this call.
  virtual void Probe(const ProbeTask& task, std::function<void(ProbeOutcome)> done) = 0;
  // Cancels every probe in flight (their `done` still runs). For shutdown.
  virtual void CancelAll() = 0;
};

}  // namespace tg::balancer
