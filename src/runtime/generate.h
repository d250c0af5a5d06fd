#pragma once
// Single-sequence generation: prefill the prompt in one pass, then decode token by token
// with the KV cache until EOS, a stop token, the token budget or the context limit.

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "base/result.h"
#include "model/model.h"
#include "runtime/request.h"
#include "runtime/sampler.h"

namespace dsv3 {


struct GenerateOptions {
  int64_t max_new_tokens = 128;
  SamplingParams sampling;
  std::vector<int32_t> stop_tokens;  // generation ends after emitting one (EOS)
  // When set, the prompt is prefilled in chunks and this is asked before each: true ends the
  // call with no tokens (Ctrl-C in the chat during a long prompt). Chunking changes no bits.
  std::function<bool()> stop_requested;
};

struct GenerationResult {
  std::vector<int32_t> tokens;  // generated ids (a final stop token included)
  FinishReason finish = FinishReason::Length;
  double prefill_seconds = 0, decode_seconds = 0;
  int64_t prompt_tokens = 0;
};

// Errors: empty prompt, a prompt longer than the model's context limit, bad token ids.
// `on_token` sees each new id as it is chosen; returning false stops generation.
Result<GenerationResult> generate(const Model& model, std::span<const int32_t> prompt, const GenerateOptions& options,
                                  const std::function<bool(int32_t)>& on_token = {});

// The stop tokens a model declares (config.json eos_token_id).
std::vector<int32_t> default_stop_tokens(const ModelConfig& config);

}  // namespace dsv3
