#pragma once
// Added tokens (special and not) are found in the text before pre-tokenization, as HF's
// AddedVocabulary does: first the tokens declared with normalized=false are matched on the
// raw text, then those with normalized=true on what remains (the normalizer here is the
// identity, so "normalized" text is the text itself). Matching is leftmost-longest; the
// text between matches goes to the pre-tokenizer and BPE.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace dsv3 {

struct AddedToken {
  int32_t id = -1;
  std::string content;
  bool special = false;
  bool normalized = false;
  bool lstrip = false;       // the match absorbs whitespace on its left
  bool rstrip = false;       // ... and on its right
  bool single_word = false;  // matches only when not inside a word
};

// One step of the split: either text for the BPE path, or an added token's id.
struct Segment {
  size_t begin = 0, end = 0;  // byte range in the input
  int32_t added_id = -1;       // >= 0: this range is that added token
};

class AddedTokenMatcher {
 public:
  AddedTokenMatcher() = default;
  explicit AddedTokenMatcher(const std::vector<AddedToken>& tokens);

  // Splits text[begin, end) into text segments and added-token segments, in order.
  void split(std::string_view text, size_t begin, size_t end, std::vector<Segment>& out) const;
  bool empty() const { return tokens_.empty(); }

 private:
  struct Node {
    std::vector<std::pair<uint8_t, int32_t>> children;  // byte -> node index
    int32_t token = -1;                                 // index in tokens_ when a token ends here
  };
  // Longest token starting at pos (index in tokens_ and its end), or -1.
  std::pair<int32_t, size_t> longest_at(std::string_view text, size_t pos, size_t end) const;

  std::vector<AddedToken> tokens_;
  std::vector<Node> nodes_{Node{}};
  bool first_byte_[256] = {};
};

// Splits text with the non-normalized tokens, then the normalized ones.
class AddedVocabulary {
 public:
  AddedVocabulary() = default;
  explicit AddedVocabulary(const std::vector<AddedToken>& tokens);
  std::vector<Segment> split(std::string_view text) const;
  // The same for text[begin, end) (offsets stay those of `text`), appended to `out`.
  void split(std::string_view text, size_t begin, size_t end, std::vector<Segment>& out) const;

 private:
  AddedTokenMatcher raw_, normalized_;
};

}  // namespace dsv3
