#include "model/mlp.h"

#include <vector>

#include "kernels/ops.h"

namespace dsv3 {

void mlp_forward(ThreadPool& pool, const MlpWeights& w, const float* x, int64_t n, float* out) {
  const int64_t inter = w.w1.rows;
  std::vector<float> gate(static_cast<size_t>(n * inter)), up(static_cast<size_t>(n * inter));
  // gate and up in one parallel region                                 [n, inter] each
  const kernels::MatmulJob jobs[] = {{w.w1, x, n, w.w1.cols, gate.data(), inter},
                                     {w.w3, x, n, w.w3.cols, up.data(), inter}};
  kernels::matmul_batch(pool, jobs);
  kernels::silu_mul(pool, gate.data(), up.data(), n * inter);  // silu(gate) * up
  kernels::matmul(pool, w.w2, gate.data(), n, out);     // [n, hidden]
}

}  // namespace dsv3
