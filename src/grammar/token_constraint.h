#pragma once
// Constrained decoding of one sequence: the JSON matcher fed with the tokens the sequence
// accepts, and the mask of the tokens allowed next. The end tokens (EOS) are allowed only once
// the output is a complete value; once it is complete and nothing may follow (an object or array
// at the root), they are the only tokens allowed, so generation ends there.

#include <cstdint>
#include <memory>
#include <vector>

#include "base/result.h"
#include "grammar/json_matcher.h"
#include "grammar/output_constraint.h"
#include "grammar/token_mask.h"

namespace dsv3::grammar {

// What a request asks for, shared by its sequences.
struct JsonGrammar {
  std::shared_ptr<const Schema> schema;
  std::shared_ptr<const TokenVocabulary> vocabulary;
  std::vector<int32_t> end_tokens;  // allowed once the output is complete
};

// With a token budget (the request's max_tokens), the mask also keeps the output finishable:
// only tokens after which the shortest completion, one byte per token, and the end token fit
// in the tokens left. A budget too small for the shortest value from the start cannot be kept;
// the output is then cut at the budget like any other.
class TokenConstraint : public OutputConstraint {
 public:
  // max_tokens <= 0: no budget.
  TokenConstraint(std::shared_ptr<const JsonGrammar> grammar, int64_t max_tokens);
  // The tokens allowed next (computed once per position).
  const TokenMask& allowed() override;
  // Feeds a generated token. Error when the mask did not allow it.
  Status accept(int32_t token) override;
  bool complete() const override { return matcher_.complete(); }

 private:
  std::shared_ptr<const JsonGrammar> grammar_;
  JsonMatcher matcher_;
  MaskComputer computer_;
  TokenMask mask_;
  bool mask_valid_ = false;
  int64_t tokens_left_ = -1;  // -1: no budget
};

}  // namespace dsv3::grammar
