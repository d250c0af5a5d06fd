// avx512_vnni_table() (tables.h): the AVX-512 table with its grouped-int products on
// AVX512-VNNI's vpdpbusd (cpu/simd_matmul_int.inl). Only code inside the target region uses
// AVX512-VNNI (see target_region.h).

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>

#include "base/result.h"
#include "kernels/cpu/tables.h"
#include "kernels/cpu/target_region.h"
#include "kernels/q8_activations.h"
#include "kernels/scratch.h"
#include "tensor/linear_weight.h"

DSV3_TARGET_BEGIN(DSV3_ISA_AVX512_VNNI)
namespace dsv3::kernels::cpu {
namespace {
#include "kernels/cpu/vec_avx512.inl"
#include "kernels/cpu/simd_matmul_int.inl"

void matmul_rows_vnni(const LinearWeight& w, const float* x, int64_t n, int64_t ldx, float* y, int64_t ldy, int64_t r0,
                      int64_t r1) {
  if (n <= 0 || r1 <= r0) return;
  if (w.is_grouped_int()) return MatmulInt<VecAvx512, true>::run(w, x, n, ldx, y, ldy, r0, r1);
  avx512_table().matmul_rows(w, x, n, ldx, y, ldy, r0, r1);
}
}  // namespace

const KernelTable& avx512_vnni_table() {
  static const KernelTable table = [] {
    KernelTable t = avx512_table();
    t.name = "avx512-vnni";
    t.matmul_rows = &matmul_rows_vnni;
    return t;
  }();
  return table;
}

}  // namespace dsv3::kernels::cpu
DSV3_TARGET_END
