#include "model/mlp.h"

#include <vector>

#include "kernels/ops.h"

namespace dsv3 {

void mlp_forward(ThreadPool& pool, const MlpWeights& w, const float* x, int64_t n, float* out) {
  const int64_t inter = w.gate_proj.rows;
  std::vector<float> gate(static_cast<size_t>(n * inter)), up(static_cast<size_t>(n * inter));
  kernels::matmul(pool, w.gate_proj, x, n, gate.data());       // [n, inter]
  kernels::matmul(pool, w.up_proj, x, n, up.data());           // [n, inter]
  kernels::silu_mul(pool, gate.data(), up.data(), n * inter);  // silu(gate) * up
  kernels::matmul(pool, w.down_proj, gate.data(), n, out);     // [n, hidden]
}

}  // namespace dsv3
