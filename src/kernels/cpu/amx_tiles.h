#pragma once
// The two implementations of the AMX matmul (kernels/amx.h): real tiles (needs amx_bf16 and
// the OS's permission; never executed on the development machine) and scalar emulated tiles.

#include "base/thread_pool.h"
#include "tensor/linear_weight.h"

namespace dsv3::kernels::cpu {

void amx_matmul_hardware(ThreadPool& pool, const LinearWeight& w, const float* x, int64_t n, int64_t ldx, float* y,
                         int64_t ldy);
void amx_matmul_emulated(ThreadPool& pool, const LinearWeight& w, const float* x, int64_t n, int64_t ldx, float* y,
                         int64_t ldy);

}  // namespace dsv3::kernels::cpu
