#pragma once
// Token embedding (DeepSeek model.py: ParallelEmbedding, on one rank): a row of the table
// per token, in float32.

#include <cstdint>
#include <span>

#include "tensor/linear_weight.h"

namespace dsv3 {

// out[i] = table[tokens[i]]          table: [vocab, dim], out: [tokens.size(), dim]
inline void embed_forward(const LinearWeight& table, std::span<const int32_t> tokens, float* out) {
  const int64_t dim = table.cols;
  for (size_t i = 0; i < tokens.size(); ++i)
    for (int64_t c = 0; c < dim; ++c) out[i * dim + c] = table.at(tokens[i], c);
}

}  // namespace dsv3
