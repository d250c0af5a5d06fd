// Mirrors DeepSeek model.py Gate.forward and MoE.forward.

#include "model/moe.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>

#include "kernels/ops.h"
#include "model/mlp.h"

namespace dsv3 {
namespace {

// Indices of the k largest values, largest first; ties go to the lower index.
void top_k(const float* v, int64_t n, int64_t k, int32_t* out) {
  std::vector<int32_t> idx(static_cast<size_t>(n));
  std::iota(idx.begin(), idx.end(), 0);
  std::partial_sort(idx.begin(), idx.begin() + k, idx.end(), [&](int32_t a, int32_t b) {
    return v[a] > v[b] || (v[a] == v[b] && a < b);
  });
  std::copy(idx.begin(), idx.begin() + k, out);
}

}  // namespace

Routing route_tokens(const ModelConfig& c, const float* router_logits, int64_t n,
                     const std::vector<float>& correction_bias) {
  const int64_t E = c.n_routed_experts, K = c.num_experts_per_tok;
  Routing r;
  r.experts.resize(static_cast<size_t>(n * K));
  r.weights.resize(static_cast<size_t>(n * K));
  std::vector<float> scores(static_cast<size_t>(E)), select(static_cast<size_t>(E));
  for (int64_t t = 0; t < n; ++t) {
    const float* logits = router_logits + t * E;
    // scores: softmax over experts or elementwise sigmoid
    if (c.scoring_func == ScoringFunc::Softmax) {
      std::memcpy(scores.data(), logits, sizeof(float) * E);
      kernels::softmax(scores.data(), E);
    } else {
      for (int64_t e = 0; e < E; ++e) scores[e] = 1.0f / (1.0f + std::exp(-logits[e]));
    }
    // The correction bias takes part in selection only, never in the weights.
    for (int64_t e = 0; e < E; ++e) select[e] = correction_bias.empty() ? scores[e] : scores[e] + correction_bias[e];
    if (c.n_group > 1) {
      // Group-limited routing: score each group (sum of its top 2 with the bias, its max
      // without), keep the topk_group best groups, mask the rest to -inf.
      const int64_t G = c.n_group, per = E / G;
      std::vector<float> group_score(static_cast<size_t>(G));
      for (int64_t g = 0; g < G; ++g) {
        const float* s = select.data() + g * per;
        if (!correction_bias.empty()) {
          int32_t best[2];
          top_k(s, per, 2, best);
          group_score[g] = s[best[0]] + s[best[1]];
        } else {
          group_score[g] = *std::max_element(s, s + per);
        }
      }
      std::vector<int32_t> keep(static_cast<size_t>(c.topk_group));
      top_k(group_score.data(), G, c.topk_group, keep.data());
      std::vector<bool> kept(static_cast<size_t>(G), false);
      for (int32_t g : keep) kept[g] = true;
      for (int64_t g = 0; g < G; ++g)
        if (!kept[g])
          std::fill(select.begin() + g * per, select.begin() + (g + 1) * per, -std::numeric_limits<float>::infinity());
    }
    int32_t* chosen = r.experts.data() + t * K;
    float* weight = r.weights.data() + t * K;
    top_k(select.data(), E, K, chosen);
    float sum = 0.0f;
    for (int64_t k = 0; k < K; ++k) {
      weight[k] = scores[chosen[k]];
      sum += weight[k];
    }
    const bool normalize = c.norm_topk_prob || c.scoring_func == ScoringFunc::Sigmoid;
    for (int64_t k = 0; k < K; ++k) {
      if (normalize) weight[k] /= sum;
      weight[k] *= static_cast<float>(c.routed_scaling_factor);
    }
  }
  return r;
}

void moe_forward(ThreadPool& pool, const ModelConfig& c, const MoeWeights& w, const float* x, int64_t n, float* out) {
  const int64_t E = c.n_routed_experts, K = c.num_experts_per_tok, D = c.hidden_size;
  // Router logits in float32                                             [n, E]
  std::vector<float> logits(static_cast<size_t>(n * E));
  kernels::matmul(pool, w.gate, x, n, logits.data());
  Routing routing = route_tokens(c, logits.data(), n, w.e_score_correction_bias);

  // Group the tokens by expert so each expert's weights are read once per step.
  std::vector<std::vector<int64_t>> tokens_of(static_cast<size_t>(E));  // entries t * K + slot
  for (int64_t t = 0; t < n; ++t)
    for (int64_t k = 0; k < K; ++k) tokens_of[routing.experts[t * K + k]].push_back(t * K + k);

  std::fill(out, out + n * D, 0.0f);
  std::vector<float> xe, ye;
  // Experts in index order, each adding w_e * expert_e(x) to its tokens: every token's sum
  // runs in the same order whatever else is in the batch.
  for (int64_t e = 0; e < E; ++e) {
    const auto& entries = tokens_of[e];
    if (entries.empty()) continue;
    const int64_t m = static_cast<int64_t>(entries.size());
    xe.resize(static_cast<size_t>(m * D));
    ye.resize(static_cast<size_t>(m * D));
    for (int64_t i = 0; i < m; ++i) std::memcpy(xe.data() + i * D, x + (entries[i] / K) * D, sizeof(float) * D);
    mlp_forward(pool, w.experts[e], xe.data(), m, ye.data());
    for (int64_t i = 0; i < m; ++i) {
      const int64_t t = entries[i] / K;
      const float weight = routing.weights[entries[i]];
      float* o = out + t * D;
      const float* y = ye.data() + i * D;
      for (int64_t d = 0; d < D; ++d) o[d] += weight * y[d];
    }
  }
  if (w.shared_experts) {
    std::vector<float> z(static_cast<size_t>(n * D));
    mlp_forward(pool, *w.shared_experts, x, n, z.data());
    for (int64_t i = 0; i < n * D; ++i) out[i] += z[i];
  }
}

}  // namespace dsv3
