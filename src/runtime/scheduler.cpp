#include "runtime/scheduler.h"

#include <algorithm>
#include <optional>

namespace dsv3 {

Logits StepEntry::logits() const {
  if ((seq->params.score_prompt && !seq->prefill_done()) || drafts > 0) return Logits::All;
  return samples && seq->params.max_new_tokens > 0 ? Logits::Last : Logits::None;
}

Scheduler::Scheduler(SchedulerOptions options) : options_(options), prefix_cache_(options.prefix_cache_bytes) {}

void Scheduler::add(std::unique_ptr<Sequence> seq) { waiting_.push_back(std::move(seq)); }

StepPlan Scheduler::schedule(bool use_drafts) {
  StepPlan plan;
  // A cancelled sequence leaves at once, waiting or running: its slot and its cache are free
  // for this very step.
  for (auto& s : waiting_)
    if (s->handle->cancelled()) finish(*s, FinishReason::Cancelled);
  for (auto& s : running_)
    if (s->handle->cancelled()) finish(*s, FinishReason::Cancelled);
  retire_finished();
  admit(plan);
  plan.entries = plan_tokens(use_drafts);
  return plan;
}

void Scheduler::admit(StepPlan& plan) {
  while (!waiting_.empty() && static_cast<int>(running_.size()) < options_.max_batch) {
    std::unique_ptr<Sequence> s = std::move(waiting_.front());
    waiting_.pop_front();
    // A scored prompt needs the logits of every position, so it cannot start from a copy.
    bool mtp_rows = true;  // an empty cache is current
    if (!s->params.score_prompt) {
      s->cached_tokens = prefix_cache_.restore(s->prompt, &s->cache, &mtp_rows);
      s->prefilled = s->cached_tokens;
      if (s->cached_tokens == 0) mtp_rows = true;
    }
    s->mtp_synced = options_.mtp && mtp_rows;
    plan.admitted.push_back(s.get());
    running_.push_back(std::move(s));
  }
}

std::vector<StepEntry> Scheduler::plan_tokens(bool use_drafts) {
  std::vector<StepEntry> entries;
  int64_t budget = options_.max_step_tokens, scored_budget = options_.max_scored_tokens;
  // Decoding sequences first: the last token chosen, and the drafts to verify after it as far
  // as the token budget and the context leave room for what they could add.
  for (const auto& s : running_) {
    if (!s->prefill_done()) continue;
    const int64_t rows = static_cast<int64_t>(s->prompt.size() + s->output.size()) - 1;  // in the cache
    const int64_t room = std::min(s->params.max_new_tokens - static_cast<int64_t>(s->output.size()),
                                  options_.max_context - rows) - 1;
    const int64_t drafts = use_drafts ? std::clamp<int64_t>(room, 0, static_cast<int64_t>(s->draft.size())) : 0;
    s->decode_input.assign(1, s->output.back());
    s->decode_input.insert(s->decode_input.end(), s->draft.begin(), s->draft.begin() + drafts);
    s->draft.clear();
    entries.push_back({s.get(), s->decode_input, true, drafts});
    budget -= 1 + drafts;
  }
  // Then prompt chunks, oldest request first, from what is left; at least one chunk per step,
  // so that prefill progresses even when the decodes took the whole budget.
  bool chunked = false;
  for (const auto& s : running_) {
    if (s->prefill_done()) continue;
    if (budget <= 0 && chunked) break;
    const int64_t left = static_cast<int64_t>(s->prompt.size()) - s->prefilled;
    const bool scored = s->params.score_prompt;
    if (scored && scored_budget <= 0) continue;  // waits for a step with room for its logits
    int64_t chunk = std::max<int64_t>(1, std::min(left, budget));
    if (scored) {
      chunk = std::min(chunk, scored_budget);
      scored_budget -= chunk;
    }
    entries.push_back({s.get(), std::span<const int32_t>(s->prompt.data() + s->prefilled, static_cast<size_t>(chunk)),
                       chunk == left, 0});
    budget -= chunk;
    chunked = true;
  }
  return entries;
}

void Scheduler::postprocess(const StepPlan& plan, std::vector<StepOutput>& outputs) {
  for (size_t i = 0; i < plan.entries.size(); ++i) {
    const StepEntry& e = plan.entries[i];
    Sequence& s = *e.seq;
    StepOutput& out = outputs[i];
    if (!s.prefill_done()) s.prefilled += static_cast<int64_t>(e.tokens.size());
    if (!e.samples) continue;
    if (!out.error.empty()) {
      out.tokens.clear();
      finish(s, FinishReason::Failed, out.error);
      continue;
    }
    if (s.params.max_new_tokens == 0) {  // prefill (and scoring) only: nothing to generate
      finish(s, FinishReason::Length);
      continue;
    }
    // Each token in order; the first that ends the sequence is its last.
    size_t kept = 0;
    std::optional<FinishReason> reason;
    while (kept < out.tokens.size() && !reason) {
      const int32_t token = out.tokens[kept++].token;
      s.output.push_back(token);
      const auto& stops = s.params.stop_tokens;
      // Rows the cache holds once this token is the last one chosen, and one more to feed it.
      const int64_t rows = static_cast<int64_t>(s.prompt.size() + s.output.size()) - 1;
      if (std::find(stops.begin(), stops.end(), token) != stops.end()) reason = FinishReason::Stop;
      else if (static_cast<int64_t>(s.output.size()) >= s.params.max_new_tokens) reason = FinishReason::Length;
      else if (rows + 1 > options_.max_context) reason = FinishReason::Length;
    }
    out.tokens.resize(kept);
    // The rows of rejected drafts (and of drafts past a finish) go.
    s.cache.truncate(static_cast<int64_t>(s.prompt.size() + s.output.size()) - 1);
    if (reason) finish(s, *reason);
  }
  retire_finished();
}

void Scheduler::fail(const StepPlan& plan, const std::string& error) {
  for (const StepEntry& e : plan.entries) finish(*e.seq, FinishReason::Failed, error);
  retire_finished();
}

void Scheduler::abort_all() {
  for (auto& s : running_) finish(*s, FinishReason::Failed, "the server shut down before this request finished");
  for (auto& s : waiting_) finish(*s, FinishReason::Failed, "the server shut down before this request started");
  retire_finished();
}

void Scheduler::finish(Sequence& s, FinishReason reason, std::string error) {
  if (s.finished) return;
  s.finished = true;
  s.finish = reason;
  s.error = std::move(error);
  // A sequence that ended normally or was cancelled between steps leaves a consistent cache:
  // rows for its prompt and output so far. One that failed may not.
  if (prefix_cache_.enabled() && reason != FinishReason::Failed) prefix_cache_.offer(s.all_tokens(), std::move(s.cache), s.mtp_synced);
  s.cache.release();
}

void Scheduler::retire_finished() {
  auto retire = [&](auto& list) {
    for (auto& s : list)
      if (s->finished) finished_.push_back(std::move(s));
    std::erase_if(list, [](const std::unique_ptr<Sequence>& s) { return s == nullptr; });
  };
  retire(running_);
  retire(waiting_);
}

std::vector<std::unique_ptr<Sequence>> Scheduler::take_finished() { return std::exchange(finished_, {}); }

uint64_t Scheduler::kv_cache_bytes() const {
  uint64_t bytes = 0;
  for (const auto& s : running_) bytes += s->cache.bytes();
  return bytes;
}

}  // namespace dsv3
