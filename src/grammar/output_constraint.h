#pragma once
// What constrained decoding asks of a sequence's grammar, whatever it enforces (a JSON value,
// a forced tool call): the tokens allowed next, and each generated token fed back.

#include <cstdint>

#include "base/result.h"
#include "grammar/token_mask.h"

namespace dsv3::grammar {

class OutputConstraint {
 public:
  virtual ~OutputConstraint() = default;
  // The tokens allowed next (computed once per position).
  virtual const TokenMask& allowed() = 0;
  // Feeds a generated token. Error when the mask did not allow it.
  virtual Status accept(int32_t token) = 0;
  // The output so far is whole (an end token is allowed).
  virtual bool complete() const = 0;
};

}  // namespace dsv3::grammar
