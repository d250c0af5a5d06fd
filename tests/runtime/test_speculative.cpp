// Speculative decoding with the MTP module: the MTP layer kept in the sequence's cache against
// DeepSeek's reference MTP logits (the tiny-v3 goldens), the drafts the engine makes, the
// accept / reject rule's distribution, and the engine's output with drafts against decoding
// without them.

#include <gtest/gtest.h>

#include <cmath>
#include <map>

#include "model/golden.h"
#include "model/model.h"
#include "reference_generation.h"
#include "runtime/draft_step.h"
#include "runtime/engine.h"
#include "runtime/step_sampling.h"
#include "test_util.h"

using namespace dsv3;
using namespace std::chrono_literals;

namespace {

std::unique_ptr<Model> load_tiny_with_mtp(int64_t max_context = 0) {
  ModelOptions opt;
  opt.threads = 2;
  opt.load_mtp = true;
  opt.max_context = max_context;
  auto m = Model::load(test::fixtures() + "/tiny-v3", opt);
  EXPECT_TRUE(m.ok()) << m.error().message();
  return std::move(m).value();
}

int32_t argmax_of(const std::vector<float>& v, int64_t row, int64_t n) { return argmax(v.data() + row * n, n); }

}  // namespace

// The MTP layer run in its layer of the sequence's cache, chunk by chunk as the engine runs
// it, gives the reference's MTP logits.
TEST(Speculative, MtpLayerInTheSequenceCacheMatchesTheReference) {
  auto model = load_tiny_with_mtp();
  auto golden = test::Golden::load(test::fixtures() + "/golden/tiny-v3");
  const int64_t V = model->vocab_size(), D = model->config().hidden_size;
  const auto& all = golden.meta["mtp_tokens"];
  for (auto it = all.begin(); it != all.end(); ++it) {
    const std::vector<int32_t> t = it->get<std::vector<int32_t>>();
    const int64_t n = static_cast<int64_t>(t.size());
    const std::vector<float> want = golden.f32("mtp_logits." + it.key());
    KVCache cache = model->new_cache(/*with_mtp=*/true);
    std::vector<float> got;
    // Chunks of 3 positions: the main model first, then the MTP layer over the chunk, each
    // position with the token after it (the last chunk stops one short: its last token has none).
    for (int64_t start = 0; start < n; start += 3) {
      const int64_t len = std::min<int64_t>(3, n - start);
      SequenceInput in{&cache, std::span<const int32_t>(t).subspan(start, len), Logits::None};
      ForwardOutput out;
      ASSERT_TRUE(model->forward({&in, 1}, &out, /*want_hidden=*/true).ok());
      const int64_t rows = std::min(len, n - 1 - start);
      if (rows <= 0) break;
      Model::MtpInput m{&cache, start, std::span<const int32_t>(t).subspan(start + 1, rows), out.hidden.data(),
                        Logits::All};
      ForwardOutput mo;
      Status st = model->mtp_step({&m, 1}, &mo);
      ASSERT_TRUE(st.ok()) << st.error().message();
      EXPECT_EQ(mo.hidden.size(), static_cast<size_t>(rows * D));
      got.insert(got.end(), mo.logits.begin(), mo.logits.end());
    }
    auto d = test::max_abs_diff(got, want);
    EXPECT_LE(d.max_abs, 1e-3) << "mtp prompt " << it.key() << " row " << d.worst / V;
  }
}

// One sequence stepped by hand (schedule, forward, sample, draft, postprocess): its output is
// the reference's greedy continuation, and after every step its draft is the argmax of the
// reference's MTP logits at the last position the cache holds.
TEST(Speculative, DraftsAreTheReferenceMtpChoices) {
  auto model = load_tiny_with_mtp();
  auto golden = test::Golden::load(test::fixtures() + "/golden/tiny-v3");
  const int64_t V = model->vocab_size();
  const auto prompts = golden.prompts();
  const auto& with_mtp = golden.meta["mtp_tokens"];  // the prompts whose MTP logits the goldens hold
  ASSERT_FALSE(with_mtp.empty());
  for (auto it = with_mtp.begin(); it != with_mtp.end(); ++it) {
    const size_t i = std::stoul(it.key());
    SCOPED_TRACE("prompt " + it.key());
    const std::vector<int32_t> greedy = golden.greedy(i);
    std::vector<int32_t> expected_tokens = prompts[i];
    expected_tokens.insert(expected_tokens.end(), greedy.begin(), greedy.end());
    ASSERT_EQ(it->get<std::vector<int32_t>>(), expected_tokens);
    const std::vector<float> mtp = golden.f32("mtp_logits." + it.key());
    SchedulerOptions so;
    so.max_step_tokens = 4;  // the prompt in chunks
    so.max_context = model->max_context();
    so.mtp = true;
    Scheduler scheduler(so);
    RequestParams p;
    p.max_new_tokens = static_cast<int64_t>(greedy.size());
    auto seq = std::make_unique<Sequence>(std::make_shared<RequestHandle>(1, prompts[i].size()), p, prompts[i],
                                          model->new_cache(true));
    Sequence* s = seq.get();
    scheduler.add(std::move(seq));
    const int64_t P = static_cast<int64_t>(prompts[i].size());
    int64_t accepted = 0, proposed = 0;
    while (scheduler.has_work()) {
      StepPlan plan = scheduler.schedule();
      std::vector<SequenceInput> in;
      for (const StepEntry& e : plan.entries) in.push_back({&e.seq->cache, e.tokens, e.logits()});
      ForwardOutput out;
      ASSERT_TRUE(model->forward(in, &out, true).ok());
      auto outputs = sample_step(model->pool(), plan, out, V);
      ASSERT_TRUE(draft_step(*model, plan, out, outputs, /*draft_tokens=*/1).ok());
      proposed += plan.entries[0].drafts;
      accepted += outputs[0].drafts_accepted;
      scheduler.postprocess(plan, outputs);
      const int64_t k = static_cast<int64_t>(s->output.size());
      if (k == 0 || !scheduler.has_work()) continue;
      ASSERT_EQ(s->draft.size(), 1u);
      // The MTP's last row is position P + k - 2 (the one before the last token chosen).
      EXPECT_EQ(s->draft[0], argmax_of(mtp, P + k - 2, V)) << "after " << k << " tokens";
      EXPECT_EQ(s->cache.length(), P + k - 1);
    }
    auto finished = scheduler.take_finished();
    ASSERT_EQ(finished.size(), 1u);
    EXPECT_EQ(finished[0]->output, greedy);
    EXPECT_GT(proposed, 0);
    EXPECT_LE(accepted, proposed);
  }
}

// Sampler::verify keeps a draft with its probability and otherwise draws from the rest: the
// tokens that come out follow the sampler's distribution exactly, whatever the draft (a
// likely one, an unlikely one, one the restriction drops). A rule that redrew from the whole
// distribution after a rejection would give the draft p + (1 - p) p: far outside these bounds.
TEST(Speculative, VerifyFollowsTheTargetDistribution) {
  const std::vector<float> logits = {1.0f, 2.0f, 0.5f, 1.5f, -1.0f, 0.0f};
  SamplingParams sp;
  sp.temperature = 0.8f;
  sp.top_k = 5;  // token 4 is never kept
  sp.seed = 12345;
  // The target: softmax(logits / T) over the 5 best.
  std::vector<double> p(6, 0.0);
  double z = 0;
  for (int i = 0; i < 6; ++i)
    if (i != 4) z += p[i] = std::exp(logits[i] / 0.8);
  for (double& v : p) v /= z;
  const int draws = 60000;
  for (int32_t draft : {1, 2, 4}) {
    Sampler sampler(sp);
    std::vector<int> count(6, 0);
    int accepted = 0;
    for (int d = 0; d < draws; ++d) {
      auto v = sampler.verify(logits.data(), 6, draft).value();
      ++count[static_cast<size_t>(v.token)];
      accepted += v.accepted;
      EXPECT_EQ(v.accepted, v.token == draft);
    }
    for (int i = 0; i < 6; ++i) {
      const double sigma = std::sqrt(p[i] * (1 - p[i]) / draws);
      EXPECT_NEAR(count[i] / double(draws), p[i], 5 * sigma + 1e-9) << "draft " << draft << " token " << i;
    }
    const double pd = p[static_cast<size_t>(draft)];
    EXPECT_NEAR(accepted / double(draws), pd, 5 * std::sqrt(pd * (1 - pd) / draws) + 1e-9) << "draft " << draft;
  }
  // Greedy: the draft is kept exactly when it is the argmax.
  Sampler greedy(SamplingParams{});
  EXPECT_TRUE(greedy.verify(logits.data(), 6, 1).value().accepted);
  auto v = greedy.verify(logits.data(), 6, 3).value();
  EXPECT_FALSE(v.accepted);
  EXPECT_EQ(v.token, 1);
}

// The engine with drafts (1, 2 or 3 per step) next to the engine without: greedy output token
// for token, over concurrent requests, chunked prefill, stop tokens, token budgets, a context
// limit and the prefix cache; the drafts are counted.
TEST(Speculative, EngineGreedyOutputIsUnchangedByDrafts) {
  auto model = load_tiny_with_mtp(/*max_context=*/40);
  auto prompt = [](int i) {
    std::vector<int32_t> p = {0};
    for (int k = 0; k < 3 + 4 * i; ++k) p.push_back((i * 131 + k * 17 + 3) % 1024);
    return p;
  };
  struct Req {
    std::vector<int32_t> prompt;
    int64_t max_new;
    std::vector<int32_t> stops;
  };
  std::vector<Req> reqs;
  for (int i = 0; i < 6; ++i) reqs.push_back({prompt(i), 12 + i, {}});
  reqs.push_back({prompt(7), 100, {}});  // ends at the context limit of 40
  const auto plain = test::reference_generate(*model, prompt(2), 12);
  reqs.push_back({prompt(2), 12, {plain[5]}});  // a stop token in the middle
  // The next turn of request 2: its cache comes from the prefix cache.
  std::vector<int32_t> next = prompt(2);
  next.insert(next.end(), plain.begin(), plain.end());
  next.push_back(7);
  reqs.push_back({next, 8, {}});
  for (int drafts : {1, 2, 3}) {
    SCOPED_TRACE("drafts " + std::to_string(drafts));
    EngineOptions eo;
    eo.max_batch = 4;
    eo.max_step_tokens = 6;
    eo.draft_tokens = drafts;
    eo.draft_policy_adaptive = false;  // every step drafts (the policy may find it does not pay here)
    eo.prefix_cache_bytes = 16 << 20;
    Engine engine(*model, eo);
    std::vector<std::shared_ptr<RequestHandle>> handles;
    for (const Req& r : reqs) {
      RequestParams p;
      p.max_new_tokens = r.max_new;
      p.stop_tokens = r.stops;
      auto sr = engine.submit(r.prompt, p);
      ASSERT_EQ(sr.status, SubmitStatus::Ok) << sr.message;
      handles.push_back(sr.handle);
    }
    for (size_t i = 0; i < reqs.size(); ++i) {
      RequestResult got = wait_for_result(*handles[i]);
      std::vector<int32_t> tokens;
      for (const auto& t : got.tokens) tokens.push_back(t.token);
      const int64_t room = model->max_context() - static_cast<int64_t>(reqs[i].prompt.size()) + 1;
      const auto want = test::reference_generate(*model, reqs[i].prompt, std::min(reqs[i].max_new, room),
                                                 SamplingParams{}, reqs[i].stops);
      EXPECT_EQ(tokens, want) << "request " << i;
      EXPECT_NE(got.finish, FinishReason::Failed) << got.error;
    }
    const EngineStats st = engine.stats();
    EXPECT_GT(st.draft_tokens, 0u);
    EXPECT_LE(st.draft_tokens_accepted, st.draft_tokens);
  }
}

// Sampled decoding with drafts is reproducible with a seed and keeps to the restriction
// (top-k 1 is greedy whatever the temperature, so it must equal the greedy output).
TEST(Speculative, SampledDecodingWithDrafts) {
  auto model = load_tiny_with_mtp();
  const std::vector<int32_t> prompt = {0, 17, 923, 5, 5, 5, 400};
  EngineOptions eo;
  eo.draft_tokens = 2;
  eo.draft_policy_adaptive = false;
  Engine engine(*model, eo);
  auto run = [&](SamplingParams sp) {
    RequestParams p;
    p.max_new_tokens = 16;
    p.sampling = sp;
    auto sr = engine.submit(prompt, p);
    EXPECT_EQ(sr.status, SubmitStatus::Ok);
    std::vector<int32_t> out;
    for (const auto& t : wait_for_result(*sr.handle).tokens) out.push_back(t.token);
    return out;
  };
  SamplingParams sp;
  sp.temperature = 0.9f;
  sp.seed = 7;
  EXPECT_EQ(run(sp), run(sp));
  sp.top_k = 1;
  EXPECT_EQ(run(sp), test::reference_generate(*model, prompt, 16));
}

// The adaptive policy (which may switch drafting off for some sequences mid-way) changes no
// greedy token either.
TEST(Speculative, AdaptivePolicyChangesNoOutput) {
  auto model = load_tiny_with_mtp();
  EngineOptions eo;
  eo.draft_tokens = 2;
  eo.max_batch = 3;
  Engine engine(*model, eo);
  std::vector<std::vector<int32_t>> prompts;
  std::vector<std::shared_ptr<RequestHandle>> handles;
  for (int i = 0; i < 6; ++i) {
    prompts.push_back({0, static_cast<int32_t>(17 + i), 923, static_cast<int32_t>(5 * i), 400});
    RequestParams p;
    p.max_new_tokens = 40;
    auto sr = engine.submit(prompts.back(), p);
    ASSERT_EQ(sr.status, SubmitStatus::Ok);
    handles.push_back(sr.handle);
  }
  for (size_t i = 0; i < prompts.size(); ++i) {
    std::vector<int32_t> got;
    for (const auto& t : wait_for_result(*handles[i]).tokens) got.push_back(t.token);
    EXPECT_EQ(got, test::reference_generate(*model, prompts[i], 40)) << "request " << i;
  }
}
