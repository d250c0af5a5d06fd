// dsv3 inspect: architecture, parameter counts, footprints, shards and validation of a
// checkpoint directory (or of a config.json alone). Exit codes: 0 the model can be loaded
// (warnings allowed), 1 it cannot (or --verify found NaN/Inf, or the config is unusable),
// 2 usage.

#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <memory>

#include "command.h"
#include "tools/inspect.h"
#include "tools/rank_plan.h"
#include "tools/progress.h"

namespace dsv3::cli {
namespace {

struct InspectArgs {
  std::string model;
  bool json = false;
  bool verify = false;
  int threads = 0;
  int ranks = 0;
};

std::atomic<bool> g_interrupted{false};
void on_sigint(int) { g_interrupted.store(true); }

int run_inspect(const InspectArgs& a) {
  ThreadPool pool(a.threads);
  std::unique_ptr<ProgressReporter> progress;
  InspectOptions opt;
  opt.verify = a.verify;
  opt.pool = &pool;
  opt.cancel = &g_interrupted;
  opt.verify_started = [&](uint64_t total) { progress = std::make_unique<ProgressReporter>("verify", total, ::isatty(2)); };
  opt.verify_progress = [&](uint64_t bytes) { progress->add(bytes); };
  // A long scan stops cleanly at Ctrl-C (the report says it was interrupted); a second
  // Ctrl-C kills as usual.
  struct sigaction sa {};
  sa.sa_handler = on_sigint;
  sa.sa_flags = SA_RESETHAND;
  sigemptyset(&sa.sa_mask);
  if (a.verify) sigaction(SIGINT, &sa, nullptr);

  auto report = inspect_model(a.model, opt);
  if (progress) progress->finish();
  if (!report.ok()) return fail("inspect", report.error().message());
  if (a.json) std::printf("%s\n", inspect_to_json(*report).dump(2).c_str());
  else std::fputs(format_inspect_text(*report).c_str(), stdout);
  if (a.ranks > 0 && report->ok()) {
    auto plan = plan_ranks(a.model, a.ranks, /*with_mtp=*/true);
    if (!plan.ok()) return fail("inspect", plan.error().message());
    std::fputs(("\n" + format_rank_plan(*plan)).c_str(), a.json ? stderr : stdout);
  }
  if (g_interrupted.load()) return 130;
  return report->ok() ? 0 : 1;
}

Command add_inspect(CLI::App& root) {
  auto args = std::make_shared<InspectArgs>();
  CLI::App* app = root.add_subcommand("inspect", "Describe and validate a checkpoint directory (or a config.json alone)");
  app->footer(
      "Reports the architecture, parameter counts (main model, active per token, MTP with and without the\n"
      "  embedding and head it shares), bytes by dtype, weight bytes read per decoded token, KV cache bytes per\n"
      "  token, the shards, and the loader's validation: every missing, mis-shaped or mistyped tensor, bad FP8\n"
      "  scales, non-finite norms/biases (errors); unused tensors and an absent MTP module (warnings).\n"
      "  Without weights (config.json only) the counts come from the config.\n"
      "Exit codes: 0 the model can be loaded (warnings allowed); 1 it cannot, or --verify found NaN/Inf, or\n"
      "  config.json is unusable; 2 usage; 130 interrupted.");
  app->add_option("--model", args->model, "Checkpoint directory (HuggingFace layout), or one with only config.json")
      ->required();
  app->add_flag("--json", args->json, "Print a JSON report instead of text");
  app->add_flag("--verify", args->verify,
                "Also scan every value of every tensor for NaN/Inf (FP8: bytes 0x7F/0xFF), in parallel, with progress "
                "on stderr; reports each tensor that has any (all tensors with --json)");
  app->add_option("--ranks", args->ranks,
                  "Also print, for the model split over this many ranks (mpirun -np N), each rank's weight bytes "
                  "and the shard files it reads")
      ->check(CLI::Range(1, 4096));
  app->add_option("-t,--threads", args->threads, "Worker threads for --verify (default: one per core)")
      ->check(CLI::Range(0, 4096));
  return {app, [args] { return run_inspect(*args); }};
}

}  // namespace

DSV3_REGISTER_COMMAND("inspect", add_inspect);

}  // namespace dsv3::cli
