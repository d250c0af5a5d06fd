#include "kernels/matmul_math.h"

#include <atomic>
#include <cstdlib>

#include "base/cpu_features.h"
#include "kernels/cpu/bf16_dot.h"

namespace dsv3::kernels {
namespace {
std::atomic<int> g_math{static_cast<int>(MatmulMath::Exact)};
}  // namespace

const char* matmul_math_name(MatmulMath math) { return math == MatmulMath::Bf16 ? "bf16" : "exact"; }

Result<MatmulMath> parse_matmul_math(const std::string& name) {
  if (name == "exact") return MatmulMath::Exact;
  if (name == "bf16") return MatmulMath::Bf16;
  return Error("unknown matmul math '" + name.substr(0, 40) + "' (exact or bf16)");
}

bool matmul_math_supported(MatmulMath math) {
  if (math == MatmulMath::Exact) return true;
  const CpuFeatures& f = cpu_features();
  return f.has_avx512_path() && f.avx512_bf16;
}

Status set_matmul_math(MatmulMath math) {
  if (!matmul_math_supported(math))
    return Error(std::string("matmul math '") + matmul_math_name(math) +
                 "' needs AVX512-BF16, which this CPU lacks (" + cpu_features().summary() + ")");
  g_math.store(static_cast<int>(math));
  return {};
}

MatmulMath matmul_math() { return static_cast<MatmulMath>(g_math.load(std::memory_order_relaxed)); }

Status set_matmul_math_from_env() {
  const char* env = std::getenv("DSV3_MATH");
  if (!env || !*env) return {};
  DSV3_ASSIGN(MatmulMath math, parse_matmul_math(env));
  return set_matmul_math(math).context("DSV3_MATH");
}

MatmulRowsFn matmul_rows_for(const KernelTable& k, const LinearWeight& w) {
  if (w.is_fp8() && matmul_math() == MatmulMath::Bf16) return &cpu::bf16_matmul_rows;
  return k.matmul_rows;
}

}  // namespace dsv3::kernels
