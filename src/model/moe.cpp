// Mirrors DeepSeek model.py Gate.forward and MoE.forward in four steps: route (Gate.forward),
// group the tokens by expert (MoE.forward's bincount and where(indices == i)), run the experts,
// combine. Shapes: n tokens, E = n_routed_experts, K = num_experts_per_tok, D = hidden size.

#include "model/moe.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>

#include "kernels/ops.h"
#include "kernels/product_profile.h"
#include "model/step_buffers.h"

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

// The routing entries (token t, slot k) of the step, t * K + k, grouped by expert: expert by
// expert in index order, each expert's tokens in token order. An expert's rows are contiguous,
// so that its weights are read once per step, whatever number of tokens chose it.
struct ExpertGroups {
  std::vector<int64_t> count;  // [E] tokens routed to each expert: bincount(indices)
  std::vector<int64_t> first;  // [E + 1] expert e's rows are [first[e], first[e + 1])
  std::vector<int64_t> entry;  // [n * K] grouped row -> routing entry t * K + k (idx = t, top = k)
  int64_t k = 0;               // K, entries per token
};

// Only the entries of this rank's experts `local` are grouped (model.py: the loop over
// range(experts_start_idx, experts_end_idx)); the others' counts stay 0.
ExpertGroups group_by_expert(const Routing& routing, int64_t n_experts, int64_t experts_per_token, Range local) {
  const int64_t E = n_experts, entries = static_cast<int64_t>(routing.indices.size());
  ExpertGroups g;
  g.k = experts_per_token;
  g.count.assign(static_cast<size_t>(E), 0);
  g.first.assign(static_cast<size_t>(E + 1), 0);
  int64_t local_entries = 0;
  for (int64_t i = 0; i < entries; ++i)
    if (local.contains(routing.indices[i])) ++g.count[routing.indices[i]], ++local_entries;
  for (int64_t e = 0; e < E; ++e) g.first[e + 1] = g.first[e] + g.count[e];
  g.entry.resize(static_cast<size_t>(local_entries));
  std::vector<int64_t> next(g.first.begin(), g.first.end() - 1);
  for (int64_t i = 0; i < entries; ++i)
    if (local.contains(routing.indices[i])) g.entry[next[routing.indices[i]]++] = i;
  return g;
}

// The shared experts' hidden activations, w1(x) and w3(x) [n, inter each], computed in the
// gate's parallel region (both read x as the gate does); run_experts finishes them.
struct SharedHidden {
  float* h1 = nullptr;
  float* h3 = nullptr;
};

// What the experts computed: expert_e(x[t]) for every routing entry, in the grouped order,
// and shared_experts(x).
struct ExpertOutputs {
  float* routed = nullptr;  // [n * K, D]
  float* shared = nullptr;  // [n, D]; null without shared experts
};

// expert(x[idx]) for every expert with tokens, and the shared experts' w2(silu(h1) * h3), in
// two parallel regions whatever the number of experts: every chosen expert's w1 and w3, then
// every w2 together with the shared experts'. Its tensors come from the caller's frame.
ExpertOutputs run_experts(ThreadPool& pool, const MoeWeights& w, const float* x, int64_t n, int64_t D,
                          const ExpertGroups& g, SharedHidden& shared, StepBuffers& buffers) {
  const int64_t E = static_cast<int64_t>(w.experts.size()), K = g.k, rows = static_cast<int64_t>(g.entry.size());
  int64_t inter = 0;  // moe_intermediate_size (of an expert this rank holds)
  for (int64_t e = 0; e < E && inter == 0; ++e) inter = g.count[e] > 0 ? w.experts[e].w1.rows : 0;
  const int64_t shared_inter = w.shared_experts ? w.shared_experts->w1.rows : 0;

  // x[idx] of each expert: x itself when the expert has every token in order (a decode of
  // one sequence: always), else rows gathered in the grouped order.
  float* x_grouped = nullptr;
  auto expert_input = [&](int64_t e) -> const float* {
    const int64_t m = g.count[e];
    bool direct = m == n;
    for (int64_t i = 0; direct && i < m; ++i) direct = g.entry[g.first[e] + i] / K == i;
    if (direct) return x;
    return x_grouped + g.first[e] * D;
  };
  bool need_gather = false;
  for (int64_t e = 0; e < E && !need_gather; ++e)
    if (g.count[e] > 0 && expert_input(e) != x) need_gather = true;
  if (need_gather) {
    x_grouped = buffers.floats(rows * D);
    for (int64_t r = 0; r < rows; ++r)
      std::memcpy(x_grouped + r * D, x + (g.entry[r] / K) * D, sizeof(float) * D);
  }

  // h1 = w1(x[idx]), h3 = w3(x[idx]) of every chosen expert                [rows, inter] each
  float* const h1 = buffers.floats(rows * inter);
  float* const h3 = buffers.floats(rows * inter);
  std::vector<kernels::MatmulJob> jobs;
  for (int64_t e = 0; e < E; ++e) {
    if (g.count[e] == 0) continue;
    const float* xe = expert_input(e);
    jobs.push_back({w.experts[e].w1, xe, g.count[e], D, h1 + g.first[e] * inter, inter});
    jobs.push_back({w.experts[e].w3, xe, g.count[e], D, h3 + g.first[e] * inter, inter});
  }
  {
    const kernels::ProductPart part("moe experts w1, w3");
    kernels::matmul_batch(pool, jobs);
  }
  kernels::silu_mul(pool, h1, h3, rows * inter);
  if (w.shared_experts) kernels::silu_mul(pool, shared.h1, shared.h3, n * shared_inter);

  // w2 of every chosen expert and of the shared experts                   [rows, D], [n, D]
  ExpertOutputs y;
  y.routed = buffers.floats(rows * D);
  if (w.shared_experts) y.shared = buffers.floats(n * D);
  jobs.clear();
  for (int64_t e = 0; e < E; ++e)
    if (g.count[e] > 0)
      jobs.push_back({w.experts[e].w2, h1 + g.first[e] * inter, g.count[e], inter,
                      y.routed + g.first[e] * D, D});
  if (w.shared_experts) jobs.push_back({w.shared_experts->w2, shared.h1, n, shared_inter, y.shared, D});
  const kernels::ProductPart part("moe experts w2, shared w2");
  kernels::matmul_batch(pool, jobs);
  return y;
}

// y[idx] += expert(x[idx]) * weights[idx, top] for the experts in index order, then y + z:
// every token's sum runs in the same order whatever else is in the batch.
void combine(const Routing& routing, const ExpertGroups& g, const ExpertOutputs& y, int64_t n, int64_t D, float* out) {
  const int64_t K = g.k;
  std::fill(out, out + n * D, 0.0f);
  for (size_t r = 0; r < g.entry.size(); ++r) {
    const int64_t t = g.entry[r] / K;
    const float weight = routing.weights[g.entry[r]];
    float* o = out + t * D;
    const float* expert_out = y.routed + r * D;
    for (int64_t d = 0; d < D; ++d) o[d] += weight * expert_out[d];
  }
  if (y.shared)
    for (int64_t i = 0; i < n * D; ++i) out[i] += y.shared[i];
}

}  // namespace

Routing route(const ModelConfig& c, const GateWeights& gate, const float* gate_logits, int64_t n) {
  const int64_t E = c.n_routed_experts, K = c.num_experts_per_tok;
  const std::vector<float>& bias = gate.bias;
  Routing r;
  r.indices.resize(static_cast<size_t>(n * K));
  r.weights.resize(static_cast<size_t>(n * K));
  std::vector<float> scores(static_cast<size_t>(E)), select(static_cast<size_t>(E));
  for (int64_t t = 0; t < n; ++t) {
    const float* logits = gate_logits + t * E;
    // scores = softmax over the experts, or sigmoid of each
    if (c.scoring_func == ScoringFunc::Softmax) {
      std::memcpy(scores.data(), logits, sizeof(float) * E);
      kernels::softmax(scores.data(), E);
    } else {
      for (int64_t e = 0; e < E; ++e) scores[e] = 1.0f / (1.0f + std::exp(-logits[e]));
    }
    // original_scores = scores; scores = scores + self.bias: the bias takes part in the
    // selection only, never in the weights.
    for (int64_t e = 0; e < E; ++e) select[e] = bias.empty() ? scores[e] : scores[e] + bias[e];
    if (c.n_group > 1) {
      // Group limit: score each group (the sum of its top 2 with a bias, its max without),
      // keep the topk_group best groups, mask the rest to -inf.
      const int64_t G = c.n_group, per = E / G;
      std::vector<float> group_score(static_cast<size_t>(G));
      for (int64_t g = 0; g < G; ++g) {
        const float* s = select.data() + g * per;
        if (!bias.empty()) {
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
    // indices = topk(scores); weights = original_scores.gather(indices)
    int32_t* chosen = r.indices.data() + t * K;
    float* weight = r.weights.data() + t * K;
    top_k(select.data(), E, K, chosen);
    float sum = 0.0f;
    for (int64_t k = 0; k < K; ++k) {
      weight[k] = scores[chosen[k]];
      sum += weight[k];
    }
    // Normalized for a sigmoid router (model.py) or where config.json's norm_topk_prob says
    // so (HuggingFace's reading); then weights *= route_scale (routed_scaling_factor).
    const bool normalize = c.norm_topk_prob || c.scoring_func == ScoringFunc::Sigmoid;
    for (int64_t k = 0; k < K; ++k) {
      if (normalize) weight[k] /= sum;
      weight[k] *= static_cast<float>(c.routed_scaling_factor);
    }
  }
  return r;
}

void moe_forward(ThreadPool& pool, const ModelConfig& c, const MoeWeights& w, const float* x, int64_t n, float* out,
                 int64_t* experts_read, Range local_experts) {
  const int64_t E = c.n_routed_experts, D = c.hidden_size;
  const int64_t shared_inter = w.shared_experts ? w.shared_experts->w1.rows : 0;
  // Three parallel regions per layer, whatever the number of experts: (1) the gate's linear
  // and the shared experts' w1 and w3; (2) w1 and w3 of every chosen expert; (3) every w2.
  // Each product is computed exactly as a single matmul call would (ops.h: matmul_batch), so
  // the grouping changes no bits.

  // scores = linear(x, self.gate.weight) in float32                         [n, E]
  // and the shared experts' w1(x), w3(x) in the same region                  [n, shared_inter]
  StepBuffers buffers;
  float* const gate_logits = buffers.floats(n * E);
  SharedHidden shared;
  if (w.shared_experts) shared = {buffers.floats(n * shared_inter), buffers.floats(n * shared_inter)};
  std::vector<kernels::MatmulJob> jobs;
  jobs.push_back({w.gate.weight, x, n, D, gate_logits, E});
  if (w.shared_experts) {
    jobs.push_back({w.shared_experts->w1, x, n, D, shared.h1, shared_inter});
    jobs.push_back({w.shared_experts->w3, x, n, D, shared.h3, shared_inter});
  }
  {
    const kernels::ProductPart part("moe gate, shared w1, w3");
    kernels::matmul_batch(pool, jobs);
  }

  // weights, indices = self.gate(x)
  const Routing routing = route(c, w.gate, gate_logits, n);
  // counts = bincount(indices); idx, top = where(indices == i) for every expert i
  if (local_experts.size() == 0) local_experts = {0, E};
  const ExpertGroups groups = group_by_expert(routing, E, c.num_experts_per_tok, local_experts);
  if (experts_read) *experts_read += std::count_if(groups.count.begin(), groups.count.end(), [](int64_t m) { return m > 0; });
  // expert(x[idx]) for every expert with tokens; z = self.shared_experts(x)
  const ExpertOutputs y = run_experts(pool, w, x, n, D, groups, shared, buffers);
  // y[idx] += expert(x[idx]) * weights[idx, top, None]; return y + z
  combine(routing, groups, y, n, D, out);
}

}  // namespace dsv3
