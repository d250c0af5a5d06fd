#include "kernels/amx.h"

#include <atomic>
#include <cstdlib>
#include <string>

#include "base/cpu_features.h"
#include "kernels/cpu/amx_tiles.h"

namespace dsv3::kernels {
namespace {
std::atomic<int> g_mode{static_cast<int>(AmxMode::Off)};
}  // namespace

Status set_amx_mode(AmxMode mode) {
  if (mode == AmxMode::Hardware) {
    const CpuFeatures& f = cpu_features();
    if (!(f.amx_tile && f.amx_bf16 && f.has_avx512_path()))
      return Error("AMX path asked for, but this CPU lacks amx_tile/amx_bf16/AVX-512 (" + f.summary() + ")");
    if (!request_amx_permission())
      return Error("AMX path asked for, but the kernel refused AMX tile state (arch_prctl ARCH_REQ_XCOMP_PERM)");
  }
  g_mode.store(static_cast<int>(mode));
  return {};
}

AmxMode amx_mode() { return static_cast<AmxMode>(g_mode.load(std::memory_order_relaxed)); }

Status set_amx_mode_from_env() {
  const char* env = std::getenv("DSV3_AMX");
  if (!env || !*env || std::string(env) == "0") return set_amx_mode(AmxMode::Off);
  if (std::string(env) == "1") return set_amx_mode(AmxMode::Hardware).context("DSV3_AMX");
  if (std::string(env) == "emulated") return set_amx_mode(AmxMode::Emulated);
  return Error("DSV3_AMX: expected 0, 1 or emulated, got '" + std::string(env).substr(0, 20) + "'");
}

bool amx_handles(const LinearWeight& w) {
  if (amx_mode() == AmxMode::Off) return false;
  // FP8 only: BF16 weights include the MoE router (mlp.gate), whose expert choices flip under
  // bf16 activations (the router must stay in float32; measured: logits move by whole
  // units on tiny-v3), and ops.h cannot tell the router from other BF16 weights.
  return w.is_fp8() && w.block_cols % 32 == 0;  // scale blocks made of whole tile steps
}

void amx_matmul(ThreadPool& pool, const LinearWeight& w, const float* x, int64_t n, int64_t ldx, float* y,
                int64_t ldy) {
  if (n <= 0 || w.rows <= 0) return;
  if (amx_mode() == AmxMode::Hardware) cpu::amx_matmul_hardware(pool, w, x, n, ldx, y, ldy);
  else cpu::amx_matmul_emulated(pool, w, x, n, ldx, y, ldy);
}

}  // namespace dsv3::kernels
