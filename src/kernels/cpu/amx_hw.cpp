// AMX-BF16 tiles for the shared AMX matmul loop (amx_matmul.inl). NOT executed on the
// development machine (no AMX there): the loop and packing are the ones the emulated tiles
// run in tests; what only runs here is this struct, kept to one instruction per method.

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "kernels/cpu/amx_tiles.h"
#include "kernels/cpu/target_region.h"

DSV3_TARGET_BEGIN(DSV3_ISA_AMX)
namespace dsv3::kernels::cpu {
namespace {

// tmm0 = A, tmm1 = B, tmm4..7 = C (tile numbers must be compile-time constants).
struct AmxTiles {
  static void begin() {
    // ldtilecfg layout: byte 0 palette, bytes 16 + 2i colsb of tile i, byte 48 + i its rows.
    alignas(64) uint8_t cfg[64] = {};
    cfg[0] = 1;
    for (int t : {0, 1, 4, 5, 6, 7}) {
      const uint16_t colsb = 64;
      std::memcpy(cfg + 16 + 2 * t, &colsb, 2);
      cfg[48 + t] = 16;
    }
    _tile_loadconfig(cfg);
  }
  static void end() { _tile_release(); }
  static void zero_c(int j) {
    switch (j) {
      case 0: _tile_zero(4); break;
      case 1: _tile_zero(5); break;
      case 2: _tile_zero(6); break;
      default: _tile_zero(7); break;
    }
  }
  static void load_b(const uint16_t* p, int64_t stride_bytes) { _tile_loadd(1, p, stride_bytes); }
  static void load_a_dp(int j, const uint16_t* p, int64_t stride_bytes) {
    _tile_loadd(0, p, stride_bytes);
    switch (j) {
      case 0: _tile_dpbf16ps(4, 0, 1); break;
      case 1: _tile_dpbf16ps(5, 0, 1); break;
      case 2: _tile_dpbf16ps(6, 0, 1); break;
      default: _tile_dpbf16ps(7, 0, 1); break;
    }
  }
  static void store_c(int j, float* p, int64_t stride_bytes) {
    switch (j) {
      case 0: _tile_stored(4, p, stride_bytes); break;
      case 1: _tile_stored(5, p, stride_bytes); break;
      case 2: _tile_stored(6, p, stride_bytes); break;
      default: _tile_stored(7, p, stride_bytes); break;
    }
  }
};

#include "kernels/cpu/amx_matmul.inl"

}  // namespace

void amx_matmul_hardware(ThreadPool& pool, const LinearWeight& w, const float* x, int64_t n, int64_t ldx, float* y,
                         int64_t ldy) {
  amx_matmul_impl<AmxTiles>(pool, w, x, n, ldx, y, ldy);
}

}  // namespace dsv3::kernels::cpu
DSV3_TARGET_END
