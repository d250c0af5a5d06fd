#pragma once
// The cost of constrained decoding's token mask, measured as generation meets it: random
// outputs drawn token by token from the mask (each allowed token equally likely, as from a
// model with no preference), timing every mask computation (trie walk, plain-string shortcut,
// budget check). `dsv3 bench --json-mask` prints it next to the decode step.

#include <cstdint>
#include <memory>
#include <vector>

#include "grammar/token_constraint.h"

namespace dsv3 {

struct JsonMaskTimes {
  std::vector<double> micros;  // one per generated token
  int64_t outputs = 0, tokens = 0;
  double median() const;
  double mean() const;
  double percentile(double p) const;
};

JsonMaskTimes run_json_mask_bench(std::shared_ptr<const grammar::JsonGrammar> grammar, int outputs, int64_t max_tokens,
                                  uint64_t seed);

}  // namespace dsv3
