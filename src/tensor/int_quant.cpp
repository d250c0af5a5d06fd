#include "tensor/int_quant.h"

#include <algorithm>
#include <cmath>

#include "tensor/dtype.h"

namespace dsv3 {
namespace {

// q = clamp(round_half_even(v / s), lo, hi); s > 0. Clamping first changes nothing (the
// bounds are integers) and keeps |x| small for the rounding: adding and subtracting 1.5 * 2^23
// rounds a float with |x| < 2^22 to an integer, half to even, in the default rounding mode
// (a libm nearbyint call per value made int4 conversion 6x slower than int8).
inline int quantize_value(float v, float s, int lo, int hi) {
  const float x = std::clamp(v / s, static_cast<float>(lo), static_cast<float>(hi));
  constexpr float kMagic = 12582912.0f;
  return static_cast<int>((x + kMagic) - kMagic);
}

double group_error(const float* x, int64_t n, float s, int lo, int hi) {
  double err = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double d = static_cast<double>(x[i]) - static_cast<double>(quantize_value(x[i], s, lo, hi)) * s;
    err += d * d;
  }
  return err;
}

}  // namespace

void quantize_int_row(const float* x, int64_t cols, int64_t group_size, int bits, uint8_t* q, uint16_t* scales) {
  const int hi = bits == 8 ? 127 : 7, lo = bits == 8 ? -127 : -8;
  if (bits == 4) std::fill(q, q + (cols + 1) / 2, uint8_t{0});
  for (int64_t g0 = 0, g = 0; g0 < cols; g0 += group_size, ++g) {
    const int64_t n = std::min(group_size, cols - g0);
    float amax = 0;
    for (int64_t i = 0; i < n; ++i) amax = std::max(amax, std::fabs(x[g0 + i]));
    uint16_t best = f32_to_f16(amax / static_cast<float>(hi));
    if (bits == 4 && amax > 0) {
      double best_err = INFINITY;
      for (float f : kInt4ScaleFactors) {
        const uint16_t cand = f32_to_f16(amax / static_cast<float>(hi) * f);
        const float s = f16_to_f32(cand);
        if (!(s > 0)) continue;
        const double err = group_error(x + g0, n, s, lo, hi);
        if (err < best_err) best_err = err, best = cand;
      }
    }
    scales[g] = best;
    const float s = f16_to_f32(best);
    for (int64_t i = 0; i < n; ++i) {
      const int v = s > 0 ? quantize_value(x[g0 + i], s, lo, hi) : 0;
      const int64_t c = g0 + i;
      if (bits == 8) q[c] = static_cast<uint8_t>(static_cast<int8_t>(v));
      else q[c >> 1] |= static_cast<uint8_t>((v & 0xF) << ((c & 1) * 4));
    }
  }
}

}  // namespace dsv3
