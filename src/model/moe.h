#pragma once
// Mixture of Experts (DeepSeek model.py: Gate + MoE). The router runs in float32: on random
// weights a bf16 router changes expert choices and moves logits by whole units.

#include <cstdint>
#include <vector>

#include "base/thread_pool.h"
#include "format/model_config.h"
#include "model/weights.h"

namespace dsv3 {

struct Routing {
  std::vector<int32_t> experts;  // [n_tokens, top_k] chosen expert ids, best first
  std::vector<float> weights;    // [n_tokens, top_k] their output weights
};

// Chooses experts from router logits [n, n_routed] (Gate.forward after the linear).
Routing route_tokens(const ModelConfig& config, const float* router_logits, int64_t n,
                     const std::vector<float>& correction_bias);

// out[n, hidden] = sum over chosen experts of w_e * expert_e(x) + shared_experts(x).
void moe_forward(ThreadPool& pool, const ModelConfig& config, const MoeWeights& w, const float* x, int64_t n,
                 float* out);

}  // namespace dsv3
