#include "tensor/fp8_quant.h"

#include <algorithm>
#include <cmath>

#include "tensor/dtype.h"

namespace dsv3 {

void quantize_fp8_band(const float* x, int64_t rows, int64_t cols, int64_t block_cols, uint8_t* q, float* scales) {
  const int64_t nblocks = (cols + block_cols - 1) / block_cols;
  for (int64_t b = 0; b < nblocks; ++b) {
    const int64_t c0 = b * block_cols, c1 = std::min(cols, c0 + block_cols);
    float amax = 0.0f;
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = c0; c < c1; ++c) amax = std::max(amax, std::fabs(x[r * cols + c]));
    // An all-zero block keeps a tiny positive scale so that dequantization stays finite.
    const float scale = std::max(amax, 1e-12f) / 448.0f;
    scales[b] = scale;
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = c0; c < c1; ++c) q[r * cols + c] = f32_to_e4m3(x[r * cols + c] / scale);
  }
}

}  // namespace dsv3
