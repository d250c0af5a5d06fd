// dsv3 perplexity: perplexity of a checkpoint over a text in windows (as llama-perplexity
// scores it), and with --kl-base the KL divergence and top-1 agreement against a saved base
// run. The scoring rules are in src/tools/perplexity.h.

#include <unistd.h>

#include <cctype>
#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>

#include "base/json.h"
#include "command.h"
#include "common.h"
#include "tools/perplexity.h"
#include "tools/progress.h"

namespace dsv3::cli {
namespace {

struct PerplexityArgs {
  ModelArgs model;
  std::string text_file;
  std::string tokens_file;
  std::string tokenizer;
  std::string kl_base;
  std::string save_logits;
  int64_t chunks = 0;
  bool no_bos = false;
  bool json = false;
};

Result<std::string> read_whole(const std::string& path, const char* option) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Error(std::string(option) + ": cannot read '" + path + "'");
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// Token ids separated by commas and/or white space.
Result<std::vector<int32_t>> parse_ids(const std::string& text, const std::string& path) {
  std::string list;
  for (char ch : text) list += (ch == ',' || std::isspace(static_cast<unsigned char>(ch))) ? ' ' : ch;
  std::vector<int32_t> out;
  std::istringstream in(list);
  std::string item;
  while (in >> item) {
    char* end = nullptr;
    const long long v = std::strtoll(item.c_str(), &end, 10);
    if (*end != '\0' || v < 0 || v > INT32_MAX)
      return Error("--tokens-file '" + path + "': '" + item.substr(0, 20) + "' is not a token id");
    out.push_back(static_cast<int32_t>(v));
  }
  return out;
}

int run_perplexity(PerplexityArgs a) {
  if (a.text_file.empty() == a.tokens_file.empty()) return fail("perplexity", "give one of --text-file or --tokens-file");
  const int64_t ctx = a.model.ctx > 0 ? a.model.ctx : 512;
  auto model = load_model(a.model, /*load_mtp=*/false);
  if (!model.ok()) return fail("perplexity", model.error().message());
  const Model& m = **model;

  std::vector<int32_t> tokens;
  if (!a.tokens_file.empty()) {
    auto text = read_whole(a.tokens_file, "--tokens-file");
    if (!text.ok()) return fail("perplexity", text.error().message());
    auto ids = parse_ids(*text, a.tokens_file);
    if (!ids.ok()) return fail("perplexity", ids.error().message());
    tokens = std::move(ids).value();
  } else {
    auto text = read_whole(a.text_file, "--text-file");
    if (!text.ok()) return fail("perplexity", text.error().message());
    auto dir = resolve_model_dir(a.model.model);
    if (!dir.ok()) return fail("perplexity", dir.error().message());
    auto tok = load_tokenizer(*dir, a.tokenizer);
    if (!tok.ok()) return fail("perplexity", tok.error().message());
    tokens = (*tok)->encode(*text);
  }
  for (int32_t t : tokens)
    if (t >= m.vocab_size())
      return fail("perplexity", "token id " + std::to_string(t) + " is outside the model's vocabulary (" +
                                    std::to_string(m.vocab_size()) + ")");

  PerplexityOptions opt;
  opt.ctx = ctx;
  if (!a.no_bos && m.config().bos_token_id) opt.bos = static_cast<int32_t>(*m.config().bos_token_id);
  opt.max_windows = a.chunks;
  opt.kl_base = a.kl_base;
  opt.save_logits = a.save_logits;
  const int64_t windows = std::min<int64_t>(static_cast<int64_t>(tokens.size()) / ctx, a.chunks > 0 ? a.chunks : INT64_MAX);
  std::unique_ptr<ProgressReporter> progress;
  if (windows > 0) {
    progress = std::make_unique<ProgressReporter>("perplexity", static_cast<uint64_t>(windows) * ctx, ::isatty(2));
    progress->count_in("tokens");
  }
  opt.on_window = [&](int64_t done, int64_t) { progress->set(static_cast<uint64_t>(done * ctx)); };
  auto r = compute_perplexity(m, tokens, opt);
  if (progress && r.ok()) progress->finish();
  progress.reset();
  if (!r.ok()) return fail("perplexity", r.error().message());

  if (a.json) {
    Json j = {{"tokens", tokens.size()}, {"ctx", ctx}, {"windows", r->windows}, {"scored", r->scored},
              {"mean_nll", r->mean_nll}, {"perplexity", r->perplexity}, {"perplexity_stderr", r->ppl_stderr}};
    if (r->has_base) {
      j["base_perplexity"] = r->base_perplexity;
      j["kl_mean"] = r->kl_mean;
      j["kl_p99"] = r->kl_p99;
      j["kl_max"] = r->kl_max;
      j["top1_agreement"] = r->top1_agreement;
    }
    std::printf("%s\n", j.dump().c_str());
    return 0;
  }
  std::printf("%lld tokens, %lld windows of %lld, %lld tokens scored (the second half of each window)\n",
              static_cast<long long>(tokens.size()), static_cast<long long>(r->windows), static_cast<long long>(ctx),
              static_cast<long long>(r->scored));
  std::printf("perplexity: %.4f +/- %.4f  (mean nll %.6f nats)\n", r->perplexity, r->ppl_stderr, r->mean_nll);
  if (r->has_base) {
    std::printf("base perplexity: %.4f  (%+.3f%%)\n", r->base_perplexity,
                100.0 * (r->perplexity / r->base_perplexity - 1.0));
    std::printf("KL(base || this): mean %.6f  p99 %.6f  max %.6f\n", r->kl_mean, r->kl_p99, r->kl_max);
    std::printf("top-1 agreement with base: %.2f%%\n", 100.0 * r->top1_agreement);
  }
  return 0;
}

Command add_perplexity(CLI::App& root) {
  auto args = std::make_shared<PerplexityArgs>();
  CLI::App* app = root.add_subcommand("perplexity", "Perplexity over a text; KL divergence and top-1 agreement against a saved base run");
  add_model_options(app, args->model);
  app->footer(
      "--ctx N is the window length here (default 512). The tokens are cut into non-overlapping windows of N\n"
      "  (the rest is dropped), each window's first token becomes BOS (unless --no-bos), and each window is run\n"
      "  from an empty cache; the logits at positions N/2 .. N-2 are scored against the next token, as\n"
      "  llama.cpp's llama-perplexity does. Perplexity = exp(mean negative log-likelihood).\n"
      "--save-logits F writes this run's log-probabilities of the scored positions (4 bytes x vocab per token);\n"
      "  --kl-base F compares with such a run of another checkpoint (same text and --ctx): mean, 99th percentile\n"
      "  and max KL(base || this), and the share of tokens whose most likely next token agrees.");
  app->add_option("--text-file", args->text_file, "Text to score (tokenized with the model's tokenizer)");
  app->add_option("--tokens-file", args->tokens_file, "Token ids to score instead of a text (separated by commas or spaces)");
  add_tokenizer_option(app, args->tokenizer);
  app->add_option("--kl-base", args->kl_base, "A saved base run (--save-logits of the base checkpoint)");
  app->add_option("--save-logits", args->save_logits, "Write this run's log-probabilities (safetensors) for --kl-base");
  app->add_option("--chunks", args->chunks, "Score at most this many windows (default: all)")->check(CLI::Range(int64_t(0), int64_t(1) << 40));
  app->add_flag("--no-bos", args->no_bos, "Keep each window's first token instead of writing BOS there");
  app->add_flag("--json", args->json, "Print the result as one JSON object");
  return {app, [args] { return run_perplexity(*args); }};
}

}  // namespace

DSV3_REGISTER_COMMAND("perplexity", add_perplexity);

}  // namespace dsv3::cli
