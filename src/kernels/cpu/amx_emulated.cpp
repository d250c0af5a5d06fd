// Scalar tiles with the arithmetic of TDPBF16PS, so that the AMX matmul's packing, loop and
// numerics run (and are tested, and measured on the goldens) on any CPU. Per C element and
// pair of k: c += a[2k] * b[2k]; c += a[2k + 1] * b[2k + 1], each bf16 product exact in f32
// and each addition rounded to nearest even. Not modelled: the hardware flushes denormal
// inputs and outputs to zero (irrelevant at activation and weight magnitudes).

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "kernels/cpu/amx_tiles.h"

namespace dsv3::kernels::cpu {
namespace {

struct EmulatedTiles {
  struct State {
    uint16_t b[16][32];    // 16 k-pairs x (16 rows x 2)
    float c[4][16][16];    // token x row
  };
  static State& state() {
    thread_local State s;
    return s;
  }
  static void begin() {}
  static void end() {}
  static void zero_c(int j) { std::memset(state().c[j], 0, sizeof(state().c[j])); }
  static void load_b(const uint16_t* p, int64_t stride_bytes) {
    for (int kp = 0; kp < 16; ++kp) std::memcpy(state().b[kp], p + kp * (stride_bytes / 2), 64);
  }
  static void load_a_dp(int j, const uint16_t* a, int64_t stride_bytes) {
    State& s = state();
    for (int m = 0; m < 16; ++m) {
      const uint16_t* am = a + m * (stride_bytes / 2);
      for (int n = 0; n < 16; ++n) {
        float c = s.c[j][m][n];
        for (int kp = 0; kp < 16; ++kp) {
          c += bf16_to_f32(am[2 * kp]) * bf16_to_f32(s.b[kp][2 * n]);
          c += bf16_to_f32(am[2 * kp + 1]) * bf16_to_f32(s.b[kp][2 * n + 1]);
        }
        s.c[j][m][n] = c;
      }
    }
  }
  static void store_c(int j, float* p, int64_t stride_bytes) {
    for (int m = 0; m < 16; ++m) std::memcpy(p + m * (stride_bytes / 4), state().c[j][m], 64);
  }
};

#include "kernels/cpu/amx_matmul.inl"

}  // namespace

void amx_matmul_emulated(ThreadPool& pool, const LinearWeight& w, const float* x, int64_t n, int64_t ldx, float* y,
                         int64_t ldy) {
  amx_matmul_impl<EmulatedTiles>(pool, w, x, n, ldx, y, ldy);
}

}  // namespace dsv3::kernels::cpu
