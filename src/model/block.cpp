// Mirrors DeepSeek model.py Block.forward.

#include "model/block.h"

#include "kernels/ops.h"
#include "model/mla.h"
#include "model/mlp.h"
#include "model/moe.h"
#include "model/step_buffers.h"

namespace dsv3 {

void block_forward(const ForwardContext& ctx, const BlockWeights& w, const TokenBatch& batch, int64_t cache_layer,
                   float* x) {
  const ModelConfig& c = ctx.config;
  const int64_t N = batch.n_tokens(), D = c.hidden_size;
  const float eps = static_cast<float>(c.rms_norm_eps);
  StepBuffers buffers;
  float* const normed = buffers.floats(N * D);  // [N, D]
  float* const delta = buffers.floats(N * D);   // [N, D]

  // x = x + self.attn(self.attn_norm(x), ...)
  kernels::rms_norm(ctx.pool, x, w.attn_norm.data(), N, D, eps, normed);
  mla_forward(ctx, w.attn, batch, cache_layer, normed, delta);
  ctx.comm.all_reduce_sum(delta, N * D);  // model.py: all_reduce in wo (RowParallelLinear)
  for (int64_t i = 0; i < N * D; ++i) x[i] += delta[i];

  // x = x + self.ffn(self.ffn_norm(x))
  kernels::rms_norm(ctx.pool, x, w.ffn_norm.data(), N, D, eps, normed);
  if (const MoeWeights* moe = std::get_if<MoeWeights>(&w.ffn))
    moe_forward(ctx.pool, c, *moe, normed, N, delta, ctx.experts_read, ctx.partition.experts);
  else mlp_forward(ctx.pool, std::get<MlpWeights>(w.ffn), normed, N, delta);
  // model.py: all_reduce of the routed experts' sum and in the (shared) MLP's w2, here one for both
  ctx.comm.all_reduce_sum(delta, N * D);
  for (int64_t i = 0; i < N * D; ++i) x[i] += delta[i];
}

}  // namespace dsv3
