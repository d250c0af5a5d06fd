#pragma once
// One transformer layer (DeepSeek model.py: Block):
//   x = x + attn(attn_norm(x));  x = x + ffn(ffn_norm(x))   with ffn an MLP or an MoE.

#include "model/forward_context.h"
#include "model/weights.h"

namespace dsv3 {

// Updates x[N, dim] in place; the attention reads and writes layer `cache_layer` of each
// sequence's cache.
void block_forward(const ForwardContext& ctx, const BlockWeights& w, const TokenBatch& batch, int64_t cache_layer,
                   float* x);

}  // namespace dsv3
