#pragma once
// How kernels::matmul multiplies FP8 weights: the exact float32 path (the default, held to
// the goldens) or bf16 dot products (AVX512-BF16's vdpbf16ps: twice the multiply-adds per
// instruction, for prefill).
//
// Bf16: activations are rounded to bf16 (8 significant bits) after the block scale is folded
// in; e4m3 weights are exact in bf16; sums in float32. Measured on the goldens (tests/kernels/
// test_matmul_math.cpp, docs/benchmarks.md): logits move by a few hundredths, less than
// DeepSeek's own bfloat16 run moves them from its float32 one (the goldens' bf16_vs_f32).
//
// Batch invariance holds within each mode: in Bf16 every FP8 product takes the bf16 kernel
// whatever the number of tokens (decode included), and each output depends only on its own
// token and weight row. BF16 weights (the MoE router, the head) stay on the float32 kernels
// in both modes: a bf16 router flips expert choices (see kernels/amx.h). The AMX switch
// (DSV3_AMX) comes first when on.

#include <string>

#include "base/result.h"
#include "kernels/kernel_table.h"

namespace dsv3::kernels {

enum class MatmulMath { Exact, Bf16 };

const char* matmul_math_name(MatmulMath math);
// "exact" or "bf16".
Result<MatmulMath> parse_matmul_math(const std::string& name);
// Whether this CPU runs `math` (Bf16 needs avx512_bf16 and the AVX-512 path).
bool matmul_math_supported(MatmulMath math);
// An error naming the missing instructions if this CPU cannot run `math`.
Status set_matmul_math(MatmulMath math);
MatmulMath matmul_math();
// Applies DSV3_MATH (exact|bf16) if set.
Status set_matmul_math_from_env();

// The matmul_rows kernel ops.h runs for `w` on table `k` under the current math.
using MatmulRowsFn = decltype(KernelTable::matmul_rows);
MatmulRowsFn matmul_rows_for(const KernelTable& k, const LinearWeight& w);

}  // namespace dsv3::kernels
