// Mirrors DeepSeek model.py MLP.forward: self.w2(F.silu(self.w1(x)) * self.w3(x)).

#include "model/mlp.h"

#include "kernels/ops.h"
#include "kernels/product_profile.h"
#include "model/step_buffers.h"

namespace dsv3 {

void mlp_forward(ThreadPool& pool, const MlpWeights& w, const float* x, int64_t n, float* out) {
  const int64_t inter = w.w1.rows;
  StepBuffers buffers;
  float* const h1 = buffers.floats(n * inter);  // [n, inter]
  float* const h3 = buffers.floats(n * inter);  // [n, inter]
  // h1 = w1(x), h3 = w3(x): both read x, one parallel region
  const kernels::ProductPart part("mlp w1, w3");
  const kernels::MatmulJob jobs[] = {{w.w1, x, n, w.w1.cols, h1, inter},
                                     {w.w3, x, n, w.w3.cols, h3, inter}};
  kernels::matmul_batch(pool, jobs);
  kernels::silu_mul(pool, h1, h3, n * inter);  // h1 = silu(h1) * h3
  const kernels::ProductPart part_w2("mlp w2");
  kernels::matmul(pool, w.w2, h1, n, out);  // out = w2(h1)   [n, dim]
}

}  // namespace dsv3
