#pragma once
// Non-owning view of a linear layer's weight as it is stored in the checkpoint:
// W [rows = out_features, cols = in_features], row-major, dtype F8_E4M3 (with block scales),
// BF16, F16 or F32, or a grouped integer format (docs/formats.md):
//   I8: int8, one byte per value;
//   U8: int4 packed two per byte (column 2j in the low nibble, 2j + 1 in the high one, each a
//       two's complement value in [-8, 7]); a row takes ceil(cols / 2) bytes;
// both with an F16 scale per group of group_size consecutive columns of a row:
//   w[r][c] = q[r][c] * scale[r][c / group_size].
// Kernels dequantize on the fly; no dequantized copy is ever made.
//
// A view may cover a contiguous band of rows of a larger tensor (e.g. one head's W_UK inside
// kv_b_proj): `first_row` keeps the row index of the full tensor, which selects the FP8 scale
// row, so a band need not start on a block boundary.

#include <cstdint>

#include "tensor/dtype.h"

namespace dsv3 {

// The signed 4-bit value of column c of a packed int4 row.
inline int int4_at(const uint8_t* row, int64_t c) {
  const int nibble = (row[c >> 1] >> ((c & 1) * 4)) & 0xF;
  return (nibble ^ 8) - 8;
}

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
  // I8 / U8 only: F16 scales [full_rows, ceil(cols / group_size)].
  const uint16_t* group_scales = nullptr;
  int64_t group_size = 0;

  bool is_int8() const { return dtype == DType::I8; }
  bool is_int4() const { return dtype == DType::U8; }
  bool is_grouped_int() const { return is_int8() || is_int4(); }
  int64_t groups_per_row() const { return (cols + group_size - 1) / group_size; }
  // Bytes of one stored row.
  int64_t row_bytes() const { return is_int4() ? (cols + 1) / 2 : cols * dtype_size(dtype); }
  // Group scales (F16 bits) of view row r (I8 / U8 only).
  const uint16_t* row_group_scales(int64_t r) const { return group_scales + (first_row + r) * groups_per_row(); }

  bool is_fp8() const { return dtype == DType::F8_E4M3; }
  int64_t scale_cols() const { return (cols + block_cols - 1) / block_cols; }
  // Pointer to the stored elements of view row r.
  const uint8_t* row_ptr(int64_t r) const {
    return static_cast<const uint8_t*>(data) + (first_row + r) * row_bytes();
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
    uint64_t b = static_cast<uint64_t>(rows) * row_bytes();
    if (is_grouped_int()) b += static_cast<uint64_t>(rows) * groups_per_row() * 2;
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
    case DType::I8: return static_cast<float>(static_cast<int8_t>(p[c])) * f16_to_f32(row_group_scales(r)[c / group_size]);
    case DType::U8: return static_cast<float>(int4_at(p, c)) * f16_to_f32(row_group_scales(r)[c / group_size]);
    default: return 0.0f;
  }
}

}  // namespace dsv3
