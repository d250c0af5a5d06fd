#pragma once
// Token embedding (DeepSeek model.py: ParallelEmbedding): a row of the table per token, in
// float32. Split across ranks, this rank holds rows [vocab.begin, vocab.end) and writes zeros
// for the other tokens; the sum over ranks (an all-reduce) is the embedding.

#include <cstdint>
#include <span>

#include "model/partition.h"
#include "tensor/linear_weight.h"

namespace dsv3 {

// out[i] = table[tokens[i] - vocab.begin] or 0     table: [vocab.size(), dim], out: [tokens.size(), dim]
inline void embed_forward(const LinearWeight& table, std::span<const int32_t> tokens, float* out, Range vocab) {
  const int64_t dim = table.cols;
  for (size_t i = 0; i < tokens.size(); ++i)
    for (int64_t c = 0; c < dim; ++c)
      out[i * dim + c] = vocab.contains(tokens[i]) ? table.at(tokens[i] - vocab.begin, c) : 0.0f;
}

}  // namespace dsv3
