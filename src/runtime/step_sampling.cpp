#include "runtime/step_sampling.h"

namespace dsv3 {
namespace {

// Row j of a prompt chunk holds the logits after prompt position prefilled + j, so it scores
// the token at prefilled + j + 1 (raw log softmax: no bias or penalty, with top_logprobs
// alternatives); the prompt's last row scores nothing (it chooses the first new token).
std::vector<TokenOutput> score_prompt_chunk(const Sequence& s, const float* rows, int64_t n_rows, int64_t vocab,
                                            std::vector<float>& logp) {
  std::vector<TokenOutput> scored;
  logp.resize(static_cast<size_t>(vocab));
  for (int64_t j = 0; j < n_rows; ++j) {
    const size_t next = static_cast<size_t>(s.prefilled + j + 1);
    if (next >= s.prompt.size()) break;
    log_softmax(rows + j * vocab, vocab, logp.data());
    TokenOutput t;
    t.token = s.prompt[next];
    t.logprob = logp[t.token];
    if (s.params.top_logprobs > 0) t.top = top_values(logp.data(), vocab, s.params.top_logprobs);
    scored.push_back(std::move(t));
  }
  return scored;
}

TokenOutput token_output(int32_t token, const float* row, int64_t vocab, const RequestParams& params,
                         std::vector<float>& logp) {
  TokenOutput t;
  t.token = token;
  if (params.logprobs || params.top_logprobs > 0) {
    logp.resize(static_cast<size_t>(vocab));
    log_softmax(row, vocab, logp.data());
    t.logprob = logp[t.token];
    if (params.top_logprobs > 0) t.top = top_values(logp.data(), vocab, params.top_logprobs);
  }
  return t;
}

}  // namespace

std::vector<StepOutput> sample_step(ThreadPool& pool, const StepPlan& plan, const ForwardOutput& out, int64_t vocab) {
  std::vector<StepOutput> outputs(plan.entries.size());
  pool.parallel_for(static_cast<int64_t>(plan.entries.size()), [&](int64_t i) {
    const StepEntry& e = plan.entries[static_cast<size_t>(i)];
    const Logits rows_kind = e.logits();
    if (rows_kind == Logits::None) return;
    Sequence& s = *e.seq;
    StepOutput& o = outputs[static_cast<size_t>(i)];
    // Vocabulary-sized buffers kept per thread: not a fresh 0.5 MB per sequence and step.
    thread_local std::vector<float> processed, logp;
    const int64_t n_rows = rows_kind == Logits::All ? static_cast<int64_t>(e.tokens.size()) : 1;
    const float* rows = out.logits.data() + out.first_row[static_cast<size_t>(i)] * vocab;
    if (rows_kind == Logits::All && !s.prefill_done()) o.scored = score_prompt_chunk(s, rows, n_rows, vocab, logp);
    if (!e.samples || s.params.max_new_tokens == 0) return;
    // Row k chooses the token after input k. With drafts, the rows after the first are only
    // valid while every draft before them was kept: verify in order, stop at the first
    // rejection (its row gives the replacement); all kept, the last row gives one more token.
    const int64_t first = rows_kind == Logits::All ? n_rows - 1 - e.drafts : 0;
    for (int64_t k = 0; k <= e.drafts; ++k) {
      const float* row = s.sampler.process(rows + (first + k) * vocab, vocab, processed);
      Result<int32_t> token = -1;
      bool go_on = false;
      if (k < e.drafts) {
        auto verdict = s.sampler.verify(row, vocab, e.tokens[static_cast<size_t>(k + 1)]);
        if (verdict.ok()) token = verdict->token, go_on = verdict->accepted;
        else token = std::move(verdict).error();
      } else {
        token = s.sampler.sample(row, vocab);
      }
      if (!token.ok()) {
        o.error = token.error().message();
        return;
      }
      if (auto accepted = s.sampler.accept(*token); !accepted.ok()) {
        o.error = accepted.error().message();
        return;
      }
      o.tokens.push_back(token_output(*token, row, vocab, s.params, logp));
      if (!go_on) break;
      ++o.drafts_accepted;
    }
  });
  return outputs;
}

}  // namespace dsv3
