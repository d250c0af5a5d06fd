// The bf16 dot-product matmul for FP8 weights (cpu/bf16_dot.h), on AVX512-BF16's vdpbf16ps:
// one instruction does 32 multiply-adds (16 lanes x a pair of bf16), twice the work of an f32
// FMA. Only code inside the target region uses AVX512-BF16 (see target_region.h).
//
// Numerics (kernels/matmul_math.h): e4m3 weights are exact in bf16 (3 mantissa bits, and an
// exponent range bf16's covers, subnormals included), so the one rounding is the
// activation's: x'[t, c] = bf16(x[t, c] * s[r / block_rows][c / block_cols]), rounded to
// nearest even, once per scale block of rows (the scale folded into the activations, as the
// f32 FP8 path folds it). vdpbf16ps adds each lane's two exact products into an f32
// accumulator (round to nearest even; no denormals in or out: none occur at these
// magnitudes).
//
// THE REDUCTION ORDER (batch invariance within the mode). For every (t, r), one accumulator of
// 16 lanes starts at +0 and takes vdpbf16ps(w' vector, x' vector) for the 32-column vectors in
// increasing column order (lane l: columns 32j + 2l and 32j + 2l + 1), partials parked in
// memory between column blocks (exact), then a fixed hsum tree. No step depends on n, the
// other tokens, [r0, r1) or the thread count.
//
// Scheme: the tiled prefill scheme of cpu/simd_matmul_fp8.inl. A [kRowsPerTile x
// kColsPerTile] panel of weights is converted to bf16 once into a per-thread tile (L1) and
// used by every token of the block through a kT x kR register tile: kT x'-vectors and kR
// w'-vectors feed kT * kR vdpbf16ps per column step.

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <utility>

#include "base/result.h"
#include "kernels/cpu/bf16_dot.h"
#include "kernels/cpu/target_region.h"
#include "kernels/scratch.h"
#include "tensor/linear_weight.h"

DSV3_TARGET_BEGIN(DSV3_ISA_AVX512_BF16)
namespace dsv3::kernels::cpu {
namespace {

constexpr int64_t kVecCols = 32;  // bf16 columns per vector (16 lanes x 2)
// Register tile: kT * kR accumulators + kR weight vectors + one x' vector <= 32 registers;
// per column step kT + kR loads feed kT * kR vdpbf16ps.
constexpr int kT = 6;
constexpr int kR = 4;
constexpr int64_t kRowsPerTile = 32;    // a multiple of kR; tiles stay inside a scale block
constexpr int64_t kColsPerTile = 512;   // a multiple of kVecCols; the tile is 32 KB of bf16
constexpr int64_t kTokensPerBlock = 48;  // bounds the parked partials (48 x 32 x 64 bytes)

int64_t padded(int64_t k) { return (k + kVecCols - 1) / kVecCols * kVecCols; }
// Row stride of the bf16 activations: K_pad plus one cache line, so that the rows a register
// tile reads together do not map to the same L1 sets.
int64_t act_stride(int64_t k) { return padded(k) + kVecCols; }

// e4m3 magnitudes 0..7 (zero and the subnormals m * 2^-9) as bf16 bits.
__m512i subnormal_table() {
  return _mm512_setr_epi32(0x3B000000, 0x3BC03B80, 0x3C203C00, 0x3C603C40, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
}

// 32 e4m3 bytes -> 32 bf16 values, exact. A normal byte s.eeee.mmm has the bf16 bits
// s | (eeee + 120) << 7 | mmm << 4 (the exponent rebiased from 7 to 127); the magnitudes
// below 8 (zero, subnormals) come from a table.
__m512i decode32(const uint8_t* p) {
  const __m512i w = _mm512_cvtepu8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  const __m512i mag = _mm512_and_si512(w, _mm512_set1_epi16(0x7F));
  const __m512i normal = _mm512_add_epi16(_mm512_slli_epi16(mag, 4), _mm512_set1_epi16(0x3C00));
  const __mmask32 small = _mm512_cmplt_epu16_mask(mag, _mm512_set1_epi16(8));
  const __m512i v = _mm512_mask_permutexvar_epi16(normal, small, mag, subnormal_table());
  const __m512i sign = _mm512_and_si512(_mm512_slli_epi16(w, 8), _mm512_set1_epi16(static_cast<short>(0x8000)));
  return _mm512_or_si512(v, sign);
}

// Lane i + lane i+8, then an 8-lane tree (VecAvx512::hsum's).
float hsum(__m512 v) {
  __m256 s8 = _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1));
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps(s8, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// First view row past r's scale block.
int64_t block_end(const LinearWeight& w, int64_t r) {
  return ((w.first_row + r) / w.block_rows + 1) * w.block_rows - w.first_row;
}

// xs[t * ld + c] = bf16(x[t * ldx + c] * s[c / block_cols]) for c < K with the scales of view
// row r's scale row; zeros for K <= c < K_pad.
void scale_to_bf16(const LinearWeight& w, int64_t r, const float* x, int64_t n, int64_t ldx, uint16_t* xs,
                   int64_t ld) {
  const int64_t k = w.cols, kp = padded(k), bc = w.block_cols;
  const float* s = w.row_scales(r);
  auto scales16 = [&](int64_t c) {  // the scales of columns c .. c + 15 (0 past K)
    if (c >= k) return _mm512_setzero_ps();
    if (bc % 16 == 0) return _mm512_set1_ps(s[c / bc]);
    alignas(64) float f[16];
    for (int l = 0; l < 16; ++l) f[l] = c + l < k ? s[(c + l) / bc] : 0.0f;
    return _mm512_load_ps(f);
  };
  auto load16 = [&](const float* row, int64_t c) {
    if (c + 16 <= k) return _mm512_loadu_ps(row + c);
    if (c >= k) return _mm512_setzero_ps();
    return _mm512_maskz_loadu_ps(static_cast<__mmask16>((1u << (k - c)) - 1u), row + c);
  };
  for (int64_t c = 0; c < kp; c += kVecCols) {
    const __m512 s_lo = scales16(c), s_hi = scales16(c + 16);
    for (int64_t t = 0; t < n; ++t) {
      const float* row = x + t * ldx;
      const __m512 lo = _mm512_mul_ps(load16(row, c), s_lo), hi = _mm512_mul_ps(load16(row, c + 16), s_hi);
      _mm512_store_si512(xs + t * ld + c, reinterpret_cast<__m512i>(_mm512_cvtne2ps_pbh(hi, lo)));
    }
  }
}

// Rows [r, r + nr) of the view, columns [kb0, kb0 + width) (width a multiple of 32), as bf16
// into tile (row stride kColsPerTile); zeros past K.
void decode_tile(const LinearWeight& w, int64_t r, int64_t nr, int64_t kb0, int64_t width, uint16_t* tile) {
  const int64_t k = w.cols;
  for (int64_t i = 0; i < nr; ++i) {
    const uint8_t* row = w.row_ptr(r + i);
    uint16_t* dst = tile + i * kColsPerTile;
    for (int64_t c = 0; c < width; c += kVecCols) {
      const int64_t col = kb0 + c;
      __m512i v;
      if (col + kVecCols <= k) {
        v = decode32(row + col);
      } else {
        alignas(32) uint8_t pad[kVecCols] = {};
        if (col < k) std::memcpy(pad, row + col, static_cast<size_t>(k - col));
        v = decode32(pad);
      }
      _mm512_store_si512(dst + c, v);
    }
  }
}

struct MicroArgs {
  const uint16_t* tile;  // w' of the register tile's row 0, this column block; row stride kColsPerTile
  const uint16_t* xs;    // x' of the register tile's token 0, this column block; row stride ld_xs
  int64_t ld_xs;
  int64_t width;         // columns of this block (a multiple of 32)
  float* park;           // partials: token t, row i at park[(t * kRowsPerTile + i) * 16]
  bool first, last;      // first column block: start from +0; last: reduce into y
  float* y;              // token 0, row 0 of the register tile, row stride ldy
  int64_t ldy;
};

template <int T, int R>
void micro(const MicroArgs& a) {
  __m512 acc[T][R];
  for (int t = 0; t < T; ++t)
    for (int i = 0; i < R; ++i)
      acc[t][i] = a.first ? _mm512_setzero_ps() : _mm512_load_ps(a.park + (t * kRowsPerTile + i) * 16);
  for (int64_t c = 0; c < a.width; c += kVecCols) {
    __m512bh wv[R];
    for (int i = 0; i < R; ++i)
      wv[i] = reinterpret_cast<__m512bh>(_mm512_load_si512(a.tile + i * kColsPerTile + c));
    for (int t = 0; t < T; ++t) {
      const __m512bh xv = reinterpret_cast<__m512bh>(_mm512_load_si512(a.xs + t * a.ld_xs + c));
      for (int i = 0; i < R; ++i) acc[t][i] = _mm512_dpbf16_ps(acc[t][i], wv[i], xv);
    }
  }
  for (int t = 0; t < T; ++t)
    for (int i = 0; i < R; ++i) {
      if (a.last) a.y[t * a.ldy + i] = hsum(acc[t][i]);
      else _mm512_store_ps(a.park + (t * kRowsPerTile + i) * 16, acc[t][i]);
    }
}

using MicroFn = void (*)(const MicroArgs&);
template <size_t... I>
constexpr std::array<MicroFn, sizeof...(I)> make_micro_table(std::index_sequence<I...>) {
  return {&micro<static_cast<int>(I / kR) + 1, static_cast<int>(I % kR) + 1>...};
}
// The kT x kR microkernel and its remainders (tt <= kT tokens, rr <= kR rows).
MicroFn micro_fn(int64_t tt, int64_t rr) {
  static constexpr auto table = make_micro_table(std::make_index_sequence<kT * kR>{});
  return table[(tt - 1) * kR + (rr - 1)];
}

}  // namespace

void bf16_matmul_rows(const LinearWeight& w, const float* x, int64_t n, int64_t ldx, float* y, int64_t ldy,
                      int64_t r0, int64_t r1) {
  DSV3_CHECK(w.is_fp8(), "bf16_matmul_rows: FP8 weights only");
  if (n <= 0 || r1 <= r0) return;
  const int64_t k = w.cols, kp = padded(k), ld = act_stride(k);
  const int64_t block_tokens = std::min(n, kTokensPerBlock);
  // Scratch slots hand out floats; the bf16 buffers take half as many (rounded up).
  auto* tile = reinterpret_cast<uint16_t*>(
      thread_scratch(ScratchSlot::WeightTile, static_cast<size_t>(kRowsPerTile * kColsPerTile / 2)));
  float* park = thread_scratch(ScratchSlot::Accumulators, static_cast<size_t>(block_tokens * kRowsPerTile * 16));
  auto* xs = reinterpret_cast<uint16_t*>(
      thread_scratch(ScratchSlot::ScaledActivations, static_cast<size_t>((block_tokens * ld + 1) / 2)));
  MicroArgs a{};
  a.ld_xs = ld;
  a.ldy = ldy;
  for (int64_t tb0 = 0; tb0 < n; tb0 += kTokensPerBlock) {
    const int64_t nt = std::min(kTokensPerBlock, n - tb0);
    int64_t scaled_until = r0;  // xs holds x' for the scale block of the rows before this
    for (int64_t rt0 = r0; rt0 < r1;) {
      const int64_t b_end = block_end(w, rt0);
      if (rt0 >= scaled_until) {
        scale_to_bf16(w, rt0, x + tb0 * ldx, nt, ldx, xs, ld);
        scaled_until = b_end;
      }
      // A tile never spans two scale blocks: one x' serves all its rows.
      const int64_t nr = std::min({kRowsPerTile, r1 - rt0, b_end - rt0});
      for (int64_t kb0 = 0; kb0 < kp; kb0 += kColsPerTile) {
        const int64_t width = std::min(kColsPerTile, kp - kb0);
        decode_tile(w, rt0, nr, kb0, width, tile);
        a.width = width;
        a.first = kb0 == 0;
        a.last = kb0 + width == kp;
        for (int64_t tg = 0; tg < nt; tg += kT) {
          const int64_t tt = std::min<int64_t>(kT, nt - tg);
          a.xs = xs + tg * ld + kb0;
          for (int64_t rg = 0; rg < nr; rg += kR) {
            const int64_t rr = std::min<int64_t>(kR, nr - rg);
            a.tile = tile + rg * kColsPerTile;
            a.park = park + (tg * kRowsPerTile + rg) * 16;
            a.y = y + (tb0 + tg) * ldy + (rt0 - r0 + rg);
            micro_fn(tt, rr)(a);
          }
        }
      }
      rt0 += nr;
    }
  }
}

double bf16_dot_burst(int64_t iterations, float* sink) {
  constexpr int kChains = 16;  // latency x throughput of two dot-product pipes, with room
  __m512 acc[kChains];
  for (int i = 0; i < kChains; ++i) acc[i] = _mm512_set1_ps(0.001f * static_cast<float>(i));
  const __m512bh a = reinterpret_cast<__m512bh>(_mm512_set1_epi16(0x3F80));  // 1.0
  const __m512bh b = reinterpret_cast<__m512bh>(_mm512_set1_epi16(0x3380));  // 2^-24
  for (int64_t it = 0; it < iterations; ++it)
    for (int i = 0; i < kChains; ++i) acc[i] = _mm512_dpbf16_ps(acc[i], a, b);
  __m512 s = acc[0];
  for (int i = 1; i < kChains; ++i) s = _mm512_add_ps(s, acc[i]);
  *sink = hsum(s);  // keeps the loop alive
  return static_cast<double>(iterations) * kChains * 32 * 2;
}

void e4m3_to_bf16_x32(const uint8_t* in, uint16_t* out) {
  _mm512_storeu_si512(out, decode32(in));
}

}  // namespace dsv3::kernels::cpu
DSV3_TARGET_END
