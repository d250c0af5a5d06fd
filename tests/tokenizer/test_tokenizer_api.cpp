// Tokenizer API properties that need no external expectations: added tokens, BOS rules,
// decode errors, token bytes, the incremental decoder, long inputs, thread safety.

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <random>
#include <thread>

#include "tokenizer/incremental_decoder.h"
#include "tokenizer/unicode.h"
#include "tokenizer_test_util.h"

using namespace dsv3;
using namespace dsv3::test;

namespace {
const std::string kBos = "<\xef\xbd\x9c" "begin\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>";
}

TEST(TokenizerApi, SizesAndSpecialIds) {
  const Tokenizer& tok = v3_tokenizer();
  // Highest id 128814 + 1 (config.json's vocab_size 129280 pads the embedding further).
  EXPECT_EQ(tok.vocab_size(), 128815);
  EXPECT_EQ(tok.bos_id(), 0);
  EXPECT_EQ(tok.eos_id(), 1);
  EXPECT_TRUE(tok.add_bos_token());
  EXPECT_TRUE(tok.is_special(0));
  EXPECT_TRUE(tok.is_special(1));
  EXPECT_FALSE(tok.is_special(128803));  // <｜User｜> is added but not special
  EXPECT_FALSE(tok.is_special(5000));
  EXPECT_FALSE(tok.is_special(-1));
  EXPECT_FALSE(tok.is_special(1 << 30));
  EXPECT_EQ(tok.added_tokens().size(), 818u);
}

TEST(TokenizerApi, EveryAddedTokenEncodesToItsId) {
  const Tokenizer& tok = v3_tokenizer();
  for (const AddedToken& t : tok.added_tokens()) {
    EXPECT_EQ(tok.encode(t.content), std::vector<int32_t>{t.id}) << t.content;
    // Inside text too, and decoded back to its content.
    auto ids = tok.encode("a " + t.content + " b");
    EXPECT_EQ(std::count(ids.begin(), ids.end(), t.id), 1) << t.content;
    EXPECT_EQ(*tok.decode(ids, false), "a " + t.content + " b");
    EXPECT_EQ(tok.token_bytes(t.id), t.content);
  }
}

TEST(TokenizerApi, SpecialTokensInUserTextFollowHf) {
  // HF matches added tokens anywhere in the text; the server must escape or reject
  // control strings in user content itself. Near misses are plain text.
  const Tokenizer& tok = v3_tokenizer();
  EXPECT_EQ(tok.encode("<\xef\xbd\x9c" "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>"), std::vector<int32_t>{1});
  for (std::string near : {"<\xef\xbd\x9cUser", "<|User|>", "<\xef\xbd\x9c" "end of sentence\xef\xbd\x9c>", "<think>"}) {
    auto ids = tok.encode(near);
    for (int32_t id : ids) EXPECT_LT(id, 128000) << near;
    EXPECT_EQ(*tok.decode(ids, false), near);
  }
}

TEST(TokenizerApi, BosNeverTwice) {
  const Tokenizer& tok = v3_tokenizer();
  auto hi = tok.encode("hi");
  ASSERT_EQ(hi.size(), 1u);
  EXPECT_EQ(tok.encode("hi", true), (std::vector<int32_t>{0, hi[0]}));
  EXPECT_EQ(tok.encode(kBos + "hi", false), (std::vector<int32_t>{0, hi[0]}));
  EXPECT_EQ(tok.encode(kBos + "hi", true), (std::vector<int32_t>{0, hi[0]}));  // one BOS
  EXPECT_EQ(tok.encode(kBos + kBos, true), (std::vector<int32_t>{0, 0}));     // only the added one is dropped
  EXPECT_EQ(tok.encode("", true), std::vector<int32_t>{0});
  EXPECT_TRUE(tok.encode("", false).empty());  // 0 tokens, which callers refuse as an empty prompt
}

TEST(TokenizerApi, DecodeSkipsSpecialAndRejectsBadIds) {
  const Tokenizer& tok = v3_tokenizer();
  std::vector<int32_t> ids = {0, 128803, tok.encode("hi")[0], 128804, 1};
  EXPECT_EQ(*tok.decode(ids, true), "<\xef\xbd\x9cUser\xef\xbd\x9c>hi<\xef\xbd\x9c" "Assistant\xef\xbd\x9c>");
  EXPECT_EQ(*tok.decode(ids, false), kBos + "<\xef\xbd\x9cUser\xef\xbd\x9c>hi<\xef\xbd\x9c" "Assistant\xef\xbd\x9c><\xef\xbd\x9c" "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>");
  for (int32_t bad : {-1, 128815, 129279, 1 << 30}) {
    std::vector<int32_t> v = {5, bad};
    auto r = tok.decode(v, false);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_NE(r.error().message().find("position 1"), std::string::npos) << r.error().message();
  }
  EXPECT_EQ(*tok.decode(std::vector<int32_t>{}, false), "");
}

TEST(TokenizerApi, TokenBytesAreRawBytes) {
  const Tokenizer& tok = v3_tokenizer();
  // " the"-style tokens decode from the byte-level alphabet (Ġ is a space).
  auto ids = tok.encode(" the");
  ASSERT_EQ(ids.size(), 1u);
  EXPECT_EQ(tok.token_bytes(ids[0]), " the");
  // A token for a lone UTF-8 lead byte has that byte, not a replacement character.
  for (int32_t id = 0; id < 128000; ++id) {
    std::string b = tok.token_bytes(id);
    ASSERT_FALSE(b.empty()) << id;
  }
  EXPECT_EQ(tok.token_bytes(-5), "");
}

TEST(TokenizerApi, NulAndControlBytes) {
  const Tokenizer& tok = v3_tokenizer();  // NUL is a byte like any other: no C-string truncation
  std::string s("a\0b\x01\x7f", 5);
  auto ids = tok.encode(s);
  EXPECT_GE(ids.size(), 3u);
  EXPECT_EQ(*tok.decode(ids, false), s);
}

TEST(TokenizerApi, InvalidUtf8InputRoundTripsBytes) {
  // Documented policy: encode() keeps invalid bytes as bytes (callers validate first).
  const Tokenizer& tok = v3_tokenizer();
  std::string s = "ok\xff\xfe mid\xe4\xb8 end\xc0\xaf";
  auto ids = tok.encode(s);
  std::string bytes;
  for (int32_t id : ids) bytes += tok.token_bytes(id);
  EXPECT_EQ(bytes, s);
  EXPECT_EQ(*tok.decode(ids, false), unicode::to_valid_utf8(s));
  EXPECT_FALSE(find_invalid_utf8(*tok.decode(ids, false)).has_value());
}

TEST(TokenizerApi, LongAndRepeatedInputs) {
  // 1 MB runs of one character finish (the benchmark reports the time) and round-trip.
  const Tokenizer& tok = v3_tokenizer();
  // 'a', CJK, '_', space and emoji at 1 MB; a few more shapes at 64 KB.
  for (std::string unit : {"a", "\xe4\xb8\xad", "_", " ", "\xf0\x9f\x98\x80", "7", "\n", "ab", "\r\n "}) {
    size_t size = unit == "7" || unit == "\n" || unit == "ab" || unit == "\r\n " ? (64u << 10) : (1u << 20);
    std::string s;
    while (s.size() < size) s += unit;
    auto ids = tok.encode(s);
    EXPECT_EQ(*tok.decode(ids, false), s) << unit;
  }
}

TEST(TokenizerApi, DigitsSplitInGroupsOfThreeFromTheLeft) {
  const Tokenizer& tok = v3_tokenizer();
  for (int n = 1; n <= 30; ++n) {
    std::string digits;
    for (int i = 0; i < n; ++i) digits += static_cast<char>('0' + (i * 7 + 3) % 10);
    std::string text = "x" + digits + "y";
    auto pieces = tok.pre_tokenizer().split_to_vector(text);
    ASSERT_EQ(pieces.size(), 2u + static_cast<size_t>((n + 2) / 3)) << digits;
    for (size_t i = 1; i + 1 < pieces.size(); ++i)
      EXPECT_EQ(pieces[i], digits.substr((i - 1) * 3, 3));
  }
}

TEST(IncrementalDecoder, HoldsSplitCharactersAndMatchesDecode) {
  const Tokenizer& tok = v3_tokenizer();
  std::string text = "emoji \xf0\x9f\xa4\x96\xf0\x9f\x9a\x80 \xe4\xbd\xa0\xe5\xa5\xbd \xf0\x9f\x91\xa8\xe2\x80\x8d\xf0\x9f\x91\xa9 done";
  auto ids = tok.encode(kBos + text);
  IncrementalDecoder dec(tok, /*skip_special_tokens=*/true);
  std::string streamed;
  bool held = false;
  for (int32_t id : ids) {
    std::string part = dec.push(id);
    EXPECT_FALSE(find_invalid_utf8(part).has_value());
    held |= dec.pending_bytes() > 0;
    streamed += part;
  }
  streamed += dec.flush();
  EXPECT_TRUE(held) << "the text should contain a character split across tokens";
  EXPECT_EQ(streamed, text);
}

TEST(IncrementalDecoder, InvalidTailBecomesReplacementAtFlush) {
  const Tokenizer& tok = v3_tokenizer();
  // Tokens for single bytes: E4 B8 (an incomplete 3-byte character).
  auto e4 = tok.encode("\xe4"), b8 = tok.encode("\xb8");
  ASSERT_EQ(e4.size(), 1u);
  ASSERT_EQ(b8.size(), 1u);
  IncrementalDecoder dec(tok, false);
  EXPECT_EQ(dec.push(tok.encode("a")[0]), "a");
  EXPECT_EQ(dec.push(e4[0]), "");
  EXPECT_EQ(dec.push(b8[0]), "");
  EXPECT_EQ(dec.flush(), "\xef\xbf\xbd");
  // A byte that can never start a character is replaced at once.
  auto ff = tok.encode("\xff");
  ASSERT_EQ(ff.size(), 1u);
  EXPECT_EQ(dec.push(ff[0]), "\xef\xbf\xbd");
  EXPECT_EQ(dec.push(-3), "");  // unknown ids yield nothing
}

TEST(TokenizerApi, ConcurrentEncodeIsConsistent) {
  const Tokenizer& tok = v3_tokenizer();
  std::mt19937 rng(7);
  std::vector<std::string> texts;
  for (int i = 0; i < 64; ++i) {
    std::string s;
    int n = 50 + static_cast<int>(rng() % 400);
    for (int k = 0; k < n; ++k) s += "ab \xe4\xbd\xa0" "7\n!"[rng() % 10];
    texts.push_back(s);
  }
  std::vector<std::vector<int32_t>> expected;
  for (auto& t : texts) expected.push_back(tok.encode(t));
  std::vector<std::thread> threads;
  std::atomic<int> mismatches{0};
  for (int th = 0; th < 4; ++th)
    threads.emplace_back([&] {
      for (int rep = 0; rep < 5; ++rep)
        for (size_t i = 0; i < texts.size(); ++i)
          if (tok.encode(texts[i]) != expected[i]) ++mismatches;
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(mismatches.load(), 0);
}
