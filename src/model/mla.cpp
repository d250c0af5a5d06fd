// Mirrors DeepSeek model.py MLA.forward, step by step. Shapes: N tokens in the batch,
// H heads, nope/rope/v head dims, R = kv_lora_rank.

#include "model/mla.h"

#include <cstring>
#include <vector>

#include "kernels/ops.h"

namespace dsv3 {

void mla_forward(const ForwardContext& ctx, const MlaWeights& w, const TokenBatch& batch, int64_t cache_layer,
                 const float* x, float* out) {
  const ModelConfig& c = ctx.config;
  ThreadPool& pool = ctx.pool;
  const int64_t N = batch.n_tokens(), H = c.num_attention_heads;
  const int64_t nope = c.qk_nope_head_dim, rope = c.qk_rope_head_dim, vdim = c.v_head_dim;
  const int64_t qk = nope + rope, R = c.kv_lora_rank, row = R + rope;
  const float eps = static_cast<float>(c.rms_norm_eps);

  // q = wq_b(q_norm(wq_a(x))) or wq(x)                                 [N, H, nope + rope]
  // (wq_a or wq) and wkv_a both read x: one parallel region.
  std::vector<float> q(static_cast<size_t>(N * H * qk));
  std::vector<float> kv(static_cast<size_t>(N * row));  // wkv_a(x): latent [N, R] | k_pe [N, rope]
  std::vector<float> qa(static_cast<size_t>(c.has_q_lora() ? N * c.q_lora_rank : 0));
  {
    const LinearWeight& wq = c.has_q_lora() ? w.wq_a : w.wq;
    float* q_out = c.has_q_lora() ? qa.data() : q.data();
    const kernels::MatmulJob jobs[] = {{wq, x, N, wq.cols, q_out, wq.rows},
                                       {w.wkv_a, x, N, w.wkv_a.cols, kv.data(), row}};
    kernels::matmul_batch(pool, jobs);
  }
  if (c.has_q_lora()) {
    kernels::rms_norm(pool, qa.data(), w.q_norm.data(), N, c.q_lora_rank, eps, qa.data());
    kernels::matmul(pool, w.wq_b, qa.data(), N, q.data());
  }
  // latent c = kv_norm(kv[:, :R]); k_pe = rope(kv[:, R:]); both go to the cache row of the
  // token's position, so the (latent | k_pe) layout of kv is already the cache layout.
  kernels::rms_norm(pool, kv.data(), w.kv_norm.data(), N, R, eps, kv.data(), row, row);
  for (int64_t t = 0; t < N; ++t) {
    ctx.rope.apply(kv.data() + t * row + R, 1, rope, batch.positions[t]);
    ctx.rope.apply(q.data() + t * H * qk + nope, H, qk, batch.positions[t]);  // q_pe of every head
  }
  for (const auto& seg : batch.segments) {
    float* cache = seg.cache->layer(cache_layer);
    for (int64_t i = 0; i < seg.count; ++i) {
      int64_t t = seg.offset + i;
      std::memcpy(cache + batch.positions[t] * row, kv.data() + t * row, sizeof(float) * row);
    }
  }

  // Per head h: W_UK_h = kv_b rows [h(nope+v), h(nope+v)+nope), W_UV_h = the next v rows.
  std::vector<float> o(static_cast<size_t>(N * H * vdim));  // attention output  [N, H, v]
  if (ctx.attention == AttentionImpl::Absorbed) {
    // Absorption: q_nope . (W_UK c) = (W_UK^T q_nope) . c, so score against the latent
    // directly with q_abs = (W_UK^T q_nope | q_pe)                         [N, H, R + rope]
    std::vector<float> q_abs(static_cast<size_t>(N * H * row));
    std::vector<kernels::MatmulJob> jobs(static_cast<size_t>(H));
    for (int64_t h = 0; h < H; ++h) {
      // q_lat_h = W_UK_h^T q_nope_h                                      [N, R]
      jobs[h] = {w.wkv_b.row_band(h * (nope + vdim), nope), q.data() + h * qk, N, H * qk,
                 q_abs.data() + h * row, H * row, /*transposed=*/true};
      for (int64_t t = 0; t < N; ++t)
        std::memcpy(q_abs.data() + (t * H + h) * row + R, q.data() + (t * H + h) * qk + nope, sizeof(float) * rope);
    }
    kernels::matmul_batch(pool, jobs);  // all heads in one parallel region
    // Weighted sum of latents per head                                  [N, H, R]
    std::vector<float> o_lat(static_cast<size_t>(N * H * R));
    std::vector<kernels::MlaAttentionArgs> sequences;
    for (const auto& seg : batch.segments) {
      kernels::MlaAttentionArgs& a = sequences.emplace_back();
      a.n_tokens = seg.count;
      a.n_heads = H;
      a.kv_lora_rank = R;
      a.rope_dim = rope;
      a.q = q_abs.data() + seg.offset * H * row;
      a.cache = seg.cache->layer(cache_layer);
      a.first_pos = batch.positions[seg.offset];
      a.scale = static_cast<float>(c.softmax_scale());
      a.out = o_lat.data() + seg.offset * H * R;
    }
    kernels::mla_attention(pool, sequences);  // every sequence in one parallel region
    // o_h = W_UV_h o_lat_h                                                [N, H, v]
    for (int64_t h = 0; h < H; ++h)
      jobs[h] = {w.wkv_b.row_band(h * (nope + vdim) + nope, vdim), o_lat.data() + h * R, N, H * R,
                 o.data() + h * vdim, H * vdim, /*transposed=*/false};
    kernels::matmul_batch(pool, jobs);
  } else {
    // Naive: decompress K = (W_UK c | k_pe) and V = W_UV c for every cached position.
    for (const auto& seg : batch.segments) {
      const int64_t len = batch.positions[seg.offset] + seg.count;
      const float* cache = seg.cache->layer(cache_layer);
      std::vector<float> kvb(static_cast<size_t>(len * H * (nope + vdim)));  // [len, H, nope + v]
      kernels::matmul(pool, w.wkv_b, cache, len, row, kvb.data(), H * (nope + vdim));
      std::vector<float> k(static_cast<size_t>(len * H * qk)), v(static_cast<size_t>(len * H * vdim));
      for (int64_t s = 0; s < len; ++s)
        for (int64_t h = 0; h < H; ++h) {
          const float* src = kvb.data() + (s * H + h) * (nope + vdim);
          std::memcpy(k.data() + (s * H + h) * qk, src, sizeof(float) * nope);
          std::memcpy(k.data() + (s * H + h) * qk + nope, cache + s * row + R, sizeof(float) * rope);
          std::memcpy(v.data() + (s * H + h) * vdim, src + nope, sizeof(float) * vdim);
        }
      kernels::MhaAttentionArgs a;
      a.n_tokens = seg.count;
      a.n_heads = H;
      a.qk_dim = qk;
      a.v_dim = vdim;
      a.q = q.data() + seg.offset * H * qk;
      a.k = k.data();
      a.v = v.data();
      a.first_pos = batch.positions[seg.offset];
      a.scale = static_cast<float>(c.softmax_scale());
      a.out = o.data() + seg.offset * H * vdim;
      kernels::mha_attention(pool, a);
    }
  }
  // y = wo(o)                                                            [N, hidden]
  kernels::matmul(pool, w.wo, o.data(), N, out);
}

}  // namespace dsv3
