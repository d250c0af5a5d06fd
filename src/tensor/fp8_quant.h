#pragma once
// Block-scaled FP8 quantization as DeepSeek's checkpoints are made: for each block of
// block_rows x block_cols weights, scale_inv = amax / 448 and q = e4m3(w / scale_inv),
// rounded to nearest even. Dequantization is w' = e4m3(q) * scale_inv.

#include <cstdint>

namespace dsv3 {

// Quantizes one band of `rows` (<= the block height) rows of `cols` values: x [rows, cols]
// -> q [rows, cols] bytes and scales [ceil(cols / block_cols)].
void quantize_fp8_band(const float* x, int64_t rows, int64_t cols, int64_t block_cols, uint8_t* q, float* scales);

}  // namespace dsv3
