#pragma once
// What a run asks of the kernels: the path (--kernels, DSV3_ISA), the math of FP8 products
// (--math, DSV3_MATH) and the AMX prefill mode (DSV3_AMX). A run decides it once, from rank 0's
// flags and environment, and every rank applies the same choice before loading (Model::load;
// the load step carries it to the other ranks), so that a split model runs one set of kernels.

#include <optional>
#include <string>

#include "base/result.h"
#include "kernels/amx.h"
#include "kernels/dispatch.h"
#include "kernels/matmul_math.h"

namespace dsv3::kernels {

// Unset fields leave this process's default: the widest path this CPU runs, exact math, AMX off.
struct KernelChoice {
  std::optional<Isa> isa;
  std::optional<MatmulMath> math;
  std::optional<AmxMode> amx;
};

// DSV3_ISA, DSV3_MATH and DSV3_AMX where set; errors name the variable.
Result<KernelChoice> kernel_choice_from_env();

// Makes the choice this process's; an error when this CPU cannot run it.
Status apply_kernel_choice(const KernelChoice& choice);

// What this process runs now, e.g. "kernels avx512, math exact, AMX off" (for logs).
std::string active_kernels_summary();

}  // namespace dsv3::kernels
