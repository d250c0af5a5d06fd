#pragma once
// The bf16 dot-product matmul (AVX512-BF16, vdpbf16ps) behind kernels::MatmulMath::Bf16
// (kernels/matmul_math.h). May only be called on a CPU with avx512_bf16 and the AVX-512 path
// (matmul_math.cpp checks cpu_features() first).

#include <cstdint>

#include "tensor/linear_weight.h"

namespace dsv3::kernels::cpu {

// KernelTable::matmul_rows for FP8 weights: y[t, r - r0] for rows [r0, r1) of W, all n tokens,
// with x[t, c] * s (the block scale) rounded to bf16 and the e4m3 weights exact in bf16 (but
// for subnormal e4m3 values, read as zero); see avx512_bf16_dot.cpp.
void bf16_matmul_rows(const LinearWeight& w, const float* x, int64_t n, int64_t ldx, float* y, int64_t ldy,
                      int64_t r0, int64_t r1);

// Register-only vdpbf16ps chains for the peak probe; returns the FLOPs done (2 per
// multiply-add: 64 per instruction).
double bf16_dot_burst(int64_t iterations, float* sink);

// The kernel's weight decode of 64 e4m3 bytes: the bf16 bits of e4m3 * 2^-120 for the even
// bytes (even[j]: byte 2j) and the odd ones (odd[j]: byte 2j + 1). For the exhaustive test.
void e4m3_to_bf16_x64(const uint8_t* in, uint16_t* even, uint16_t* odd);

}  // namespace dsv3::kernels::cpu
