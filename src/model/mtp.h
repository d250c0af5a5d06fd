#pragma once
// The Multi-Token-Prediction layer of DeepSeek-V3 (model.py has none): drafts the token after
// next. For each token t[j+1] of the batch, with hidden[j] the main model's final-normed
// hidden state at the position before it:
//   h      = eh_proj(cat(enorm(embed(t[j+1])), hnorm(hidden[j])))
//   h      = Block(h)                                 at the MTP layer's own cache positions
//   logits = shared_head.head(shared_head.norm(h))    the draft for t[j+2]

#include "model/forward_context.h"
#include "model/weights.h"

namespace dsv3 {

// logits[N, vocab] for the batch's tokens (the t[j+1]) and hidden[N, dim]; writes layer 0
// of each sequence's MTP cache, which must have room for its new tokens.
void mtp_layer_forward(const ForwardContext& ctx, const MtpWeights& w, const TokenBatch& batch, const float* hidden,
                       float* logits);

}  // namespace dsv3
