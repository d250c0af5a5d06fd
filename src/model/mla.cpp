// Mirrors DeepSeek model.py MLA.forward, step by step. Shapes: N tokens in the batch,
// H heads, nope / rope / v = qk_nope_head_dim / qk_rope_head_dim / v_head_dim,
// R = kv_lora_rank. Every sequence of the batch goes through the projections together; only
// the attention itself is per sequence.

#include "model/mla.h"

#include <cstring>
#include <vector>

#include "kernels/ops.h"
#include "kernels/product_profile.h"
#include "model/indexer.h"
#include "model/sparse_attention.h"
#include "model/step_buffers.h"

namespace dsv3 {
namespace {

// MLA's sizes under the short names this file uses.
struct MlaDims {
  int64_t H;     // this rank's heads (model.py n_local_heads): num_attention_heads / world size
  int64_t nope;  // qk_nope_head_dim
  int64_t rope;  // qk_rope_head_dim
  int64_t vdim;  // v_head_dim
  int64_t qk;    // nope + rope: a query or key head
  int64_t R;     // kv_lora_rank
  int64_t row;   // R + rope: a row of wkv_a's output and of the cache
};
MlaDims mla_dims(const ForwardContext& ctx) {
  const ModelConfig& c = ctx.config;
  const int64_t nope = c.qk_nope_head_dim, rope = c.qk_rope_head_dim, R = c.kv_lora_rank;
  return {ctx.partition.heads.size(), nope, rope, c.v_head_dim, nope + rope, R, R + rope};
}

// Head h's rows of wkv_b [H * (nope + v), R], model.py's wkv_b.view(H, -1, R)[h]: the first
// nope rows make keys from the latent (wkv_b[:, :nope], W_UK), the next v rows values
// (wkv_b[:, -v:], W_UV).
LinearWeight wkv_b_keys(const MlaWeights& w, const MlaDims& d, int64_t h) {
  return w.wkv_b.row_band(h * (d.nope + d.vdim), d.nope);
}
LinearWeight wkv_b_values(const MlaWeights& w, const MlaDims& d, int64_t h) {
  return w.wkv_b.row_band(h * (d.nope + d.vdim) + d.nope, d.vdim);
}

// model.py's attn_impl "absorb" (its default): wkv_b is folded into the query and applied
// after the weighted sum, so that scores and sum run on the compressed cache itself.
//   q: [N, H, nope + rope] (q_nope | rotated q_pe)  ->  o: [N, H, v]
// With a `selection` (V3.2), each token attends to its selected positions only.
void attend_absorbed(const ForwardContext& ctx, const MlaWeights& w, const TokenBatch& batch, int64_t cache_layer,
                     const float* q, float* o, const IndexSelection* selection) {
  const ModelConfig& c = ctx.config;
  ThreadPool& pool = ctx.pool;
  const MlaDims d = mla_dims(ctx);
  const auto [H, nope, rope, vdim, qk, R, row] = d;
  const int64_t N = batch.n_tokens();

  // q_nope = einsum("bshd,hdc->bshc", q_nope, wkv_b[:, :nope]): q_nope . (W_UK c) =
  // (W_UK^T q_nope) . c, so the query meets the latent directly. Next to it q_pe, so that a
  // query row (q_nope | q_pe) scores a cache row (kv | k_pe) with one dot product.
  StepBuffers buffers;
  float* const q_abs = buffers.floats(N * H * row);  // [N, H, R + rope]
  std::vector<kernels::MatmulJob> jobs(static_cast<size_t>(H));
  for (int64_t h = 0; h < H; ++h) {
    jobs[h] = {wkv_b_keys(w, d, h), q + h * qk, N, H * qk, q_abs + h * row, H * row, /*transposed=*/true};
    for (int64_t t = 0; t < N; ++t)
      std::memcpy(q_abs + (t * H + h) * row + R, q + (t * H + h) * qk + nope, sizeof(float) * rope);
  }
  {
    const kernels::ProductPart part("attention wkv_b keys (absorbed)");
    kernels::matmul_batch(pool, jobs);  // all heads in one parallel region
  }

  // scores = (q_nope . kv_cache + q_pe . pe_cache) * softmax_scale, softmax over the
  // positions each token sees, x = einsum("bsht,btc->bshc", scores, kv_cache)   [N, H, R]
  float* const o_lat = buffers.floats(N * H * R);
  if (selection) {
    sparse_mla_attention(ctx, batch, cache_layer, q_abs, *selection, o_lat);
  } else {
    std::vector<kernels::MlaAttentionArgs> sequences;
    for (const auto& seg : batch.segments) {
      kernels::MlaAttentionArgs& a = sequences.emplace_back();
      a.n_tokens = seg.count;
      a.n_heads = H;
      a.kv_lora_rank = R;
      a.rope_dim = rope;
      a.q = q_abs + seg.offset * H * row;
      a.cache = seg.cache->layer(cache_layer);
      a.first_pos = batch.positions[seg.offset];
      a.scale = static_cast<float>(c.softmax_scale());
      a.out = o_lat + seg.offset * H * R;
    }
    kernels::mla_attention(pool, sequences);  // every sequence in one parallel region
  }

  // x = einsum("bshc,hdc->bshd", x, wkv_b[:, -v:])                           [N, H, v]
  for (int64_t h = 0; h < H; ++h)
    jobs[h] = {wkv_b_values(w, d, h), o_lat + h * R, N, H * R, o + h * vdim, H * vdim, /*transposed=*/false};
  const kernels::ProductPart part("attention wkv_b values (absorbed)");
  kernels::matmul_batch(pool, jobs);
}

// model.py's attn_impl "naive": plain multi-head attention over keys (k_nope | k_pe) and
// values decompressed with wkv_b. model.py caches those keys and values; here they are
// decompressed from the same latent cache the absorbed form reads, for every position, at
// every step: fewer multiply-adds than the absorbed form for a prompt (nope + rope + v per
// head and position against 2R + rope), but each decoded token pays for the whole cache's
// keys and values again.
//   q: [N, H, nope + rope]  ->  o: [N, H, v]
void attend_naive(const ForwardContext& ctx, const MlaWeights& w, const TokenBatch& batch, int64_t cache_layer,
                  const float* q, float* o) {
  const ModelConfig& c = ctx.config;
  ThreadPool& pool = ctx.pool;
  const auto [H, nope, rope, vdim, qk, R, row] = mla_dims(ctx);
  for (const auto& seg : batch.segments) {
    const int64_t len = batch.positions[seg.offset] + seg.count;
    const float* cache = seg.cache->layer(cache_layer);
    // kv = wkv_b(kv_norm(kv)); k_nope, v = split(kv)                       [len, H, nope + v]
    StepBuffers buffers;  // per sequence: given back before the next one's
    float* const kv = buffers.floats(len * H * (nope + vdim));
    {
      const kernels::ProductPart part("attention wkv_b (naive)");
      kernels::matmul(pool, w.wkv_b, cache, len, row, kv, H * (nope + vdim));
    }
    // k = cat(k_nope, k_pe expanded to every head)    [H, len, nope + rope], v [H, len, v]
    // (each head's keys and values together: the attention's products read them as rows)
    float* const k = buffers.floats(len * H * qk);
    float* const v = buffers.floats(len * H * vdim);
    for (int64_t s = 0; s < len; ++s)
      for (int64_t h = 0; h < H; ++h) {
        const float* src = kv + (s * H + h) * (nope + vdim);
        std::memcpy(k + (h * len + s) * qk, src, sizeof(float) * nope);
        std::memcpy(k + (h * len + s) * qk + nope, cache + s * row + R, sizeof(float) * rope);
        std::memcpy(v + (h * len + s) * vdim, src + nope, sizeof(float) * vdim);
      }
    // scores = einsum("bshd,bthd->bsht", q, k) * softmax_scale; softmax;
    // x = einsum("bsht,bthd->bshd", scores, v)
    kernels::MhaAttentionArgs a;
    a.n_tokens = seg.count;
    a.n_heads = H;
    a.qk_dim = qk;
    a.v_dim = vdim;
    a.q = q + seg.offset * H * qk;
    a.k = k;
    a.v = v;
    a.first_pos = batch.positions[seg.offset];
    a.scale = static_cast<float>(c.softmax_scale());
    a.out = o + seg.offset * H * vdim;
    kernels::mha_attention(pool, a);
  }
}

}  // namespace

void mla_forward(const ForwardContext& ctx, const MlaWeights& w, const TokenBatch& batch, int64_t cache_layer,
                 const float* x, float* out) {
  const ModelConfig& c = ctx.config;
  ThreadPool& pool = ctx.pool;
  const auto [H, nope, rope, vdim, qk, R, row] = mla_dims(ctx);
  const int64_t N = batch.n_tokens();
  const float eps = static_cast<float>(c.rms_norm_eps);

  // q = self.wq(x) or self.wq_b(self.q_norm(self.wq_a(x)))                [N, H, nope + rope]
  // kv = self.wkv_a(x)                                                    [N, R + rope]
  // wq (or wq_a) and wkv_a both read x: one parallel region.
  StepBuffers buffers;
  float* const q = buffers.floats(N * H * qk);
  float* const kv = buffers.floats(N * row);
  float* const q_a = c.has_q_lora() ? buffers.floats(N * c.q_lora_rank) : nullptr;  // [N, q_lora_rank]
  {
    const LinearWeight& wq = c.has_q_lora() ? w.wq_a : w.wq;
    float* q_out = c.has_q_lora() ? q_a : q;
    const kernels::MatmulJob jobs[] = {{wq, x, N, wq.cols, q_out, wq.rows}, {w.wkv_a, x, N, w.wkv_a.cols, kv, row}};
    const kernels::ProductPart part("attention wq (or wq_a), wkv_a");
    kernels::matmul_batch(pool, jobs);
  }
  if (c.has_q_lora()) {
    kernels::rms_norm(pool, q_a, w.q_norm.data(), N, c.q_lora_rank, eps, q_a);
    const kernels::ProductPart part("attention wq_b");
    kernels::matmul(pool, w.wq_b, q_a, N, q);
  }

  // q_nope, q_pe = split(q); q_pe = apply_rotary_emb(q_pe)      (in place: q stays (q_nope | q_pe))
  // kv, k_pe = split(kv);    k_pe = apply_rotary_emb(k_pe)      (in place: kv stays (kv | k_pe))
  for (int64_t t = 0; t < N; ++t) {
    ctx.rope.apply(q + t * H * qk + nope, H, qk, batch.positions[t]);  // every head's q_pe
    ctx.rope.apply(kv + t * row + R, 1, rope, batch.positions[t]);
  }

  // kv_cache[pos] = kv_norm(kv), pe_cache[pos] = k_pe: one cache row (kv_norm(kv) | k_pe) per
  // token, the layout kv already has, so kv is normed in place and copied row by row.
  kernels::rms_norm(pool, kv, w.kv_norm.data(), N, R, eps, kv, row, row);
  for (const auto& seg : batch.segments) {
    float* cache = seg.cache->layer(cache_layer);
    for (int64_t i = 0; i < seg.count; ++i) {
      const int64_t t = seg.offset + i;
      std::memcpy(cache + batch.positions[t] * row, kv + t * row, sizeof(float) * row);
    }
  }

  // V3.2: topk_indices = self.indexer(x, qr, ...), from the q latent after q_norm.
  IndexSelection selection;
  const bool sparse = c.has_indexer() && ctx.sparse_attention;
  if (sparse) indexer_forward(ctx, w.indexer, batch, cache_layer, x, q_a, &selection);

  // Attention of every head over the positions each token sees              [N, H, v]
  // (sparse attention always takes the absorbed form, which reads the selected cache rows)
  float* const o = buffers.floats(N * H * vdim);
  if (sparse) attend_absorbed(ctx, w, batch, cache_layer, q, o, &selection);
  else if (ctx.attention == AttentionImpl::Absorbed) attend_absorbed(ctx, w, batch, cache_layer, q, o, nullptr);
  else attend_naive(ctx, w, batch, cache_layer, q, o);

  // x = self.wo(x.flatten(2))                                               [N, dim]
  // (RowParallelLinear: this rank's heads' part of the sum; Block all-reduces it.)
  const kernels::ProductPart part("attention wo");
  kernels::matmul(pool, w.wo, o, N, out);
}

}  // namespace dsv3
