#pragma once
// One transformer block (DeepSeek model.py: Block.forward):
//   x = x + MLA(attn_norm(x));  x = x + FFN(ffn_norm(x))   with FFN dense or MoE.

#include "model/forward_context.h"
#include "model/weights.h"

namespace dsv3 {

// Updates x[N, hidden] in place; the layer's attention uses `cache_layer` of each cache.
void decoder_layer_forward(const ForwardContext& ctx, const BlockWeights& w, const TokenBatch& batch,
                           int64_t cache_layer, float* x);

}  // namespace dsv3
