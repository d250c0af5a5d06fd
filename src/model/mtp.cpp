#include "model/mtp.h"

#include <vector>

#include "kernels/ops.h"
#include "model/block.h"
#include "model/embedding.h"

namespace dsv3 {

void mtp_block_forward(const ForwardContext& ctx, const MtpWeights& w, const TokenBatch& batch, int64_t cache_layer,
                       const float* hidden, float* h) {
  const int64_t N = batch.n_tokens(), D = ctx.config.hidden_size;
  const float eps = static_cast<float>(ctx.config.rms_norm_eps);

  // h = eh_proj(cat(enorm(embed(t[j+1])), hnorm(hidden[j])))             [N, 2D] -> [N, D]
  std::vector<float> e(static_cast<size_t>(N * D)), cat(static_cast<size_t>(N * 2 * D));
  embed_forward(w.embed, batch.tokens, e.data(), ctx.partition.vocab);
  ctx.comm.all_reduce_sum(e.data(), N * D);
  kernels::rms_norm(ctx.pool, e.data(), w.enorm.data(), N, D, eps, cat.data(), D, 2 * D);
  kernels::rms_norm(ctx.pool, hidden, w.hnorm.data(), N, D, eps, cat.data() + D, D, 2 * D);
  kernels::matmul(ctx.pool, w.eh_proj, cat.data(), N, h);

  // h = Block(h), in the MTP layer's cache layer
  block_forward(ctx, w.block, batch, cache_layer, h);
}

}  // namespace dsv3
