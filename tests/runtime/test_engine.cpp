// The continuous-batching engine: requests joining and leaving a running batch produce the
// same tokens as each alone; cancellation, queue limits, chunked prefill, shutdown.

#include <gtest/gtest.h>

#include <thread>

#include "model/model.h"
#include "runtime/engine.h"
#include "runtime/generate.h"
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
    GenerateOptions g;
    g.max_new_tokens = 10;
    g.sampling.temperature = i % 2 ? 0.8f : 0.0f;
    g.sampling.seed = 100 + i;
    want[i] = generate(*model, prompt_for(i), g).value().tokens;
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
  EXPECT_EQ(last.error, "cancelled");
  EXPECT_EQ(collect(*b.handle).size(), 3u);  // b got the slot
  for (int i = 0; i < 100 && engine.stats().running > 0; ++i) std::this_thread::sleep_for(10ms);
  auto st = engine.stats();
  EXPECT_EQ(st.running, 0);
  EXPECT_EQ(st.requests_cancelled, 1u);
  EXPECT_EQ(st.kv_cache_bytes, 0u);
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
  EXPECT_EQ(last.finish, FinishReason::Length);
}

TEST(Engine, LogitBiasAndPenalties) {
  auto model = load_tiny();
  Engine engine(*model, {});
  RequestParams p;
  p.max_new_tokens = 4;
  p.logit_bias = {{5, 100.0f}};
  auto r = engine.submit({0, 17, 923}, p);
  ASSERT_EQ(r.status, SubmitStatus::Ok);
  EXPECT_EQ(collect(*r.handle), (std::vector<int32_t>{5, 5, 5, 5}));
  // With the same bias and a strong frequency penalty, token 5 is not repeated forever.
  p.frequency_penalty = 2.0f;
  p.presence_penalty = 2.0f;
  p.logit_bias = {{5, 3.0f}};
  p.max_new_tokens = 8;
  auto r2 = engine.submit({0, 17, 923}, p);
  auto toks = collect(*r2.handle);
  EXPECT_LE(std::count(toks.begin(), toks.end(), 5), 3);
  // -100 on every token but one: that token wins, nothing breaks.
  RequestParams all;
  all.max_new_tokens = 2;
  for (int32_t id = 0; id < 1024; ++id)
    if (id != 1) all.logit_bias.emplace_back(id, -100.0f);
  all.sampling.temperature = 1.0f;
  all.stop_tokens = {1};
  auto r3 = engine.submit({0, 17}, all);
  RequestUpdate last;
  EXPECT_EQ(collect(*r3.handle, &last), std::vector<int32_t>{1});
  EXPECT_EQ(last.finish, FinishReason::Stop);
}
