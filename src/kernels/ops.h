#pragma once
// The only door from model code to math. Every op here runs on the kernel table chosen at
// start-up (scalar oracle, AVX2, AVX-512; see dispatch.h) and splits its work over the
// thread pool the same way whatever the table, so that:
//   - each output element is computed by one task in a fixed order, independent of the
//     number of tokens in the batch and of the thread count (batch invariance);
//   - switching the table changes only the inner loops, which are tested against the oracle.
//
// Shapes are written [rows, cols], row-major. Activations are float32.

#include <cstdint>
#include <span>

#include "base/thread_pool.h"
#include "tensor/linear_weight.h"

namespace dsv3::kernels {

// y[t, r] = sum_c x[t, c] * W[r, c]     x: [n, ldx] (first W.cols used), y: [n, ldy] (first W.rows)
void matmul(ThreadPool& pool, const LinearWeight& w, const float* x, int64_t n, int64_t ldx, float* y, int64_t ldy);
inline void matmul(ThreadPool& pool, const LinearWeight& w, const float* x, int64_t n, float* y) {
  matmul(pool, w, x, n, w.cols, y, w.rows);
}

// y[t, c] = sum_r x[t, r] * W[r, c]     x: [n, ldx] (first W.rows used), y: [n, ldy] (first W.cols)
// (the transposed product, used to absorb W_UK into the query in MLA)
void matmul_transposed(ThreadPool& pool, const LinearWeight& w, const float* x, int64_t n, int64_t ldx, float* y,
                       int64_t ldy);

// Many small products in ONE parallel region (one thread sync instead of one per product),
// e.g. MLA's per-head products with the H row bands of wkv_b (kv_b_proj):
//   y = x W^T (transposed = false, as matmul) or y = x W (transposed = true, as
//   matmul_transposed). Each output element is bit-identical to what the single call gives.
struct MatmulJob {
  LinearWeight w;
  const float* x = nullptr;  // [n, ldx]
  int64_t n = 0, ldx = 0;
  float* y = nullptr;        // [n, ldy]
  int64_t ldy = 0;
  bool transposed = false;
};
void matmul_batch(ThreadPool& pool, std::span<const MatmulJob> jobs);

// y[t] = x[t] / sqrt(mean(x[t]^2) + eps) * weight          x, y: [n, dim] (may alias)
void rms_norm(ThreadPool& pool, const float* x, const float* weight, int64_t n, int64_t dim, float eps, float* y,
              int64_t ldx, int64_t ldy);
inline void rms_norm(ThreadPool& pool, const float* x, const float* weight, int64_t n, int64_t dim, float eps,
                     float* y) {
  rms_norm(pool, x, weight, n, dim, eps, y, dim, dim);
}

// gate[i] = silu(gate[i]) * up[i]     (SwiGLU), n values
void silu_mul(ThreadPool& pool, float* gate, const float* up, int64_t n);

// Multi-head latent attention of one sequence over its latent cache (absorbed form).
struct MlaAttentionArgs {
  int64_t n_tokens = 0;   // new tokens of this sequence
  int64_t n_heads = 0;
  int64_t kv_lora_rank = 0;
  int64_t rope_dim = 0;
  const float* q = nullptr;      // [n_tokens, n_heads, kv_lora_rank + rope_dim]: (W_UK^T q_nope | rope(q_pe))
  const float* cache = nullptr;  // [first_pos + n_tokens, kv_lora_rank + rope_dim]: (latent c | rope(k_pe))
  int64_t first_pos = 0;         // position of new token 0; token i sees cache rows [0, first_pos + i]
  float scale = 1.0f;            // softmax scale
  float* out = nullptr;          // [n_tokens, n_heads, kv_lora_rank]: softmax-weighted sum of latents
};
void mla_attention(ThreadPool& pool, const MlaAttentionArgs& args);
// Several sequences (each its own args) in one parallel region; each (token, head) computes
// exactly as in a call of its own.
void mla_attention(ThreadPool& pool, std::span<const MlaAttentionArgs> sequences);

// Plain multi-head attention (the "naive" MLA form with decompressed K and V).
struct MhaAttentionArgs {
  int64_t n_tokens = 0, n_heads = 0, qk_dim = 0, v_dim = 0;
  const float* q = nullptr;  // [n_tokens, n_heads, qk_dim]
  const float* k = nullptr;  // [n_heads, first_pos + n_tokens, qk_dim]: each head's keys together
  const float* v = nullptr;  // [n_heads, first_pos + n_tokens, v_dim]
  int64_t first_pos = 0;
  float scale = 1.0f;
  float* out = nullptr;      // [n_tokens, n_heads, v_dim]
};
void mha_attention(ThreadPool& pool, const MhaAttentionArgs& args);

// y[i] = e^((x[i] - shift) * scale), the argument clamped to [-87.3, 88.3]; on this thread
// (a sampler's weights: it runs on a pool thread already).
void exp_affine(const float* x, int64_t n, float shift, float scale, float* y);

// In-place softmax of one row (max-subtracted, float32).
void softmax(float* x, int64_t n);

}  // namespace dsv3::kernels
