// dsv3 generate: generation from a token list (text prompts come with the tokenizer).

#include <cstdio>
#include <memory>

#include "command.h"
#include "common.h"
#include "runtime/generate.h"

namespace dsv3::cli {
namespace {

struct GenerateArgs {
  ModelArgs model;
  std::string tokens;
  int64_t max_new_tokens = 64;
  float temperature = 0.6f;
  float top_p = 0.95f;
  int top_k = 0;
  uint64_t seed = 0;
  bool ids = false;
  bool ignore_eos = false;
};

int run_generate(const GenerateArgs& a) {
  std::vector<int32_t> prompt;
  if (!a.tokens.empty()) {
    auto t = parse_token_list(a.tokens);
    if (!t.ok()) return fail("generate", t.error().message());
    prompt = std::move(t).value();
  }
  auto model = load_model(a.model, false);
  if (!model.ok()) return fail("generate", model.error().message());
  const Model& m = **model;
  if (prompt.empty()) {
    if (!m.config().bos_token_id) return fail("generate", "no prompt given (--tokens) and the model has no bos_token_id");
    prompt.push_back(static_cast<int32_t>(*m.config().bos_token_id));
  }
  GenerateOptions opt;
  opt.max_new_tokens = a.max_new_tokens;
  opt.sampling = {a.temperature, a.top_p, a.top_k, a.seed};
  if (!a.ignore_eos) opt.stop_tokens = default_stop_tokens(m.config());
  auto result = generate(m, prompt, opt);
  if (!result.ok()) return fail("generate", result.error().message());
  std::string line;
  for (size_t i = 0; i < result->tokens.size(); ++i) line += (i ? " " : "") + std::to_string(result->tokens[i]);
  std::printf("%s\n", line.c_str());
  if (!a.ids) {
    std::fprintf(stderr, "prompt %lld tokens %.1f tok/s, generated %zu tokens %.1f tok/s, finish: %s\n",
                 static_cast<long long>(result->prompt_tokens),
                 result->prefill_seconds > 0 ? result->prompt_tokens / result->prefill_seconds : 0.0,
                 result->tokens.size(),
                 result->decode_seconds > 0 ? result->tokens.size() / result->decode_seconds : 0.0,
                 finish_reason_name(result->finish));
  }
  return 0;
}

Command add_generate(CLI::App& root) {
  auto args = std::make_shared<GenerateArgs>();
  CLI::App* app = root.add_subcommand("generate", "Generate tokens from a prompt");
  add_model_options(app, args->model);
  app->add_option("--tokens", args->tokens, "Prompt as comma-separated token ids");
  app->add_option("-n,--max-new-tokens", args->max_new_tokens, "Tokens to generate at most")->check(CLI::Range(int64_t(1), int64_t(1) << 31));
  app->add_option("--temperature", args->temperature, "Sampling temperature; 0 = greedy")->check(CLI::Range(0.0f, 100.0f));
  app->add_option("--top-p", args->top_p, "Nucleus sampling mass")->check(CLI::Range(0.0f, 1.0f));
  app->add_option("--top-k", args->top_k, "Sample among the k most likely tokens (0 = all)")->check(CLI::Range(0, 1 << 30));
  app->add_option("--seed", args->seed, "Random seed (same seed, same tokens)");
  app->add_flag("--ids", args->ids, "Print only the generated token ids, space-separated, on one line");
  app->add_flag("--ignore-eos", args->ignore_eos, "Keep generating past the end-of-sequence token");
  return {app, [args] { return run_generate(*args); }};
}

}  // namespace

DSV3_REGISTER_COMMAND("generate", add_generate);

}  // namespace dsv3::cli
