#pragma once
// A generation request as the engine sees it (token ids in, token ids out) and the handle
// through which the submitting thread receives its tokens as they are generated.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "runtime/sampler.h"

namespace dsv3 {

// How a request ended: a stop token (or the client's stop string), the token budget or the
// context, cancelled by its client (or at shutdown's deadline), or failed in the engine (the
// update's error says why).
enum class FinishReason { Stop, Length, Cancelled, Failed };
const char* finish_reason_name(FinishReason r);

struct RequestParams {
  int64_t max_new_tokens = 256;      // 0: prefill the prompt (and score it), generate nothing
  SamplingParams sampling;
  std::vector<int32_t> stop_tokens;  // finish with "stop" after emitting one
  int top_logprobs = 0;              // alternatives reported per token (0..20)
  bool logprobs = false;             // report the chosen token's log probability
  // Report every prompt token from the second on, with its log probability given the tokens
  // before it and top_logprobs alternatives (OpenAI completions' echo with logprobs, as
  // evaluation harnesses use it). Raw model log probabilities: no bias or penalty.
  bool score_prompt = false;
};

struct TokenOutput {
  int32_t token = -1;
  float logprob = 0.0f;                             // log softmax(logits) of the token
  std::vector<std::pair<int32_t, float>> top;       // best alternatives (id, logprob)
};

struct RequestUpdate {
  std::vector<TokenOutput> prompt;  // scored prompt tokens since the previous wait() (score_prompt)
  std::vector<TokenOutput> tokens;  // produced since the previous wait()
  bool finished = false;
  FinishReason finish = FinishReason::Length;
  std::string error;                // why, when finish is Failed
};

class RequestHandle {
 public:
  RequestHandle(uint64_t id, int64_t prompt_tokens) : id_(id), prompt_tokens_(prompt_tokens) {}
  uint64_t id() const { return id_; }
  int64_t prompt_tokens() const { return prompt_tokens_; }
  // Prompt tokens whose cache rows came from the prefix cache (set before the first token).
  int64_t cached_tokens() const { return cached_tokens_.load(); }
  void set_cached_tokens(int64_t n) { cached_tokens_.store(n); }

  // Caller side: waits up to `timeout` for output and takes what accumulated.
  RequestUpdate wait(std::chrono::milliseconds timeout);
  // Asks the engine to stop this request and free its cache (effective within a step).
  void cancel() { cancelled_.store(true); }
  bool cancelled() const { return cancelled_.load(); }

  // Engine side.
  void push(TokenOutput token);
  void push_prompt(std::vector<TokenOutput> scored);
  void finish(FinishReason reason, std::string error = "");

 private:
  const uint64_t id_;
  const int64_t prompt_tokens_;
  std::atomic<bool> cancelled_{false};
  std::atomic<int64_t> cached_tokens_{0};
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<TokenOutput> pending_, pending_prompt_;
  bool finished_ = false;
  bool finish_reported_ = false;
  FinishReason reason_ = FinishReason::Length;
  std::string error_;
};

}  // namespace dsv3
