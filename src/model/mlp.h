#pragma once
// The SwiGLU feed-forward (DeepSeek model.py: MLP and Expert): w2(silu(w1(x)) * w3(x)).

#include "base/thread_pool.h"
#include "model/weights.h"

namespace dsv3 {

// out[n, dim] = MLP(x[n, dim]).
void mlp_forward(ThreadPool& pool, const MlpWeights& w, const float* x, int64_t n, float* out);

}  // namespace dsv3
