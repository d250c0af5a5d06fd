#pragma once
// Which tokens of the vocabulary keep JSON output valid: for a matcher state, the set of tokens
// whose bytes the matcher accepts, found by walking the vocabulary's trie with the matcher.
//
// Inside a string most tokens are valid, and a walk would visit most of the trie; so tokens that
// are valid at any character boundary of a string without a length limit nearby (no quote, no
// backslash, no control byte, whole UTF-8 characters: "plain" tokens) are set in one pass over a
// precomputed list, and only the other tokens are walked.

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "grammar/json_matcher.h"
#include "grammar/token_trie.h"

namespace dsv3::grammar {

// A set of token ids, one bit each.
struct TokenMask {
  std::vector<uint64_t> words;
  void reset(int64_t vocab) { words.assign(static_cast<size_t>((vocab + 63) / 64), 0); }
  void set(int32_t id) { words[static_cast<size_t>(id) >> 6] |= uint64_t{1} << (id & 63); }
  bool test(int32_t id) const { return words[static_cast<size_t>(id) >> 6] >> (id & 63) & 1; }
  int64_t count() const;
  bool any() const {
    return std::any_of(words.begin(), words.end(), [](uint64_t w) { return w != 0; });
  }
};

// The vocabulary as the mask needs it: built once per tokenizer, shared by every request.
class TokenVocabulary {
 public:
  // token_bytes[id]: what token id decodes to; empty for tokens JSON output never uses
  // (special tokens, unused ids).
  explicit TokenVocabulary(std::vector<std::string> token_bytes);

  int64_t size() const { return static_cast<int64_t>(bytes_.size()); }
  const std::string& bytes(int32_t id) const { return bytes_[static_cast<size_t>(id)]; }
  const TokenTrie& all_tokens() const { return all_; }
  const TokenTrie& non_plain_tokens() const { return non_plain_; }
  // Plain tokens sorted by their number of characters, and that number.
  const std::vector<int32_t>& plain_tokens() const { return plain_; }
  const std::vector<uint32_t>& plain_chars() const { return plain_chars_; }
  // The plain tokens of at most `chars` characters, as a mask (set word by word: inside a
  // string most of the vocabulary is allowed, and setting it token by token is most of a
  // mask's cost).
  const TokenMask& plain_tokens_up_to(uint64_t chars) const {
    return plain_masks_[static_cast<size_t>(std::min<uint64_t>(chars, plain_masks_.size() - 1))];
  }

 private:
  std::vector<std::string> bytes_;
  TokenTrie all_, non_plain_;
  std::vector<int32_t> plain_;
  std::vector<uint32_t> plain_chars_;
  std::vector<TokenMask> plain_masks_;  // [c]: plain tokens of at most c characters
};

// Computes masks, keeping the walk's per-depth states between calls (no allocation once warm).
class MaskComputer {
 public:
  // mask = the tokens whose bytes `state` accepts (mask is reset to the vocabulary's size).
  // With `completion_limit` >= 0, only those after which the value can be completed in at most
  // that many bytes (completion_bytes()).
  void compute(const Schema& schema, const TokenVocabulary& vocab, const MatchState& state, TokenMask& mask,
               int64_t completion_limit = -1);

 private:
  void walk(const Schema& schema, const TokenTrie& trie, const MatchState& state, TokenMask& mask,
            int64_t completion_limit);
  std::vector<MatchState> levels_;
  std::vector<ByteSet> level_bytes_;  // possible_next_bytes(levels_[d]), for nodes with children
};

}  // namespace dsv3::grammar
