#pragma once
// Non-owning view of a linear layer's weight as it is stored in the checkpoint:
// W [rows = out_features, cols = in_features], row-major, dtype F8_E4M3 (with block scales),
// BF16, F16 or F32. Kernels dequantize on the fly; no dequantized copy is ever made.
//
// A view may cover a contiguous band of rows of a larger tensor (e.g. one head's W_UK inside
// kv_b_proj): `first_row` keeps the row index of the full tensor, which selects the FP8 scale
// row, so a band need not start on a block boundary.

#include <cstdint>

#include "tensor/dtype.h"

namespace dsv3 {

struct LinearWeight {
  DType dtype = DType::F32;
  int64_t rows = 0;        // rows of this view
  int64_t cols = 0;
  const void* data = nullptr;  // start of the FULL tensor (row 0)
  int64_t first_row = 0;       // full-tensor row of this view's row 0
  // FP8 only: scale_inv[ceil(full_rows / block_rows)][ceil(cols / block_cols)], F32.
  const float* scale_inv = nullptr;
  int64_t block_rows = 0;
  int64_t block_cols = 0;

  bool is_fp8() const { return dtype == DType::F8_E4M3; }
  int64_t scale_cols() const { return (cols + block_cols - 1) / block_cols; }
  // Pointer to the stored elements of view row r.
  const uint8_t* row_ptr(int64_t r) const {
    return static_cast<const uint8_t*>(data) + (first_row + r) * cols * dtype_size(dtype);
  }
  // Scales for view row r (FP8 only): one per block of block_cols columns.
  const float* row_scales(int64_t r) const { return scale_inv + ((first_row + r) / block_rows) * scale_cols(); }
  // Sub-view of rows [r0, r0 + n).
  LinearWeight row_band(int64_t r0, int64_t n) const {
    LinearWeight v = *this;
    v.first_row = first_row + r0;
    v.rows = n;
    return v;
  }
  // Weight bytes (plus scales) a full product with this view reads.
  uint64_t bytes() const {
    uint64_t b = static_cast<uint64_t>(rows) * cols * dtype_size(dtype);
    if (is_fp8()) b += static_cast<uint64_t>((rows + block_rows - 1) / block_rows) * scale_cols() * 4;
    return b;
  }
  // Scalar dequantization of one element (the oracle).
  float at(int64_t r, int64_t c) const;
};

inline float LinearWeight::at(int64_t r, int64_t c) const {
  const uint8_t* p = row_ptr(r);
  switch (dtype) {
    case DType::F8_E4M3: return e4m3_to_f32(p[c]) * row_scales(r)[c / block_cols];
    case DType::BF16: return bf16_to_f32(reinterpret_cast<const uint16_t*>(p)[c]);
    case DType::F16: return f16_to_f32(reinterpret_cast<const uint16_t*>(p)[c]);
    case DType::F32: return reinterpret_cast<const float*>(p)[c];
    default: return 0.0f;
  }
}

}  // namespace dsv3
