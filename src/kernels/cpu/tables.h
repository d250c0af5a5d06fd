#pragma once
// The SIMD kernel tables. Each may only be called on a CPU that runs its instruction set
// (dispatch.cpp checks cpu_features() first); they are declared here, not in dispatch.h, so
// that only dispatch and the kernel tests reach for them directly.

#include <cstdint>

#include "kernels/kernel_table.h"

namespace dsv3::kernels::cpu {

// AVX2 + FMA + F16C, 8 lanes: the baseline fast path.
const KernelTable& avx2_table();
// The 16-lane kernels run on AVX2 through a pair of ymm registers: same per-lane arithmetic,
// hence bit-identical results, as avx512_table(). For tests on machines without AVX-512.
const KernelTable& avx512_emulated_table();
// AVX-512 F/BW/VL/DQ, 16 lanes.
const KernelTable& avx512_table();
// avx512_table() with the grouped-int products on AVX512-VNNI's vpdpbusd: the same bits (the
// integer sums are exact either way), fewer instructions. The CPU must have avx512_vnni.
const KernelTable& avx512_vnni_table();

// Inner loops of the machine probes (kernels/probe.h), per path.
struct ProbeKernels {
  // Sum of p[0 .. n), n a multiple of 64: a read-only stream.
  float (*read_sum)(const float* p, int64_t n);
  // Runs independent FMA chains in registers; returns the FLOPs done (2 per lane per FMA).
  double (*fma_burst)(int64_t iterations, float* sink);
};
const ProbeKernels& avx2_probe_kernels();
const ProbeKernels& avx512_probe_kernels();

}  // namespace dsv3::kernels::cpu
