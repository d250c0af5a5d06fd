// Defects in tokenizer.json / tokenizer_config.json: each is a load error naming the file and
// the entry. A small synthetic tokenizer (256 byte tokens, a few merges,
// the DeepSeek-V3 pre-tokenizer) is edited one defect at a time.

#include <gtest/gtest.h>

#include <chrono>

#include "tokenizer/unicode.h"
#include "tokenizer_test_util.h"

using namespace dsv3;
using namespace dsv3::test;

namespace {

std::string spelled(const std::string& bytes) {
  std::string out;
  for (unsigned char c : bytes) unicode::append_utf8(out, unicode::byte_to_char(c));
  return out;
}

OrderedJson small_tokenizer() {
  OrderedJson vocab = OrderedJson::object();
  for (int b = 0; b < 256; ++b) vocab[spelled(std::string(1, static_cast<char>(b)))] = b;
  vocab[spelled("ab")] = 256;
  vocab[spelled(" a")] = 257;
  vocab[spelled("abc")] = 258;
  OrderedJson pre = OrderedJson::array();
  for (SplitRule r : {SplitRule::kDigitGroups, SplitRule::kCjkRuns, SplitRule::kDeepSeekV3Words})
    pre.push_back({{"type", "Split"}, {"pattern", {{"Regex", std::string(split_rule_pattern(r))}}}, {"behavior", "Isolated"}, {"invert", false}});
  pre.push_back({{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", false}});
  return {
      {"version", "1.0"},
      {"added_tokens",
       {{{"id", 259}, {"content", "<s>"}, {"special", true}, {"normalized", false}},
        {{"id", 260}, {"content", "<|user|>"}, {"special", false}, {"normalized", true}}}},
      {"normalizer", {{"type", "Sequence"}, {"normalizers", OrderedJson::array()}}},
      {"pre_tokenizer", {{"type", "Sequence"}, {"pretokenizers", pre}}},
      {"decoder", {{"type", "ByteLevel"}}},
      {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", {spelled("a") + " " + spelled("b"), spelled(" ") + " " + spelled("a"), OrderedJson::array({spelled("ab"), spelled("c")})}}}},
  };
}

OrderedJson small_config() {
  return {{"add_bos_token", true}, {"bos_token", "<s>"}, {"eos_token", {{"content", "<s>"}}},
          {"chat_template", "{{ bos_token }}{% for m in messages %}{{ m.content }}{% endfor %}"}};
}

Result<std::unique_ptr<Tokenizer>> load(const OrderedJson& tj, const OrderedJson& cfg = small_config()) {
  return Tokenizer::from_strings(tj.dump(), cfg.dump(), "dir");
}

void expect_error(const Result<std::unique_ptr<Tokenizer>>& r, const std::vector<std::string>& parts) {
  ASSERT_FALSE(r.ok());
  for (const auto& p : parts) EXPECT_NE(r.error().message().find(p), std::string::npos) << r.error().message();
}

}  // namespace

TEST(TokenizerBadInputs, SmallTokenizerLoadsAndWorks) {
  auto tok = load(small_tokenizer());
  ASSERT_TRUE(tok.ok()) << tok.error().message();
  EXPECT_EQ((*tok)->vocab_size(), 261);
  EXPECT_EQ((*tok)->encode("abc a"), (std::vector<int32_t>{258, 257}));
  EXPECT_EQ((*tok)->encode("<s>x<|user|>", true), (std::vector<int32_t>{259, 'x', 260}));
  EXPECT_EQ(*(*tok)->apply_chat_template(Json::parse(R"([{"role":"user","content":"q"}])"), true), "<s>q");
}

TEST(TokenizerBadInputs, MissingFiles) {  // each file named when it is absent
  auto r = Tokenizer::load("/nonexistent-dir");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("/nonexistent-dir/tokenizer.json"), std::string::npos);
  TempDir dir;
  write_file(dir / "tokenizer.json", small_tokenizer().dump());
  r = Tokenizer::load(dir.path());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("tokenizer_config.json"), std::string::npos);
  write_file(dir / "tokenizer_config.json", small_config().dump());
  EXPECT_TRUE(Tokenizer::load(dir.path()).ok());
}

TEST(TokenizerBadInputs, MalformedJson) {  // including 100k nested brackets (no stack overflow)
  expect_error(Tokenizer::from_strings("{\"model\": {\"vocab\": {\"a\": 1,}}}", "", "d"), {"d/tokenizer.json", "line 1"});
  expect_error(Tokenizer::from_strings("[1, 2]", "", "d"), {"top level"});
  expect_error(Tokenizer::from_strings(std::string(100000, '['), "", "d"), {"nested deeper"});
  expect_error(Tokenizer::from_strings("{\"a\": 1, \"a\": 2}", "", "d"), {"duplicate key", "\"a\""});
  auto tj = small_tokenizer();
  expect_error(Tokenizer::from_strings(tj.dump(), "{\"bos_token\": ", "d"), {"tokenizer_config.json"});
}

TEST(TokenizerBadInputs, ModelType) {  // only BPE
  auto tj = small_tokenizer();
  tj["model"]["type"] = "WordPiece";
  expect_error(load(tj), {"model.type", "WordPiece"});
  tj = small_tokenizer();
  tj["model"].erase("merges");
  expect_error(load(tj), {"model.merges missing"});
  tj = small_tokenizer();
  tj.erase("model");
  expect_error(load(tj), {"'model'"});
}

TEST(TokenizerBadInputs, VocabIds) {  // ids out of range, duplicated or not integers; byte tokens missing
  auto tj = small_tokenizer();
  tj["model"]["vocab"]["zz"] = 1 << 30;
  expect_error(load(tj), {"model.vocab entry", "zz", "out of range"});
  tj = small_tokenizer();
  tj["model"]["vocab"]["zz"] = -1;
  expect_error(load(tj), {"zz", "out of range"});
  tj = small_tokenizer();
  tj["model"]["vocab"]["zz"] = 5;
  expect_error(load(tj), {"zz", "duplicate id 5"});
  tj = small_tokenizer();
  tj["model"]["vocab"]["zz"] = "7";
  expect_error(load(tj), {"zz", "integer"});
  tj = small_tokenizer();
  tj["model"]["vocab"].erase(spelled("\n"));
  expect_error(load(tj), {"no token for byte 0x0A"});
}

TEST(TokenizerBadInputs, Merges) {  // unknown tokens, malformed entries (string and pair forms are both valid)
  auto tj = small_tokenizer();
  tj["model"]["merges"].push_back("q zzz");
  expect_error(load(tj), {"model.merges entry 3", "zzz", "not in model.vocab"});
  tj = small_tokenizer();
  tj["model"]["merges"].push_back("x y");  // both exist, "xy" does not
  expect_error(load(tj), {"model.merges entry 3", "\"xy\""});
  tj = small_tokenizer();
  tj["model"]["merges"].push_back("abc");
  expect_error(load(tj), {"model.merges entry 3", "two tokens"});
  tj = small_tokenizer();
  tj["model"]["merges"].push_back(OrderedJson::array({"a"}));
  expect_error(load(tj), {"model.merges entry 3", "pair"});
  tj = small_tokenizer();
  tj["model"]["merges"].push_back(7);
  expect_error(load(tj), {"model.merges entry 3"});
}

TEST(TokenizerBadInputs, AddedTokens) {  // id collisions, empty content, bos/eos not in the vocabulary
  auto tj = small_tokenizer();
  tj["added_tokens"].push_back({{"id", 259}, {"content", "<t>"}, {"special", true}});
  expect_error(load(tj), {"added_tokens[2]", "<t>", "already belongs"});
  tj = small_tokenizer();
  tj["added_tokens"].push_back({{"id", 300}, {"content", ""}, {"special", true}});
  expect_error(load(tj), {"added_tokens[2]", "empty content"});
  tj = small_tokenizer();
  tj["added_tokens"].push_back({{"id", 100}, {"content", "<new>"}, {"special", true}});
  expect_error(load(tj), {"added_tokens[2]", "already belongs"});
  tj = small_tokenizer();
  tj["added_tokens"].push_back({{"content", "<noid>"}});
  expect_error(load(tj), {"added_tokens[2]", "id"});
  auto cfg = small_config();
  cfg["bos_token"] = "<missing>";
  expect_error(load(small_tokenizer(), cfg), {"tokenizer_config.json", "bos_token", "<missing>"});
  cfg = small_config();
  cfg["eos_token"] = 5;
  expect_error(load(small_tokenizer(), cfg), {"eos_token"});
}

TEST(TokenizerBadInputs, PreTokenizer) {  // unknown patterns refused, never compiled
  auto tj = small_tokenizer();
  tj["pre_tokenizer"]["pretokenizers"][2]["pattern"]["Regex"] = "(a+)+$";
  expect_error(load(tj), {"unrecognised pre-tokenizer", "(a+)+$", "never compiled"});
  tj = small_tokenizer();
  tj["pre_tokenizer"]["pretokenizers"][0]["behavior"] = "Removed";
  expect_error(load(tj), {"pre_tokenizer step 0", "Isolated"});
  tj = small_tokenizer();
  tj["pre_tokenizer"] = {{"type", "Whitespace"}};
  expect_error(load(tj), {"Whitespace"});
  tj = small_tokenizer();
  tj["normalizer"] = {{"type", "NFKC"}};
  expect_error(load(tj), {"normalizer"});
}

TEST(TokenizerBadInputs, ChatTemplate) {  // a syntax error fails at load, not at the first request
  auto cfg = small_config();
  cfg["chat_template"] = "line one\n{% for m in messages %}\n{{ m.content }\n{% endfor %}";
  expect_error(load(small_tokenizer(), cfg), {"chat_template", "line 3"});
  cfg["chat_template"] = "{% if x %}\nno end";
  expect_error(load(small_tokenizer(), cfg), {"line", "never closed"});
  cfg["chat_template"] = "{% include 'x.j2' %}";
  expect_error(load(small_tokenizer(), cfg), {"unsupported tag 'include'"});
  cfg.erase("chat_template");
  auto tok = load(small_tokenizer(), cfg);
  ASSERT_TRUE(tok.ok());
  EXPECT_EQ((*tok)->chat_template(), nullptr);
  EXPECT_FALSE((*tok)->apply_chat_template(Json::array(), true).ok());
  cfg["chat_template"] = OrderedJson::array({{{"name", "tool_use"}, {"template", "T"}}, {{"name", "default"}, {"template", "D"}}});
  tok = load(small_tokenizer(), cfg);
  ASSERT_TRUE(tok.ok()) << tok.error().message();
  EXPECT_EQ(*(*tok)->apply_chat_template(Json::array(), true), "D");
}

TEST(TokenizerBadInputs, TopLevelScalar) {  // found by fuzz_tokenizer_json: `2` read an empty stack (UB)
  for (const char* text : {"2", "2y\"", "\"x\"", "-1", "null"})
    expect_error(Tokenizer::from_strings(text, "", "dir"), {"dir"});
}

TEST(TokenizerBadInputs, AMillionMergesLoadInBoundedTime) {
  // A tokenizer.json may be large (the load reads at most 512 MiB and ids below 2^24): a
  // million merges load in time linear in the file, and the merges work. The merges here: all
  // 65,536 byte pairs, then pair + byte until there are a million.
  // The text is written directly: an OrderedJson object of a million keys inserts in
  // linear time per key.
  std::string vocab = "{", merges = "[";
  int32_t next = 0;
  size_t count = 0;
  auto add_token = [&](const std::string& bytes) {
    if (next) vocab += ',';
    vocab += Json(spelled(bytes)).dump() + ":" + std::to_string(next);
    ++next;
  };
  auto add_merge = [&](const std::string& x, const std::string& y) {
    if (count++) merges += ',';
    merges += Json(spelled(x) + " " + spelled(y)).dump();
  };
  for (int b = 0; b < 256; ++b) add_token(std::string(1, static_cast<char>(b)));
  constexpr size_t kMerges = 1'000'000;
  for (int a = 0; a < 256; ++a)
    for (int b = 0; b < 256; ++b) {
      const std::string x(1, static_cast<char>(a)), y(1, static_cast<char>(b));
      add_token(x + y);
      add_merge(x, y);
    }
  for (int p = 0; p < 65536 && count < kMerges; ++p)
    for (int c = 0; c < 256 && count < kMerges; ++c) {
      const std::string pair{static_cast<char>(p >> 8), static_cast<char>(p & 255)}, last(1, static_cast<char>(c));
      add_token(pair + last);
      add_merge(pair, last);
    }
  vocab += "}";
  merges += "]";
  auto tj = small_tokenizer();
  tj["model"]["vocab"] = OrderedJson::object();
  tj["model"]["merges"] = OrderedJson::array();
  tj["added_tokens"] = OrderedJson::array({{{"id", next}, {"content", "<s>"}, {"special", true}, {"normalized", false}}});
  std::string text = tj.dump();
  const std::string empty_vocab = "\"vocab\":{}", empty_merges = "\"merges\":[]";
  text.replace(text.find(empty_vocab), empty_vocab.size(), "\"vocab\":" + vocab);
  text.replace(text.find(empty_merges), empty_merges.size(), "\"merges\":" + merges);
  const auto t0 = std::chrono::steady_clock::now();
  auto tok = Tokenizer::from_strings(text, small_config().dump(), "dir");
  const auto took = std::chrono::steady_clock::now() - t0;
  ASSERT_TRUE(tok.ok()) << tok.error().message();
  EXPECT_EQ((*tok)->vocab_size(), next + 1);
  // "xy" is a pair merge; "xy" + "z" is past the millionth merge, so "xyz" is two tokens.
  EXPECT_EQ((*tok)->encode_ordinary("xy").size(), 1u);
  EXPECT_EQ((*tok)->encode_ordinary("xyz").size(), 2u);
  // Measured at a few seconds under ASan; a quadratic load would take hours.
  EXPECT_LT(took, std::chrono::seconds(60)) << text.size() << " bytes";
}
