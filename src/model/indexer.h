#pragma once
// DeepSeek-V3.2's lightning indexer (model.py Indexer, with the fixed half-split rope): for
// every new token, a score for each position it may attend to, and the index_topk best.
//
//   q = wq_b(qr) per head (rope | nope), k = LayerNorm(wk(x)) (rope | nope)
//   rope (half-split pairs) on the first qk_rope_head_dim values of q and k
//   Hadamard rotation of each head (scale index_head_dim^-0.5)
//   FP8 e4m3 quantization of each q head and each k (one scale per 128 values;
//   scale_fmt ue8m0 rounds the scale up to a power of two); k is cached that way
//   w = weights_proj(x) * index_n_heads^-0.5 * q_scale * index_head_dim^-0.5
//   score[s, t] = k_scale[t] * sum_h relu(q_fp8[s, h] . k_fp8[t]) * w[s, h]
//   selected = the min(index_topk, pos + 1) best positions t <= pos
//
// The e4m3 dot products are computed exactly (double: every product and partial sum of
// 128 of them is representable), so the scores do not depend on the summation order and
// agree with an exact reference up to the float32 rounding of the final score. Ties in
// top-k go to the lower position.

#include <cstdint>
#include <vector>

#include "model/forward_context.h"
#include "model/weights.h"

namespace dsv3 {

struct IndexSelection {
  int64_t topk = 0;
  std::vector<int32_t> positions;  // [n_tokens, topk]: ascending, -1 past counts[t]
  std::vector<int32_t> counts;     // [n_tokens]: positions chosen (min(topk, pos + 1))
  const int32_t* row(int64_t t) const { return positions.data() + t * topk; }
};

// Writes every new token's indexer key into layer `cache_layer` of its sequence's cache
// (KVCache::index_keys / index_scales at its position), then scores and selects.
//   x: [N, dim] the attention block's normed input; qr: [N, q_lora_rank] MLA's q latent
//   after q_norm.
void indexer_forward(const ForwardContext& ctx, const IndexerWeights& w, const TokenBatch& batch,
                     int64_t cache_layer, const float* x, const float* qr, IndexSelection* out);

// Pieces of the indexer, exposed for their tests.
namespace indexer_detail {
// In-place Sylvester-Hadamard transform of n (a power of two) values, times scale.
void hadamard(float* x, int64_t n, float scale);
// kernel.py act_quant of one 128-value block: e4m3 codes and the scale (amax / 448, at least
// 1e-4 / 448; rounded up to a power of two when ue8m0).
float quantize_block(const float* x, int64_t n, bool ue8m0, uint8_t* codes);
// Wall time spent in indexer_forward by this process so far (every layer, every call), for
// the sparse-decode benchmark's split of a step into the indexer and the rest.
int64_t elapsed_ns();
}  // namespace indexer_detail

}  // namespace dsv3
