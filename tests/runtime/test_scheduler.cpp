// The scheduler as plain bookkeeping, without a model: which sequences a step feeds with
// which tokens, and what postprocess makes of sampled tokens. A forward pass is stood in for
// by advancing each planned cache by its tokens.

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "runtime/scheduler.h"

using namespace dsv3;

namespace {

constexpr int64_t kRowDim = 4;  // cache rows of a toy model: 1 layer, 4 floats

std::unique_ptr<Sequence> make_sequence(int64_t prompt_len, RequestParams p = {}, int32_t first_token = 1) {
  std::vector<int32_t> prompt;
  for (int64_t i = 0; i < prompt_len; ++i) prompt.push_back(first_token + static_cast<int32_t>(i));
  static uint64_t id = 0;
  auto handle = std::make_shared<RequestHandle>(++id, prompt_len);
  return std::make_unique<Sequence>(handle, std::move(p), std::move(prompt), KVCache(1, kRowDim));
}

// The forward pass's effect on the caches: each grows by its entry's tokens.
void fake_forward(const StepPlan& plan) {
  for (const StepEntry& e : plan.entries) {
    KVCache& c = e.seq->cache;
    c.reserve(c.length() + static_cast<int64_t>(e.tokens.size()));
    c.advance(static_cast<int64_t>(e.tokens.size()));
  }
}

// Sampling's output: `token` for every entry that samples.
std::vector<StepOutput> sampled(const StepPlan& plan, std::vector<int32_t> tokens) {
  std::vector<StepOutput> out(plan.entries.size());
  for (size_t i = 0; i < plan.entries.size(); ++i)
    if (plan.entries[i].samples)
      for (int32_t t : tokens) out[i].tokens.push_back({t, 0.0f, {}});
  return out;
}

// An entry as the tables write it: which sequence (by the order they were added), how many
// tokens, whether it samples, which logits rows.
struct Planned {
  int seq;
  size_t tokens;
  bool samples;
  Logits logits;
  bool operator==(const Planned&) const = default;
};

std::ostream& operator<<(std::ostream& os, const Planned& p) {
  return os << "{seq " << p.seq << ", " << p.tokens << " tokens, samples " << p.samples << ", logits "
            << static_cast<int>(p.logits) << "}";
}

std::vector<Planned> describe(const StepPlan& plan, const std::vector<Sequence*>& order) {
  std::vector<Planned> out;
  for (const StepEntry& e : plan.entries) {
    const int index = static_cast<int>(std::find(order.begin(), order.end(), e.seq) - order.begin());
    out.push_back({index, e.tokens.size(), e.samples, e.logits()});
  }
  return out;
}

SchedulerOptions options(int max_batch, int64_t step_tokens, int64_t scored_tokens = 64, int64_t max_context = 1000) {
  SchedulerOptions o;
  o.max_batch = max_batch;
  o.max_step_tokens = step_tokens;
  o.max_scored_tokens = scored_tokens;
  o.max_context = max_context;
  return o;
}

}  // namespace

// Step after step: decodes first (one token each), then prompt chunks oldest first from what
// the token budget leaves, at least one chunk per step; the batch limit holds the rest back.
TEST(Scheduler, PlansDecodesFirstThenPromptChunksOldestFirst) {
  struct Case {
    const char* name;
    SchedulerOptions opt;
    std::vector<int64_t> prompts;      // prompt lengths, added in this order
    std::vector<bool> scored;          // score_prompt per sequence (empty: none)
    std::vector<std::vector<Planned>> steps;
  };
  const Case cases[] = {
      {"one prompt fits", options(4, 16), {5}, {},
       {{{0, 5, true, Logits::Last}}, {{0, 1, true, Logits::Last}}}},
      {"one prompt in chunks", options(4, 4), {10}, {},
       {{{0, 4, false, Logits::None}}, {{0, 4, false, Logits::None}}, {{0, 2, true, Logits::Last}},
        {{0, 1, true, Logits::Last}}}},
      {"the budget is shared, oldest first", options(4, 6), {4, 4, 3}, {},
       {{{0, 4, true, Logits::Last}, {1, 2, false, Logits::None}},
        {{0, 1, true, Logits::Last}, {1, 2, true, Logits::Last}, {2, 3, true, Logits::Last}},
        {{0, 1, true, Logits::Last}, {1, 1, true, Logits::Last}, {2, 1, true, Logits::Last}}}},
      {"decodes take the budget first, prefill still progresses", options(4, 2), {1, 1, 5}, {},
       {{{0, 1, true, Logits::Last}, {1, 1, true, Logits::Last}},
        {{0, 1, true, Logits::Last}, {1, 1, true, Logits::Last}, {2, 1, false, Logits::None}},
        {{0, 1, true, Logits::Last}, {1, 1, true, Logits::Last}, {2, 1, false, Logits::None}}}},
      {"the batch limit keeps the third waiting", options(2, 100), {2, 2, 2}, {},
       {{{0, 2, true, Logits::Last}, {1, 2, true, Logits::Last}},
        {{0, 1, true, Logits::Last}, {1, 1, true, Logits::Last}}}},
      {"scored prompts: every row, within their own budget", options(4, 100, 3), {5, 4}, {true, true},
       {{{0, 3, false, Logits::All}}, {{0, 2, true, Logits::All}, {1, 1, false, Logits::All}},
        {{0, 1, true, Logits::Last}, {1, 3, true, Logits::All}}}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    Scheduler scheduler(c.opt);
    std::vector<Sequence*> order;
    for (size_t i = 0; i < c.prompts.size(); ++i) {
      RequestParams p;
      p.max_new_tokens = 100;
      p.score_prompt = !c.scored.empty() && c.scored[i];
      auto s = make_sequence(c.prompts[i], p);
      order.push_back(s.get());
      scheduler.add(std::move(s));
    }
    for (size_t step = 0; step < c.steps.size(); ++step) {
      SCOPED_TRACE("step " + std::to_string(step));
      StepPlan plan = scheduler.schedule();
      EXPECT_EQ(describe(plan, order), c.steps[step]);
      fake_forward(plan);
      auto out = sampled(plan, {7});
      scheduler.postprocess(plan, out);
    }
    EXPECT_TRUE(scheduler.take_finished().empty());
  }
}

// What postprocess makes of the tokens sampled for a sequence that has fed its whole prompt.
TEST(Scheduler, PostprocessFinishesOnStopLengthAndContext) {
  struct Case {
    const char* name;
    int64_t prompt, max_new, max_context;
    std::vector<int32_t> stop_tokens;
    std::vector<std::vector<int32_t>> steps;  // tokens sampled at each step (several: a verified draft)
    std::vector<int32_t> output;              // what the sequence generated
    bool finished;
    FinishReason finish;
  };
  const Case cases[] = {
      {"runs on", 3, 10, 100, {}, {{5}, {6}}, {5, 6}, false, FinishReason::Length},
      {"stop token, emitted", 3, 10, 100, {9}, {{5}, {9}}, {5, 9}, true, FinishReason::Stop},
      {"token budget", 3, 2, 100, {}, {{5}, {6}}, {5, 6}, true, FinishReason::Length},
      {"stop token beats the budget", 3, 2, 100, {6}, {{5}, {6}}, {5, 6}, true, FinishReason::Stop},
      // Context 5: the prompt's 3 rows, then 5 and 6 fed back fill it; 7 would need a 6th row.
      {"context full", 3, 10, 5, {}, {{5}, {6}, {7}}, {5, 6, 7}, true, FinishReason::Length},
      {"a prompt that fills the context gets one token", 4, 10, 4, {}, {{5}}, {5}, true, FinishReason::Length},
      {"several tokens in one step stop at the stop token", 3, 10, 100, {6}, {{5, 6, 7, 8}}, {5, 6}, true,
       FinishReason::Stop},
      {"several tokens in one step stop at the budget", 3, 3, 100, {}, {{5, 6, 7, 8}}, {5, 6, 7}, true,
       FinishReason::Length},
      {"max_new_tokens 0: prefill only", 3, 0, 100, {}, {{}}, {}, true, FinishReason::Length},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    Scheduler scheduler(options(1, 100, 64, c.max_context));
    RequestParams p;
    p.max_new_tokens = c.max_new;
    p.stop_tokens = c.stop_tokens;
    auto owned = make_sequence(c.prompt, p);
    Sequence* s = owned.get();
    scheduler.add(std::move(owned));
    std::vector<int32_t> delivered;
    std::vector<std::unique_ptr<Sequence>> finished;
    for (const auto& tokens : c.steps) {
      ASSERT_TRUE(finished.empty()) << "finished too early";
      StepPlan plan = scheduler.schedule();
      ASSERT_EQ(plan.entries.size(), 1u);
      fake_forward(plan);
      auto out = sampled(plan, tokens);
      scheduler.postprocess(plan, out);
      for (const auto& t : out[0].tokens) delivered.push_back(t.token);
      finished = scheduler.take_finished();
    }
    EXPECT_EQ(s->output, c.output);
    EXPECT_EQ(delivered, c.output) << "tokens past the finish are not delivered";
    EXPECT_EQ(!finished.empty(), c.finished);
    if (c.finished) {
      ASSERT_EQ(finished.size(), 1u);
      EXPECT_EQ(finished[0]->finish, c.finish);
      EXPECT_TRUE(finished[0]->error.empty());
      EXPECT_EQ(scheduler.running(), 0u);
    }
  }
}

TEST(Scheduler, CancelledSequencesLeaveAtTheNextStepWaitingOrRunning) {
  Scheduler scheduler(options(1, 100));
  auto a = make_sequence(3), b = make_sequence(3), c = make_sequence(3);
  RequestHandle &ha = *a->handle, &hb = *b->handle;
  Sequence* c_ptr = c.get();
  scheduler.add(std::move(a));
  scheduler.add(std::move(b));
  scheduler.add(std::move(c));
  StepPlan plan = scheduler.schedule();  // a runs, b and c wait
  ASSERT_EQ(plan.entries.size(), 1u);
  fake_forward(plan);
  auto out = sampled(plan, {5});
  scheduler.postprocess(plan, out);
  ha.cancel();
  hb.cancel();
  plan = scheduler.schedule();  // a and b leave; c takes the slot in the same step
  ASSERT_EQ(plan.entries.size(), 1u);
  EXPECT_EQ(plan.entries[0].seq, c_ptr);
  ASSERT_EQ(plan.admitted.size(), 1u);
  auto finished = scheduler.take_finished();
  ASSERT_EQ(finished.size(), 2u);
  for (const auto& s : finished) {
    EXPECT_EQ(s->finish, FinishReason::Cancelled);
    EXPECT_EQ(s->cache.bytes(), 0u) << "the cache is freed";
  }
  EXPECT_EQ(finished[0]->output, std::vector<int32_t>{5}) << "what it generated before is kept";
  EXPECT_EQ(scheduler.waiting(), 0u);
  EXPECT_EQ(scheduler.running(), 1u);
}

TEST(Scheduler, FailuresAndShutdown) {
  Scheduler scheduler(options(1, 100));
  scheduler.add(make_sequence(3));
  scheduler.add(make_sequence(3));
  StepPlan plan = scheduler.schedule();
  scheduler.fail(plan, "forward step failed: boom");
  auto failed = scheduler.take_finished();
  ASSERT_EQ(failed.size(), 1u);
  EXPECT_EQ(failed[0]->finish, FinishReason::Failed);
  EXPECT_EQ(failed[0]->error, "forward step failed: boom");

  // A sampling error fails only its sequence.
  plan = scheduler.schedule();
  fake_forward(plan);
  std::vector<StepOutput> out(1);
  out[0].error = "numerical error: the logits contain NaN or +Inf";
  scheduler.postprocess(plan, out);
  auto bad = scheduler.take_finished();
  ASSERT_EQ(bad.size(), 1u);
  EXPECT_EQ(bad[0]->finish, FinishReason::Failed);
  EXPECT_EQ(bad[0]->error, out[0].error);

  scheduler.add(make_sequence(3));
  scheduler.add(make_sequence(3));
  scheduler.schedule();
  scheduler.abort_all();
  auto aborted = scheduler.take_finished();
  ASSERT_EQ(aborted.size(), 2u);
  EXPECT_EQ(aborted[0]->error, "the server shut down before this request finished");
  EXPECT_EQ(aborted[1]->error, "the server shut down before this request started");
  for (const auto& s : aborted) EXPECT_EQ(s->finish, FinishReason::Failed);
  EXPECT_FALSE(scheduler.has_work());
}

// With a prefix cache, a finished sequence's rows serve the next prompt that starts with its
// tokens: admission copies them, and prefill starts after them. Failed sequences leave nothing.
TEST(Scheduler, AdmissionRestoresCachedPrefixes) {
  SchedulerOptions o = options(4, 100);
  o.prefix_cache_bytes = 1 << 20;
  Scheduler scheduler(o);
  RequestParams p;
  p.max_new_tokens = 2;
  scheduler.add(make_sequence(6, p));  // prompt 1..6
  for (int step = 0; step < 2; ++step) {
    StepPlan plan = scheduler.schedule();
    fake_forward(plan);
    auto out = sampled(plan, {40 + step});
    scheduler.postprocess(plan, out);
  }
  ASSERT_EQ(scheduler.take_finished().size(), 1u);  // output 40 41; rows for 1..6 and 40

  auto next_turn = make_sequence(6, p);
  next_turn->prompt.insert(next_turn->prompt.end(), {40, 41, 50});
  Sequence* s = next_turn.get();
  scheduler.add(std::move(next_turn));
  StepPlan plan = scheduler.schedule();
  EXPECT_EQ(s->cached_tokens, 7);
  EXPECT_EQ(s->prefilled, 7);
  EXPECT_EQ(s->cache.length(), 7);
  ASSERT_EQ(plan.entries.size(), 1u);
  EXPECT_EQ(plan.entries[0].tokens.size(), 2u);  // 41 50
  scheduler.fail(plan, "boom");
  scheduler.take_finished();

  // A scored prompt needs every position's logits: it never starts from a copy.
  RequestParams scored = p;
  scored.score_prompt = true;
  auto again = make_sequence(6, scored);
  Sequence* t = again.get();
  scheduler.add(std::move(again));
  scheduler.schedule();
  EXPECT_EQ(t->cached_tokens, 0);
  EXPECT_EQ(t->prefilled, 0);
}
