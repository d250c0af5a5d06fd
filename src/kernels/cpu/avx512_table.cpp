// The AVX-512 kernel table: the same kernels as avx2_table.cpp at 16 lanes. Only code inside
// the target region uses AVX-512 (see target_region.h). The per-lane arithmetic equals the
// "avx512-emulated" table's, which the tests execute on AVX2 machines.

// GCC 12's avx512fintrin.h trips -Wmaybe-uninitialized on its own _mm512_undefined_* helpers.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
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

DSV3_TARGET_BEGIN(DSV3_ISA_AVX512)
namespace dsv3::kernels::cpu {
namespace {
#include "kernels/cpu/vec_avx512.inl"
#include "kernels/cpu/simd_int_decode.inl"
#include "kernels/cpu/simd_weights.inl"
#include "kernels/cpu/simd_matmul_fp8.inl"
#include "kernels/cpu/simd_matmul_int.inl"
#include "kernels/cpu/simd_matmul_rows.inl"
#include "kernels/cpu/simd_matmul_transposed.inl"
#include "kernels/cpu/simd_elementwise.inl"
#include "kernels/cpu/simd_probe.inl"
}  // namespace

const KernelTable& avx512_table() {
  static const KernelTable table = make_simd_table<VecAvx512>("avx512");
  return table;
}

const ProbeKernels& avx512_probe_kernels() {
  static const ProbeKernels probes = make_probe_kernels<VecAvx512>();
  return probes;
}

}  // namespace dsv3::kernels::cpu
DSV3_TARGET_END
