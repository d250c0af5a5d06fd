// The bf16 dot-product matmul for FP8 weights (cpu/bf16_dot.h), on AVX512-BF16's vdpbf16ps:
// one instruction does 32 multiply-adds (16 lanes x a pair of bf16), twice the work of an f32
// FMA. Only code inside the target region uses AVX512-BF16 (see target_region.h).
//
// Definitions (G = 64 columns per group; K_pad = K rounded up to G):
//   w'[r, c] = e4m3(W[r, c]) * 2^-120 as bf16: the byte's bits placed in a bf16, no
//              arithmetic (4 integer operations per 64 bytes, for two vectors); exact for
//              normal e4m3 values; subnormal e4m3 values (below 2^-6, 1/28672 of the
//              largest) become bf16 denormals, which vdpbf16ps reads as zero
//   x'[t, c] = bf16(x[t, c] * s[r / block_rows][c / block_cols] * 2^60), rounded to nearest
//              even, once per scale block of rows; 0 for c >= K
//   y[t, r]  = (sum of w' * x') * 2^60, the products exact in f32
// so each product carries one bf16 rounding of the activation (2^-8 relative). The 2^-120 /
// 2^60 / 2^60 split keeps x' far from overflow (|x * s| < 2^67) and the products normal down
// to |x * s| ~ 2^-60.
//
// Both operands in the group order: vector E of group g holds its even columns (word j:
// column gG + 2j), vector O its odd ones, so vdpbf16ps lane l takes columns (4l, 4l + 2) from
// E and (4l + 1, 4l + 3) from O. Weights land in that order by construction (even bytes
// shifted up, odd bytes in place); activations are permuted once per scale block.
//
// THE REDUCTION ORDER (batch invariance within the mode). For every (t, r), one accumulator of
// 16 lanes starts at +0 and takes vdpbf16ps with E, then with O, group by group in increasing
// column order, then a fixed hsum tree and the 2^60. Both paths below do exactly this, so no
// result depends on n, the other tokens, [r0, r1) or the thread count:
//   - few tokens (decode, batched decode: n <= kFusedMaxTokens): R rows' weights decoded in
//     registers and used by every token;
//   - many (prefill): a panel of rows decoded once into a per-thread buffer (L2) and swept by
//     every token of the block through a kT x kR register tile (kT x' vectors and kR w'
//     vectors feed kT * kR vdpbf16ps per step), whole rows at a time: no partials.

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
#include "kernels/cpu/vec_avx512.inl"

constexpr int64_t G = 64;  // columns per group: an E and an O vector of 32 bf16
constexpr float kXScale = 0x1p60f;
constexpr float kYScale = 0x1p60f;  // 2^120 / 2^60
// Register tile: kT * kR accumulators + kR weight vectors + one x' vector <= 32 registers;
// per half group kT + kR loads feed kT * kR vdpbf16ps.
constexpr int kT = 6;
constexpr int kR = 4;
constexpr int64_t kMaxPanelRows = 32;
constexpr int64_t kPanelBytes = 256 << 10;  // a decoded panel stays in L2
constexpr int64_t kTokensPerBlock = 120;     // x' of a block: 120 x K_pad bf16 (L2)
// Up to this many tokens the weights are decoded in registers and used by every token
// (decode, batched decode) instead of through a panel.
constexpr int kFusedMaxTokens = 8;

int64_t padded(int64_t k) { return (k + G - 1) / G * G; }
// Row stride of the bf16 activations: K_pad plus one cache line, so that the rows a register
// tile reads together do not map to the same L1 sets.
int64_t act_stride(int64_t k) { return padded(k) + 32; }

// 64 e4m3 bytes -> w' of their even (e) and odd (o) columns: word j of e is byte 2j's
// s.eeee.mmm moved to bf16's s | 0000eeee | mmm0000, of o byte 2j + 1's.
void decode64(const uint8_t* p, __m512i& e, __m512i& o) {
  const __m512i w = _mm512_loadu_si512(p);
  const __m512i mask = _mm512_set1_epi16(static_cast<short>(0x87F0));
  e = _mm512_and_si512(_mm512_srai_epi16(_mm512_slli_epi16(w, 8), 4), mask);
  o = _mm512_and_si512(_mm512_srai_epi16(w, 4), mask);
}

// decode64 of bytes [c, c + 64) of a row of k bytes, zeros past k (never reads past the row).
void decode64_at(const uint8_t* row, int64_t c, int64_t k, __m512i& e, __m512i& o) {
  if (c + G <= k) return decode64(row + c, e, o);
  alignas(64) uint8_t pad[G] = {};
  if (c < k) std::memcpy(pad, row + c, static_cast<size_t>(k - c));
  decode64(pad, e, o);
}

// First view row past r's scale block.
int64_t block_end(const LinearWeight& w, int64_t r) {
  return ((w.first_row + r) / w.block_rows + 1) * w.block_rows - w.first_row;
}

// xs[t * ld + ...] = x' of n tokens for the scale row of view row r, in the group order:
// group g at gG, its E vector (32 bf16) then its O vector.
void scale_to_bf16(const LinearWeight& w, int64_t r, const float* x, int64_t n, int64_t ldx, uint16_t* xs,
                   int64_t ld) {
  const int64_t k = w.cols, kp = padded(k), bc = w.block_cols;
  const float* s = w.row_scales(r);
  auto scales16 = [&](int64_t c) {  // the scales of columns c .. c + 15 (times 2^60; 0 past K)
    if (c >= k) return _mm512_setzero_ps();
    if (bc % 16 == 0) return _mm512_set1_ps(s[c / bc] * kXScale);
    alignas(64) float f[16];
    for (int l = 0; l < 16; ++l) f[l] = c + l < k ? s[(c + l) / bc] * kXScale : 0.0f;
    return _mm512_load_ps(f);
  };
  auto load16 = [&](const float* row, int64_t c) {
    if (c + 16 <= k) return _mm512_loadu_ps(row + c);
    if (c >= k) return _mm512_setzero_ps();
    return _mm512_maskz_loadu_ps(static_cast<__mmask16>((1u << (k - c)) - 1u), row + c);
  };
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
  for (int64_t c = 0; c < kp; c += G) {
    const __m512 s0 = scales16(c), s1 = scales16(c + 16), s2 = scales16(c + 32), s3 = scales16(c + 48);
    for (int64_t t = 0; t < n; ++t) {
      const float* row = x + t * ldx;
      const __m512 a = _mm512_mul_ps(load16(row, c), s0), b = _mm512_mul_ps(load16(row, c + 16), s1);
      const __m512 cc = _mm512_mul_ps(load16(row, c + 32), s2), d = _mm512_mul_ps(load16(row, c + 48), s3);
      // E: columns 0, 2, .., 30 (from a, b) then 32, .., 62 (from cc, d); O likewise.
      const __m512bh e = _mm512_cvtne2ps_pbh(_mm512_permutex2var_ps(cc, even, d), _mm512_permutex2var_ps(a, even, b));
      const __m512bh o = _mm512_cvtne2ps_pbh(_mm512_permutex2var_ps(cc, odd, d), _mm512_permutex2var_ps(a, odd, b));
      _mm512_store_si512(xs + t * ld + c, reinterpret_cast<__m512i>(e));
      _mm512_store_si512(xs + t * ld + c + 32, reinterpret_cast<__m512i>(o));
    }
  }
}

// T tokens' x' rows (stride ld) against R weight rows over columns [0, K_pad): the
// reduction order above, results into y[t * ldy + i]. wrow(i, c, e, o) yields row i's group
// at column c.
template <int T, int R, class WRow>
void dot_tile(int64_t kp, const uint16_t* xs, int64_t ld, float* y, int64_t ldy, WRow wrow) {
  __m512 acc[T][R];
  for (int t = 0; t < T; ++t)
    for (int i = 0; i < R; ++i) acc[t][i] = _mm512_setzero_ps();
  for (int64_t c = 0; c < kp; c += G) {
    __m512i we[R], wo[R];
    for (int i = 0; i < R; ++i) wrow(i, c, we[i], wo[i]);
    for (int h = 0; h < 2; ++h)
      for (int t = 0; t < T; ++t) {
        const __m512bh xv = reinterpret_cast<__m512bh>(_mm512_load_si512(xs + t * ld + c + 32 * h));
        for (int i = 0; i < R; ++i)
          acc[t][i] = _mm512_dpbf16_ps(acc[t][i], reinterpret_cast<__m512bh>(h == 0 ? we[i] : wo[i]), xv);
      }
  }
  for (int t = 0; t < T; ++t) VecAvx512::store_hsums(acc[t], R, kYScale, y + t * ldy);
}

// ---- many tokens: a decoded panel -----------------------------------------------------

// Rows [r, r + nr) of the view as w' into panel (row stride kp, the group order).
void decode_panel(const LinearWeight& w, int64_t r, int64_t nr, int64_t kp, uint16_t* panel) {
  for (int64_t i = 0; i < nr; ++i) {
    const uint8_t* row = w.row_ptr(r + i);
    uint16_t* dst = panel + i * kp;
    for (int64_t c = 0; c < kp; c += G) {
      __m512i e, o;
      decode64_at(row, c, w.cols, e, o);
      _mm512_store_si512(dst + c, e);
      _mm512_store_si512(dst + c + 32, o);
    }
  }
}

// The panel's rows are read from L2 half a group at a time (kR vectors, then the other
// half's), so that the kT * kR accumulators, kR weight vectors and an x' vector fit in the 32
// registers; per accumulator the order is still E then O of each group.
template <int T, int R>
void panel_tile(const uint16_t* panel, int64_t kp, const uint16_t* xs, int64_t ld, float* y, int64_t ldy) {
  __m512 acc[T][R];
  for (int t = 0; t < T; ++t)
    for (int i = 0; i < R; ++i) acc[t][i] = _mm512_setzero_ps();
  for (int64_t c = 0; c < kp; c += 32) {  // half groups: E of a group, then its O
    __m512bh wv[R];
    for (int i = 0; i < R; ++i) wv[i] = reinterpret_cast<__m512bh>(_mm512_load_si512(panel + i * kp + c));
    for (int t = 0; t < T; ++t) {
      const __m512bh xv = reinterpret_cast<__m512bh>(_mm512_load_si512(xs + t * ld + c));
      for (int i = 0; i < R; ++i) acc[t][i] = _mm512_dpbf16_ps(acc[t][i], wv[i], xv);
    }
  }
  for (int t = 0; t < T; ++t) VecAvx512::store_hsums(acc[t], R, kYScale, y + t * ldy);
}

using PanelFn = void (*)(const uint16_t*, int64_t, const uint16_t*, int64_t, float*, int64_t);
template <size_t... I>
constexpr std::array<PanelFn, sizeof...(I)> make_panel_table(std::index_sequence<I...>) {
  return {&panel_tile<static_cast<int>(I / kR) + 1, static_cast<int>(I % kR) + 1>...};
}
// The kT x kR register tile and its remainders (tt <= kT tokens, rr <= kR rows).
PanelFn panel_fn(int64_t tt, int64_t rr) {
  static constexpr auto table = make_panel_table(std::make_index_sequence<kT * kR>{});
  return table[(tt - 1) * kR + (rr - 1)];
}

// Rows [r, r_end) (one scale block) for nt tokens of x' (stride ld), panel by panel: each
// panel decoded once and swept by every token group; a register tile's x' rows stay in L1
// over the panel's row groups.
void panel_rows(const LinearWeight& w, int64_t r, int64_t r_end, const uint16_t* xs, int64_t nt, int64_t ld,
                float* y, int64_t ldy) {
  const int64_t kp = padded(w.cols);
  // Panel rows: as many as keep it within kPanelBytes, a multiple of kR, at least kR.
  const int64_t rows = std::max<int64_t>(kR, std::min<int64_t>(kMaxPanelRows, kPanelBytes / (kp * 2)) / kR * kR);
  auto* panel = reinterpret_cast<uint16_t*>(thread_scratch(ScratchSlot::WeightTile, static_cast<size_t>(rows * kp / 2)));
  const int64_t token_groups = (nt + kT - 1) / kT;
  for (int64_t p0 = r; p0 < r_end; p0 += rows) {
    const int64_t nr = std::min(rows, r_end - p0);
    decode_panel(w, p0, nr, kp, panel);
    // The next panel's bytes (the rows after these, in this scale block or the next) are
    // fetched into L2 while this one is swept: read only when decoded, they stalled the
    // decode at the memory's speed (half of this function's time outside the register tiles,
    // perf, Zen 5). A few lines before each register tile, all of them within the first
    // three quarters of the sweep: a token group's whole share at once (~50 lines) waited on
    // the core's miss buffers, and the last group's lines came too late for the decode
    // (perf: the decode's loads fell from 20% to 11% of bf16_matmul_rows' samples; prefill
    // of 512 tokens 1.017-1.057x in 6 alternated rounds, Moonlight 8 layers, 2 threads).
    const int64_t next_rows = std::min(rows, w.rows - (p0 + nr));
    const char* next = next_rows > 0 ? reinterpret_cast<const char*>(w.row_ptr(p0 + nr)) : nullptr;
    const int64_t next_lines = next_rows * w.row_bytes() / 64;
    const int64_t tiles = token_groups * ((nr + kR - 1) / kR);
    const int64_t lines_per_tile = next_lines / std::max<int64_t>(1, tiles * 3 / 4) + 1;
    for (int64_t tg = 0, line = 0; tg < nt; tg += kT) {
      const int64_t tt = std::min<int64_t>(kT, nt - tg);
      for (int64_t rg = 0; rg < nr; rg += kR) {
        for (int64_t l = 0; l < lines_per_tile && line < next_lines; ++l, ++line)
          _mm_prefetch(next + line * 64, _MM_HINT_T1);
        panel_fn(tt, std::min<int64_t>(kR, nr - rg))(panel + rg * kp, kp, xs + tg * ld, ld, y + tg * ldy + (p0 - r + rg),
                                                     ldy);
      }
    }
  }
}

// ---- few tokens: weights decoded in registers ------------------------------------------

// Rows per step for T tokens: T * R accumulators and 2R weight vectors within 32 registers.
constexpr int fused_rows_for(int t) { return t == 1 ? 8 : t == 2 ? 6 : t <= 4 ? 4 : 2; }

template <int T, int R>
void fused_tile(const LinearWeight& w, int64_t r, const uint16_t* xs, int64_t ld, float* y, int64_t ldy) {
  const int64_t k = w.cols, kp = padded(k), full = k / G * G;
  const uint8_t* rows[R];
  for (int i = 0; i < R; ++i) rows[i] = w.row_ptr(r + i);
  // The next R rows follow these: prefetched a line per row and group, since the hardware
  // prefetchers ramp up slowly on R interleaved streams.
  const int64_t next = R * k;
  dot_tile<T, R>(kp, xs, ld, y, ldy, [&](int i, int64_t c, __m512i& e, __m512i& o) {
    _mm_prefetch(reinterpret_cast<const char*>(rows[i] + c + next), _MM_HINT_T0);
    if (c < full) decode64(rows[i] + c, e, o);
    else decode64_at(rows[i], c, k, e, o);
  });
}

template <int T>
void fused_rows(const LinearWeight& w, int64_t r, int64_t r_end, const uint16_t* xs, int64_t ld, float* y,
                int64_t ldy) {
  constexpr int R = fused_rows_for(T);
  for (; r + R <= r_end; r += R, y += R) fused_tile<T, R>(w, r, xs, ld, y, ldy);
  for (; r < r_end; ++r, ++y) fused_tile<T, 1>(w, r, xs, ld, y, ldy);
}

// fused_rows<n> for n in [T, kFusedMaxTokens].
template <int T>
void fused_rows_n(int64_t n, const LinearWeight& w, int64_t r, int64_t r_end, const uint16_t* xs, int64_t ld,
                  float* y, int64_t ldy) {
  if constexpr (T < kFusedMaxTokens)
    if (n > T) return fused_rows_n<T + 1>(n, w, r, r_end, xs, ld, y, ldy);
  fused_rows<T>(w, r, r_end, xs, ld, y, ldy);
}

}  // namespace

void bf16_matmul_rows(const LinearWeight& w, const float* x, int64_t n, int64_t ldx, float* y, int64_t ldy,
                      int64_t r0, int64_t r1) {
  DSV3_CHECK(w.is_fp8(), "bf16_matmul_rows: FP8 weights only");
  if (n <= 0 || r1 <= r0) return;
  const int64_t ld = act_stride(w.cols);
  const int64_t block_tokens = std::min(n, kTokensPerBlock);
  // Scratch slots hand out floats; the bf16 buffer takes half as many.
  auto* xs = reinterpret_cast<uint16_t*>(
      thread_scratch(ScratchSlot::ScaledActivations, static_cast<size_t>((block_tokens * ld + 1) / 2)));
  for (int64_t tb0 = 0; tb0 < n; tb0 += kTokensPerBlock) {
    const int64_t nt = std::min(kTokensPerBlock, n - tb0);
    for (int64_t r = r0; r < r1;) {
      const int64_t r_end = std::min(r1, block_end(w, r));  // one x' per scale block of rows
      scale_to_bf16(w, r, x + tb0 * ldx, nt, ldx, xs, ld);
      float* yb = y + tb0 * ldy + (r - r0);
      if (nt <= kFusedMaxTokens) fused_rows_n<1>(nt, w, r, r_end, xs, ld, yb, ldy);
      else panel_rows(w, r, r_end, xs, nt, ld, yb, ldy);
      r = r_end;
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
  *sink = VecAvx512::hsum(s);  // keeps the loop alive
  return static_cast<double>(iterations) * kChains * 32 * 2;
}

void e4m3_to_bf16_x64(const uint8_t* in, uint16_t* even, uint16_t* odd) {
  __m512i e, o;
  decode64(in, e, o);
  _mm512_storeu_si512(even, e);
  _mm512_storeu_si512(odd, o);
}

}  // namespace dsv3::kernels::cpu
DSV3_TARGET_END
