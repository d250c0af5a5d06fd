#include "runtime/draft_step.h"

#include <span>

#include "runtime/sampler.h"

namespace dsv3 {

Status draft_step(const Model& model, const StepPlan& plan, const ForwardOutput& out,
                  const std::vector<StepOutput>& outputs, int64_t draft_tokens) {
  const int64_t D = model.config().hidden_size, V = model.vocab_size();
  // 1. The MTP layer's rows for the positions this step kept.
  std::vector<Model::MtpInput> inputs;
  std::vector<std::vector<int32_t>> next_tokens;  // per input: the token after each position
  std::vector<Sequence*> drafting;                // per input: the sequence, when it drafts
  next_tokens.reserve(plan.entries.size());
  int64_t hidden_row = 0;  // the entry's first row in the step's hidden states
  for (size_t i = 0; i < plan.entries.size(); ++i) {
    const StepEntry& e = plan.entries[i];
    const int64_t fed = static_cast<int64_t>(e.tokens.size());
    const int64_t first_row = hidden_row;
    hidden_row += fed;
    Sequence& s = *e.seq;
    const std::vector<TokenOutput>& chosen = outputs[i].tokens;
    if (!s.mtp_synced) continue;  // its MTP rows fell behind: it no longer drafts
    if (!outputs[i].error.empty() || s.params.max_new_tokens == 0) continue;  // it finishes now
    std::vector<int32_t> next;
    if (!s.prefill_done()) {
      // A prompt chunk: each position's next token is the prompt's, the last one's the next
      // chunk's first or, when the chunk ends the prompt, the token just chosen.
      next.assign(e.tokens.begin() + 1, e.tokens.end());
      if (!e.samples) next.push_back(s.prompt[static_cast<size_t>(s.prefilled + fed)]);
      else if (!chosen.empty()) next.push_back(chosen[0].token);
      else continue;
    } else {
      // A decode step: the positions kept are the last token's and the accepted drafts', and
      // the token after each is what was chosen there.
      for (const TokenOutput& t : chosen) next.push_back(t.token);
      if (next.empty()) continue;
    }
    const bool drafts = e.samples && draft_tokens > 0;
    next_tokens.push_back(std::move(next));
    // The step's forward advanced the cache by every fed token; the first sits at length - fed.
    inputs.push_back({&s.cache, s.cache.length() - fed, next_tokens.back(), out.hidden.data() + first_row * D,
                      drafts ? Logits::Last : Logits::None});
    drafting.push_back(drafts ? &s : nullptr);
  }
  if (inputs.empty()) return {};
  ForwardOutput mtp;
  DSV3_TRY(model.mtp_step(inputs, &mtp));

  // 2. Drafts: the greedy choice after each drafting sequence's last row, then after the one
  //    before, on the MTP block's own output.
  struct Chain {
    Sequence* seq;
    int64_t next_position;        // where the MTP runs for the next draft
    std::vector<float> hidden;    // the MTP block's output at the position before
  };
  std::vector<Chain> chains;
  int64_t row = 0;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const int64_t n = static_cast<int64_t>(inputs[i].tokens.size());
    if (Sequence* s = drafting[i]) {
      const float* logits = mtp.logits.data() + mtp.first_row[i] * V;
      s->draft.assign(1, argmax(logits, V));
      const float* h = mtp.hidden.data() + (row + n - 1) * D;
      chains.push_back({s, inputs[i].first_position + n, std::vector<float>(h, h + D)});
    }
    row += n;
  }
  for (int64_t k = 1; k < draft_tokens && !chains.empty(); ++k) {
    std::vector<Model::MtpInput> more;
    std::vector<Chain> going;
    for (Chain& c : chains)
      if (c.next_position < model.max_context()) going.push_back(std::move(c));
    if (going.empty()) break;
    for (const Chain& c : going)
      more.push_back({&c.seq->cache, c.next_position, std::span<const int32_t>(&c.seq->draft.back(), 1),
                      c.hidden.data(), Logits::Last});
    DSV3_TRY(model.mtp_step(more, &mtp));
    for (size_t j = 0; j < going.size(); ++j) {
      going[j].seq->draft.push_back(argmax(mtp.logits.data() + mtp.first_row[j] * V, V));
      going[j].hidden.assign(mtp.hidden.data() + static_cast<int64_t>(j) * D, mtp.hidden.data() + (j + 1) * D);
      ++going[j].next_position;
    }
    chains = std::move(going);
  }
  return {};
}

}  // namespace dsv3
