// Seeded random round trips, each for a fixed time budget so CI stays fast:
// decode(encode(s)) == s over random Unicode (all planes, with bias towards the classes the
// pre-tokenizer cares about), the pre-tokenizer's pieces concatenate to the input, and the
// two BPE strategies (flat arrays, heap) agree. Seeds are printed on failure.

#include <gtest/gtest.h>

#include <chrono>
#include <random>

#include "tokenizer/incremental_decoder.h"
#include "tokenizer/unicode.h"
#include "tokenizer_test_util.h"

using namespace dsv3;
using namespace dsv3::test;

namespace {

constexpr double kBudgetSeconds = 1.5;

uint32_t random_code_point(std::mt19937_64& rng) {
  static const uint32_t common[] = {' ', ' ', '\n', '\r', '\t', 'a', 'Z', '0', '7', '.', '!', '_', '\'', 0xA0, 0x3000,
                                    0x2028, 0x85, 0xFEFF, 0x200D, 0x301, 0x4E2D, 0x3042, 0x30AB, 0x30FB, 0xAC00,
                                    0x627, 0x5D0, 0x915, 0x94D, 0x1F600, 0x1F3FD, 0xFF5C, 0x2581, 0x10FFFF, 0xFFFF};
  switch (rng() % 4) {
    case 0: return common[rng() % (sizeof(common) / sizeof(*common))];
    case 1: return 0x20 + static_cast<uint32_t>(rng() % 0x5F);  // printable ASCII
    case 2: return static_cast<uint32_t>(rng() % 0x3000);       // alphabetic scripts, marks
    default: {
      uint32_t cp;
      do cp = static_cast<uint32_t>(rng() % 0x110000);
      while (cp >= 0xD800 && cp <= 0xDFFF);
      return cp;
    }
  }
}

std::string random_text(std::mt19937_64& rng, size_t max_chars) {
  std::string s;
  size_t n = rng() % (max_chars + 1);
  for (size_t i = 0; i < n; ++i) unicode::append_utf8(s, random_code_point(rng));
  return s;
}

template <typename F>
void for_budget(F&& body) {
  auto start = std::chrono::steady_clock::now();
  uint64_t seed = 1;
  while (std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() < kBudgetSeconds) {
    body(seed++);
    if (::testing::Test::HasFailure()) return;
  }
}

}  // namespace

TEST(Fuzz, DecodeEncodeRoundTrip) {
  const Tokenizer& tok = v3_tokenizer();
  size_t runs = 0;
  for_budget([&](uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::string s = random_text(rng, 300);
    if (rng() % 8 == 0) s += tok.added_tokens()[rng() % tok.added_tokens().size()].content + random_text(rng, 20);
    auto ids = tok.encode(s);
    auto back = tok.decode(ids, false);
    ASSERT_TRUE(back.ok()) << "seed " << seed;
    ASSERT_EQ(*back, s) << "seed " << seed;
    ++runs;
  });
  EXPECT_GT(runs, 100u);
}

TEST(Fuzz, PiecesCoverTheText) {
  const Tokenizer& tok = v3_tokenizer();
  for_budget([&](uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::string s = random_text(rng, 200);
    if (rng() % 4 == 0) s += std::string("\xff\xc0\x80\xed\xa0\x80", rng() % 7);  // invalid bytes too
    std::string joined;
    for (auto p : tok.pre_tokenizer().split_to_vector(s)) {
      ASSERT_FALSE(p.empty()) << "seed " << seed;
      joined += p;
    }
    ASSERT_EQ(joined, s) << "seed " << seed;
  });
}

TEST(Fuzz, BpeStrategiesAgree) {
  // Same word through the flat-array path and the heap path: identical ids.
  const Tokenizer& tok = v3_tokenizer();
  for_budget([&](uint64_t seed) {
    std::mt19937_64 rng(seed);
    // One pre-tokenizer piece: a run of letters (possibly long), as raw bytes.
    std::string word;
    size_t n = 1 + rng() % 120;
    static const char* units[] = {"a", "b", "e", "th", "in", "\xe4\xb8\xad", "\xc3\xa9", "\xe3\x81\x82", "q"};
    while (word.size() < n) word += units[rng() % (sizeof(units) / sizeof(*units))];
    std::vector<int32_t> small, large;
    if (word.size() > Bpe::kSmallWord) word.resize(Bpe::kSmallWord);  // encode_small's limit
    tok.bpe_for_testing().encode_small(word, small);
    tok.bpe_for_testing().encode_large(word, large);
    ASSERT_EQ(small, large) << "seed " << seed << " word " << word;
  });
}

TEST(Fuzz, IncrementalDecodeEqualsDecode) {
  // Random id sequences, biased towards tokens that are partial UTF-8 sequences: streaming
  // output is valid UTF-8 at every step and adds up to decode() of the whole.
  const Tokenizer& tok = v3_tokenizer();
  std::vector<int32_t> partial;
  for (int32_t id = 0; id < tok.vocab_size(); ++id)
    if (unicode::complete_utf8_prefix(tok.token_bytes(id)) != tok.token_bytes(id).size() ||
        find_invalid_utf8(tok.token_bytes(id)))
      partial.push_back(id);
  ASSERT_GT(partial.size(), 100u);
  for_budget([&](uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::vector<int32_t> ids(rng() % 40);
    for (auto& id : ids)
      id = rng() % 2 ? partial[rng() % partial.size()] : static_cast<int32_t>(rng() % static_cast<uint64_t>(tok.vocab_size()));
    bool skip = rng() % 2;
    IncrementalDecoder dec(tok, skip);
    std::string streamed;
    for (int32_t id : ids) {
      std::string part = dec.push(id);
      ASSERT_FALSE(find_invalid_utf8(part).has_value()) << "seed " << seed;
      streamed += part;
    }
    streamed += dec.flush();
    ASSERT_EQ(streamed, *tok.decode(ids, skip)) << "seed " << seed;
  });
}
