#pragma once
// The inner loops one instruction set provides. ops.cpp owns threading and work splitting;
// a table only computes the slice it is handed. ref/ is the scalar oracle every other table
// is tested against; cpu/ holds the AVX2 and AVX-512 tables (cpu/tables.h), whose matmul
// entries follow one fixed reduction order per output element (cpu/simd_matmul_rows.inl,
// cpu/simd_matmul_fp8.inl) so that results never depend on n, the batch, the slice or the
// thread count.

#include <cstdint>

#include "tensor/linear_weight.h"

namespace dsv3::kernels {

struct KernelTable {
  const char* name;
  // y[t, r - r0] (row stride ldy) for rows r in [r0, r1) of W, all n tokens (x row stride ldx).
  void (*matmul_rows)(const LinearWeight& w, const float* x, int64_t n, int64_t ldx, float* y, int64_t ldy,
                      int64_t r0, int64_t r1);
  // y[t, c - c0] (row stride ldy) = sum_r x[t, r] W[r, c] for columns c in [c0, c1).
  void (*matmul_t_cols)(const LinearWeight& w, const float* x, int64_t n, int64_t ldx, float* y, int64_t ldy,
                        int64_t c0, int64_t c1);
  // One row of RMSNorm.
  void (*rms_norm_row)(const float* x, const float* weight, int64_t dim, float eps, float* y);
  // gate[i] = silu(gate[i]) * up[i].
  void (*silu_mul)(float* gate, const float* up, int64_t n);
  // y[i] = e^((x[i] - shift) * scale), the argument rounded to f32 and clamped to
  // [-87.3, 88.3] (results stay normal and finite).
  void (*exp_affine)(const float* x, int64_t n, float shift, float scale, float* y);
};

namespace ref {
const KernelTable& table();
}

}  // namespace dsv3::kernels
