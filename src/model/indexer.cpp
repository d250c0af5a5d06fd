// Mirrors DeepSeek-V3.2-Exp model.py Indexer.forward with kernel.py's act_quant and
// fp8_index (see indexer.h). Shapes: N new tokens, IH = index_n_heads, D = index_head_dim
// (128: one FP8 block), rope = qk_rope_head_dim.

#include "model/indexer.h"

#include <immintrin.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <numeric>

#include "base/cpu_features.h"
#include "kernels/ops.h"
#include "kernels/product_profile.h"
#include "tensor/dtype.h"

namespace dsv3 {

namespace indexer_detail {

void hadamard(float* x, int64_t n, float scale) {
  // Butterflies (a + b, a - b) on pairs h apart, h = 1, 2, 4, ...: x H with H the Sylvester
  // matrix (the order fast_hadamard_transform's result is defined in).
  for (int64_t h = 1; h < n; h *= 2)
    for (int64_t i = 0; i < n; i += 2 * h)
      for (int64_t j = i; j < i + h; ++j) {
        const float a = x[j], b = x[j + h];
        x[j] = a + b;
        x[j + h] = a - b;
      }
  for (int64_t i = 0; i < n; ++i) x[i] *= scale;
}

float quantize_block(const float* x, int64_t n, bool ue8m0, uint8_t* codes) {
  float amax = 0.0f;
  for (int64_t i = 0; i < n; ++i) amax = std::max(amax, std::fabs(x[i]));
  amax = std::max(amax, 1e-4f);
  float s = amax * (1.0f / 448.0f);
  if (ue8m0) {
    // kernel.py fast_round_scale: 2^ceil(log2 s) from the float's exponent and mantissa bits.
    int e = 0;
    const float m = std::frexp(s, &e);  // s = m * 2^e, m in [0.5, 1)
    s = std::ldexp(1.0f, m == 0.5f ? e - 1 : e);
  }
  for (int64_t i = 0; i < n; ++i) codes[i] = f32_to_e4m3(std::clamp(x[i] / s, -448.0f, 448.0f));
  return s;
}

}  // namespace indexer_detail

namespace {

using indexer_detail::hadamard;
using indexer_detail::quantize_block;

// Keys are scored in chunks of this many positions per task.
constexpr int64_t kKeysPerTask = 512;

// model.py LayerNorm(head_dim) (eps 1e-6, with bias) in place; moments in double.
void layer_norm(float* x, int64_t n, const float* weight, const float* bias) {
  double mean = 0.0;
  for (int64_t i = 0; i < n; ++i) mean += x[i];
  mean /= static_cast<double>(n);
  double var = 0.0;
  for (int64_t i = 0; i < n; ++i) var += (x[i] - mean) * (x[i] - mean);
  var /= static_cast<double>(n);
  const double rstd = 1.0 / std::sqrt(var + 1e-6);
  for (int64_t i = 0; i < n; ++i) x[i] = static_cast<float>((x[i] - mean) * rstd) * weight[i] + bias[i];
}

// Keys [j0, j1): score[j] = k_scale[j] * sum_h relu(q_h . k_j) * w_h. Sixteen keys at a
// time, decoded and transposed, so that the inner loop runs across keys (independent sums
// the compiler vectorizes) while each key's dot product adds its terms in order (exact
// either way: products of e4m3 values and their sums fit a double's mantissa).
__attribute__((always_inline)) inline void score_keys_impl(const uint8_t* keys, const float* kscale, int64_t D, int64_t IH,
                                                            const double* qt, const double* wt, int64_t j0, int64_t j1,
                                                            float* scores) {
  constexpr int64_t kKeys = 16;
  alignas(64) double kt[128][kKeys];
  for (int64_t j = j0; j < j1; j += kKeys) {
    const int64_t nb = std::min(kKeys, j1 - j);
    for (int64_t d = 0; d < D; ++d)
      for (int64_t b = 0; b < kKeys; ++b) kt[d][b] = b < nb ? e4m3_to_f32(keys[(j + b) * D + d]) : 0.0;
    alignas(64) double acc[kKeys] = {};
    for (int64_t h = 0; h < IH; ++h) {
      const double* qh = qt + h * D;
      alignas(64) double dot[kKeys] = {};
      for (int64_t d = 0; d < D; ++d) {
        const double qd = qh[d];
        for (int64_t b = 0; b < kKeys; ++b) dot[b] += qd * kt[d][b];
      }
      for (int64_t b = 0; b < kKeys; ++b) acc[b] += std::max(dot[b], 0.0) * wt[h];
    }
    for (int64_t b = 0; b < nb; ++b) scores[j + b] = static_cast<float>(acc[b] * static_cast<double>(kscale[j + b]));
  }
}

// The same with AVX2 + FMA intrinsics (the x86-64 baseline dsv3 requires; the project's
// default flags target plain x86-64, where the loop above stays scalar). Fused multiply-adds
// in the dot products change nothing (every product and sum is exact); the head-weighted sum
// multiplies and adds separately, as the loop above does, so both give the same bits.
__attribute__((target("avx2,fma"))) void score_keys_avx2(const uint8_t* keys, const float* kscale, int64_t D, int64_t IH,
                                                         const double* qt, const double* wt, int64_t j0, int64_t j1,
                                                         float* scores) {
  constexpr int64_t kKeys = 16;
  alignas(64) double kt[128][kKeys];
  const __m256d zero = _mm256_setzero_pd();
  for (int64_t j = j0; j < j1; j += kKeys) {
    const int64_t nb = std::min(kKeys, j1 - j);
    for (int64_t d = 0; d < D; ++d)
      for (int64_t b = 0; b < kKeys; ++b) kt[d][b] = b < nb ? e4m3_to_f32(keys[(j + b) * D + d]) : 0.0;
    __m256d acc[4] = {zero, zero, zero, zero};
    for (int64_t h = 0; h < IH; ++h) {
      const double* qh = qt + h * D;
      __m256d dot[4] = {zero, zero, zero, zero};
      for (int64_t d = 0; d < D; ++d) {
        const __m256d qd = _mm256_broadcast_sd(qh + d);
        for (int i = 0; i < 4; ++i) dot[i] = _mm256_fmadd_pd(qd, _mm256_load_pd(&kt[d][4 * i]), dot[i]);
      }
      const __m256d w = _mm256_broadcast_sd(wt + h);
      for (int i = 0; i < 4; ++i) acc[i] = _mm256_add_pd(acc[i], _mm256_mul_pd(_mm256_max_pd(dot[i], zero), w));
    }
    alignas(64) double out[kKeys];
    for (int i = 0; i < 4; ++i) _mm256_store_pd(out + 4 * i, acc[i]);
    for (int64_t b = 0; b < nb; ++b) scores[j + b] = static_cast<float>(out[b] * static_cast<double>(kscale[j + b]));
  }
}
void score_keys_generic(const uint8_t* keys, const float* kscale, int64_t D, int64_t IH, const double* qt,
                        const double* wt, int64_t j0, int64_t j1, float* scores) {
  score_keys_impl(keys, kscale, D, IH, qt, wt, j0, j1, scores);
}
void score_keys(const uint8_t* keys, const float* kscale, int64_t D, int64_t IH, const double* qt, const double* wt,
                int64_t j0, int64_t j1, float* scores) {
  static const bool avx2 = cpu_features().has_avx2_path();
  (avx2 ? score_keys_avx2 : score_keys_generic)(keys, kscale, D, IH, qt, wt, j0, j1, scores);
}

}  // namespace

namespace {
std::atomic<int64_t> g_indexer_ns{0};

// Adds the time from its construction to its end to g_indexer_ns.
struct IndexerTimer {
  std::chrono::steady_clock::time_point t0 = std::chrono::steady_clock::now();
  ~IndexerTimer() {
    g_indexer_ns += std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0).count();
  }
};
}  // namespace

int64_t indexer_detail::elapsed_ns() { return g_indexer_ns.load(); }

void indexer_forward(const ForwardContext& ctx, const IndexerWeights& w, const TokenBatch& batch,
                     int64_t cache_layer, const float* x, const float* qr, IndexSelection* out) {
  const IndexerTimer timer;
  const ModelConfig& c = ctx.config;
  ThreadPool& pool = ctx.pool;
  const int64_t N = batch.n_tokens(), IH = c.index_n_heads, D = c.index_head_dim;
  const bool ue8m0 = c.scale_fmt == "ue8m0";
  const float hadamard_scale = static_cast<float>(std::pow(static_cast<double>(D), -0.5));
  const float head_scale = static_cast<float>(std::pow(static_cast<double>(IH), -0.5));
  const float softmax_scale = static_cast<float>(std::pow(static_cast<double>(D), -0.5));

  // q = wq_b(qr) [N, IH, D]; k = wk(x) [N, D]; weights = weights_proj(x) [N, IH]
  std::vector<float> q(static_cast<size_t>(N * IH * D)), k(static_cast<size_t>(N * D)), wts(static_cast<size_t>(N * IH));
  {
    const kernels::ProductPart part("indexer wq_b, wk, weights_proj");
    const kernels::MatmulJob jobs[] = {{w.wq_b, qr, N, w.wq_b.cols, q.data(), IH * D},
                                       {w.wk, x, N, w.wk.cols, k.data(), D},
                                       {w.weights_proj, x, N, w.weights_proj.cols, wts.data(), IH}};
    kernels::matmul_batch(pool, jobs);
  }

  // Per token: k_norm, rope, rotation and FP8 of the key (into the cache) and of each query
  // head (kept decoded, in double, for exact dot products); the head weights.
  std::vector<double> q8(static_cast<size_t>(N * IH * D));
  std::vector<double> head_w(static_cast<size_t>(N * IH));
  std::vector<KVCache*> cache_of(static_cast<size_t>(N));
  for (const auto& seg : batch.segments)
    for (int64_t i = 0; i < seg.count; ++i) cache_of[seg.offset + i] = seg.cache;
  pool.parallel_for(N, [&](int64_t t) {
    const int64_t pos = batch.positions[t];
    float* kt = k.data() + t * D;
    layer_norm(kt, D, w.k_norm.data(), w.k_norm_bias.data());
    ctx.rope.apply_half_split(kt, 1, D, pos);
    hadamard(kt, D, hadamard_scale);
    KVCache* cache = cache_of[t];
    cache->index_scales(cache_layer)[pos] = quantize_block(kt, D, ue8m0, cache->index_keys(cache_layer) + pos * D);
    uint8_t codes[128];
    for (int64_t h = 0; h < IH; ++h) {
      float* qh = q.data() + (t * IH + h) * D;
      ctx.rope.apply_half_split(qh, 1, D, pos);
      hadamard(qh, D, hadamard_scale);
      const float q_scale = quantize_block(qh, D, ue8m0, codes);
      for (int64_t d = 0; d < D; ++d) q8[(t * IH + h) * D + d] = e4m3_to_f32(codes[d]);
      // weights = weights_proj(x) * n_heads^-0.5; weights * q_scale * softmax_scale (float32, that order)
      head_w[t * IH + h] = static_cast<double>(((wts[t * IH + h] * head_scale) * q_scale) * softmax_scale);
    }
  });

  // score[t, j] = k_scale[j] * sum_h relu(q8[t, h] . k8[j]) * w[t, h], j <= pos(t): tasks of
  // kKeysPerTask keys of one token; each key row is decoded once and met by every head.
  std::vector<size_t> score_offset(static_cast<size_t>(N) + 1, 0);
  for (int64_t t = 0; t < N; ++t) score_offset[t + 1] = score_offset[t] + static_cast<size_t>(batch.positions[t] + 1);
  std::vector<float> scores(score_offset[N]);
  std::vector<std::pair<int64_t, int64_t>> tasks;  // (token, first key)
  for (int64_t t = 0; t < N; ++t)
    for (int64_t j0 = 0; j0 <= batch.positions[t]; j0 += kKeysPerTask) tasks.emplace_back(t, j0);
  pool.parallel_for(static_cast<int64_t>(tasks.size()), [&](int64_t task) {
    const auto [t, j0] = tasks[static_cast<size_t>(task)];
    const int64_t j1 = std::min(batch.positions[t] + 1, j0 + kKeysPerTask);
    const uint8_t* keys = cache_of[t]->index_keys(cache_layer);
    const float* kscale = cache_of[t]->index_scales(cache_layer);
    const double* qt = q8.data() + t * IH * D;
    const double* wt = head_w.data() + t * IH;
    score_keys(keys, kscale, D, IH, qt, wt, j0, j1, scores.data() + score_offset[t]);
  });

  // Top-k per token (ties to the lower position), then ascending positions.
  out->topk = c.index_topk;
  out->positions.assign(static_cast<size_t>(N * c.index_topk), -1);
  out->counts.assign(static_cast<size_t>(N), 0);
  pool.parallel_for(N, [&](int64_t t) {
    const int64_t len = batch.positions[t] + 1, kk = std::min(c.index_topk, len);
    int32_t* row = out->positions.data() + t * c.index_topk;
    out->counts[t] = static_cast<int32_t>(kk);
    if (kk == len) {
      std::iota(row, row + kk, 0);
      return;
    }
    const float* s = scores.data() + score_offset[t];
    std::vector<int32_t> order(static_cast<size_t>(len));
    std::iota(order.begin(), order.end(), 0);
    std::nth_element(order.begin(), order.begin() + (kk - 1), order.end(),
                     [s](int32_t a, int32_t b) { return s[a] > s[b] || (s[a] == s[b] && a < b); });
    std::sort(order.begin(), order.begin() + kk);
    std::copy_n(order.begin(), kk, row);
  });

  if (ctx.indexer_trace) {
    auto& layers = ctx.indexer_trace->layers;
    if (static_cast<int64_t>(layers.size()) <= cache_layer) layers.resize(static_cast<size_t>(cache_layer) + 1);
    for (int64_t t = 0; t < N; ++t) layers[cache_layer].emplace_back(out->row(t), out->row(t) + out->counts[t]);
  }
}

}  // namespace dsv3
