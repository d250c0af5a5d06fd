#pragma once
// This rank's share of the model (DeepSeek model.py's world_size and rank): which attention
// heads, routed experts, vocabulary rows and FFN columns it holds. As in model.py:
//   - ParallelEmbedding and the head (ColumnParallelLinear): vocabulary rows split;
//   - MLA: heads split (wq / wq_b and wkv_b by rows, wo by columns); wq_a, wkv_a and the
//     norms replicated, so every rank keeps the whole latent cache;
//   - MLP and shared experts: w1, w3 by rows, w2 by columns (the intermediate dimension);
//   - MoE: routed experts split (n_local_experts), the gate replicated.
// Splits need not be even: rank r takes a contiguous range, the first ranks one unit more.

#include <cstdint>

#include "base/result.h"
#include "format/model_config.h"

namespace dsv3 {

struct Range {
  int64_t begin = 0, end = 0;
  int64_t size() const { return end - begin; }
  bool contains(int64_t i) const { return i >= begin && i < end; }
};

// Part `r` of [0, n) split into `parts` contiguous ranges in whole units of `unit` (the last
// unit of [0, n) may be partial), the first ranges one unit larger where it does not divide.
Range split_range(int64_t n, int parts, int r, int64_t unit = 1);

struct Partition {
  int rank = 0;
  int world = 1;
  Range heads;         // of num_attention_heads
  Range experts;       // of n_routed_experts
  Range vocab;         // of vocab_size
  Range dense_inter;   // of intermediate_size (dense MLP layers)
  Range shared_inter;  // of moe_intermediate_size * n_shared_experts (shared experts)
  bool split() const { return world > 1; }
};

// Everything on one rank.
Partition whole_model(const ModelConfig& config);

// Rank `rank` of `world`. Refuses, naming the field and the world size, a split that would
// leave a rank without heads, experts, vocabulary or FFN columns. Intermediate dimensions
// split in whole FP8 blocks where each rank gets one, so that column slices keep their scales.
Result<Partition> make_partition(const ModelConfig& config, int rank, int world);

}  // namespace dsv3
