#pragma once
// The plainest generation loop, as the oracle for the engine's batched, chunked and cached
// runs: the whole prompt in one forward pass, then one token per pass, each drawn by a
// Sampler from the last row's logits, until a stop token or the token budget.

#include <cstdint>
#include <vector>

#include <gtest/gtest.h>

#include "model/model.h"
#include "runtime/sampler.h"

namespace dsv3::test {

inline std::vector<int32_t> reference_generate(const Model& model, const std::vector<int32_t>& prompt,
                                               int64_t max_new_tokens, const SamplingParams& sampling = {},
                                               const std::vector<int32_t>& stop_tokens = {}) {
  KVCache cache = model.new_cache();
  Sampler sampler(sampling);
  std::vector<float> scratch;
  std::vector<int32_t> out;
  std::vector<int32_t> next = prompt;
  while (static_cast<int64_t>(out.size()) < max_new_tokens) {
    SequenceInput in{&cache, next, Logits::Last};
    ForwardOutput fo;
    Status st = model.forward({&in, 1}, &fo);
    EXPECT_TRUE(st.ok()) << st.error().message();
    if (!st.ok()) break;
    auto token = sampler.sample(sampler.process(fo.logits.data(), model.vocab_size(), scratch), model.vocab_size());
    EXPECT_TRUE(token.ok());
    if (!token.ok()) break;
    out.push_back(*token);
    EXPECT_TRUE(sampler.accept(*token).ok());
    if (std::find(stop_tokens.begin(), stop_tokens.end(), *token) != stop_tokens.end()) break;
    next = {*token};
  }
  return out;
}

}  // namespace dsv3::test
