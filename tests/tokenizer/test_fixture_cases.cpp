// The acceptance cases of the fixtures: every encode and chat case of
// tests/fixtures/tokenizer/cases.jsonl, and every case of r1-style/cases.jsonl with that
// directory's template over DeepSeek-V3's tokenizer.json.

#include <gtest/gtest.h>

#include "tokenizer/chat_template.h"
#include "tokenizer_test_util.h"

using namespace dsv3;
using namespace dsv3::test;

namespace {

void check_case(const Tokenizer& tok, const OrderedJson& c, size_t line) {
  std::string kind = c.at("kind");
  if (kind == "encode") {
    std::string text = c.at("text");
    SCOPED_TRACE("line " + std::to_string(line) + " encode " + OrderedJson(text).dump());
    auto ids = tok.encode(text);
    EXPECT_EQ(ids, ids_of(c.at("ids")));
    auto decoded = tok.decode(ids_of(c.at("ids")), false);
    ASSERT_TRUE(decoded.ok()) << decoded.error().message();
    EXPECT_EQ(*decoded, c.at("decoded").get<std::string>());
  } else {
    SCOPED_TRACE("line " + std::to_string(line) + " chat " + c.at("messages").dump());
    ASSERT_NE(tok.chat_template(), nullptr);
    auto text = tok.apply_chat_template(c.at("messages"), c.at("add_generation_prompt").get<bool>(), OrderedJson::object());
    ASSERT_TRUE(text.ok()) << text.error().message();
    EXPECT_EQ(*text, c.at("text").get<std::string>());
    // The template writes BOS itself; add_bos must not add a second one.
    EXPECT_EQ(tok.encode(*text, /*add_bos=*/true), ids_of(c.at("ids")));
    EXPECT_EQ(tok.encode(*text), ids_of(c.at("ids")));
  }
}

}  // namespace

TEST(FixtureCases, V3EncodeDecodeAndChat) {
  auto cases = read_jsonl(tokenizer_cases_dir() + "/cases.jsonl");
  ASSERT_GT(cases.size(), 60u);
  for (size_t i = 0; i < cases.size(); ++i) check_case(v3_tokenizer(), cases[i], i + 1);
}

TEST(FixtureCases, R1StyleTemplate) {
  // The model directory is V3's tokenizer.json plus r1-style/tokenizer_config.json.
  auto tok = Tokenizer::from_strings(read_file(tokenizer_dir() + "/tokenizer.json"),
                                     read_file(tokenizer_cases_dir() + "/r1-style/tokenizer_config.json"), "r1-style");
  ASSERT_TRUE(tok.ok()) << tok.error().message();
  auto cases = read_jsonl(tokenizer_cases_dir() + "/r1-style/cases.jsonl");
  ASSERT_EQ(cases.size(), 4u);
  for (size_t i = 0; i < cases.size(); ++i) check_case(**tok, cases[i], i + 1);
}
