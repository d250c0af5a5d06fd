// The continuous-batching engine: requests joining and leaving a running batch produce the
// same tokens as each alone; cancellation, queue limits, chunked prefill, shutdown.

#include <gtest/gtest.h>

#include <cmath>
#include <thread>

#include "model/model.h"
#include "runtime/engine.h"
#include "model/golden.h"
#include "reference_generation.h"
#include "test_util.h"

using namespace dsv3;
using namespace std::chrono_literals;

namespace {

std::unique_ptr<Model> load_tiny() {
  ModelOptions opt;
  opt.threads = 2;
  auto m = Model::load(dsv3::test::fixtures() + "/tiny-v3", opt);
  EXPECT_TRUE(m.ok()) << m.error().message();
  return std::move(m).value();
}

std::vector<int32_t> collect(RequestHandle& h, RequestUpdate* last = nullptr) {
  std::vector<int32_t> out;
  for (;;) {
    RequestUpdate u = h.wait(5000ms);
    for (const auto& t : u.tokens) out.push_back(t.token);
    if (u.finished) {
      if (last) *last = u;
      return out;
    }
  }
}

std::vector<int32_t> prompt_for(int i) {
  std::vector<int32_t> p = {0};
  for (int k = 0; k < 3 + 5 * i; ++k) p.push_back((i * 131 + k * 17 + 3) % 1024);
  return p;
}

}  // namespace

TEST(Engine, ConcurrentRequestsMatchSingleSequenceGeneration) {
  auto model = load_tiny();
  const int n = 8;
  std::vector<std::vector<int32_t>> want(n);
  for (int i = 0; i < n; ++i) {
    SamplingParams sp;
    sp.temperature = i % 2 ? 0.8f : 0.0f;
    sp.seed = 100 + i;
    want[i] = test::reference_generate(*model, prompt_for(i), 10, sp);
  }
  EngineOptions eo;
  eo.max_batch = 4;       // half of them wait in the queue and join as others leave
  eo.max_step_tokens = 7; // prompts are prefilled in several chunks
  Engine engine(*model, eo);
  std::vector<std::shared_ptr<RequestHandle>> handles;
  for (int i = 0; i < n; ++i) {
    RequestParams p;
    p.max_new_tokens = 10;
    p.sampling.temperature = i % 2 ? 0.8f : 0.0f;
    p.sampling.seed = 100 + i;
    auto r = engine.submit(prompt_for(i), p);
    ASSERT_EQ(r.status, SubmitStatus::Ok) << r.message;
    handles.push_back(r.handle);
    std::this_thread::sleep_for(2ms);
  }
  for (int i = 0; i < n; ++i) {
    RequestUpdate last;
    EXPECT_EQ(collect(*handles[i], &last), want[i]) << "request " << i;
    EXPECT_EQ(last.finish, FinishReason::Length);
    EXPECT_TRUE(last.error.empty());
  }
  for (int i = 0; i < 200 && engine.stats().requests_finished < static_cast<uint64_t>(n); ++i)
    std::this_thread::sleep_for(10ms);  // the engine updates its counters after delivering
  auto st = engine.stats();
  EXPECT_EQ(st.requests_finished, static_cast<uint64_t>(n));
  EXPECT_EQ(st.generated_tokens, static_cast<uint64_t>(n * 10));
}

TEST(Engine, StopTokenAndLogprobs) {
  auto model = load_tiny();
  Engine engine(*model, {});
  // Greedy continuation of prompt 1 of the goldens starts 704 837 491 ...: stop at 491.
  RequestParams p;
  p.max_new_tokens = 12;
  p.stop_tokens = {491};
  p.logprobs = true;
  p.top_logprobs = 3;
  auto r = engine.submit({0, 17, 923, 5, 5, 5, 400}, p);
  ASSERT_EQ(r.status, SubmitStatus::Ok);
  std::vector<TokenOutput> tokens;
  for (;;) {
    auto u = r.handle->wait(5000ms);
    tokens.insert(tokens.end(), u.tokens.begin(), u.tokens.end());
    if (u.finished) {
      EXPECT_EQ(u.finish, FinishReason::Stop);
      break;
    }
  }
  ASSERT_EQ(tokens.size(), 3u);
  EXPECT_EQ(tokens[2].token, 491);
  for (const auto& t : tokens) {
    ASSERT_EQ(t.top.size(), 3u);
    EXPECT_EQ(t.top[0].first, t.token);  // greedy: the chosen token is the best
    EXPECT_FLOAT_EQ(t.top[0].second, t.logprob);
    EXPECT_LE(t.logprob, 0.0f);
    EXPECT_GE(t.top[0].second, t.top[1].second);
  }
}

TEST(Engine, CancelFreesTheSlot) {
  auto model = load_tiny();
  EngineOptions eo;
  eo.max_batch = 1;
  Engine engine(*model, eo);
  RequestParams longp;
  longp.max_new_tokens = 100000;
  longp.stop_tokens = {};
  auto a = engine.submit({0, 1, 2}, longp);
  RequestParams shortp;
  shortp.max_new_tokens = 3;
  auto b = engine.submit({0, 4, 5}, shortp);  // waits: the only slot is taken
  ASSERT_EQ(a.status, SubmitStatus::Ok);
  ASSERT_EQ(b.status, SubmitStatus::Ok);
  a.handle->wait(2000ms);  // some tokens came
  a.handle->cancel();
  RequestUpdate last;
  collect(*a.handle, &last);
  EXPECT_EQ(last.finish, FinishReason::Cancelled);
  EXPECT_EQ(last.error, "");
  EXPECT_EQ(collect(*b.handle).size(), 3u);  // b got the slot
  for (int i = 0; i < 100 && engine.stats().running > 0; ++i) std::this_thread::sleep_for(10ms);
  auto st = engine.stats();
  EXPECT_EQ(st.running, 0);
  EXPECT_EQ(st.requests_cancelled, 1u);
  EXPECT_EQ(st.kv_cache_bytes, 0u);
}

TEST(Engine, GroupsAreQueuedWholeOrNotAtAll) {
  // submit_all: a group that does not fit the batch and the queue together is refused whole,
  // so that none of it holds a place; an invalid member names itself and its field.
  auto model = load_tiny();
  EngineOptions eo;
  eo.max_batch = 1;
  eo.max_queue = 2;
  Engine engine(*model, eo);
  RequestParams p;
  p.max_new_tokens = 100000;
  auto group = [&](size_t n) {
    std::vector<Submission> g;
    for (size_t i = 0; i < n; ++i) g.push_back({{0, 1}, p});
    return g;
  };
  std::vector<std::shared_ptr<RequestHandle>> handles;
  EXPECT_EQ(engine.submit_all(group(4), &handles).status, SubmitStatus::QueueFull);
  EXPECT_TRUE(handles.empty());
  EXPECT_EQ(engine.stats().requests_submitted, 0u);
  ASSERT_EQ(engine.submit_all(group(3), &handles).status, SubmitStatus::Ok);  // batch 1 + queue 2
  EXPECT_EQ(handles.size(), 3u);
  EXPECT_EQ(engine.submit({0, 1}, p).status, SubmitStatus::QueueFull);
  for (auto& h : handles) h->cancel();
  std::vector<Submission> bad = group(2);
  bad[1].params.sampling.logit_bias = {{1 << 30, 1.0f}};
  const SubmitResult r = engine.submit_all(std::move(bad), &handles);
  EXPECT_EQ(r.status, SubmitStatus::Invalid);
  EXPECT_EQ(r.index, 1u);
  EXPECT_EQ(r.field, RequestField::LogitBias);
}

TEST(Engine, QueueLimitAndValidation) {
  auto model = load_tiny();
  EngineOptions eo;
  eo.max_batch = 1;
  eo.max_queue = 2;
  Engine engine(*model, eo);
  RequestParams p;
  p.max_new_tokens = 100000;
  std::vector<std::shared_ptr<RequestHandle>> hs;
  int full = 0;
  for (int i = 0; i < 6; ++i) {
    auto r = engine.submit({0, 1}, p);
    if (r.status == SubmitStatus::QueueFull) ++full;
    else hs.push_back(r.handle);
  }
  EXPECT_GE(full, 3);
  for (auto& h : hs) h->cancel();
  EXPECT_EQ(engine.submit({0, 5000}, p).status, SubmitStatus::Invalid);
  EXPECT_EQ(engine.submit({}, p).status, SubmitStatus::Invalid);
  EXPECT_EQ(engine.submit({-1}, p).status, SubmitStatus::Invalid);
  // Sampling values no draw can use (NaN passes every comparison the draw makes).
  for (auto bad : {std::make_pair(NAN, 1.0f), std::make_pair(-1.0f, 1.0f), std::make_pair(INFINITY, 1.0f),
                   std::make_pair(0.7f, NAN), std::make_pair(0.7f, 1.5f)}) {
    RequestParams q;
    q.sampling.temperature = bad.first;
    q.sampling.top_p = bad.second;
    auto r = engine.submit({0, 1}, q);
    EXPECT_EQ(r.status, SubmitStatus::Invalid) << bad.first << " " << bad.second;
    EXPECT_FALSE(r.message.empty());
  }
}

TEST(Engine, ShutdownDrainsThenRefuses) {
  auto model = load_tiny();
  Engine engine(*model, {});
  RequestParams p;
  p.max_new_tokens = 5;
  auto r = engine.submit({0, 1, 2}, p);
  ASSERT_EQ(r.status, SubmitStatus::Ok);
  engine.shutdown(5000ms);
  RequestUpdate last;
  EXPECT_EQ(collect(*r.handle, &last).size(), 5u);
  EXPECT_TRUE(last.error.empty());
  EXPECT_EQ(engine.submit({0}, p).status, SubmitStatus::ShuttingDown);
}

TEST(Engine, ShutdownEndsWhatDoesNotFinishInTime) {
  auto model = load_tiny();
  Engine engine(*model, {});
  RequestParams p;
  p.max_new_tokens = 1000000;
  auto r = engine.submit({0, 1, 2}, p);
  engine.shutdown(50ms);
  RequestUpdate last;
  collect(*r.handle, &last);
  EXPECT_TRUE(last.finished);
}

TEST(Engine, LogitBiasAndPenalties) {
  auto model = load_tiny();
  Engine engine(*model, {});
  RequestParams p;
  p.max_new_tokens = 4;
  p.sampling.logit_bias = {{5, 100.0f}};
  auto r = engine.submit({0, 17, 923}, p);
  ASSERT_EQ(r.status, SubmitStatus::Ok);
  EXPECT_EQ(collect(*r.handle), (std::vector<int32_t>{5, 5, 5, 5}));
  // With the same bias and a strong frequency penalty, token 5 is not repeated forever.
  p.sampling.frequency_penalty = 2.0f;
  p.sampling.presence_penalty = 2.0f;
  p.sampling.logit_bias = {{5, 3.0f}};
  p.max_new_tokens = 8;
  auto r2 = engine.submit({0, 17, 923}, p);
  auto toks = collect(*r2.handle);
  EXPECT_LE(std::count(toks.begin(), toks.end(), 5), 3);
  // -100 on every token but one: that token wins, nothing breaks.
  RequestParams all;
  all.max_new_tokens = 2;
  for (int32_t id = 0; id < 1024; ++id)
    if (id != 1) all.sampling.logit_bias.emplace_back(id, -100.0f);
  all.sampling.temperature = 1.0f;
  all.stop_tokens = {1};
  auto r3 = engine.submit({0, 17}, all);
  RequestUpdate last;
  EXPECT_EQ(collect(*r3.handle, &last), std::vector<int32_t>{1});
  EXPECT_EQ(last.finish, FinishReason::Stop);
}

namespace {

std::vector<TokenOutput> collect_outputs(RequestHandle& h) {
  std::vector<TokenOutput> out;
  for (;;) {
    RequestUpdate u = h.wait(5000ms);
    out.insert(out.end(), u.tokens.begin(), u.tokens.end());
    if (u.finished) return out;
  }
}

void expect_same_outputs(const std::vector<TokenOutput>& got, const std::vector<TokenOutput>& want, const char* what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].token, want[i].token) << what << " token " << i;
    EXPECT_EQ(got[i].logprob, want[i].logprob) << what << " token " << i;  // bit for bit
    EXPECT_EQ(got[i].top, want[i].top) << what << " token " << i;
  }
}

}  // namespace

// A chat's turns through an engine that keeps finished requests' caches, against an engine
// that prefills every prompt from scratch: the same tokens and the same logprobs bit for bit,
// with the reused prefix reported.
TEST(Engine, PrefixCacheChangesNoOutput) {
  auto model = load_tiny();
  EngineOptions plain_options, cached_options;
  plain_options.max_step_tokens = cached_options.max_step_tokens = 5;  // the rest of a prompt in chunks
  cached_options.prefix_cache_bytes = 64 << 20;
  Engine plain(*model, plain_options), cached(*model, cached_options);
  auto run = [&](Engine& e, const std::vector<int32_t>& prompt, RequestParams p, int64_t* cached_tokens) {
    auto r = e.submit(prompt, p);
    EXPECT_EQ(r.status, SubmitStatus::Ok) << r.message;
    auto out = collect_outputs(*r.handle);
    if (cached_tokens) *cached_tokens = r.handle->cached_tokens();
    return out;
  };
  RequestParams p;
  p.max_new_tokens = 9;
  p.logprobs = true;
  p.top_logprobs = 3;

  // Turn 1: nothing cached yet.
  const std::vector<int32_t> turn1 = prompt_for(4);
  int64_t hit = -1;
  const auto out1 = run(cached, turn1, p, &hit);
  EXPECT_EQ(hit, 0);
  expect_same_outputs(out1, run(plain, turn1, p, nullptr), "turn 1");

  // Turn 2 resends turn 1 and its answer, then a new message; sampled this time.
  std::vector<int32_t> turn2 = turn1;
  for (const auto& t : out1) turn2.push_back(t.token);
  turn2.insert(turn2.end(), {7, 8, 9, 10, 11, 12, 13});
  p.sampling.temperature = 0.8f;
  p.sampling.seed = 42;
  const auto out2 = run(cached, turn2, p, &hit);
  // Rows for the prompt and all answer tokens but the last, whose row was never computed.
  EXPECT_EQ(hit, static_cast<int64_t>(turn1.size() + out1.size() - 1));
  int64_t plain_hit = -1;
  expect_same_outputs(out2, run(plain, turn2, p, &plain_hit), "turn 2");
  EXPECT_EQ(plain_hit, 0);

  // A request cancelled mid-answer leaves its prefix too.
  RequestParams endless = p;
  endless.max_new_tokens = 100000;
  const std::vector<int32_t> turn3 = prompt_for(6);
  auto r = cached.submit(turn3, endless);
  ASSERT_EQ(r.status, SubmitStatus::Ok);
  r.handle->wait(2000ms);
  EXPECT_EQ(r.handle->cached_tokens(), 1);  // the first token (0) is every prompt_for's
  r.handle->cancel();
  collect(*r.handle);
  std::vector<int32_t> retry = turn3;
  retry.push_back(5);
  const auto out3 = run(cached, retry, p, &hit);
  EXPECT_GE(hit, static_cast<int64_t>(turn3.size()));
  expect_same_outputs(out3, run(plain, retry, p, nullptr), "after a cancelled request");

  for (int i = 0; i < 200 && cached.stats().requests_finished < 4; ++i) std::this_thread::sleep_for(10ms);
  const auto st = cached.stats();
  EXPECT_EQ(st.prefix_cache_hits, 3u);
  EXPECT_EQ(st.prefix_cache_tokens, static_cast<uint64_t>(turn1.size() + out1.size() - 1 + 1 + hit));
  EXPECT_GT(st.prefix_cache_bytes, 0u);
  EXPECT_EQ(st.kv_cache_bytes, 0u);
  EXPECT_EQ(plain.stats().prefix_cache_hits, 0u);
  EXPECT_EQ(plain.stats().prefix_cache_bytes, 0u);
}

// score_prompt (completions' echo with logprobs): each prompt token's log probability given
// those before it, against log softmax of DeepSeek's reference logits (the tiny-v3 goldens),
// over chunked prefill next to another request; generation after it is unchanged.
TEST(Engine, ScoredPromptsMatchTheReferenceLogits) {
  auto model = load_tiny();
  auto golden = test::Golden::load(test::fixtures() + "/golden/tiny-v3");
  EngineOptions eo;
  eo.max_step_tokens = 5;  // scored prompts in several chunks
  Engine engine(*model, eo);
  const auto prompts = golden.prompts();
  const int64_t V = model->vocab_size();
  RequestParams busy;
  busy.max_new_tokens = 40;
  auto other = engine.submit(prompt_for(5), busy);  // shares the steps
  ASSERT_EQ(other.status, SubmitStatus::Ok);
  for (size_t i = 0; i < prompts.size(); ++i) {
    const std::vector<float> logits = golden.f32("logits." + std::to_string(i));
    for (int64_t max_new : {0, 3}) {
      RequestParams p;
      p.score_prompt = true;
      p.top_logprobs = 2;
      p.max_new_tokens = max_new;
      p.logprobs = true;
      auto r = engine.submit(prompts[i], p);
      ASSERT_EQ(r.status, SubmitStatus::Ok) << r.message;
      std::vector<TokenOutput> scored, generated;
      for (;;) {
        RequestUpdate u = r.handle->wait(5000ms);
        EXPECT_TRUE(u.prompt.empty() || generated.empty()) << "prompt scores come before generated tokens";
        scored.insert(scored.end(), u.prompt.begin(), u.prompt.end());
        generated.insert(generated.end(), u.tokens.begin(), u.tokens.end());
        if (u.finished) {
          EXPECT_TRUE(u.error.empty()) << u.error;
          EXPECT_EQ(u.finish, FinishReason::Length);
          break;
        }
      }
      ASSERT_EQ(scored.size(), prompts[i].size() - 1) << "prompt " << i;
      for (size_t p_ = 0; p_ + 1 < prompts[i].size(); ++p_) {
        const float* row = logits.data() + p_ * V;
        double mx = -INFINITY, sum = 0;
        for (int64_t v = 0; v < V; ++v) mx = std::max<double>(mx, row[v]);
        for (int64_t v = 0; v < V; ++v) sum += std::exp(row[v] - mx);
        const double want = row[prompts[i][p_ + 1]] - mx - std::log(sum);
        EXPECT_EQ(scored[p_].token, prompts[i][p_ + 1]);
        EXPECT_NEAR(scored[p_].logprob, want, 2e-3) << "prompt " << i << " position " << p_ + 1;
        ASSERT_EQ(scored[p_].top.size(), 2u);
        EXPECT_GE(scored[p_].top[0].second, scored[p_].top[1].second);
      }
      EXPECT_EQ(generated.size(), static_cast<size_t>(max_new));
      if (max_new > 0) {
        const auto want = test::reference_generate(*model, prompts[i], max_new);
        for (size_t k = 0; k < generated.size(); ++k) EXPECT_EQ(generated[k].token, want[k]) << "prompt " << i;
      }
    }
  }
  collect(*other.handle);
  RequestParams prefill_only;
  prefill_only.max_new_tokens = 0;  // prefill (a cache to keep), nothing generated
  auto r = engine.submit({0, 1, 2}, prefill_only);
  ASSERT_EQ(r.status, SubmitStatus::Ok);
  RequestUpdate last;
  EXPECT_TRUE(collect(*r.handle, &last).empty());
  EXPECT_EQ(last.finish, FinishReason::Length);
  prefill_only.max_new_tokens = -1;
  EXPECT_EQ(engine.submit({0, 1}, prefill_only).status, SubmitStatus::Invalid);
}
