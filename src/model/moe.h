#pragma once
// Mixture of Experts (DeepSeek model.py: Gate and MoE). The router runs in float32: on random
// weights a bf16 router changes expert choices and moves logits by whole units.

#include <cstdint>
#include <vector>

#include "base/thread_pool.h"
#include "format/model_config.h"
#include "model/partition.h"
#include "model/weights.h"

namespace dsv3 {

// What Gate.forward returns: each token's experts and their weights.
struct Routing {
  std::vector<int32_t> indices;  // [n_tokens, num_experts_per_tok] chosen experts, best first
  std::vector<float> weights;    // [n_tokens, num_experts_per_tok] their output weights
};

// Gate.forward after its linear: chooses each token's experts from the gate's logits
// [n, n_routed_experts] (scores, the bias for selection only, the group limit, top-k) and
// weighs them.
Routing route(const ModelConfig& config, const GateWeights& gate, const float* gate_logits, int64_t n);

// out[n, dim] = MoE(x[n, dim]): the chosen experts' outputs weighted, plus the shared experts'.
// `experts_read` (optional) grows by the number of routed experts the step ran: their weights
// are what a step reads beyond the layer's fixed part. Split across ranks, only the experts in
// `local_experts` run (empty: all) and the shared experts are this rank's columns: `out` is this
// rank's part of the sum, which the caller all-reduces.
void moe_forward(ThreadPool& pool, const ModelConfig& config, const MoeWeights& w, const float* x, int64_t n,
                 float* out, int64_t* experts_read = nullptr, Range local_experts = {});

}  // namespace dsv3
