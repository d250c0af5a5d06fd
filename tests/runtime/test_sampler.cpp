// The sampler: greedy at temperature 0, distributions respected, top-k/top-p restrictions,
// seeded reproducibility, and no NaN sampling (NaN logits and all-masked rows are refused; a
// temperature of 1e-8 is greedy, without overflow).

#include <gtest/gtest.h>

#include <cmath>
#include <algorithm>
#include <map>
#include <random>
#include <set>

#include "kernels/ops.h"
#include "runtime/sampler.h"

using namespace dsv3;

namespace {

SamplingParams params(float temperature, float top_p, int top_k, uint64_t seed) {
  SamplingParams p;
  p.temperature = temperature;
  p.top_p = top_p;
  p.top_k = top_k;
  p.seed = seed;
  return p;
}

}  // namespace

TEST(Sampler, GreedyAndTinyTemperature) {
  std::vector<float> logits = {0.1f, 3.0f, -2.0f, 2.9f};
  Sampler greedy(params(0.0f, 1.0f, 0, 1));
  EXPECT_EQ(greedy.sample(logits.data(), 4).value(), 1);
  Sampler tiny(params(1e-8f, 1e-9f, 1, 1));  // behaves as greedy, no overflow
  for (int i = 0; i < 20; ++i) EXPECT_EQ(tiny.sample(logits.data(), 4).value(), 1);
  Sampler tiny_t(params(1e-8f, 1.0f, 0, 2));
  for (int i = 0; i < 20; ++i) EXPECT_EQ(tiny_t.sample(logits.data(), 4).value(), 1);
}

TEST(Sampler, FollowsSoftmaxDistribution) {
  std::vector<float> logits = {0.0f, std::log(2.0f), std::log(3.0f), -INFINITY};
  Sampler s(params(1.0f, 1.0f, 0, 42));
  std::map<int, int> counts;
  const int n = 60000;
  for (int i = 0; i < n; ++i) counts[s.sample(logits.data(), 4).value()]++;
  EXPECT_EQ(counts[3], 0);  // masked token never drawn
  EXPECT_NEAR(counts[0] / double(n), 1.0 / 6, 0.01);
  EXPECT_NEAR(counts[1] / double(n), 2.0 / 6, 0.01);
  EXPECT_NEAR(counts[2] / double(n), 3.0 / 6, 0.01);
}

TEST(Sampler, TopKAndTopP) {
  std::vector<float> logits = {0.0f, std::log(2.0f), std::log(3.0f), std::log(4.0f)};  // p = .1 .2 .3 .4
  Sampler k2(params(1.0f, 1.0f, 2, 7));
  Sampler p5(params(1.0f, 0.5f, 0, 7));  // .4 < .5 <= .7: tokens 3 and 2
  Sampler p0(params(1.0f, 0.0f, 0, 7));  // top_p 0 keeps the best token
  for (int i = 0; i < 2000; ++i) {
    int a = k2.sample(logits.data(), 4).value();
    EXPECT_TRUE(a == 2 || a == 3);
    int b = p5.sample(logits.data(), 4).value();
    EXPECT_TRUE(b == 2 || b == 3);
    EXPECT_EQ(p0.sample(logits.data(), 4).value(), 3);
  }
}

TEST(Sampler, SeededAndReproducible) {
  std::vector<float> logits(1000);
  for (int i = 0; i < 1000; ++i) logits[i] = std::sin(i * 0.37f) * 3;
  Sampler a(params(0.9f, 0.95f, 40, 5)), b(params(0.9f, 0.95f, 40, 5)), c(params(0.9f, 0.95f, 40, 6));
  int same = 0;
  for (int i = 0; i < 200; ++i) {
    int x = a.sample(logits.data(), 1000).value();
    EXPECT_EQ(x, b.sample(logits.data(), 1000).value());
    same += x == c.sample(logits.data(), 1000).value();
  }
  EXPECT_LT(same, 200);
}

TEST(Sampler, RefusesNaNAndAllMasked) {
  std::vector<float> nan = {0.0f, NAN, 1.0f};
  Sampler s(params(1.0f, 1.0f, 0, 1));
  EXPECT_FALSE(s.sample(nan.data(), 3).ok());
  std::vector<float> masked = {-INFINITY, -INFINITY};
  EXPECT_FALSE(s.sample(masked.data(), 2).ok());
  Sampler g(params(0.0f, 1.0f, 0, 1));
  EXPECT_FALSE(g.sample(nan.data(), 3).ok());
}

// The support a draw is restricted to, against the definition computed the slow way: every
// candidate sorted by (logit desc, id asc), cut to top_k, then to the shortest prefix whose
// probability reaches top_p. Random vocabularies with ties, masked ids, flat and peaked
// distributions, exact top_k boundaries, tiny temperatures.
namespace {
std::vector<int32_t> support_by_sorting(const std::vector<float>& l, const SamplingParams& p) {
  const float mx = *std::max_element(l.begin(), l.end());
  std::vector<int32_t> order;
  for (int32_t i = 0; i < static_cast<int32_t>(l.size()); ++i)
    if (l[i] >= mx - 40.0 * p.temperature) order.push_back(i);
  std::sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return l[a] > l[b] || (l[a] == l[b] && a < b); });
  if (p.top_k > 0 && static_cast<size_t>(p.top_k) < order.size()) order.resize(static_cast<size_t>(p.top_k));
  // The probabilities from the same f32 exps the sampler uses (kernels::exp_affine, tested
  // against std::exp with the other kernels): this test is about which tokens are kept.
  std::vector<float> e(l.size());
  dsv3::kernels::exp_affine(l.data(), static_cast<int64_t>(l.size()), mx, static_cast<float>(1.0 / p.temperature),
                            e.data());
  std::vector<double> w;
  double sum = 0.0;
  for (int32_t i : order) sum += w.emplace_back(e[i]);
  if (p.top_p < 1.0f) {
    double acc = 0.0;
    size_t keep = order.size();
    for (size_t j = 0; j < order.size(); ++j) {
      acc += w[j];
      if (acc >= p.top_p * sum) {
        keep = j + 1;
        break;
      }
    }
    order.resize(std::max<size_t>(keep, 1));
  }
  std::sort(order.begin(), order.end());
  return order;
}
}  // namespace

TEST(Sampler, SupportMatchesSortedDefinition) {
  std::mt19937 gen(11);
  const float temps[] = {1e-8f, 0.05f, 0.6f, 1.0f, 2.0f};
  const int ks[] = {0, 1, 2, 7, 40, 1000000};
  const float ps[] = {0.0f, 0.13f, 0.5f, 0.9f, 0.95f, 0.999f, 1.0f};
  int cases = 0, nontrivial = 0;
  for (int trial = 0; trial < 60; ++trial) {
    const int vocab = std::uniform_int_distribution<int>(1, 3000)(gen);
    const int kind = trial % 4;
    std::normal_distribution<float> normal(0.0f, kind == 1 ? 0.01f : 3.0f);  // 1: nearly flat
    std::vector<float> l(static_cast<size_t>(vocab));
    for (auto& x : l) {
      x = normal(gen);
      if (kind == 2) x = std::round(x * 2.0f) / 2.0f;  // many exact ties
      if (kind == 3 && std::uniform_int_distribution<int>(0, 9)(gen) == 0) x = -INFINITY;
    }
    if (kind == 3) l[static_cast<size_t>(vocab / 2)] = 1.0f;  // one finite logit at least
    for (float t : temps)
      for (int k : ks)
        for (float p : ps) {
          // top_k equal to a tie group's end is a boundary case of its own.
          const int k_used = k == 7 && kind == 2 ? std::min(vocab, 7 + trial % 5) : k;
          const SamplingParams sp = params(t, p, k_used, 1);
          const auto want = support_by_sorting(l, sp);
          ASSERT_EQ(sampling_support(l.data(), vocab, sp), want)
              << "trial " << trial << " vocab " << vocab << " T " << t << " k " << k_used << " p " << p;
          ++cases;
          nontrivial += want.size() > 1 && want.size() < l.size();
        }
  }
  EXPECT_EQ(cases, 60 * 5 * 6 * 7);
  EXPECT_GT(nontrivial, cases / 3);
}

// What the sampler draws stays inside that support and reaches all of it.
TEST(Sampler, DrawsCoverTheSupport) {
  const int vocab = 3000;
  std::vector<float> l(vocab);
  std::mt19937 gen(3);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (auto& x : l) x = normal(gen);
  const SamplingParams sp = params(0.7f, 0.2f, 0, 9);
  const auto support = sampling_support(l.data(), vocab, sp);
  ASSERT_GT(support.size(), 10u);
  ASSERT_LT(support.size(), 200u);
  Sampler s(sp);
  std::set<int32_t> seen;
  for (int i = 0; i < 100 * static_cast<int>(support.size()); ++i) {
    const int32_t tok = s.sample(l.data(), vocab).value();
    ASSERT_TRUE(std::binary_search(support.begin(), support.end(), tok)) << tok;
    seen.insert(tok);
  }
  EXPECT_EQ(seen.size(), support.size());
}

TEST(Sampler, LogSoftmaxMatchesDoublePrecision) {
  std::vector<float> l(129280);
  std::mt19937 gen(5);
  std::normal_distribution<float> normal(0.0f, 4.0f);
  for (auto& x : l) x = normal(gen);
  l[17] = -INFINITY;
  std::vector<float> out(l.size());
  log_softmax(l.data(), static_cast<int64_t>(l.size()), out.data());
  const double mx = *std::max_element(l.begin(), l.end());
  double sum = 0.0;
  for (float x : l) sum += std::exp(x - mx);
  const double lse = mx + std::log(sum);
  for (size_t i = 0; i < l.size(); ++i)
    if (i != 17) {
      ASSERT_NEAR(out[i], l[i] - lse, 1e-5 * (1 + std::fabs(l[i] - lse))) << i;
    }
  EXPECT_EQ(out[17], -INFINITY);
  std::vector<float> in_place = l;
  log_softmax(in_place.data(), static_cast<int64_t>(l.size()), in_place.data());
  EXPECT_EQ(in_place, out);
}

TEST(Sampler, TopValuesMatchesAPartialSort) {
  std::mt19937 gen(8);
  for (int trial = 0; trial < 200; ++trial) {
    const int n = std::uniform_int_distribution<int>(1, 400)(gen);
    std::vector<float> x(static_cast<size_t>(n));
    for (auto& v : x) v = static_cast<float>(std::uniform_int_distribution<int>(-20, 20)(gen)) / 4;  // ties
    if (trial % 3 == 0) x[0] = -INFINITY;
    for (int64_t k : {0, 1, 3, 20, 500}) {
      std::vector<int32_t> idx(static_cast<size_t>(n));
      for (int i = 0; i < n; ++i) idx[i] = i;
      const int64_t kk = std::min<int64_t>(k, n);
      std::partial_sort(idx.begin(), idx.begin() + kk, idx.end(),
                        [&](int32_t a, int32_t b) { return x[a] > x[b] || (x[a] == x[b] && a < b); });
      std::vector<std::pair<int32_t, float>> want;
      for (int64_t j = 0; j < kk; ++j) want.emplace_back(idx[j], x[idx[j]]);
      ASSERT_EQ(top_values(x.data(), n, k), want) << "trial " << trial << " k " << k;
    }
  }
}

// The sampler's logit processing: logit_bias added, presence and frequency penalties
// subtracted per accepted token, and the logits untouched (no copy) when nothing is asked.
TEST(Sampler, ProcessAppliesBiasAndPenaltiesOfAcceptedTokens) {
  const std::vector<float> logits = {1.0f, 2.0f, 3.0f, 4.0f};
  std::vector<float> scratch;
  Sampler plain(params(0.0f, 1.0f, 0, 1));
  EXPECT_EQ(plain.process(logits.data(), 4, scratch), logits.data());
  ASSERT_TRUE(plain.accept(3).ok());
  EXPECT_EQ(plain.process(logits.data(), 4, scratch), logits.data()) << "no penalty: accepting changes nothing";

  SamplingParams p = params(0.0f, 1.0f, 0, 1);
  p.logit_bias = {{0, 10.0f}, {2, -0.5f}};
  p.presence_penalty = 0.25f;
  p.frequency_penalty = 1.0f;
  Sampler s(p);
  const float* row = s.process(logits.data(), 4, scratch);
  EXPECT_EQ(row, scratch.data());
  EXPECT_EQ(std::vector<float>(row, row + 4), (std::vector<float>{11.0f, 2.0f, 2.5f, 4.0f}));
  ASSERT_TRUE(s.accept(1).ok());
  ASSERT_TRUE(s.accept(1).ok());
  ASSERT_TRUE(s.accept(3).ok());
  row = s.process(logits.data(), 4, scratch);
  // token 1: 2 - (0.25 + 2 * 1); token 3: 4 - (0.25 + 1 * 1)
  EXPECT_EQ(std::vector<float>(row, row + 4), (std::vector<float>{11.0f, -0.25f, 2.5f, 2.75f}));
  EXPECT_EQ(logits, (std::vector<float>{1.0f, 2.0f, 3.0f, 4.0f})) << "the model's logits are not written";
  EXPECT_EQ(s.sample(row, 4).value(), 0);
}
