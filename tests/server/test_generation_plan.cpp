// A validated request -> the engine requests it becomes (context checks, token budgets, seeds,
// sampling and output options), and the engine's refusals -> HTTP errors; table-driven.

#include <gtest/gtest.h>

#include <cstdint>
#include <functional>
#include <limits>

#include "server/generation_plan.h"

using namespace dsv3;
using namespace dsv3::server;

namespace {

// A 400 invalid_request_error.
struct ExpectedError {
  const char* param;
  const char* code;  // "" for null
  std::string message;
};

void expect_error(const std::optional<ApiError>& got, const ExpectedError& want, const std::string& row) {
  ASSERT_TRUE(got.has_value()) << row;
  EXPECT_EQ(got->status, 400) << row;
  EXPECT_EQ(got->type, "invalid_request_error") << row;
  EXPECT_EQ(got->param.value_or(""), want.param) << row;
  EXPECT_EQ(got->code.value_or(""), want.code) << row;
  EXPECT_EQ(got->message, want.message) << row;
}

}  // namespace

TEST(GenerationPlan, TokenBudgetAndContextChecks) {
  struct Row {
    const char* name;
    std::vector<int64_t> prompt_lengths;
    std::optional<int64_t> max_tokens;
    int64_t context;
    std::vector<int64_t> budgets;  // max_new_tokens per prompt; empty: refused with `error`
    ExpectedError error;
  };
  const std::vector<Row> rows = {
      {"no max_tokens: what the context leaves", {10}, std::nullopt, 100, {90}, {}},
      {"no max_tokens, one token left", {99}, std::nullopt, 100, {1}, {}},
      {"max_tokens within the context", {10}, 5, 100, {5}, {}},
      {"max_tokens filling the context exactly", {10}, 90, 100, {90}, {}},
      {"max_tokens 0 with a prompt as long as the context (echo scoring)", {100}, 0, 100, {0}, {}},
      {"each prompt its own budget", {10, 30}, std::nullopt, 100, {90, 70}, {}},
      {"max_tokens one past the context", {10}, 91, 100, {},
       {"prompt", "context_length_exceeded", "prompt (10 tokens) + max_tokens (91) exceeds the context limit of 100"}},
      {"a prompt as long as the context leaves nothing to generate", {100}, std::nullopt, 100, {},
       {"prompt", "context_length_exceeded", "the prompt has 100 tokens; the context limit is 100"}},
      {"a prompt as long as the context with max_tokens", {100}, 1, 100, {},
       {"prompt", "context_length_exceeded", "the prompt has 100 tokens; the context limit is 100"}},
      {"a prompt longer than the context, even with max_tokens 0", {101}, 0, 100, {},
       {"prompt", "context_length_exceeded", "the prompt has 101 tokens; the context limit is 100"}},
      {"an empty prompt", {0}, std::nullopt, 100, {}, {"prompt", "", "the prompt must be non-empty"}},
      {"the first failing prompt is reported", {10, 0, 200}, std::nullopt, 100, {},
       {"prompt", "", "the prompt must be non-empty"}},
      {"a later prompt too long refuses the whole request", {10, 200}, std::nullopt, 100, {},
       {"prompt", "context_length_exceeded", "the prompt has 200 tokens; the context limit is 100"}},
  };
  for (const Row& row : rows) {
    GenerationRequest gen;
    gen.max_tokens = row.max_tokens;
    std::vector<PlannedChoice> plan;
    auto e = plan_generation(gen, row.prompt_lengths, "prompt", row.context, 1, 0, &plan);
    if (row.budgets.empty()) {
      expect_error(e, row.error, row.name);
      continue;
    }
    ASSERT_FALSE(e.has_value()) << row.name << ": " << e->message;
    ASSERT_EQ(plan.size(), row.budgets.size()) << row.name;
    for (size_t p = 0; p < plan.size(); ++p) EXPECT_EQ(plan[p].params.max_new_tokens, row.budgets[p]) << row.name;
  }
}

TEST(GenerationPlan, ErrorsNameThePromptParameter) {
  GenerationRequest gen;
  gen.max_tokens = 1000;
  std::vector<PlannedChoice> plan;
  auto chat = plan_generation(gen, {10}, "messages", 100, 1, 0, &plan);
  expect_error(chat, {"messages", "context_length_exceeded",
                      "prompt (10 tokens) + max_tokens (1000) exceeds the context limit of 100"},
               "chat");
}

TEST(GenerationPlan, ChoicesArePromptMajorWithOneSeedEach) {
  struct Choice {
    int index, prompt_index;
    uint64_t seed;
    int64_t max_new_tokens;
  };
  struct Row {
    const char* name;
    int n;
    std::vector<int64_t> prompt_lengths;
    std::optional<uint64_t> seed;  // the request's; without one the caller's draw, 1234
    std::vector<Choice> choices;
  };
  constexpr uint64_t kMax = std::numeric_limits<uint64_t>::max();
  const std::vector<Row> rows = {
      {"one prompt, one choice", 1, {5}, 7, {{0, 0, 7, 95}}},
      {"n choices draw from consecutive seeds", 3, {5}, 7, {{0, 0, 7, 95}, {1, 0, 8, 95}, {2, 0, 9, 95}}},
      {"n per prompt, numbered across prompts", 2, {5, 10}, 100,
       {{0, 0, 100, 95}, {1, 0, 101, 95}, {2, 1, 102, 90}, {3, 1, 103, 90}}},
      {"one choice for each of three prompts", 1, {1, 2, 3}, 0, {{0, 0, 0, 99}, {1, 1, 1, 98}, {2, 2, 2, 97}}},
      {"seeds wrap around 2^64", 2, {5}, kMax, {{0, 0, kMax, 95}, {1, 0, 0, 95}}},
      {"without a seed, from the caller's draw", 2, {5}, std::nullopt, {{0, 0, 1234, 95}, {1, 0, 1235, 95}}},
  };
  for (const Row& row : rows) {
    GenerationRequest gen;
    gen.n = row.n;
    gen.seed = row.seed;
    std::vector<PlannedChoice> plan;
    ASSERT_FALSE(plan_generation(gen, row.prompt_lengths, "prompt", 100, 1, 1234, &plan)) << row.name;
    ASSERT_EQ(plan.size(), row.choices.size()) << row.name;
    for (size_t i = 0; i < plan.size(); ++i) {
      EXPECT_EQ(plan[i].index, row.choices[i].index) << row.name << ", choice " << i;
      EXPECT_EQ(plan[i].prompt_index, row.choices[i].prompt_index) << row.name << ", choice " << i;
      EXPECT_EQ(plan[i].params.sampling.seed, row.choices[i].seed) << row.name << ", choice " << i;
      EXPECT_EQ(plan[i].params.max_new_tokens, row.choices[i].max_new_tokens) << row.name << ", choice " << i;
    }
  }
}

TEST(GenerationPlan, SamplingAndOutputOptionsReachTheEngine) {
  using Bias = std::vector<std::pair<int32_t, float>>;
  struct Row {
    const char* name;
    std::function<void(GenerationRequest&)> request;
    std::optional<int32_t> eos_id;
    // The engine parameters expected (without a seed in the request: the caller's draw, 42).
    float temperature, top_p;
    int top_k;
    uint64_t seed;
    Bias logit_bias;
    float presence_penalty, frequency_penalty;
    std::vector<int32_t> stop_tokens;
    bool logprobs;
    int top_logprobs;
    bool score_prompt;
  };
  auto no_change = [](GenerationRequest&) {};
  const std::vector<Row> rows = {
      // name, request, eos: temperature, top_p, top_k, seed, logit_bias, presence, frequency: stop_tokens,
      // logprobs, top_logprobs, score_prompt
      {"defaults stop at EOS", no_change, 1, 1.0f, 1.0f, 0, 42, {}, 0.0f, 0.0f, {1}, false, 0, false},
      {"ignore_eos", [](GenerationRequest& g) { g.ignore_eos = true; }, 1, 1.0f, 1.0f, 0, 42, {}, 0.0f, 0.0f, {}, false,
       0, false},
      {"a tokenizer without EOS", no_change, std::nullopt, 1.0f, 1.0f, 0, 42, {}, 0.0f, 0.0f, {}, false, 0, false},
      {"temperature, top_p, top_k",
       [](GenerationRequest& g) {
         g.temperature = 0.5f;
         g.top_p = 0.9f;
         g.top_k = 40;
       },
       2, 0.5f, 0.9f, 40, 42, {}, 0.0f, 0.0f, {2}, false, 0, false},
      {"the request's seed", [](GenerationRequest& g) { g.seed = 7; }, 1, 1.0f, 1.0f, 0, 7, {}, 0.0f, 0.0f, {1}, false,
       0, false},
      {"logit_bias and penalties",
       [](GenerationRequest& g) {
         g.logit_bias = {{7, -100.0f}, {9, 2.5f}};
         g.presence_penalty = 0.5f;
         g.frequency_penalty = -0.25f;
       },
       1, 1.0f, 1.0f, 0, 42, Bias{{7, -100.0f}, {9, 2.5f}}, 0.5f, -0.25f, {1}, false, 0, false},
      {"logprobs with alternatives",
       [](GenerationRequest& g) {
         g.logprobs = true;
         g.top_logprobs = 5;
       },
       1, 1.0f, 1.0f, 0, 42, {}, 0.0f, 0.0f, {1}, true, 5, false},
      {"echo alone scores nothing", [](GenerationRequest& g) { g.echo = true; }, 1, 1.0f, 1.0f, 0, 42, {}, 0.0f, 0.0f,
       {1}, false, 0, false},
      {"echo with logprobs scores the prompt",
       [](GenerationRequest& g) {
         g.echo = true;
         g.logprobs = true;
         g.top_logprobs = 2;
       },
       1, 1.0f, 1.0f, 0, 42, {}, 0.0f, 0.0f, {1}, true, 2, true},
  };
  for (const Row& row : rows) {
    GenerationRequest gen;
    row.request(gen);
    std::vector<PlannedChoice> plan;
    ASSERT_FALSE(plan_generation(gen, {10}, "prompt", 100, row.eos_id, 42, &plan)) << row.name;
    ASSERT_EQ(plan.size(), 1u) << row.name;
    const RequestParams& got = plan[0].params;
    EXPECT_EQ(got.sampling.temperature, row.temperature) << row.name;
    EXPECT_EQ(got.sampling.top_p, row.top_p) << row.name;
    EXPECT_EQ(got.sampling.top_k, row.top_k) << row.name;
    EXPECT_EQ(got.sampling.seed, row.seed) << row.name;
    EXPECT_EQ(got.sampling.logit_bias, row.logit_bias) << row.name;
    EXPECT_EQ(got.sampling.presence_penalty, row.presence_penalty) << row.name;
    EXPECT_EQ(got.sampling.frequency_penalty, row.frequency_penalty) << row.name;
    EXPECT_EQ(got.stop_tokens, row.stop_tokens) << row.name;
    EXPECT_EQ(got.logprobs, row.logprobs) << row.name;
    EXPECT_EQ(got.top_logprobs, row.top_logprobs) << row.name;
    EXPECT_EQ(got.score_prompt, row.score_prompt) << row.name;
  }
}

TEST(GenerationPlan, EngineRefusalsBecomeHttpErrors) {
  SamplingParams hot;
  hot.temperature = -1.0f;
  SamplingParams wide;
  wide.top_p = 2.0f;
  SamplingParams negative_k;
  negative_k.top_k = -3;
  struct Row {
    SubmitStatus status;
    std::string engine_message;
    RequestField field;
    SamplingParams sampling;
    const char* prompt_param;
    // Expected; status 0: no error.
    int http_status;
    const char* type;
    const char* param;  // "" for null
    const char* code;   // "" for null
    std::string message;
    std::optional<int> retry_after_seconds;
  };
  const std::vector<Row> rows = {
      {SubmitStatus::Ok, "", RequestField::Prompt, {}, "prompt", 0, "", "", "", "", std::nullopt},
      {SubmitStatus::QueueFull, "the request queue is full (64 waiting)", RequestField::Prompt, {}, "prompt", 429,
       "rate_limit_error", "", "queue_full", "the request queue is full (64 waiting); retry shortly", 1},
      {SubmitStatus::ShuttingDown, "the server is shutting down", RequestField::Prompt, {}, "messages", 503,
       "server_error", "", "shutting_down", "the server is shutting down", std::nullopt},
      {SubmitStatus::Invalid, "token id 5000 is outside the vocabulary [0, 1024)", RequestField::Prompt, {}, "prompt",
       400, "invalid_request_error", "prompt", "", "token id 5000 is outside the vocabulary [0, 1024)", std::nullopt},
      {SubmitStatus::Invalid, "the prompt is empty", RequestField::Prompt, {}, "messages", 400, "invalid_request_error",
       "messages", "", "the prompt is empty", std::nullopt},
      // Refusals about other parts name those parameters, not the prompt.
      {SubmitStatus::Invalid, "logit_bias: token 5000 with bias 1 is outside the vocabulary or not finite",
       RequestField::LogitBias, {}, "messages", 400, "invalid_request_error", "logit_bias", "",
       "logit_bias: token 5000 with bias 1 is outside the vocabulary or not finite", std::nullopt},
      {SubmitStatus::Invalid, "max_new_tokens must not be negative", RequestField::MaxNewTokens, {}, "prompt", 400,
       "invalid_request_error", "max_tokens", "", "max_new_tokens must not be negative", std::nullopt},
      {SubmitStatus::Invalid, "temperature must be a finite number >= 0 (got -1)", RequestField::Sampling, hot,
       "prompt", 400, "invalid_request_error", "temperature", "", "temperature must be a finite number >= 0 (got -1)",
       std::nullopt},
      {SubmitStatus::Invalid, "top_p must be a number in [0, 1] (got 2)", RequestField::Sampling, wide, "prompt", 400,
       "invalid_request_error", "top_p", "", "top_p must be a number in [0, 1] (got 2)", std::nullopt},
      {SubmitStatus::Invalid, "top_k must be >= 0 (got -3)", RequestField::Sampling, negative_k, "prompt", 400,
       "invalid_request_error", "top_k", "", "top_k must be >= 0 (got -3)", std::nullopt},
  };
  for (const Row& row : rows) {
    const std::string name = row.engine_message.empty() ? "Ok" : row.engine_message;
    SubmitResult result;
    result.status = row.status;
    result.message = row.engine_message;
    result.field = row.field;
    auto e = submit_error(result, row.prompt_param, row.sampling);
    if (row.http_status == 0) {
      EXPECT_FALSE(e.has_value()) << name;
      continue;
    }
    ASSERT_TRUE(e.has_value()) << name;
    EXPECT_EQ(e->status, row.http_status) << name;
    EXPECT_EQ(e->type, row.type) << name;
    EXPECT_EQ(e->param.value_or(""), row.param) << name;
    EXPECT_EQ(e->code.value_or(""), row.code) << name;
    EXPECT_EQ(e->message, row.message) << name;
    EXPECT_EQ(e->retry_after_seconds, row.retry_after_seconds) << name;
  }
}

TEST(GenerationPlan, RequestsLargerThanTheEngineAreRefusedFor400) {
  // More engine requests (prompts x n) than the batch and the queue hold together can never
  // be served: 400 naming n (or the prompt), not a 429 that invites a retry.
  EngineOptions engine;
  engine.max_batch = 16;
  engine.max_queue = 64;
  struct Row {
    size_t prompts;
    int n;
    const char* param;  // "" for no error
  };
  const std::vector<Row> rows = {
      {1, 1, ""}, {1, 80, ""}, {1, 81, "n"}, {1, 128, "n"}, {40, 2, ""}, {41, 2, "n"}, {80, 1, ""}, {81, 1, "prompt"},
  };
  for (const Row& row : rows) {
    auto e = capacity_error(row.prompts, row.n, engine);
    const std::string name = std::to_string(row.prompts) + " x " + std::to_string(row.n);
    EXPECT_EQ(e.has_value(), *row.param != '\0') << name;
    if (!e) continue;
    EXPECT_EQ(e->status, 400) << name;
    EXPECT_EQ(e->param.value_or(""), row.param) << name;
    EXPECT_NE(e->message.find("at most 80 at once (batch 16 + queue 64)"), std::string::npos) << e->message;
  }
}
