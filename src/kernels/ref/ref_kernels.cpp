// The scalar oracle: plain loops, double accumulation, dequantization through the dtype
// codecs. Every fast path is tested against these; the golden parity tests also run here.

#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/kernel_table.h"
#include "kernels/q8_activations.h"

namespace dsv3::kernels::ref {
namespace {

// Dequantizes columns [c0, c1) of view row r into out.
void dequant_row(const LinearWeight& w, int64_t r, int64_t c0, int64_t c1, float* out) {
  for (int64_t c = c0; c < c1; ++c) out[c - c0] = w.at(r, c);
}

// Grouped integer weights: activations quantized per group (q8_activations.h), exact integer
// sums per group, combined in double.
void matmul_rows_q8(const LinearWeight& w, const float* x, int64_t n, int64_t ldx, float* y, int64_t ldy, int64_t r0,
                    int64_t r1) {
  const int64_t K = w.cols, G = w.group_size, groups = (K + G - 1) / G;
  std::vector<int8_t> q(static_cast<size_t>(n * K));
  std::vector<float> s(static_cast<size_t>(n * groups));
  for (int64_t t = 0; t < n; ++t) quantize_q8_row(x + t * ldx, K, G, q.data() + t * K, s.data() + t * groups);
  for (int64_t r = r0; r < r1; ++r) {
    const uint8_t* row = w.row_ptr(r);
    const uint16_t* sw = w.row_group_scales(r);
    for (int64_t t = 0; t < n; ++t) {
      double acc = 0.0;
      for (int64_t g = 0; g < groups; ++g) {
        int64_t sum = 0;
        for (int64_t c = g * G; c < std::min(K, (g + 1) * G); ++c)
          sum += (w.is_int4() ? int4_at(row, c) : static_cast<int8_t>(row[c])) * int64_t{q[t * K + c]};
        acc += static_cast<double>(sum) * f16_to_f32(sw[g]) * s[t * groups + g];
      }
      y[t * ldy + (r - r0)] = static_cast<float>(acc);
    }
  }
}

void matmul_rows(const LinearWeight& w, const float* x, int64_t n, int64_t ldx, float* y, int64_t ldy, int64_t r0,
                 int64_t r1) {
  if (w.is_grouped_int()) return matmul_rows_q8(w, x, n, ldx, y, ldy, r0, r1);
  std::vector<float> row(static_cast<size_t>(w.cols));
  for (int64_t r = r0; r < r1; ++r) {
    dequant_row(w, r, 0, w.cols, row.data());
    for (int64_t t = 0; t < n; ++t) {
      const float* xt = x + t * ldx;
      double acc = 0.0;
      for (int64_t c = 0; c < w.cols; ++c) acc += static_cast<double>(row[c]) * xt[c];
      y[t * ldy + (r - r0)] = static_cast<float>(acc);
    }
  }
}

void matmul_t_cols(const LinearWeight& w, const float* x, int64_t n, int64_t ldx, float* y, int64_t ldy, int64_t c0,
                   int64_t c1) {
  const int64_t width = c1 - c0;
  std::vector<double> acc(static_cast<size_t>(n * width), 0.0);
  std::vector<float> row(static_cast<size_t>(width));
  for (int64_t r = 0; r < w.rows; ++r) {
    dequant_row(w, r, c0, c1, row.data());
    for (int64_t t = 0; t < n; ++t) {
      double xr = x[t * ldx + r];
      double* a = acc.data() + t * width;
      for (int64_t c = 0; c < width; ++c) a[c] += xr * row[c];
    }
  }
  for (int64_t t = 0; t < n; ++t)
    for (int64_t c = 0; c < width; ++c) y[t * ldy + c] = static_cast<float>(acc[t * width + c]);
}

void rms_norm_row(const float* x, const float* weight, int64_t dim, float eps, float* y) {
  double ss = 0.0;
  for (int64_t i = 0; i < dim; ++i) ss += static_cast<double>(x[i]) * x[i];
  float inv = static_cast<float>(1.0 / std::sqrt(ss / static_cast<double>(dim) + eps));
  for (int64_t i = 0; i < dim; ++i) y[i] = (x[i] * inv) * weight[i];
}

void silu_mul(float* gate, const float* up, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    float g = gate[i];
    gate[i] = g / (1.0f + std::exp(-g)) * up[i];
  }
}

void exp_affine(const float* x, int64_t n, float shift, float scale, float* y) {
  for (int64_t i = 0; i < n; ++i) y[i] = std::exp(std::clamp((x[i] - shift) * scale, -87.3f, 88.3f));
}

}  // namespace

const KernelTable& table() {
  static const KernelTable t{"scalar", matmul_rows, matmul_t_cols, rms_norm_row, silu_mul, exp_affine};
  return t;
}

}  // namespace dsv3::kernels::ref
