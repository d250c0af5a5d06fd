#include "model/mtp.h"

#include "kernels/ops.h"
#include "kernels/product_profile.h"
#include "model/block.h"
#include "model/embedding.h"
#include "model/step_buffers.h"

namespace dsv3 {

void mtp_block_forward(const ForwardContext& ctx, const MtpWeights& w, const TokenBatch& batch, int64_t cache_layer,
                       const float* hidden, float* h) {
  const int64_t N = batch.n_tokens(), D = ctx.config.hidden_size;
  const float eps = static_cast<float>(ctx.config.rms_norm_eps);

  // h = eh_proj(cat(enorm(embed(t[j+1])), hnorm(hidden[j])))             [N, 2D] -> [N, D]
  StepBuffers buffers;
  float* const e = buffers.floats(N * D);
  float* const cat = buffers.floats(N * 2 * D);
  embed_forward(w.embed, batch.tokens, e, ctx.partition.vocab);
  ctx.comm.all_reduce_sum(e, N * D);
  kernels::rms_norm(ctx.pool, e, w.enorm.data(), N, D, eps, cat, D, 2 * D);
  kernels::rms_norm(ctx.pool, hidden, w.hnorm.data(), N, D, eps, cat + D, D, 2 * D);
  {
    const kernels::ProductPart part("mtp eh_proj");
    kernels::matmul(ctx.pool, w.eh_proj, cat, N, h);
  }

  // h = Block(h), in the MTP layer's cache layer
  block_forward(ctx, w.block, batch, cache_layer, h);
}

}  // namespace dsv3
