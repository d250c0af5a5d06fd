#pragma once
// Continuous batching as plain bookkeeping: which sequences wait, which run, what each one
// feeds to the next forward step, and what becomes of it after the step. No threads, no
// tensors, no clients: the engine calls it once per step from its own thread,
//
//   schedule()       admits waiting sequences while the batch has room (copying a cached
//                    prompt prefix into their cache), finishes the cancelled ones, and plans
//                    the step's tokens;
//   ... the engine runs the forward pass and samples ...
//   postprocess()    advances prefill, appends the sampled tokens, and finishes a sequence on
//                    a stop token, its token budget or the context limit;
//   take_finished()  hands over the sequences that ended, for the engine to tell their clients.
//
// Planning: every running sequence that has finished its prompt decodes one token per step;
// prompts are prefilled in chunks from what is left of the step's token budget, oldest first,
// so a long prompt never stalls the others' decoding.

#include <cstdint>
#include <deque>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "model/model.h"
#include "runtime/prefix_cache.h"
#include "runtime/sequence.h"

namespace dsv3 {

struct SchedulerOptions {
  int max_batch = 16;             // sequences running at once
  int64_t max_step_tokens = 256;  // tokens in one forward step (decode tokens first)
  // Tokens of scored prompts (score_prompt) in one step, all sequences together: each has a
  // vocabulary-sized row of logits (64 x 129,280 floats: 33 MB).
  int64_t max_scored_tokens = 64;
  uint64_t prefix_cache_bytes = 0;  // finished sequences' caches kept for later prompts (0: off)
  int64_t max_context = 0;          // rows a cache may hold (the model's context limit)
  bool mtp = false;                 // the caches carry the MTP layer (speculative decoding)
};

// One sequence's part of a step.
struct StepEntry {
  Sequence* seq = nullptr;
  std::span<const int32_t> tokens;  // this step's input tokens
  // After this step the sequence has fed all it has (a decode token, or the chunk that ends
  // its prompt): its last row's logits choose the next token.
  bool samples = false;
  // Draft tokens after the first input token (a decode step that verifies them): every row's
  // logits are needed.
  int64_t drafts = 0;
  // The logits rows the forward computes: every row of a scored prompt's chunk or of a decode
  // step with drafts, the last row when the sequence samples and may generate, else none.
  Logits logits() const;
};

struct StepPlan {
  std::vector<StepEntry> entries;
  std::vector<Sequence*> admitted;  // joined the batch at this step (after their prefix restore)
};

// What sampling made of one entry's logits.
struct StepOutput {
  std::vector<TokenOutput> scored;  // prompt tokens this chunk scored (score_prompt)
  std::vector<TokenOutput> tokens;  // tokens chosen: one, or the drafts kept and the one after them
  int64_t drafts_accepted = 0;
  std::string error;                // sampling failed (e.g. NaN logits)
};

class Scheduler {
 public:
  explicit Scheduler(SchedulerOptions options);

  void add(std::unique_ptr<Sequence> seq);
  // `use_drafts`: decode entries verify their sequences' drafts (else drafts are dropped).
  StepPlan schedule(bool use_drafts = true);
  // After the forward pass advanced the caches and sampling filled `outputs` (one per entry):
  // tokens past the one that finishes a sequence are dropped from its output.
  void postprocess(const StepPlan& plan, std::vector<StepOutput>& outputs);
  // The forward pass failed: the step's sequences fail with `error`.
  void fail(const StepPlan& plan, const std::string& error);
  // Shutdown: every sequence, waiting or running, fails.
  void abort_all();
  std::vector<std::unique_ptr<Sequence>> take_finished();

  size_t waiting() const { return waiting_.size(); }
  size_t running() const { return running_.size(); }
  bool has_work() const { return !waiting_.empty() || !running_.empty(); }
  uint64_t kv_cache_bytes() const;  // of the running sequences
  const PrefixCache& prefix_cache() const { return prefix_cache_; }

 private:
  void admit(StepPlan& plan);
  void finish(Sequence& s, FinishReason reason, std::string error = "");
  void retire_finished();  // moves finished sequences out of waiting_ and running_
  std::vector<StepEntry> plan_tokens(bool use_drafts);

  const SchedulerOptions options_;
  std::deque<std::unique_ptr<Sequence>> waiting_;    // first come, first admitted
  std::vector<std::unique_ptr<Sequence>> running_;   // in admission order
  std::vector<std::unique_ptr<Sequence>> finished_;  // until take_finished()
  PrefixCache prefix_cache_;
};

}  // namespace dsv3
