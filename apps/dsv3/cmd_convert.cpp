// dsv3 convert: FP8 checkpoint -> BF16 (as DeepSeek's fp8_cast_bf16.py), or BF16 -> FP8 with
// 128x128 block scales. Streaming, bounded memory, interrupt-safe (src/tools/convert.h).
// Exit codes: 0 done, 1 error, 2 usage, 130 interrupted (Ctrl-C).

#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <memory>

#include "command.h"
#include "tools/convert.h"
#include "tools/progress.h"

namespace dsv3::cli {
namespace {

struct ConvertArgs {
  std::string model;
  std::string out;
  std::string to;
  int64_t group_size = 64;
  std::string keep;
  int threads = 0;
  bool no_fsync = false;
};

std::atomic<bool> g_interrupted{false};
void on_sigint(int) { g_interrupted.store(true); }

int run_convert(const ConvertArgs& a) {
  // Ctrl-C (or a TERM from a job runner) stops at the next chunk and removes the partial
  // file; a second signal kills at once, which still leaves only *.dsv3-partial files.
  struct sigaction sa {};
  sa.sa_handler = on_sigint;
  sa.sa_flags = SA_RESETHAND;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  // Past a file size limit, write() then fails with EFBIG and a message naming the file,
  // instead of the process dying silently of SIGXFSZ.
  std::signal(SIGXFSZ, SIG_IGN);

  ThreadPool pool(a.threads);
  ConvertOptions opt;
  opt.model_dir = a.model;
  opt.out_dir = a.out;
  opt.target = a.to == "fp8"    ? ConvertTarget::Fp8
               : a.to == "int8" ? ConvertTarget::Int8
               : a.to == "int4" ? ConvertTarget::Int4
                                : ConvertTarget::Bf16;
  const bool to_int = opt.target == ConvertTarget::Int8 || opt.target == ConvertTarget::Int4;
  if (!to_int && !a.keep.empty()) return fail("convert", "--keep applies to --to int8 / int4 only");
  if (to_int) {
    auto rules = parse_format_rules(a.keep);
    if (!rules.ok()) return fail("convert", rules.error().message());
    opt.int_options.rules = std::move(rules).value();
    opt.int_options.group_size = a.group_size;
    opt.rules_text = a.keep;
  }
  opt.stream.durable = !a.no_fsync;
  opt.stream.cancel = &g_interrupted;
  std::unique_ptr<ProgressReporter> progress;
  opt.on_start = [&](uint64_t total) { progress = std::make_unique<ProgressReporter>("convert", total, ::isatty(2)); };
  opt.stream.on_progress = [&](uint64_t bytes) { progress->add(bytes); };

  auto result = convert_checkpoint(opt, pool);
  if (progress && result.ok()) progress->finish();
  progress.reset();
  if (!result.ok()) {
    if (g_interrupted.load()) {
      std::fprintf(stderr, "dsv3 convert: interrupted; partial files removed, '%s' is incomplete (no config.json)\n",
                   a.out.c_str());
      return 130;
    }
    return fail("convert", result.error().message());
  }
  const ConvertSummary& s = *result;
  std::printf("converted %s -> %s (%s) in %.1f s: %zu shard(s), %zu tensors converted, %zu copied, %zu scale tensors "
              "dropped, %zu added; read %s, wrote %s (%s/s read); buffers <= %s\n",
              a.model.c_str(), a.out.c_str(), a.to.c_str(), s.seconds, s.shards, s.converted, s.copied,
              s.scales_dropped, s.scales_added, format_bytes(s.input_bytes).c_str(), format_bytes(s.output_bytes).c_str(),
              format_bytes(static_cast<uint64_t>(static_cast<double>(s.input_bytes) / std::max(s.seconds, 1e-9))).c_str(),
              format_bytes(s.buffer_bound).c_str());
  for (const auto& f : s.copied_files) std::printf("  copied %s\n", f.c_str());
  for (const auto& f : s.skipped) std::printf("  not copied: %s\n", f.c_str());
  return 0;
}

Command add_convert(CLI::App& root) {
  auto args = std::make_shared<ConvertArgs>();
  CLI::App* app = root.add_subcommand(
      "convert", "Convert a checkpoint between FP8 (e4m3, 128x128 block scales) and BF16, or to int8 / int4 with group scales");
  app->footer(
      "--to bf16: FP8 projections become BF16, each value the float32 product e4m3 * scale_inv rounded to\n"
      "  nearest even (what DeepSeek's fp8_cast_bf16.py computes); scales dropped, quantization_config removed.\n"
      "--to fp8: BF16/F16/F32 projection weights become FP8 e4m3 with F32 scales per 128x128 block\n"
      "  (amax / 448), as the published checkpoints are made; router, norms, embeddings, head, eh_proj stay.\n"
      "--to int8 | int4: projection weights (FP8 or BF16) become symmetric integers with an F16 scale per group of\n"
      "  --group-size consecutive input values (docs/formats.md); --keep 'PATTERN=FORMAT,...' picks another format\n"
      "  per tensor (first match wins; FORMAT int8, int4, bf16 or keep = as stored; PATTERN an ECMAScript regex\n"
      "  searched in the checkpoint tensor name, which may also name lm_head / embed_tokens / shared_head.head).\n"
      "  E.g. --to int4 --keep 'self_attn|shared_experts|mlp\\.(gate|up|down)_proj|lm_head|shared_head=int8'\n"
      "  keeps attention, shared experts, dense layers and the head at 8 bits and the routed experts at 4.\n"
      "  Measure what a format costs with 'dsv3 perplexity --kl-base' (docs/quality.md).\n"
      "Keep serving the FP8 checkpoint when you have it: BF16 rounding alone changes the model (on the random\n"
      "  tiny-v3 test model it moves logits by up to ~1.0, because expert choices flip).\n"
      "Streams tensor by tensor in bounded memory (buffers: at most 264 MiB, ~75 MB with 2 threads), in parallel,\n"
      "  with progress on stderr. Files get their final names only when complete, config.json last: a directory without\n"
      "  config.json is incomplete; rerunning into it starts cleanly. Non-weight files (tokenizer, ...) are copied.\n"
      "Exit codes: 0 done, 1 error, 2 usage, 130 interrupted (Ctrl-C).");
  app->add_option("--model", args->model, "Input checkpoint directory (HuggingFace layout)")->required();
  app->add_option("--out", args->out, "Output directory (created; must be empty or a previous convert output)")
      ->required();
  app->add_option("--to", args->to, "Target: bf16, fp8, int8 or int4")
      ->required()
      ->check(CLI::IsMember({"bf16", "fp8", "int8", "int4"}));
  app->add_option("--group-size", args->group_size, "int8 / int4: input values per scale (a multiple of 16; default 64)")
      ->check(CLI::Range(int64_t(16), int64_t(65536)));
  app->add_option("--keep", args->keep, "int8 / int4: per-tensor formats, 'PATTERN=int8|int4|bf16|keep,...'");
  app->add_option("-t,--threads", args->threads, "Worker threads (default: one per core)")->check(CLI::Range(0, 4096));
  app->add_flag("--no-fsync", args->no_fsync,
                "Skip fsync before each rename (faster on slow disks; a power loss may then leave damaged files)");
  return {app, [args] { return run_convert(*args); }};
}

}  // namespace

DSV3_REGISTER_COMMAND("convert", add_convert);

}  // namespace dsv3::cli
