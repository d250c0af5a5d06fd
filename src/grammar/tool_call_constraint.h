#pragma once
// Constrained decoding of a forced tool call (tool_choice "required" or a named function):
// the output is one call in the model's own markup. Per tool, a fixed token sequence opens the
// call (the markup and the tool's name), the arguments follow as a JSON value of the tool's
// parameter schema (a TokenConstraint, the same matcher as response_format), a fixed token
// sequence closes the call, and an end token ends the output.
//
// With several tools (tool_choice "required") the opening sequences are followed token by
// token while more than one still matches; the tool whose opening is complete first is the
// one called (openings end in the separator or fence that follows the name, so one tool's
// opening is not another's prefix).

#include <cstdint>
#include <memory>
#include <vector>

#include "grammar/output_constraint.h"
#include "grammar/token_constraint.h"

namespace dsv3::grammar {

struct ToolCallOption {
  std::vector<int32_t> opening;  // forced before the arguments; not empty
  // The arguments' schema, without end tokens: the closing follows once the value is whole.
  std::shared_ptr<const JsonGrammar> arguments;
  std::vector<int32_t> closing;  // forced after the arguments; not empty
};

struct ToolCallGrammar {
  std::vector<ToolCallOption> tools;  // not empty
  int64_t vocabulary_size = 0;
  std::vector<int32_t> end_tokens;    // allowed once the call is closed
};

class ToolCallConstraint : public OutputConstraint {
 public:
  // max_tokens <= 0: no budget. With one, the arguments are steered to leave room for the
  // closing sequence and the end token.
  ToolCallConstraint(std::shared_ptr<const ToolCallGrammar> grammar, int64_t max_tokens);
  const TokenMask& allowed() override;
  Status accept(int32_t token) override;
  bool complete() const override { return phase_ == Phase::Closing && pos_ == closing().size(); }

 private:
  enum class Phase { Opening, Arguments, Closing };
  const std::vector<int32_t>& closing() const { return grammar_->tools[chosen_].closing; }
  void start_arguments();

  std::shared_ptr<const ToolCallGrammar> grammar_;
  Phase phase_ = Phase::Opening;
  size_t pos_ = 0;               // tokens of the opening (or closing) sequence accepted
  std::vector<size_t> live_;     // Opening: tools whose opening matches so far
  size_t chosen_ = 0;            // from Arguments on: the tool being called
  std::unique_ptr<TokenConstraint> arguments_;
  TokenMask mask_;
  bool mask_valid_ = false;
  int64_t tokens_left_ = -1;     // -1: no budget
};

}  // namespace dsv3::grammar
