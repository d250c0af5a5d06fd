#pragma once
// The Multi-Token-Prediction layer of DeepSeek-V3 (model.py has none): drafts the token after
// next. For each token t[j+1] of the batch, with hidden[j] the main model's final-normed
// hidden state at the position before it:
//   h      = eh_proj(cat(enorm(embed(t[j+1])), hnorm(hidden[j])))
//   h      = Block(h)                                 at position j of the MTP layer's cache
//   logits = shared_head.head(shared_head.norm(h))    the draft for t[j+2]

#include "model/forward_context.h"
#include "model/weights.h"

namespace dsv3 {

// h[N, dim]: the MTP block's output for the batch's tokens (the t[j+1]) and hidden[N, dim];
// writes layer `cache_layer` of each sequence's cache at the batch's positions.
void mtp_block_forward(const ForwardContext& ctx, const MtpWeights& w, const TokenBatch& batch, int64_t cache_layer,
                       const float* hidden, float* h);

}  // namespace dsv3
