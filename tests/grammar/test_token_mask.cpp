// Token masks over DeepSeek-V3's real vocabulary: the trie walk (and the plain-string shortcut)
// against the definition, token by token: a token is allowed exactly when the matcher accepts
// its bytes.

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>

#include "grammar/token_constraint.h"
#include "test_util.h"
#include "tokenizer/tokenizer.h"

namespace dsv3::grammar {
namespace {

const TokenVocabulary& v3_vocabulary() {
  static const TokenVocabulary* vocab = [] {
    auto tok = Tokenizer::load(test::v3_tokenizer_dir());
    EXPECT_TRUE(tok.ok());
    std::vector<std::string> bytes(static_cast<size_t>((*tok)->vocab_size()));
    for (int32_t id = 0; id < (*tok)->vocab_size(); ++id)
      if (!(*tok)->is_special(id)) bytes[static_cast<size_t>(id)] = (*tok)->token_bytes(id);
    return new TokenVocabulary(std::move(bytes));
  }();
  return *vocab;
}

// The mask at the state after `prefix`, and the same set found by trying every token alone.
void expect_mask_is_definition(const Schema& schema, std::string_view prefix) {
  const TokenVocabulary& vocab = v3_vocabulary();
  JsonMatcher m(schema);
  ASSERT_TRUE(m.advance(prefix)) << prefix;
  TokenMask mask;
  MaskComputer computer;
  computer.compute(schema, vocab, m.state(), mask);
  int64_t expected = 0;
  for (int32_t id = 0; id < vocab.size(); ++id) {
    JsonMatcher t = m;
    const bool ok = !vocab.bytes(id).empty() && t.advance(vocab.bytes(id));
    expected += ok;
    ASSERT_EQ(mask.test(id), ok) << "after '" << prefix << "', token " << id << " '" << vocab.bytes(id) << "'";
  }
  EXPECT_EQ(mask.count(), expected);
  EXPECT_GT(expected, 0) << "a dead end after '" << prefix << "'";
}

TEST(TokenMask, MatchesTheMatcherTokenByToken) {
  const Schema any = any_json_schema();
  for (const char* prefix : {"", "{", "{\"a\"", "{\"a\":", "{\"a\": \"x", "{\"a\": \"x\\", "{\"a\": \"\xE4\xBD", "[1", "[1.",
                             "[-", "[tr", "{\"a\": [\"\\u00"})
    expect_mask_is_definition(any, prefix);
  auto s = compile_json_schema(Json::parse(R"({"type": "object", "properties": {"name": {"type": "string",
      "maxLength": 5}, "kind": {"enum": ["cat", "dog", "catfish"]}, "n": {"type": "integer"}},
      "required": ["name", "kind"], "additionalProperties": false})"));
  ASSERT_TRUE(s.ok()) << s.error().message();
  for (const char* prefix : {"", "{", "{\"", "{\"na", "{\"name\": \"ab", "{\"name\": \"abcd", "{\"name\": \"abcde",
                             "{\"kind\": \"cat", "{\"kind\": \"dog\", \"n\": 1"})
    expect_mask_is_definition(*s, prefix);
}

// With a completion limit: a token is allowed exactly when the matcher accepts its bytes and
// the value can then be completed in at most `limit` bytes. Inside strings (the plain-token
// shortcut) at limits just below and at the current shortest completion, with and without a
// minLength still pending.
TEST(TokenMask, WithACompletionLimitTheMaskIsTheDefinition) {
  const TokenVocabulary& vocab = v3_vocabulary();
  auto s = compile_json_schema(Json::parse(R"({"type": "object", "properties": {"a": {"type": "string"},
      "b": {"type": "string", "minLength": 4, "maxLength": 9}}, "required": ["a", "b"], "additionalProperties": false})"));
  ASSERT_TRUE(s.ok()) << s.error().message();
  for (const char* prefix : {"{\"a\": \"xy", "{\"a\": \"q\", \"b\": \"x", "{\"a\": \"q\", \"b\": \"wxyz"}) {
    JsonMatcher m(*s);
    ASSERT_TRUE(m.advance(prefix)) << prefix;
    const int64_t now = completion_bytes(*s, m.state());
    for (int64_t limit : {now - 1, now}) {
      if (limit < 0) continue;
      TokenMask mask;
      MaskComputer computer;
      computer.compute(*s, vocab, m.state(), mask, limit);
      for (int32_t id = 0; id < vocab.size(); ++id) {
        JsonMatcher t = m;
        const bool ok = !vocab.bytes(id).empty() && t.advance(vocab.bytes(id)) &&
                        completion_bytes(*s, t.state()) <= static_cast<uint64_t>(limit);
        ASSERT_EQ(mask.test(id), ok) << "after '" << prefix << "', limit " << limit << " (now " << now << "), token "
                                     << id << " '" << vocab.bytes(id) << "'";
      }
    }
  }
}

TEST(TokenMask, EndTokensOnlyOnceComplete) {
  auto schema = std::make_shared<Schema>(any_json_object_schema());
  auto vocab = std::shared_ptr<const TokenVocabulary>(&v3_vocabulary(), [](const TokenVocabulary*) {});
  auto grammar = std::make_shared<JsonGrammar>(JsonGrammar{schema, vocab, {1}});
  TokenConstraint c(grammar, 0);
  EXPECT_FALSE(c.allowed().test(1));
  EXPECT_FALSE(c.accept(1).ok());
  const int32_t open = [&] {
    for (int32_t id = 0; id < vocab->size(); ++id) if (vocab->bytes(id) == "{}") return id;
    return -1;
  }();
  ASSERT_GE(open, 0);
  ASSERT_TRUE(c.accept(open).ok());
  EXPECT_TRUE(c.complete());
  EXPECT_EQ(c.allowed().count(), 1);  // nothing follows a whole object but the end
  EXPECT_TRUE(c.allowed().test(1));
}

}  // namespace
}  // namespace dsv3::grammar

namespace dsv3::grammar {
namespace {

// Random walks through the mask (every allowed token equally likely, as a random-weight model
// at a high temperature would draw): with a budget of max_tokens, every output ends with the
// end token within the budget, as a complete value.
TEST(TokenMask, RandomOutputsFinishWithinTheirBudget) {
  auto vocab = std::shared_ptr<const TokenVocabulary>(&v3_vocabulary(), [](const TokenVocabulary*) {});
  const char* schemas[] = {
      R"({"type": "object"})",
      R"({"type": "object", "properties": {"name": {"type": "string"}, "tags": {"type": "array", "items":
         {"type": "string"}}, "n": {"type": "number"}, "child": {"type": "object", "properties": {"ok":
         {"type": "boolean"}}, "required": ["ok"]}}, "required": ["name", "tags", "child"], "additionalProperties": false})",
      R"({"type": "array", "items": {"anyOf": [{"type": "integer"}, {"type": "object", "properties": {"k":
         {"enum": ["x", "yy"]}}, "required": ["k"], "additionalProperties": false}]}, "minItems": 2})"};
  uint64_t rng = 12345;
  for (const char* text : schemas) {
    auto compiled = compile_json_schema(Json::parse(text));
    ASSERT_TRUE(compiled.ok()) << compiled.error().message();
    auto schema = std::make_shared<Schema>(std::move(compiled).value());
    auto grammar = std::make_shared<JsonGrammar>(JsonGrammar{schema, vocab, {1}});
    for (int64_t budget : {48, 96}) {  // the second schema's shortest value is 41 bytes
      for (int run = 0; run < 10; ++run) {
        TokenConstraint c(grammar, budget);
        std::string out;
        bool ended = false;
        for (int64_t t = 0; t < budget && !ended; ++t) {
          const TokenMask& m = c.allowed();
          const int64_t n = m.count();
          ASSERT_GT(n, 0) << out;
          rng = rng * 6364136223846793005ull + 1442695040888963407ull;
          int64_t pick = static_cast<int64_t>((rng >> 33) % static_cast<uint64_t>(n));
          int32_t token = -1;
          for (int32_t id = 0; id < vocab->size() && token < 0; ++id)
            if (m.test(id) && pick-- == 0) token = id;
          ASSERT_TRUE(c.accept(token).ok());
          if (token == 1) ended = true;
          else out += vocab->bytes(token);
        }
        EXPECT_TRUE(ended) << "schema " << text << ", budget " << budget << ": " << out;
        JsonMatcher check(*schema);
        EXPECT_TRUE(check.advance(out) && check.complete()) << out;
      }
    }
  }
}

}  // namespace
}  // namespace dsv3::grammar
