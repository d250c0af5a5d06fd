// PrefixCache: which entry a prompt reuses, what is copied, what the budget evicts.

#include <gtest/gtest.h>

#include <vector>

#include "runtime/prefix_cache.h"

using namespace dsv3;

namespace {

constexpr int64_t kLayers = 2, kRowDim = 3;
constexpr uint64_t kRowBytes = kLayers * kRowDim * sizeof(float);

// A cache whose row t of layer l holds the values 1000 * l + 10 * tokens[t] + d.
KVCache cache_for(const std::vector<int32_t>& tokens) {
  KVCache c(kLayers, kRowDim);
  c.reserve(static_cast<int64_t>(tokens.size()) + 7);  // spare capacity, as a grown cache has
  for (int64_t l = 0; l < kLayers; ++l)
    for (size_t t = 0; t < tokens.size(); ++t)
      for (int64_t d = 0; d < kRowDim; ++d)
        c.layer(l)[t * kRowDim + d] = static_cast<float>(1000 * l + 10 * tokens[t] + d);
  c.advance(static_cast<int64_t>(tokens.size()));
  return c;
}

void expect_rows_of(const KVCache& c, const std::vector<int32_t>& tokens) {
  ASSERT_EQ(c.length(), static_cast<int64_t>(tokens.size()));
  for (int64_t l = 0; l < kLayers; ++l)
    for (size_t t = 0; t < tokens.size(); ++t)
      for (int64_t d = 0; d < kRowDim; ++d)
        ASSERT_EQ(c.layer(l)[t * kRowDim + d], static_cast<float>(1000 * l + 10 * tokens[t] + d))
            << "layer " << l << " row " << t;
}

}  // namespace

TEST(PrefixCache, RestoresTheLongestCommonPrefixAndLeavesTheLastPromptToken) {
  PrefixCache pc(1 << 20);
  pc.offer(std::vector<int32_t>{1, 2, 3, 4, 5}, cache_for({1, 2, 3, 4, 5}));
  pc.offer(std::vector<int32_t>{1, 2, 9, 9}, cache_for({1, 2, 9, 9}));
  EXPECT_EQ(pc.entries(), 2u);

  KVCache c(kLayers, kRowDim);
  EXPECT_EQ(pc.restore(std::vector<int32_t>{1, 2, 3, 7, 7}, &c), 3);  // 3 of the first entry
  expect_rows_of(c, {1, 2, 3});
  KVCache d(kLayers, kRowDim);
  EXPECT_EQ(pc.restore(std::vector<int32_t>{1, 2, 9, 9, 9, 9}, &d), 4);  // all of the second
  expect_rows_of(d, {1, 2, 9, 9});
  KVCache e(kLayers, kRowDim);
  EXPECT_EQ(pc.restore(std::vector<int32_t>{1, 2, 3, 4, 5}, &e), 4);  // the whole prompt cached: its last token is recomputed
  expect_rows_of(e, {1, 2, 3, 4});
  KVCache f(kLayers, kRowDim);
  EXPECT_EQ(pc.restore(std::vector<int32_t>{7, 1, 2}, &f), 0);
  EXPECT_EQ(f.length(), 0);
  EXPECT_EQ(pc.restore(std::vector<int32_t>{1}, &f), 0);  // a one-token prompt has nothing to reuse
}

TEST(PrefixCache, OnlyTheCachedRowsAreOfferedAndKept) {
  PrefixCache pc(1 << 20);
  // The last sampled token has no row yet: tokens may run one past the cache.
  pc.offer(std::vector<int32_t>{4, 5, 6, 7}, cache_for({4, 5, 6}));
  EXPECT_EQ(pc.bytes(), 3 * kRowBytes);  // the spare capacity is given back
  KVCache c(kLayers, kRowDim);
  EXPECT_EQ(pc.restore(std::vector<int32_t>{4, 5, 6, 7, 8}, &c), 3);
  expect_rows_of(c, {4, 5, 6});
  pc.offer(std::vector<int32_t>{1, 2}, cache_for({1, 2, 3}));  // fewer tokens than rows: not kept
  EXPECT_EQ(pc.entries(), 1u);
  pc.offer(std::vector<int32_t>{}, KVCache(kLayers, kRowDim));
  EXPECT_EQ(pc.entries(), 1u);
}

TEST(PrefixCache, LongerEntriesReplaceTheirPrefixes) {
  PrefixCache pc(1 << 20);
  pc.offer(std::vector<int32_t>{1, 2, 3}, cache_for({1, 2, 3}));
  pc.offer(std::vector<int32_t>{1, 2, 3, 4, 5}, cache_for({1, 2, 3, 4, 5}));  // a conversation's next turn
  EXPECT_EQ(pc.entries(), 1u);
  EXPECT_EQ(pc.bytes(), 5 * kRowBytes);
  pc.offer(std::vector<int32_t>{1, 2}, cache_for({1, 2}));  // already covered
  EXPECT_EQ(pc.entries(), 1u);
  KVCache c(kLayers, kRowDim);
  EXPECT_EQ(pc.restore(std::vector<int32_t>{1, 2, 3, 4, 5, 6}, &c), 5);
  expect_rows_of(c, {1, 2, 3, 4, 5});
}

TEST(PrefixCache, TheBudgetEvictsTheLeastRecentlyUsed) {
  PrefixCache pc(10 * kRowBytes);
  pc.offer(std::vector<int32_t>{1, 1, 1, 1}, cache_for({1, 1, 1, 1}));
  pc.offer(std::vector<int32_t>{2, 2, 2, 2}, cache_for({2, 2, 2, 2}));
  KVCache c(kLayers, kRowDim);
  EXPECT_EQ(pc.restore(std::vector<int32_t>{1, 1, 5}, &c), 2);  // entry 1 is now the most recently used
  pc.offer(std::vector<int32_t>{3, 3, 3, 3}, cache_for({3, 3, 3, 3}));  // 12 rows > 10: entry 2 goes
  EXPECT_EQ(pc.entries(), 2u);
  EXPECT_EQ(pc.bytes(), 8 * kRowBytes);
  KVCache d(kLayers, kRowDim);
  EXPECT_EQ(pc.restore(std::vector<int32_t>{2, 2, 2, 2, 2}, &d), 0);
  EXPECT_EQ(pc.restore(std::vector<int32_t>{1, 1, 1, 1, 1}, &d), 4);
  EXPECT_EQ(pc.restore(std::vector<int32_t>{3, 3, 3, 3, 3}, &d), 4);
}

TEST(PrefixCache, ACacheLargerThanTheBudgetKeepsThePrefixThatFits) {
  // A chat whose cache outgrew the budget: its next turn still starts from the first rows,
  // and the previous turn's entry (which the new one extends) is replaced, not lost.
  PrefixCache pc(10 * kRowBytes);
  const std::vector<int32_t> turn1 = {1, 2, 3, 4, 5, 6};
  pc.offer(turn1, cache_for(turn1));
  std::vector<int32_t> turn2 = turn1;
  for (int32_t t = 7; t <= 14; ++t) turn2.push_back(t);  // 14 rows > 10
  pc.offer(turn2, cache_for(turn2));
  EXPECT_EQ(pc.entries(), 1u);
  EXPECT_EQ(pc.bytes(), 10 * kRowBytes);
  std::vector<int32_t> turn3 = turn2;
  turn3.push_back(15);
  KVCache c(kLayers, kRowDim);
  EXPECT_EQ(pc.restore(turn3, &c), 10);
  expect_rows_of(c, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10});
  PrefixCache none(kRowBytes - 1);  // not even one row fits
  none.offer(turn1, cache_for(turn1));
  EXPECT_EQ(none.entries(), 0u);
}

TEST(PrefixCache, ABudgetOfZeroKeepsNothing) {
  PrefixCache pc(0);
  EXPECT_FALSE(pc.enabled());
  pc.offer(std::vector<int32_t>{1, 2, 3}, cache_for({1, 2, 3}));
  EXPECT_EQ(pc.entries(), 0u);
  EXPECT_EQ(pc.bytes(), 0u);
  KVCache c(kLayers, kRowDim);
  EXPECT_EQ(pc.restore(std::vector<int32_t>{1, 2, 3, 4}, &c), 0);
}
