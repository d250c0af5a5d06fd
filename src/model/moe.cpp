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
  const int64_t inter = w.experts.empty() ? 0 : w.experts[0].w1.rows;
  const int64_t shared_inter = w.shared_experts ? w.shared_experts->w1.rows : 0;
  // Three parallel regions per layer, whatever the number of experts: (1) router logits and
  // the shared experts' gate and up; (2) gate and up of every chosen expert; (3) every down.
  // Each product is computed exactly as a single matmul call would (ops.h: matmul_batch), so
  // the grouping changes no bits.

  // Router logits in float32                                             [n, E]
  std::vector<float> logits(static_cast<size_t>(n * E));
  std::vector<float> s_gate(static_cast<size_t>(n * shared_inter)), s_up(s_gate.size());  // [n, shared_inter]
  std::vector<kernels::MatmulJob> jobs;
  jobs.push_back({w.gate.weight, x, n, D, logits.data(), E});
  if (w.shared_experts) {
    jobs.push_back({w.shared_experts->w1, x, n, D, s_gate.data(), shared_inter});
    jobs.push_back({w.shared_experts->w3, x, n, D, s_up.data(), shared_inter});
  }
  kernels::matmul_batch(pool, jobs);
  Routing routing = route_tokens(c, logits.data(), n, w.gate.bias);

  // Group the tokens by expert so each expert's weights are read once per step: expert e's
  // tokens are rows [first[e], first[e + 1]) of the grouped buffers, in token order.
  std::vector<int64_t> count(static_cast<size_t>(E + 1), 0), first(static_cast<size_t>(E + 1), 0);
  for (int64_t i = 0; i < n * K; ++i) ++count[routing.experts[i]];
  for (int64_t e = 0; e < E; ++e) first[e + 1] = first[e] + count[e];
  const int64_t rows = n * K;
  std::vector<int64_t> entry(static_cast<size_t>(rows));  // grouped row -> t * K + slot
  {
    std::vector<int64_t> next(first.begin(), first.end() - 1);
    for (int64_t i = 0; i < n * K; ++i) entry[next[routing.experts[i]]++] = i;
  }
  // Inputs of each expert: x itself when the expert has every token in order (decode of one
  // sequence: always), else gathered rows.
  std::vector<float> xg;
  auto expert_input = [&](int64_t e) -> const float* {
    const int64_t m = count[e];
    bool direct = m == n;
    for (int64_t i = 0; direct && i < m; ++i) direct = entry[first[e] + i] / K == i;
    if (direct) return x;
    return xg.data() + first[e] * D;
  };
  bool need_gather = false;
  for (int64_t e = 0; e < E && !need_gather; ++e)
    if (count[e] > 0 && expert_input(e) != x) need_gather = true;
  if (need_gather) {
    xg.resize(static_cast<size_t>(rows * D));
    for (int64_t r = 0; r < rows; ++r) std::memcpy(xg.data() + r * D, x + (entry[r] / K) * D, sizeof(float) * D);
  }

  // gate and up of every chosen expert                                   [rows, inter] each
  std::vector<float> g(static_cast<size_t>(rows * inter)), u(g.size());
  jobs.clear();
  for (int64_t e = 0; e < E; ++e) {
    if (count[e] == 0) continue;
    const float* xe = expert_input(e);
    jobs.push_back({w.experts[e].w1, xe, count[e], D, g.data() + first[e] * inter, inter});
    jobs.push_back({w.experts[e].w3, xe, count[e], D, u.data() + first[e] * inter, inter});
  }
  kernels::matmul_batch(pool, jobs);
  kernels::silu_mul(pool, g.data(), u.data(), rows * inter);
  if (w.shared_experts) kernels::silu_mul(pool, s_gate.data(), s_up.data(), n * shared_inter);

  // down of every chosen expert and of the shared experts                [rows, D], [n, D]
  std::vector<float> yg(static_cast<size_t>(rows * D)), z(static_cast<size_t>(w.shared_experts ? n * D : 0));
  jobs.clear();
  for (int64_t e = 0; e < E; ++e)
    if (count[e] > 0)
      jobs.push_back({w.experts[e].w2, g.data() + first[e] * inter, count[e], inter, yg.data() + first[e] * D, D});
  if (w.shared_experts) jobs.push_back({w.shared_experts->w2, s_gate.data(), n, shared_inter, z.data(), D});
  kernels::matmul_batch(pool, jobs);

  // Experts in index order, each adding w_e * expert_e(x) to its tokens, then the shared
  // experts: every token's sum runs in the same order whatever else is in the batch.
  std::fill(out, out + n * D, 0.0f);
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t t = entry[r] / K;
    const float weight = routing.weights[entry[r]];
    float* o = out + t * D;
    const float* y = yg.data() + r * D;
    for (int64_t d = 0; d < D; ++d) o[d] += weight * y[d];
  }
  if (w.shared_experts)
    for (int64_t i = 0; i < n * D; ++i) out[i] += z[i];
}

}  // namespace dsv3
