#pragma once
// Speculative decoding with the MTP module (DeepSeek-V3's Multi-Token Prediction), between an
// engine step's sampling and its postprocess:
//
//   1. The MTP layer catches up with the main model: a row of its layer of the cache for every
//      position this step fed and kept (the prompt chunk, or the decode token and the drafts
//      that were accepted), from the main model's hidden state there and the token after it.
//   2. Every sequence that generated a token gets up to `draft_tokens` drafts for the next
//      step: the MTP's greedy choice after its last row, then, for more, the MTP run again on
//      its own output (its rows past the cache's length are overwritten by the next step).
//
// The next step feeds the last token and the drafts together; sample_step keeps each draft
// as its sampler would have drawn it (Sampler::verify), so the output is what decoding
// without drafts gives (greedy: token for token; sampled: in distribution), whatever the
// drafts were. A wrong or missing draft costs speed, never correctness.

#include <cstdint>
#include <vector>

#include "base/result.h"
#include "model/model.h"
#include "runtime/scheduler.h"

namespace dsv3 {

// Sets each drafting sequence's `draft`. `out` is the step's forward output with the hidden
// states of every fed token (forward with want_hidden), `outputs` what sampling chose.
Status draft_step(const Model& model, const StepPlan& plan, const ForwardOutput& out,
                  const std::vector<StepOutput>& outputs, int64_t draft_tokens);

}  // namespace dsv3
