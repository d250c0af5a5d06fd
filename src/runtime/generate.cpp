#include "runtime/generate.h"

#include <algorithm>
#include <chrono>

namespace dsv3 {

const char* finish_reason_name(FinishReason r) { return r == FinishReason::Stop ? "stop" : "length"; }

std::vector<int32_t> default_stop_tokens(const ModelConfig& config) {
  std::vector<int32_t> out;
  for (int64_t e : config.eos_token_ids) out.push_back(static_cast<int32_t>(e));
  return out;
}

Result<GenerationResult> generate(const Model& model, std::span<const int32_t> prompt, const GenerateOptions& options,
                                  const std::function<bool(int32_t)>& on_token) {
  using Clock = std::chrono::steady_clock;
  if (prompt.empty()) return Error("the prompt is empty");
  const int64_t limit = model.max_context();
  if (static_cast<int64_t>(prompt.size()) > limit)
    return error_f("the prompt has %zu tokens, more than the context limit of %lld", prompt.size(),
                   static_cast<long long>(limit));
  GenerationResult result;
  result.prompt_tokens = static_cast<int64_t>(prompt.size());
  KVCache cache = model.new_cache();
  Sampler sampler(options.sampling);
  ForwardOutput out;

  auto t0 = Clock::now();
  SequenceInput in{&cache, prompt, false};
  DSV3_TRY(model.forward({&in, 1}, &out));
  auto t1 = Clock::now();
  result.prefill_seconds = std::chrono::duration<double>(t1 - t0).count();

  for (int64_t step = 0; step < options.max_new_tokens; ++step) {
    DSV3_ASSIGN(int32_t token, sampler.sample(out.logits.data(), model.vocab_size()));
    result.tokens.push_back(token);
    bool keep_going = !on_token || on_token(token);
    if (std::find(options.stop_tokens.begin(), options.stop_tokens.end(), token) != options.stop_tokens.end()) {
      result.finish = FinishReason::Stop;
      break;
    }
    if (!keep_going) break;
    if (step + 1 == options.max_new_tokens) break;
    if (cache.length() + 1 > limit) break;  // context full: finish "length"
    std::vector<int32_t> one = {token};
    SequenceInput next{&cache, one, false};
    DSV3_TRY(model.forward({&next, 1}, &out));
  }
  result.decode_seconds = std::chrono::duration<double>(Clock::now() - t1).count();
  return result;
}

}  // namespace dsv3
