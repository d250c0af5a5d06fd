#pragma once
// dsv3 perplexity: how well a checkpoint predicts a text, scored the way llama.cpp's
// llama-perplexity scores it, and, against a saved run of a base checkpoint (e.g. the FP8
// original), how far a converted checkpoint's distributions moved.
//
// Windows and scoring (exactly):
//   - the token stream is cut into floor(N / ctx) non-overlapping windows of ctx tokens
//     (the last N mod ctx tokens are not used);
//   - the first token of every window is replaced by BOS (config.json bos_token_id) unless
//     there is none or the caller turns it off, as llama-perplexity does;
//   - each window is one forward pass from an empty cache; with first = ctx / 2, the logits at
//     positions first .. ctx - 2 are scored against the next token (ctx - 1 - first tokens
//     per window): the second half of each window, every scored token seeing at least
//     ctx / 2 tokens of context;
//   - nll = logsumexp(logits) - logits[target] in double; perplexity = exp(mean nll).
// With a base run (--kl-base), per scored token: KL(base || this) =
//   sum_v p_base(v) (log p_base(v) - log p(v)), and top-1 agreement (argmax equal). The 99th
//   percentile is the nearest-rank one: the ceil(0.99 n)-th smallest.
//
// Saved runs (--save-logits) are safetensors files: "log_probs" F32 [scored, vocab] (each
// row the log-softmax of a scored position's logits), "targets" I32 [scored], metadata
// {"format": "dsv3-perplexity-v1", "ctx", "bos"}. A base and a run must score the same
// targets with the same ctx; a row is 4 * vocab bytes (517 kB for DeepSeek-V3's vocabulary).

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>

#include "base/result.h"
#include "model/model.h"

namespace dsv3 {

struct PerplexityOptions {
  int64_t ctx = 512;                 // window length in tokens (>= 4)
  std::optional<int32_t> bos;        // the token written at each window's start; nullopt: none
  int64_t max_windows = 0;           // 0: every window
  std::string kl_base;               // a saved run to compare with ("" for none)
  std::string save_logits;           // where to save this run ("" for nowhere)
  std::function<void(int64_t windows_done, int64_t windows_total)> on_window;
};

struct PerplexityResult {
  int64_t windows = 0;
  int64_t scored = 0;        // tokens scored
  double mean_nll = 0;       // nats per token
  double perplexity = 0;
  double ppl_stderr = 0;     // perplexity * standard error of the mean nll (delta method)
  bool has_base = false;     // the fields below are set
  double base_perplexity = 0;
  double kl_mean = 0, kl_p99 = 0, kl_max = 0;
  double top1_agreement = 0;  // fraction of scored tokens whose argmax equals the base's
};

// Tokens that scoring `n_tokens` tokens in windows of `ctx` scores (0 when too few).
int64_t perplexity_scored_tokens(int64_t n_tokens, int64_t ctx);

Result<PerplexityResult> compute_perplexity(const Model& model, std::span<const int32_t> tokens,
                                            const PerplexityOptions& options);

}  // namespace dsv3
