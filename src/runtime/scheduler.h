#pragma once
// Continuous batching bookkeeping (no tensors here): which sequences run in the next step
// and with which tokens. Every running sequence that has finished its prompt decodes one
// token per step; prompts are prefilled in chunks from what is left of the step's token
// budget, oldest first, so a long prompt never stalls the others' decoding.

#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <vector>

#include "model/kv_cache.h"
#include "runtime/request.h"
#include "runtime/sampler.h"

namespace dsv3 {

struct Sequence {
  std::shared_ptr<RequestHandle> handle;
  RequestParams params;
  std::vector<int32_t> prompt;
  int64_t prefilled = 0;    // prompt tokens already in the cache
  int64_t generated = 0;
  int32_t last_token = -1;  // sampled last step; the next decode input
  bool done = false;        // finished, failed or cancelled: leaves the batch after this step
  std::vector<int32_t> output;          // generated tokens (the cache holds prompt + output rows)
  std::map<int32_t, int> token_counts;  // generated tokens, for presence/frequency penalties
  KVCache cache;
  Sampler sampler;

  Sequence(std::shared_ptr<RequestHandle> h, RequestParams p, std::vector<int32_t> tokens, KVCache c)
      : handle(std::move(h)), params(std::move(p)), prompt(std::move(tokens)), cache(std::move(c)),
        sampler(params.sampling) {}
  bool prefill_done() const { return prefilled == static_cast<int64_t>(prompt.size()); }
};

struct StepEntry {
  Sequence* seq = nullptr;
  std::span<const int32_t> tokens;  // this step's input tokens
  bool wants_logits = false;        // decode, or the prefill chunk that ends the prompt
  bool all_logits = false;          // every token's logits: a chunk of a scored prompt
};

struct SchedulerLimits {
  int64_t max_step_tokens = 256;  // tokens in one forward step (decode tokens first)
  // Tokens of scored prompts (score_prompt) in one step, all sequences together: each has a
  // vocabulary-sized row of logits (64 x 129,280 floats: 33 MB).
  int64_t max_scored_tokens = 64;
};

// Plans one step over the running sequences (in admission order).
std::vector<StepEntry> plan_step(const std::vector<std::unique_ptr<Sequence>>& running, const SchedulerLimits& limits);

}  // namespace dsv3
