#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace tg::testing {

// A service under test as a real child process, its output in a log file.
class Process {
 public:
  Process(std::string name, std::string path, std::map<std::string, std::string> env,
          std::string log_path);
  ~Process();  // stops it
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  bool Start();
  // SIGTERM, then SIGKILL after `grace`; returns the exit status (-1 if killed).
  int Stop(std::chrono::milliseconds grace = std::chrono::seconds(10));
  // Sends `sig` without waiting (false when not running).
  bool Signal(int sig);
  // Waits up to `timeout` for the process to end: its exit status (-1 if a
  // signal ended it), or nullopt while it still runs.
  std::optional<int> Wait(std::chrono::milliseconds timeout);
  bool running();
  std::string LogTail(size_t bytes = 4000) const;
  const std::string& name() const { return name_; }
  // The executable's file name ("tg-keyauth" for a replica named "tg-keyauth-2").
  std::string executable() const { return path_.substr(path_.find_last_of('/') + 1); }
  pid_t pid() const { return pid_; }  // -1 when not started

 private:
  std::string name_;
  std::string path_;
  std::map<std::string, std::string> env_;
  std::string log_path_;
  pid_t pid_ = -1;
};

// A TCP port on 127.0.0.1 that was free a moment ago, chosen below the
// kernel's ephemeral range so that no outgoing connection takes it meanwhile.
int FreePort();

// Waits until `probe` returns true or `timeout` passes.
bool WaitFor(const std::function<bool()>& probe, std::chrono::milliseconds timeout);

struct HttpResponse {
  long status = 0;
  std::string body;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string error;                           // libcurl's message when status is 0
};

// A blocking HTTP/1.1 request with libcurl; status 0 on transport failure.
HttpResponse Http(const std::string& method, const std::string& url, const std::string& body = "",
                  const std::vector<std::string>& headers = {});

// A raw TCP client, for tests that must hang up mid-answer.
class RawClient {
 public:
  explicit RawClient(int port);
  ~RawClient();
  bool connected() const { return fd_ >= 0; }
  bool Send(const std::string& data);
  // Reads until `needle` has arrived (true) or the timeout passes.
  bool ReadUntil(const std::string& needle, std::chrono::milliseconds timeout);
  // Reads until the peer closes the connection (true) or the timeout passes.
  bool ReadUntilClosed(std::chrono::milliseconds timeout);
  // Everything read so far.
  const std::string& received() const { return received_; }

 private:
  int fd_ = -1;
  std::string received_;
};

// Where the project's executables are (TG_TEST_BIN_DIR or the build's bin/).
std::string BinDir();

}  // namespace tg::testing
