#include "grammar/token_constraint.h"

#include <algorithm>

namespace dsv3::grammar {

TokenConstraint::TokenConstraint(std::shared_ptr<const JsonGrammar> grammar, int64_t max_tokens)
    : grammar_(std::move(grammar)), matcher_(*grammar_->schema), tokens_left_(max_tokens > 0 ? max_tokens : -1) {}

const TokenMask& TokenConstraint::allowed() {
  if (mask_valid_) return mask_;
  // After this token, tokens_left_ - 1 remain: the completion's bytes and the end token.
  const int64_t limit = tokens_left_ >= 2 ? tokens_left_ - 2 : -1;
  computer_.compute(*grammar_->schema, *grammar_->vocabulary, matcher_.state(), mask_, limit);
  // Nothing fits (the budget was too small from the start): any valid token, cut at the end.
  if (limit >= 0 && !mask_.any())
    computer_.compute(*grammar_->schema, *grammar_->vocabulary, matcher_.state(), mask_, -1);
  if (matcher_.complete())
    for (int32_t t : grammar_->end_tokens)
      if (t >= 0 && t < grammar_->vocabulary->size()) mask_.set(t);
  mask_valid_ = true;
  return mask_;
}

Status TokenConstraint::accept(int32_t token) {
  const auto& ends = grammar_->end_tokens;
  if (std::find(ends.begin(), ends.end(), token) != ends.end()) {
    if (!matcher_.complete()) return error_f("token %d ends the output before the JSON value is complete", token);
    mask_valid_ = false;
    if (tokens_left_ > 0) --tokens_left_;
    return {};
  }
  if (token < 0 || token >= grammar_->vocabulary->size() || grammar_->vocabulary->bytes(token).empty() ||
      !matcher_.advance(grammar_->vocabulary->bytes(token)))
    return error_f("token %d does not continue valid JSON for the schema", token);
  mask_valid_ = false;
  if (tokens_left_ > 0) --tokens_left_;
  return {};
}

}  // namespace dsv3::grammar
