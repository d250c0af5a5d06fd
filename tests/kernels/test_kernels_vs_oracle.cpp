// Every fast kernel table against the scalar oracle (ref::table(), double accumulation),
// across shapes with partial 128-blocks, odd token counts, row bands that start inside a
// scale block, and block sizes that are not multiples of the vector width.

#include <cmath>

#include "kernel_test_util.h"

using namespace dsv3;
using namespace dsv3::test;

namespace {

const kernels::KernelTable& oracle() { return kernels::ref::table(); }

// sum_c |x[t, c] W[r, c]| for the tolerance, per (t, r).
std::vector<double> abs_dot_sums(const LinearWeight& w, const std::vector<float>& x, int64_t n) {
  std::vector<double> s(static_cast<size_t>(n * w.rows), 0.0);
  for (int64_t r = 0; r < w.rows; ++r)
    for (int64_t c = 0; c < w.cols; ++c) {
      const double wv = std::fabs(w.at(r, c));
      for (int64_t t = 0; t < n; ++t) s[t * w.rows + r] += wv * std::fabs(x[t * w.cols + c]);
    }
  return s;
}

// Lane chains of ceil(cols / 8) FMAs (the longest, at 8 lanes) plus a reduction tree of
// log2(16) = 4 levels (the deepest, at 16 lanes).
int64_t rows_depth(int64_t cols) { return (cols + 7) / 8 + 4; }

// Every fast table's matmul_rows of weight `tw` and activations x [n, cols] against the oracle.
void check_matmul_rows_on(const TestWeight& tw, const std::vector<float>& x, int64_t n, const std::string& label) {
  const LinearWeight& w = tw.view;
  std::vector<float> want(static_cast<size_t>(n * w.rows));
  oracle().matmul_rows(w, x.data(), n, w.cols, want.data(), w.rows, 0, w.rows);
  auto sums = abs_dot_sums(w, x, n);
  std::vector<double> tol(sums.size());
  for (size_t i = 0; i < sums.size(); ++i) tol[i] = tolerance(rows_depth(w.cols), sums[i]);
  for (const auto& [name, table] : fast_tables()) {
    std::vector<float> got(want.size(), NAN);
    table->matmul_rows(w, x.data(), n, w.cols, got.data(), w.rows, 0, w.rows);
    expect_close(got, want, tol, name + " " + label + " n=" + std::to_string(n), [&](size_t i) {
      return "token " + std::to_string(i / w.rows) + " row " + std::to_string(i % w.rows);
    });
  }
}

void check_matmul_rows(const TestWeight& tw, int64_t n, uint32_t seed, const std::string& label) {
  check_matmul_rows_on(tw, random_activations(n * tw.view.cols, seed), n, label);
}

struct Shape {
  int64_t rows, cols;
};
// (29 x 2051 and 70 x 1100: several row and column blocks of the fused path for many tokens.)
const Shape kShapes[] = {{1, 1}, {7, 7}, {1, 129}, {127, 129}, {129, 127}, {24, 576}, {5, 2051}, {16, 1024}, {29, 2051}, {70, 1100}};
// 1-8: fused; 9-64: fused in chunks of 8; 70: fused in chunks of 64 (AVX-512), tiled (AVX2).
const int64_t kTokenCounts[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 37, 70};
const DType kDtypes[] = {DType::F8_E4M3, DType::BF16, DType::F16, DType::F32};

}  // namespace

TEST(KernelsVsOracle, Fp8DecodeIsExactForEveryByte) {
  // W = one row of all 256 byte values (NaN bytes replaced by 0), x = identity: each output is
  // one dequantized weight, exactly (all other products are +-0). Fused path (n = 1 per
  // column) and tiled path (n = 256) must both equal e4m3_to_f32(b) * scale bit for bit.
  for (float scale : {1.0f, 0.0123f, 3.0e-5f, 1.0f / 448}) {
    std::vector<uint8_t> bytes(256);
    for (int b = 0; b < 256; ++b) bytes[b] = e4m3_is_nan(static_cast<uint8_t>(b)) ? 0 : static_cast<uint8_t>(b);
    std::vector<float> scales = {scale, scale};
    LinearWeight w;
    w.dtype = DType::F8_E4M3;
    w.rows = 1;
    w.cols = 256;
    w.data = bytes.data();
    w.scale_inv = scales.data();
    w.block_rows = 128;
    w.block_cols = 128;
    std::vector<float> eye(256 * 256, 0.0f);
    for (int i = 0; i < 256; ++i) eye[i * 256 + i] = 1.0f;
    for (const auto& [name, table] : fast_tables()) {
      std::vector<float> tiled(256);
      table->matmul_rows(w, eye.data(), 256, 256, tiled.data(), 1, 0, 1);
      for (int b = 0; b < 256; ++b) {
        float fused = NAN;
        table->matmul_rows(w, eye.data() + b * 256, 1, 256, &fused, 1, 0, 1);
        const float want = e4m3_to_f32(bytes[b]) * scale;
        // Float equality: bit equality except that 0x80 (-0) comes out as +0 from the sum.
        EXPECT_EQ(fused, want) << name << " byte " << b << " scale " << scale;
        EXPECT_EQ(tiled[b], want) << name << " byte " << b << " scale " << scale;
      }
    }
  }
}

TEST(KernelsVsOracle, Fp8ActivationRange) {
  // The FP8 kernels fold the block scale into the activations with a power-of-two offset
  // (simd_matmul_fp8.inl): |x * scale| up to ~2^38 must not overflow and products down to
  // ~2^-96 must not flush. Tokens whose activations are all ~1e-20, or all ~1e9, etc., with
  // scales 2^-12 and 64, on the fused (n = 1, 2) and tiled (n = 5) paths.
  const float magnitude[] = {1e-20f, 1e9f, 1.0f, 1e-10f, 1e5f};
  for (int64_t n : {1, 2, 5}) {
    TestWeight tw = make_weight(DType::F8_E4M3, 40, 300, 77);
    for (size_t i = 0; i < tw.scales.size(); ++i) tw.scales[i] = i % 2 ? 64.0f : 1.0f / 4096;
    const LinearWeight& w = tw.view;
    auto x = random_activations(n * w.cols, 78);
    for (int64_t t = 0; t < n; ++t)
      for (int64_t c = 0; c < w.cols; ++c) x[t * w.cols + c] *= magnitude[(t + n) % 5];
    check_matmul_rows_on(tw, x, n, "activation range");
  }
}

TEST(KernelsVsOracle, MatmulRowsAllDtypesShapesTokenCounts) {
  uint32_t seed = 1;
  for (DType dt : kDtypes)
    for (const Shape& s : kShapes)
      for (int64_t n : kTokenCounts) {
        TestWeight tw = make_weight(dt, s.rows, s.cols, seed++);
        check_matmul_rows(tw, n, seed++,
                          std::string(dtype_name(dt)) + " " + std::to_string(s.rows) + "x" + std::to_string(s.cols));
      }
}

TEST(KernelsVsOracle, MatmulRowsBandsAndOddBlockSizes) {
  // Bands of a 300-row FP8 tensor starting inside a scale block, with the released 128x128
  // blocks and with blocks that are not multiples of 8 or 16 columns (the generic path).
  struct Case {
    int64_t first_row, rows, cols, block_rows, block_cols;
  };
  const Case cases[] = {{5, 129, 2051, 128, 128}, {127, 2, 576, 128, 128}, {3, 37, 300, 7, 36},
                        {0, 20, 100, 16, 12},     {11, 9, 33, 5, 1},        {64, 64, 129, 64, 64}};
  uint32_t seed = 100;
  for (const Case& c : cases)
    for (int64_t n : {1, 2, 3, 6, 37}) {
      TestWeight tw = make_weight(DType::F8_E4M3, 300, c.cols, seed++, c.block_rows, c.block_cols);
      tw.view = tw.view.row_band(c.first_row, c.rows);
      check_matmul_rows(tw, n, seed++,
                        "band@" + std::to_string(c.first_row) + " blocks " + std::to_string(c.block_rows) + "x" +
                            std::to_string(c.block_cols));
    }
}

TEST(KernelsVsOracle, MatmulTransposedColumnRanges) {
  struct Case {
    int64_t rows, cols, c0, c1;
  };
  // (128, 512) is W_UK of one head; column ranges start anywhere.
  const Case cases[] = {{1, 1, 0, 1},     {7, 7, 0, 7},       {128, 512, 0, 512}, {128, 512, 16, 80},
                        {127, 129, 3, 129}, {129, 576, 100, 576}, {3, 2051, 0, 2051}, {200, 40, 1, 39}};
  uint32_t seed = 200;
  for (DType dt : kDtypes)
    for (const Case& c : cases)
      for (int64_t n : {1, 4, 5, 37}) {
        TestWeight tw = make_weight(dt, c.rows, c.cols, seed++);
        const LinearWeight& w = tw.view;
        auto x = random_activations(n * w.rows, seed++);
        const int64_t width = c.c1 - c.c0;
        std::vector<float> want(static_cast<size_t>(n * width));
        oracle().matmul_t_cols(w, x.data(), n, w.rows, want.data(), width, c.c0, c.c1);
        std::vector<double> tol(want.size());
        for (int64_t t = 0; t < n; ++t)
          for (int64_t j = 0; j < width; ++j) {
            double s = 0;
            for (int64_t r = 0; r < w.rows; ++r) s += std::fabs(w.at(r, c.c0 + j) * x[t * w.rows + r]);
            tol[t * width + j] = tolerance(w.rows, s);
          }
        for (const auto& [name, table] : fast_tables()) {
          std::vector<float> got(want.size(), NAN);
          table->matmul_t_cols(w, x.data(), n, w.rows, got.data(), width, c.c0, c.c1);
          expect_close(got, want, tol,
                       name + " " + dtype_name(dt) + " " + std::to_string(c.rows) + "x" + std::to_string(c.cols) +
                           " n=" + std::to_string(n),
                       [&](size_t i) { return "token " + std::to_string(i / width) + " col " + std::to_string(i % width); });
        }
      }
}

TEST(KernelsVsOracle, RmsNormSiluExp) {
  const double u = std::ldexp(1.0, -24);
  for (int64_t n : {1, 3, 7, 8, 15, 16, 17, 63, 64, 65, 127, 129, 576, 2051, 7168}) {
    auto a = random_activations(n, 7 * n + 1), b = random_activations(n, 7 * n + 2);
    for (const auto& [name, table] : fast_tables()) {
      const std::string at = name + " n=" + std::to_string(n);
      std::vector<double> tol(n);
      // rms_norm: the f32 sum of squares (depth ~ n/8 + 8) enters through a square root
      // (halving its relative error), then two multiplications as the oracle does.
      auto wt = random_activations(n, 99);
      std::vector<float> r1(n), r2(n);
      table->rms_norm_row(a.data(), wt.data(), n, 1e-6f, r1.data());
      oracle().rms_norm_row(a.data(), wt.data(), n, 1e-6f, r2.data());
      for (int64_t i = 0; i < n; ++i) tol[i] = (0.5 * (n / 8 + 8) + 4) * u * std::fabs(r2[i]) + 1e-35;
      expect_close(r1, r2, tol, "rms_norm " + at, [](size_t i) { return std::to_string(i); });

      // silu * up: the polynomial e^x is within a few ulp (|relative| <= 8u measured bound
      // with margin) and passes to the result at most 1:1; divide and multiply add 2u.
      std::vector<float> g = random_activations(n, 5 * n + 3, 6.0f), up = b, g2 = g;
      if (n > 4) g[0] = -120.0f, g[1] = 120.0f, g[2] = 0.0f, g[3] = -88.0f;
      g2 = g;
      table->silu_mul(g.data(), up.data(), n);
      oracle().silu_mul(g2.data(), up.data(), n);
      for (int64_t i = 0; i < n; ++i) tol[i] = 12 * u * std::fabs(g2[i]) + 1e-30;
      expect_close(g, g2, tol, "silu_mul " + at, [](size_t i) { return std::to_string(i); });

      // e^((x - shift) * scale): the same f32 argument, then the polynomial against std::exp
      // (a few ulp); arguments past the clamp included.
      std::vector<float> e1(n), e2(n), ex = random_activations(n, 7 * n + 1, 30.0f);
      if (n > 3) ex[0] = -INFINITY, ex[1] = 1e6f, ex[2] = 0.25f;
      table->exp_affine(ex.data(), n, 0.25f, 1.7f, e1.data());
      oracle().exp_affine(ex.data(), n, 0.25f, 1.7f, e2.data());
      for (int64_t i = 0; i < n; ++i) tol[i] = 8 * u * std::fabs(e2[i]);
      expect_close(e1, e2, tol, "exp_affine " + at, [](size_t i) { return std::to_string(i); });
      if (n > 3) {
        EXPECT_EQ(e1[2], 1.0f) << at;
      }
    }
  }
}
