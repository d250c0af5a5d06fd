#include "runtime/scheduler.h"

#include <algorithm>

namespace dsv3 {

std::vector<StepEntry> plan_step(const std::vector<std::unique_ptr<Sequence>>& running, const SchedulerLimits& limits) {
  std::vector<StepEntry> plan;
  int64_t budget = limits.max_step_tokens, scored_budget = limits.max_scored_tokens;
  // Decoding sequences first: one token each.
  for (const auto& s : running) {
    if (!s->prefill_done()) continue;
    plan.push_back({s.get(), std::span<const int32_t>(&s->last_token, 1), true});
    --budget;
  }
  // Then prompt chunks, oldest request first, from what is left (at least one chunk per step
  // so that prefill always progresses).
  for (const auto& s : running) {
    if (s->prefill_done()) continue;
    if (budget <= 0 && !plan.empty()) break;
    const int64_t left = static_cast<int64_t>(s->prompt.size()) - s->prefilled;
    const bool scored = s->params.score_prompt;
    if (scored && scored_budget <= 0) continue;  // waits for a step with room for its logits
    int64_t chunk = std::max<int64_t>(1, std::min(left, budget));
    if (scored) {
      chunk = std::min(chunk, scored_budget);
      scored_budget -= chunk;
    }
    plan.push_back({s.get(), std::span<const int32_t>(s->prompt.data() + s->prefilled, static_cast<size_t>(chunk)),
                    chunk == left, scored});
    budget -= chunk;
  }
  return plan;
}

}  // namespace dsv3
