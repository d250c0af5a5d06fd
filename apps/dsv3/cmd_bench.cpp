// dsv3 bench: prefill and decode speed against this machine's measured ceilings.

#include <cstdio>
#include <memory>
#include <vector>

#include "command.h"
#include "common.h"
#include "tools/bench.h"

namespace dsv3::cli {
namespace {

struct BenchArgs {
  ModelArgs model;
  BenchOptions o;
  bool json = false;
  double probe_gb = 1.0;
  bool mtp = false;
  int draft_tokens = 1;
  bool sweep = false;
  std::vector<int64_t> sweep_prompts{16, 128, 512, 2048};
  std::vector<int> sweep_batches{1, 2, 4, 8, 16};
};

int run_bench_command(const BenchArgs& a) {
  auto model = load_model(a.model, a.mtp);
  if (!model.ok()) return fail("bench", model.error().message());
  BenchOptions o = a.o;
  o.draft_tokens = a.mtp ? a.draft_tokens : 0;
  o.probe_bytes = static_cast<size_t>(a.probe_gb * (1 << 30));
  if (a.sweep) {
    o.sweep_prompt_tokens = a.sweep_prompts;
    o.sweep_batches = a.sweep_batches;
  }
  auto rep = run_bench(**model, o);
  if (!rep.ok()) return fail("bench", rep.error().message());
  if (a.json) std::printf("%s\n", rep->to_json().dump(2).c_str());
  else std::printf("%s", rep->to_text().c_str());
  return 0;
}

Command add_bench(CLI::App& root) {
  auto args = std::make_shared<BenchArgs>();
  CLI::App* app = root.add_subcommand("bench", "Prefill and decode speed vs this machine's measured bandwidth and FLOP peak");
  add_model_options(app, args->model);
  app->add_option("-p,--prompt-tokens", args->o.prompt_tokens, "Prompt length for prefill")->check(CLI::Range(int64_t(1), int64_t(1) << 24));
  app->add_option("-n,--decode-tokens", args->o.decode_tokens, "Tokens decoded after the prompt")->check(CLI::Range(int64_t(0), int64_t(1) << 24));
  app->add_option("--batch", args->o.batch, "Also decode this many sequences together and report the aggregate")
      ->check(CLI::Range(1, 4096));
  app->add_option("--repeat", args->o.repeats, "Runs (min/median/max reported)")->check(CLI::Range(1, 1000));
  app->add_option("--probe-gb", args->probe_gb, "Size of the bandwidth probe's buffer (well above the last-level cache)")
      ->check(CLI::Range(0.01, 256.0));
  CLI::Option* mtp = app->add_flag("--mtp", args->mtp,
                                   "Also time speculative decoding's draft + verify step against a plain step "
                                   "(at --batch), with the bytes each must read");
  app->add_option("--draft-tokens", args->draft_tokens, "Drafts per sequence and step (with --mtp)")
      ->check(CLI::Range(1, 8))
      ->needs(mtp);
  CLI::Option* sweep = app->add_flag(
      "--sweep", args->sweep,
      "Also prefill at several prompt lengths and decode at several batch sizes (each --repeat times, -n steps), "
      "each next to the measured peak of the matmul math (--math) and the bandwidth ceiling");
  app->add_option("--sweep-prompts", args->sweep_prompts, "Prompt lengths of --sweep (default 16,128,512,2048)")
      ->delimiter(',')
      ->check(CLI::Range(int64_t(1), int64_t(1) << 24))
      ->needs(sweep);
  app->add_option("--sweep-batches", args->sweep_batches, "Batch sizes of --sweep (default 1,2,4,8,16)")
      ->delimiter(',')
      ->check(CLI::Range(1, 4096))
      ->needs(sweep);
  app->add_flag("--json", args->json, "Print the report as JSON");
  return {app, [args] { return run_bench_command(*args); }};
}

}  // namespace

DSV3_REGISTER_COMMAND("bench", add_bench);

}  // namespace dsv3::cli
