#pragma once
// Next-token choice from logits: greedy at temperature 0, else softmax(logits / T) restricted
// by top-k and top-p, drawn with a seeded generator (the same seed gives the same tokens on
// every platform: the generator and the uniform draw are our own, not std:: distributions).

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "base/random.h"
#include "base/result.h"
#include "grammar/token_constraint.h"
#include "grammar/tool_call_constraint.h"

namespace dsv3 {

struct SamplingParams {
  float temperature = 0.0f;  // 0: greedy (argmax)
  float top_p = 1.0f;        // keep the smallest set of tokens whose probability reaches top_p
  int top_k = 0;             // keep the k most likely tokens (0: all)
  uint64_t seed = 0;
  // Added to the logits before the draw (OpenAI logit_bias).
  std::vector<std::pair<int32_t, float>> logit_bias;
  // OpenAI penalties over the tokens drawn so far: logit -= presence * [count > 0]
  // + frequency * count.
  float presence_penalty = 0.0f, frequency_penalty = 0.0f;
  // Constrained decoding: only tokens that keep the output valid JSON for this grammar's
  // schema (OpenAI response_format), and the end tokens once the value is complete.
  std::shared_ptr<const grammar::JsonGrammar> grammar;
  // Or: the output is one tool call in the model's markup, its arguments a value of the
  // tool's parameter schema (tool_choice "required" or a named function).
  std::shared_ptr<const grammar::ToolCallGrammar> tool_call_grammar;
  bool has_logit_processing() const {
    return !logit_bias.empty() || presence_penalty != 0.0f || frequency_penalty != 0.0f || grammar ||
           tool_call_grammar;
  }
};

// Probability of each kept candidate, for logprobs reporting.
struct TokenChoice {
  int32_t token = -1;
  float logprob = 0.0f;  // log softmax(logits) of the chosen token (temperature 1, unrestricted)
};

// Error unless temperature is finite and >= 0, top_p finite in [0, 1] and top_k >= 0 (NaN
// would pass every comparison the draw makes and choose no token).
Status validate_sampling(const SamplingParams& params);

// One sequence's token choice, step after step: the logit processing its parameters ask for
// (bias, penalties over what it generated), then the draw. Each sequence has its own, so
// draws do not depend on which other sequences share a batch, nor on the thread.
class Sampler {
 public:
  // max_tokens: the sequence's token budget, which a grammar's output is steered to fit
  // (0: none).
  explicit Sampler(const SamplingParams& params, int64_t max_tokens = 0);
  // The logits the draw uses (what other engines call logits processors): the model's, with
  // logit_bias added and the presence/frequency penalties for the tokens accepted so far
  // subtracted, and -inf on the tokens a grammar forbids at this position. Returns `logits`
  // itself when nothing changes them, else `scratch`, filled.
  const float* process(const float* logits, int64_t vocab, std::vector<float>& scratch);
  // Draws a token from (processed) logits. Error if they hold NaN/Inf or every token is
  // masked (-inf).
  Result<int32_t> sample(const float* logits, int64_t vocab);
  // Speculative decoding's accept / reject of a draft proposed deterministically (the MTP
  // module's argmax): the draft is kept with its probability under this sampler's
  // distribution (temperature, top-k, top-p), else a token is drawn from that distribution
  // with the draft left out. The token that comes out follows exactly the distribution
  // sample() draws from; at temperature 0 the draft is kept if and only if it is the argmax.
  struct Verdict {
    int32_t token = -1;
    bool accepted = false;
  };
  Result<Verdict> verify(const float* logits, int64_t vocab, int32_t draft);
  // Counts a generated token, for the penalties of the next draws, and advances the grammar.
  // Error when the grammar does not allow the token (a draw from process()'s logits never
  // chooses one).
  Status accept(int32_t token);
  const SamplingParams& params() const { return params_; }

 private:
  SamplingParams params_;
  Xoshiro256 rng_;
  std::map<int32_t, int> counts_;  // generated tokens, when a penalty is set
  std::unique_ptr<grammar::OutputConstraint> constraint_;  // with params.grammar or tool_call_grammar
};

// The tokens a draw with these params can return, ascending: at temperature 0 the argmax;
// else the candidates (logits within 40 T of the best) sorted by (logit desc, id asc), cut
// to the first top_k and then to the shortest prefix whose probability reaches top_p (at
// least one token). Logits as Sampler::sample accepts them (no NaN or +Inf, one finite).
std::vector<int32_t> sampling_support(const float* logits, int64_t vocab, const SamplingParams& params);

// Index of the largest logit (lowest index on ties).
int32_t argmax(const float* logits, int64_t n);
// The k largest values of x with their indices, by (value desc, index asc): one pass keeping
// the best k so far (k is small: top_logprobs is at most 20), no vocabulary-sized index.
std::vector<std::pair<int32_t, float>> top_values(const float* x, int64_t n, int64_t k);

// log softmax of every logit: out[i] = logits[i] - logsumexp(logits) (out may be logits).
void log_softmax(const float* logits, int64_t n, float* out);

}  // namespace dsv3
