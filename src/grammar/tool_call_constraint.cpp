#include "grammar/tool_call_constraint.h"

#include <algorithm>

namespace dsv3::grammar {

ToolCallConstraint::ToolCallConstraint(std::shared_ptr<const ToolCallGrammar> grammar, int64_t max_tokens)
    : grammar_(std::move(grammar)), tokens_left_(max_tokens > 0 ? max_tokens : -1) {
  for (size_t i = 0; i < grammar_->tools.size(); ++i) live_.push_back(i);
}

void ToolCallConstraint::start_arguments() {
  phase_ = Phase::Arguments;
  pos_ = 0;
  // The budget steers the value to leave room for one end token: let that be closing[0], and
  // keep the rest of the closing and the output's end token out of it.
  int64_t budget = 0;
  if (tokens_left_ >= 0) budget = std::max<int64_t>(1, tokens_left_ - static_cast<int64_t>(closing().size() - 1) - 1);
  arguments_ = std::make_unique<TokenConstraint>(grammar_->tools[chosen_].arguments, budget);
}

const TokenMask& ToolCallConstraint::allowed() {
  if (mask_valid_) return mask_;
  if (phase_ == Phase::Arguments) {
    // Once the arguments are a whole value, the closing may begin (its first token may also be
    // JSON, such as V3's "\n": while the value is not whole, that is what it is).
    if (!arguments_->complete()) return arguments_->allowed();
    mask_ = arguments_->allowed();
    if (closing()[0] >= 0 && closing()[0] < grammar_->vocabulary_size) mask_.set(closing()[0]);
    mask_valid_ = true;
    return mask_;
  }
  mask_.reset(grammar_->vocabulary_size);
  auto allow = [&](int32_t t) {
    if (t >= 0 && t < grammar_->vocabulary_size) mask_.set(t);
  };
  if (phase_ == Phase::Opening) {
    for (size_t i : live_) allow(grammar_->tools[i].opening[pos_]);
  } else if (pos_ < closing().size()) {
    allow(closing()[pos_]);
  } else {
    for (int32_t t : grammar_->end_tokens) allow(t);
  }
  mask_valid_ = true;
  return mask_;
}

Status ToolCallConstraint::accept(int32_t token) {
  mask_valid_ = false;
  if (tokens_left_ > 0) --tokens_left_;
  switch (phase_) {
    case Phase::Opening: {
      std::vector<size_t> still;
      for (size_t i : live_)
        if (grammar_->tools[i].opening[pos_] == token) still.push_back(i);
      if (still.empty()) return error_f("token %d does not continue the tool call's opening markup", token);
      live_ = std::move(still);
      ++pos_;
      for (size_t i : live_)
        if (grammar_->tools[i].opening.size() == pos_) {
          chosen_ = i;
          start_arguments();
          break;
        }
      return {};
    }
    case Phase::Arguments: {
      if (arguments_->complete() && token == closing()[0]) {
        phase_ = Phase::Closing;
        pos_ = 1;
        return {};
      }
      return arguments_->accept(token);
    }
    case Phase::Closing: {
      if (pos_ < closing().size()) {
        if (closing()[pos_] != token) return error_f("token %d does not continue the tool call's closing markup", token);
        ++pos_;
        return {};
      }
      const auto& ends = grammar_->end_tokens;
      if (std::find(ends.begin(), ends.end(), token) == ends.end())
        return error_f("token %d follows a closed tool call (only the end of the output may)", token);
      return {};
    }
  }
  return {};
}

}  // namespace dsv3::grammar
