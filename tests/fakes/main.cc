// tg-fake-provider: the fake of every LLM provider as a process, for
// end-to-end tests and benchmarks. Prints "listening on http://127.0.0.1:PORT"
// on stdout once it serves, then runs until SIGTERM/SIGINT.
//
//   --port=0 --host=127.0.0.1 --threads=2
//   --instant                 benchmarks: no record, no delays
//   --record=true             keep the request record (GET /_fake/requests)
//   --event-interval-ms=0     delay between stream events (slow streams)
//   --text=…                  the answer's text
//   --openai-key, --anthropic-key, --gemini-key, --azure-key, --azure-entra-token,
//   --aws-access-key-id, --aws-secret-access-key, --aws-session-token, --aws-region,
//   --aws-max-skew-s=900
// Every flag can also come from TG_<NAME> in the environment.

#include <cstdio>

#include "fake_provider.h"
#include "tg/common/flags.h"
#include "tg/common/grpc_server.h"
#include "tg/common/log.h"

int main(int argc, char** argv) {
  tg::BlockTerminationSignals();
  tg::Flags flags(argc, argv);
  tg::log::SetService("tg-fake-provider");
  tg::log::SetLevel(flags.String("log-level", "info"));

  tg::fakes::FakeProviderOptions options;
  options.host = flags.String("host", "127.0.0.1");
  options.port = static_cast<uint16_t>(flags.Int("port", 0));
  options.threads = static_cast<int>(flags.Int("threads", 2));
  const bool instant = flags.Bool("instant", false);
  options.record = flags.Bool("record", !instant);
  tg::fakes::FakeCredentials& c = options.credentials;
  c.openai_key = flags.String("openai-key", c.openai_key);
  c.anthropic_key = flags.String("anthropic-key", c.anthropic_key);
  c.gemini_key = flags.String("gemini-key", c.gemini_key);
  c.azure_key = flags.String("azure-key", c.azure_key);
  c.azure_entra_token = flags.String("azure-entra-token", c.azure_entra_token);
  c.aws.access_key_id = flags.String("aws-access-key-id", c.aws.access_key_id);
  c.aws.secret_access_key = flags.String("aws-secret-access-key", c.aws.secret_access_key);
  c.aws.session_token = flags.String("aws-session-token", c.aws.session_token);
  c.aws_region = flags.String("aws-region", c.aws_region);
  c.aws_max_skew = std::chrono::seconds(flags.Int("aws-max-skew-s", c.aws_max_skew.count()));

  tg::fakes::FakeProvider provider(options);
  tg::fakes::FakeAnswer answer;
  answer.text = flags.String("text", answer.text);
  if (!instant) {
    answer.event_interval = std::chrono::milliseconds(flags.Int("event-interval-ms", 0));
  }
  provider.SetAnswer(answer);

  std::string error;
  if (!provider.Start(&error)) {
    tg::log::Error("cannot start", {{"error", error}});
    return 1;
  }
  std::printf("listening on %s\n", provider.base_url().c_str());
  std::fflush(stdout);
  tg::log::Info("serving", {{"url", provider.base_url()}});
  tg::WaitForTerminationSignal();
  provider.Stop();
  return 0;
}
