#pragma once
// Multi-head Latent Attention (DeepSeek model.py: MLA).

#include "model/forward_context.h"
#include "model/weights.h"

namespace dsv3 {

// out[N, dim] = MLA(x[N, dim]) for the batch; writes each token's cache row
// (kv_norm(kv) | rotated k_pe) into layer `cache_layer` of its sequence's cache at its
// position. Caches must have room (KVCache::reserve) for their new tokens.
void mla_forward(const ForwardContext& ctx, const MlaWeights& w, const TokenBatch& batch, int64_t cache_layer,
                 const float* x, float* out);

}  // namespace dsv3
