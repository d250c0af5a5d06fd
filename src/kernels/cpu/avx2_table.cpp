// The AVX2 kernel table (and its 16-lane emulation for tests). Only code inside the target
// region uses AVX2; everything included above it stays baseline x86-64 (target_region.h).

#include <immintrin.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>
#include <utility>

#include "base/result.h"
#include "kernels/cpu/tables.h"
#include "kernels/cpu/target_region.h"
#include "kernels/q8_activations.h"
#include "kernels/scratch.h"
#include "tensor/linear_weight.h"

DSV3_TARGET_BEGIN(DSV3_ISA_AVX2)
namespace dsv3::kernels::cpu {
namespace {
#include "kernels/cpu/vec_avx2.inl"
#include "kernels/cpu/vec_avx2x2.inl"
#include "kernels/cpu/simd_int_decode.inl"
#include "kernels/cpu/simd_weights.inl"
#include "kernels/cpu/simd_matmul_fp8.inl"
#include "kernels/cpu/simd_matmul_int.inl"
#include "kernels/cpu/simd_matmul_rows.inl"
#include "kernels/cpu/simd_matmul_transposed.inl"
#include "kernels/cpu/simd_elementwise.inl"
#include "kernels/cpu/simd_probe.inl"

template <>
struct IntKernelOf<VecAvx2x2> {
  using type = MatmulInt<VecAvx2>;
};
}  // namespace

const KernelTable& avx2_table() {
  static const KernelTable table = make_simd_table<VecAvx2>("avx2");
  return table;
}

const KernelTable& avx512_emulated_table() {
  static const KernelTable table = make_simd_table<VecAvx2x2>("avx512-emulated");
  return table;
}

const ProbeKernels& avx2_probe_kernels() {
  static const ProbeKernels probes = make_probe_kernels<VecAvx2>();
  return probes;
}

}  // namespace dsv3::kernels::cpu
DSV3_TARGET_END
