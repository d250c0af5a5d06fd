#pragma once
// Opt-in AMX (bf16 tiles) path for kernels::matmul, for prefill on CPUs with amx_bf16.
//
// Lower precision by design: activations are rounded to bf16 (8 significant bits) before
// the product; FP8 weights are exact in bf16 and their block scales are applied in f32 per
// 128-column block. Measured on the goldens with the emulated tiles (tests/kernels/
// test_amx.cpp, which holds it to those measurements): logits move by ~2e-2, and by more
// where a perturbed hidden state flips a router's expert choice. It is therefore OFF unless
// asked for with DSV3_AMX=1 (or set_amx_mode); the f32 FMA kernels stay the default numerics.
//
// Batch invariance holds within the mode: when on, every matmul with a supported weight
// (FP8 with block_cols % 32 == 0) goes through the tiles whatever n, and each C element
// depends only on its own token row and weight row. BF16 weights (the MoE router, the head)
// stay on the f32 kernels: a bf16 router flips expert choices. The tile loop itself takes
// BF16 weights too (tested directly through cpu::amx_matmul_emulated).

#include "base/result.h"
#include "base/thread_pool.h"
#include "tensor/linear_weight.h"

namespace dsv3::kernels {

enum class AmxMode {
  Off,
  Hardware,  // AMX-BF16 instructions (needs amx_bf16 + amx_tile + AVX-512 and the OS's permission)
  Emulated,  // the same packing and loop with scalar tiles: for tests on any CPU (slow)
};

// An error if Hardware is asked for on a CPU (or kernel) that does not allow it.
Status set_amx_mode(AmxMode mode);
AmxMode amx_mode();
// DSV3_AMX=1 selects Hardware, DSV3_AMX=emulated Emulated, unset/0 Off.
Status set_amx_mode_from_env();

// True when the current mode is on and `w` has a form the tiles take.
bool amx_handles(const LinearWeight& w);
// y[t, r] = sum_c bf16(x[t, c]) * W[r, c] with the current mode's tiles (amx_handles(w)).
void amx_matmul(ThreadPool& pool, const LinearWeight& w, const float* x, int64_t n, int64_t ldx, float* y,
                int64_t ldy);

}  // namespace dsv3::kernels
