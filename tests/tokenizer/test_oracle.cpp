// Encode cases beyond the fixture (data/oracle_encode.jsonl, 496 texts): digit runs of 1 to
// 7, whitespace runs before and after newlines, punctuation runs, special-token strings in
// text, combining marks / ZWJ / RTL / BOM / U+2028 / U+10FFFF / NFC vs NFD, mixed
// scripts, and 430 random strings over a mixed alphabet. Expected pieces and ids come from a
// separate Python implementation written for this purpose (the `regex` module running the
// tokenizer.json patterns with \s spelled as Unicode White_Space, a textbook O(n^2) BPE over
// the merges, HF's added-token split); it agrees with every case of the fixture's
// cases.jsonl. Not HF tokenizers itself (unavailable here), so a shared misreading of HF is
// possible; the fixture cases guard against that.

#include <gtest/gtest.h>

#include "tokenizer_test_util.h"

using namespace dsv3;
using namespace dsv3::test;

TEST(Oracle, PiecesAndIdsMatchIndependentImplementation) {
  const Tokenizer& tok = v3_tokenizer();
  auto cases = read_jsonl(std::string(DSV3_SOURCE_DIR) + "/tests/tokenizer/data/oracle_encode.jsonl");
  ASSERT_GT(cases.size(), 400u);
  size_t piece_checks = 0;
  for (size_t i = 0; i < cases.size(); ++i) {
    std::string text = cases[i].at("text");
    SCOPED_TRACE("case " + std::to_string(i + 1) + ": " + OrderedJson(text).dump());
    EXPECT_EQ(tok.encode(text), ids_of(cases[i].at("ids")));
    if (text.find("<") == std::string::npos) {  // no added token: the pieces are the whole text's
      auto pieces = tok.pre_tokenizer().split_to_vector(text);
      std::vector<std::string> got(pieces.begin(), pieces.end());
      EXPECT_EQ(got, cases[i].at("pieces").get<std::vector<std::string>>());
      ++piece_checks;
    }
    auto decoded = tok.decode(tok.encode(text), false);
    ASSERT_TRUE(decoded.ok());
    EXPECT_EQ(*decoded, text);
  }
  EXPECT_GT(piece_checks, 400u);
}
