// The sampler: greedy at temperature 0, distributions respected, top-k/top-p restrictions,
// seeded reproducibility, and no NaN sampling (BAD_INPUTS N02-N04).

#include <gtest/gtest.h>

#include <cmath>
#include <map>

#include "runtime/sampler.h"

using namespace dsv3;

TEST(Sampler, GreedyAndTinyTemperature) {
  std::vector<float> logits = {0.1f, 3.0f, -2.0f, 2.9f};
  Sampler greedy({0.0f, 1.0f, 0, 1});
  EXPECT_EQ(greedy.sample(logits.data(), 4).value(), 1);
  Sampler tiny({1e-8f, 1e-9f, 1, 1});  // N04: behaves as greedy, no overflow
  for (int i = 0; i < 20; ++i) EXPECT_EQ(tiny.sample(logits.data(), 4).value(), 1);
  Sampler tiny_t({1e-8f, 1.0f, 0, 2});
  for (int i = 0; i < 20; ++i) EXPECT_EQ(tiny_t.sample(logits.data(), 4).value(), 1);
}

TEST(Sampler, FollowsSoftmaxDistribution) {
  std::vector<float> logits = {0.0f, std::log(2.0f), std::log(3.0f), -INFINITY};
  Sampler s({1.0f, 1.0f, 0, 42});
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
  Sampler k2({1.0f, 1.0f, 2, 7});
  Sampler p5({1.0f, 0.5f, 0, 7});  // .4 < .5 <= .7: tokens 3 and 2
  Sampler p0({1.0f, 0.0f, 0, 7});  // top_p 0 keeps the best token
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
  Sampler a({0.9f, 0.95f, 40, 5}), b({0.9f, 0.95f, 40, 5}), c({0.9f, 0.95f, 40, 6});
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
  Sampler s({1.0f, 1.0f, 0, 1});
  EXPECT_FALSE(s.sample(nan.data(), 3).ok());
  std::vector<float> masked = {-INFINITY, -INFINITY};
  EXPECT_FALSE(s.sample(masked.data(), 2).ok());
  Sampler g({0.0f, 1.0f, 0, 1});
  EXPECT_FALSE(g.sample(nan.data(), 3).ok());
}
