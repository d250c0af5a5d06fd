// dsv3 loadtest: drive an OpenAI-compatible server with N concurrent streaming clients for a
// fixed time and report throughput, latency percentiles, errors and server memory.

#include <cstdio>
#include <memory>

#include "command.h"
#include "tools/load_test.h"

namespace dsv3::cli {
namespace {

struct LoadTestArgs {
  LoadTestOptions o;
  bool json = false;
};

int run_loadtest(const LoadTestArgs& a) {
  auto rep = run_load_test(a.o);
  if (!rep.ok()) return fail("loadtest", rep.error().message());
  if (a.json) std::printf("%s\n", rep->to_json().dump(2).c_str());
  else std::printf("%s", rep->to_text().c_str());
  return 0;
}

Command add_loadtest(CLI::App& root) {
  auto args = std::make_shared<LoadTestArgs>();
  CLI::App* app = root.add_subcommand("loadtest", "Load-test an OpenAI-compatible server (concurrent streaming chat clients)");
  app->add_option("--url", args->o.url, "Server base URL");
  app->add_option("--api-key", args->o.api_key, "API key to send")->envname("DSV3_API_KEY");
  app->add_option("--model", args->o.model, "Model id (default: the first in /v1/models)");
  app->add_option("-c,--clients", args->o.clients, "Concurrent clients")->check(CLI::Range(1, 4096));
  app->add_option("-d,--duration", args->o.duration_seconds, "Seconds to run")->check(CLI::Range(0.1, 86400.0));
  app->add_option("--max-tokens", args->o.max_tokens, "max_tokens per request")->check(CLI::Range(1, 1 << 20));
  app->add_option("--prompt", args->o.prompt, "User message (a request counter is appended)");
  app->add_option("--temperature", args->o.temperature, "Sampling temperature")->check(CLI::Range(0.0, 2.0));
  app->add_option("--top-p", args->o.top_p, "Nucleus sampling mass (sent when below 1)")->check(CLI::Range(0.0, 1.0));
  app->add_flag("--json", args->json, "Print the report as JSON");
  return {app, [args] { return run_loadtest(*args); }};
}

}  // namespace

DSV3_REGISTER_COMMAND("loadtest", add_loadtest);

}  // namespace dsv3::cli
