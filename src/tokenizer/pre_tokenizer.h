#pragma once
// The pre-tokenizer of DeepSeek-V3's tokenizer.json: a Sequence of three `Split` regexes, all
// `Isolated` (matches and the text between them both become pieces), then `ByteLevel`
// without its own regex. Each split runs on every piece the previous one produced.
//
// Regexes from a file are never compiled: a backtracking engine on an attacker's pattern is a
// denial of service (`(a+)+`). Each known pattern string is recognised and implemented
// by hand with the exact leftmost-first semantics of the regex (Oniguruma, which HF
// tokenizers uses); an unrecognised pattern is a load error naming it.

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "base/json.h"
#include "base/result.h"

namespace dsv3 {

// Receives the pieces of a text as byte ranges [begin, end), in order, covering the text.
class PieceSink {
 public:
  virtual void piece(size_t begin, size_t end) = 0;

 protected:
  ~PieceSink() = default;
};

enum class SplitRule {
  kDigitGroups,  // \p{N}{1,3}
  kCjkRuns,      // [\u4e00-\u9fa5\u3040-\u309f\u30a0-\u30ff]+
  kDeepSeekV3Words,  // [!"#...~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
};

class PreTokenizer {
 public:
  // Builds from the "pre_tokenizer" node of tokenizer.json; errors name the unsupported part.
  static Result<PreTokenizer> from_json(const Json& node);
  // The DeepSeek-V3 sequence, for tests.
  static PreTokenizer deepseek_v3();

  // Splits `text` into pieces (invalid UTF-8 bytes count as characters of no class).
  void split(std::string_view text, PieceSink& sink) const;
  // Convenience for tests: the pieces as strings.
  std::vector<std::string_view> split_to_vector(std::string_view text) const;

  const std::vector<SplitRule>& rules() const { return rules_; }

 private:
  std::vector<SplitRule> rules_;
};

// The regex source each rule implements, exactly as tokenizer.json spells it.
std::string_view split_rule_pattern(SplitRule rule);

}  // namespace dsv3
