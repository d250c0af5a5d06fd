// dsv3 make-random: a random-weight checkpoint of any config of the family.

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <limits>
#include <memory>

#include "base/mapped_file.h"
#include "command.h"
#include "common.h"
#include "tools/make_random.h"

namespace dsv3::cli {
namespace {

struct MakeRandomArgs {
  std::string config;
  std::string out;
  uint64_t seed = 0;
  std::string dtype;
  std::vector<std::string> sets;
  double shard_gb = 4.0;
  std::string tokenizer;
  int threads = 0;
};

int run_make_random(const MakeRandomArgs& a) {
  auto text = read_text_file(a.config, 16ull << 20);
  if (!text.ok()) return fail("make-random", text.error().message());
  auto config = parse_ordered_json(*text, a.config);
  if (!config.ok()) return fail("make-random", config.error().message());
  if (auto st = apply_config_overrides(*config, a.sets); !st.ok()) return fail("make-random", st.error().message());
  MakeRandomOptions opt;
  opt.out_dir = a.out;
  opt.seed = a.seed;
  if (!a.dtype.empty()) opt.dtype = a.dtype;
  opt.shard_bytes = static_cast<uint64_t>(a.shard_gb * 1e9);
  opt.tokenizer_dir = a.tokenizer;
  opt.progress = ::isatty(2);
  ThreadPool pool(a.threads);
  auto t0 = std::chrono::steady_clock::now();
  if (auto st = make_random_checkpoint(*config, opt, pool); !st.ok()) return fail("make-random", st.error().message());
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("wrote random-weight checkpoint to %s in %.1f s\n", a.out.c_str(), secs);
  return 0;
}

Command add_make_random(CLI::App& root) {
  auto args = std::make_shared<MakeRandomArgs>();
  CLI::App* app = root.add_subcommand("make-random", "Write a random-weight checkpoint (HuggingFace layout) for a config");
  app->add_option("--config", args->config, "config.json to take the architecture from")->required();
  app->add_option("--out", args->out, "Output directory")->required();
  app->add_option("--seed", args->seed, "Random seed (same seed, same bytes)")
      ->check(integer_in<uint64_t>(0, std::numeric_limits<uint64_t>::max()));
  app->add_option("--dtype", args->dtype, "fp8 (projections FP8 e4m3 + 128x128 scales) or bf16; default: fp8 if the config has quantization_config")
      ->check(CLI::IsMember({"fp8", "bf16"}));
  app->add_option("--set", args->sets, "Override a config key, e.g. --set num_hidden_layers=4 (repeatable; a.b=v for nested keys)");
  app->add_option("--shard-size", args->shard_gb, "Shard size in GB")->check(CLI::Range(0.0001, 1000.0));
  app->add_option("--tokenizer", args->tokenizer, "Copy tokenizer.json and tokenizer_config.json from this directory");
  app->add_option("-t,--threads", args->threads, "Worker threads (default: one per core)")->check(CLI::Range(0, 4096));
  return {app, [args] { return run_make_random(*args); }};
}

}  // namespace

DSV3_REGISTER_COMMAND("make-random", add_make_random);

}  // namespace dsv3::cli
