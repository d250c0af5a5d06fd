#pragma once
// A validated OpenAI request -> the engine requests it becomes, and the engine's refusal of
// one -> the HTTP error, as pure functions (no sockets, no engine, no tokenizer).
//
// Every prompt is checked against the context before anything is queued, so that a streamed
// request fails with a 400 before its first SSE byte.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "runtime/engine.h"
#include "server/api_error.h"
#include "server/openai_request.h"

namespace dsv3::server {

// One engine request: a choice of the response, drawn from one of the request's prompts.
struct PlannedChoice {
  int index = 0;         // the choice's index in the response: prompt-major, n per prompt
  int prompt_index = 0;  // which prompt it continues
  RequestParams params;
};

// Plans every choice of a request: for each prompt (given by its length in tokens) its n
// choices, choice i sampling with seed + i, where seed is the request's or, without one,
// `unseeded` (the caller's random draw). A prompt generates max_tokens tokens, or without
// max_tokens what the context leaves. Generation stops at eos_id unless ignore_eos.
// Error (400, param `prompt_param`: "messages" or "prompt") when a prompt is empty, longer
// than the context, as long as the context with tokens to generate, or longer than the
// context with its max_tokens (code context_length_exceeded for the last three); the first
// failing prompt is reported.
std::optional<ApiError> plan_generation(const GenerationRequest& gen, const std::vector<int64_t>& prompt_lengths,
                                        const std::string& prompt_param, int64_t context,
                                        std::optional<int32_t> eos_id, uint64_t unseeded,
                                        std::vector<PlannedChoice>* out);

// The error for a request of `choices` engine requests (prompts x n) that the engine can never
// hold at once (more than its batch and queue together), whatever its load: 400 naming "n" (or
// "prompt" for a request of many prompts and n = 1), with the limit. A 429 would tell the
// client to retry what can never pass.
std::optional<ApiError> capacity_error(size_t prompts, int n, const EngineOptions& engine);

// The HTTP error for a submission the engine refused; none for SubmitStatus::Ok. A full queue
// is 429 with Retry-After (the queue drains), a shutdown 503, an invalid request 400 naming
// the parameter at fault: the prompt (`prompt_param`) for token ids and the prompt's length,
// max_tokens, logit_bias, or the sampling parameter (of `sampling`) the engine refuses.
std::optional<ApiError> submit_error(const SubmitResult& result, const std::string& prompt_param,
                                     const SamplingParams& sampling);

}  // namespace dsv3::server
