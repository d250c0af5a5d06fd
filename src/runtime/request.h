#pragma once
// A generation request as the engine sees it (token ids in, token ids out) and the handle
// through which the submitting thread receives its tokens as they are generated.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "base/result.h"
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

// The part of a request that makes it invalid.
enum class RequestField { Prompt, MaxNewTokens, Sampling, LogitBias };

// Errors a request can have whatever the model's state: an empty prompt, ids outside the
// vocabulary, a prompt longer than the context, a negative token budget, invalid sampling
// parameters or logit_bias ids. Every command's requests pass here (Engine::submit). On an
// error, `field` (when given) says which part it is about.
Status validate_request(std::span<const int32_t> prompt, const RequestParams& params, int64_t vocab_size,
                        int64_t max_context, RequestField* field = nullptr);

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

// Where a request's time went, in seconds (0 for a phase not reached).
struct RequestTiming {
  double queued = 0;   // submitted -> admitted into the running batch
  double prefill = 0;  // admitted -> first token (the prompt's forward passes)
  double decode = 0;   // first token -> finished
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

  RequestTiming timing() const;

  // Engine side.
  void mark_admitted();
  void push(TokenOutput token);
  void push_prompt(std::vector<TokenOutput> scored);
  void finish(FinishReason reason, std::string error = "");

 private:
  const uint64_t id_;
  const int64_t prompt_tokens_;
  std::atomic<bool> cancelled_{false};
  std::atomic<int64_t> cached_tokens_{0};
  mutable std::mutex mu_;
  std::condition_variable cv_;
  using Clock = std::chrono::steady_clock;
  Clock::time_point submitted_ = Clock::now(), admitted_, first_token_, finished_at_;
  std::vector<TokenOutput> pending_, pending_prompt_;
  bool finished_ = false;
  bool finish_reported_ = false;
  FinishReason reason_ = FinishReason::Length;
  std::string error_;
};

// A request's whole output, for callers that wait for its end (the command line, tests).
struct RequestResult {
  std::vector<TokenOutput> prompt;  // scored prompt tokens (score_prompt)
  std::vector<TokenOutput> tokens;
  FinishReason finish = FinishReason::Length;
  std::string error;
  RequestTiming timing;
  int64_t cached_tokens = 0;  // prompt tokens that came from the prefix cache
};

// Waits until the request finishes. `on_token` sees each token as it arrives; `cancel_if` is
// asked at least every 50 ms and cancels the request when it returns true (what was generated
// until then is kept; the finish reason is Cancelled).
RequestResult wait_for_result(RequestHandle& handle, const std::function<void(const TokenOutput&)>& on_token = {},
                              const std::function<bool()>& cancel_if = {});

}  // namespace dsv3
