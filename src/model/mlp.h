#pragma once
// The SwiGLU feed-forward (DeepSeek model.py: MLP / Expert): down(silu(gate(x)) * up(x)).

#include "base/thread_pool.h"
#include "model/weights.h"

namespace dsv3 {

// out[n, hidden] = MLP(x[n, hidden]).
void mlp_forward(ThreadPool& pool, const MlpWeights& w, const float* x, int64_t n, float* out);

}  // namespace dsv3
