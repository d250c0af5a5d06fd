#include "server/generation_plan.h"

namespace dsv3::server {

namespace {

// The tokens a prompt of `n` tokens may generate, or the error that refuses it.
std::optional<ApiError> token_budget(int64_t n, std::optional<int64_t> max_tokens, int64_t context,
                                     const std::string& prompt_param, int64_t* budget) {
  if (n == 0) return invalid_request("the prompt must be non-empty", prompt_param);
  // A prompt as long as the context leaves room for nothing: allowed only when nothing is to
  // be generated (max_tokens 0: echo scoring the prompt).
  const bool generates = !max_tokens || *max_tokens > 0;
  if (n > context || (generates && n == context))
    return invalid_request(str_f("the prompt has %lld tokens; the context limit is %lld", static_cast<long long>(n),
                                 static_cast<long long>(context)),
                           prompt_param, "context_length_exceeded");
  if (max_tokens && *max_tokens > context - n)
    return invalid_request(str_f("prompt (%lld tokens) + max_tokens (%lld) exceeds the context limit of %lld",
                                 static_cast<long long>(n), static_cast<long long>(*max_tokens),
                                 static_cast<long long>(context)),
                           prompt_param, "context_length_exceeded");
  *budget = max_tokens ? *max_tokens : context - n;
  return std::nullopt;
}

RequestParams choice_params(const GenerationRequest& gen, int64_t max_new_tokens, uint64_t seed,
                            std::optional<int32_t> eos_id) {
  RequestParams rp;
  rp.max_new_tokens = max_new_tokens;
  rp.sampling = {.temperature = gen.temperature,
                 .top_p = gen.top_p,
                 .top_k = gen.top_k,
                 .seed = seed,
                 .logit_bias = gen.logit_bias,
                 .presence_penalty = gen.presence_penalty,
                 .frequency_penalty = gen.frequency_penalty,
                 .grammar = nullptr,
                 .tool_call_grammar = nullptr};
  if (!gen.ignore_eos && eos_id) rp.stop_tokens.push_back(*eos_id);
  rp.logprobs = gen.logprobs;
  rp.top_logprobs = gen.top_logprobs;
  // Echo with logprobs scores the prompt (with max_tokens 0 it generates nothing after it).
  rp.score_prompt = gen.echo && gen.logprobs;
  return rp;
}

}  // namespace

std::optional<ApiError> plan_generation(const GenerationRequest& gen, const std::vector<int64_t>& prompt_lengths,
                                        const std::string& prompt_param, int64_t context,
                                        std::optional<int32_t> eos_id, uint64_t unseeded,
                                        std::vector<PlannedChoice>* out) {
  std::vector<int64_t> budgets(prompt_lengths.size());
  for (size_t p = 0; p < prompt_lengths.size(); ++p)
    if (auto e = token_budget(prompt_lengths[p], gen.max_tokens, context, prompt_param, &budgets[p])) return e;
  const uint64_t base_seed = gen.seed.value_or(unseeded);
  out->clear();
  int index = 0;
  for (size_t p = 0; p < prompt_lengths.size(); ++p)
    for (int k = 0; k < gen.n; ++k, ++index)
      out->push_back({index, static_cast<int>(p),
                      choice_params(gen, budgets[p], base_seed + static_cast<uint64_t>(index), eos_id)});
  return std::nullopt;
}

std::optional<ApiError> capacity_error(size_t prompts, int n, const EngineOptions& engine) {
  const size_t capacity = static_cast<size_t>(engine.max_batch) + static_cast<size_t>(engine.max_queue);
  const size_t choices = prompts * static_cast<size_t>(n);
  if (choices <= capacity) return std::nullopt;
  return invalid_request(str_f("%zu prompts x n %d = %zu sequences; this server holds at most %zu at once (batch %d + "
                               "queue %d)",
                               prompts, n, choices, capacity, engine.max_batch, engine.max_queue),
                         n == 1 ? "prompt" : "n");
}

namespace {

// The sampling parameter the engine refuses: each checked alone by the engine's own rule.
std::string refused_sampling_param(const SamplingParams& s) {
  SamplingParams one;
  one.temperature = s.temperature;
  if (!validate_sampling(one).ok()) return "temperature";
  one = SamplingParams{};
  one.top_p = s.top_p;
  if (!validate_sampling(one).ok()) return "top_p";
  return "top_k";
}

}  // namespace

std::optional<ApiError> submit_error(const SubmitResult& result, const std::string& prompt_param,
                                     const SamplingParams& sampling) {
  switch (result.status) {
    case SubmitStatus::Ok:
      return std::nullopt;
    case SubmitStatus::QueueFull: {
      ApiError e = api_error(429, result.message + "; retry shortly", "rate_limit_error", "queue_full");
      e.retry_after_seconds = 1;
      return e;
    }
    case SubmitStatus::ShuttingDown:
      return api_error(503, result.message, "server_error", "shutting_down");
    case SubmitStatus::Invalid:
      break;
  }
  switch (result.field) {
    case RequestField::Prompt: return invalid_request(result.message, prompt_param);
    case RequestField::MaxNewTokens: return invalid_request(result.message, "max_tokens");
    case RequestField::Sampling: return invalid_request(result.message, refused_sampling_param(sampling));
    case RequestField::LogitBias: return invalid_request(result.message, "logit_bias");
  }
  return invalid_request(result.message, prompt_param);
}

}  // namespace dsv3::server
