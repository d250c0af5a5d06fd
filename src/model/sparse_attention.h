#pragma once
// DeepSeek Sparse Attention: MLA's absorbed attention where each token attends only to the
// cache rows its indexer selected (model.py adds -inf to the scores of every other position,
// so the softmax and the weighted sum run over the selected rows alone).

#include <cstdint>

#include "model/forward_context.h"
#include "model/indexer.h"

namespace dsv3 {

// o_lat [N, H, kv_lora_rank] from the absorbed queries q_abs [N, H, kv_lora_rank + rope]
// over the rows of layer `cache_layer` that `selection` names for each token. A token that
// selected every position up to its own reads its cache directly; the others read a gathered
// copy of their rows (ascending positions), through the same kernels::mla_attention.
void sparse_mla_attention(const ForwardContext& ctx, const TokenBatch& batch, int64_t cache_layer, const float* q_abs,
                          const IndexSelection& selection, float* o_lat);

}  // namespace dsv3
