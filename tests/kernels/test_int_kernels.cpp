// The grouped integer formats (I8 int8, U8 packed int4, F16 scale per group) on every fast
// table against the scalar oracle (activations quantized per group to int8, exact integer
// sums per group, double accumulation: kernels/q8_activations.h), with the same tolerance
// argument as the other formats (kernel_test_util.h); the oracle itself against the float
// product within the activation quantization's bound; the activation quantizer's rounding;
// exact decoding of every stored byte; batch invariance between decode and prefill; the
// VNNI and non-VNNI AVX-512 products bit for bit; and the weight quantizer's error bounds.

#include <cmath>
#include <random>

#include "kernel_test_util.h"
#include "kernels/q8_activations.h"
#include "tensor/int_quant.h"

using namespace dsv3;
using namespace dsv3::test;

namespace {

const kernels::KernelTable& oracle() { return kernels::ref::table(); }

struct IntWeight {
  std::vector<uint8_t> bytes;
  std::vector<uint16_t> scales;
  LinearWeight view;
};

// Random stored bytes (every value a byte can hold, -128 and -8 included) and F16 scales in
// [2^-12, 2^-6) per group, a tenth of them zero (all-zero groups quantize to scale 0).
IntWeight make_int_weight(int bits, int64_t rows, int64_t cols, int64_t group, uint32_t seed) {
  std::mt19937 rng(seed);
  IntWeight w;
  const int64_t row_bytes = bits == 4 ? (cols + 1) / 2 : cols, groups = (cols + group - 1) / group;
  w.bytes.resize(static_cast<size_t>(rows * row_bytes));
  for (uint8_t& b : w.bytes) b = static_cast<uint8_t>(rng());
  std::uniform_real_distribution<float> u(1.0f / 4096, 1.0f / 64);
  w.scales.resize(static_cast<size_t>(rows * groups));
  for (uint16_t& s : w.scales) s = rng() % 10 == 0 ? 0 : f32_to_f16(u(rng));
  w.view.dtype = bits == 4 ? DType::U8 : DType::I8;
  w.view.rows = rows;
  w.view.cols = cols;
  w.view.data = w.bytes.data();
  w.view.group_size = group;
  w.view.group_scales = w.scales.data();
  return w;
}

std::string label(const LinearWeight& w, int64_t n) {
  return std::string(w.is_int4() ? "int4" : "int8") + " " + std::to_string(w.rows) + "x" + std::to_string(w.cols) +
         " g" + std::to_string(w.group_size) + " first_row " + std::to_string(w.first_row) + " n=" + std::to_string(n);
}

void check_rows(const LinearWeight& w, int64_t n, uint32_t seed) {
  auto x = random_activations(n * w.cols, seed);
  std::vector<float> want(static_cast<size_t>(n * w.rows));
  oracle().matmul_rows(w, x.data(), n, w.cols, want.data(), w.rows, 0, w.rows);
  // The fast paths round the products of the quantized values: sum |w * q * s| bounds them.
  std::vector<double> tol(want.size());
  const int64_t groups = (w.cols + w.group_size - 1) / w.group_size;
  std::vector<int8_t> q(static_cast<size_t>(w.cols));
  std::vector<float> xs(static_cast<size_t>(groups));
  for (int64_t t = 0; t < n; ++t) {
    kernels::quantize_q8_row(x.data() + t * w.cols, w.cols, w.group_size, q.data(), xs.data());
    for (int64_t r = 0; r < w.rows; ++r) {
      double s = 0;
      for (int64_t c = 0; c < w.cols; ++c) s += std::fabs(static_cast<double>(w.at(r, c)) * q[c] * xs[c / w.group_size]);
      // Per lane one fma per block of >= 32 columns, the scale products, the hsum tree.
      tol[t * w.rows + r] = tolerance((w.cols + 31) / 32 + 8, s);
    }
  }
  for (const auto& [name, table] : fast_tables()) {
    std::vector<float> got(want.size(), NAN);
    table->matmul_rows(w, x.data(), n, w.cols, got.data(), w.rows, 0, w.rows);
    expect_close(got, want, tol, name + " " + label(w, n),
                 [&](size_t i) { return "token " + std::to_string(i / w.rows) + " row " + std::to_string(i % w.rows); });
  }
}

}  // namespace

TEST(IntKernels, OracleDecodesTheDocumentedLayout) {
  // Column 2j in the low nibble, 2j + 1 in the high one, two's complement; int8 as stored.
  const uint8_t packed[] = {0x8F, 0x71};  // columns: -1, -8, 1, 7
  EXPECT_EQ(int4_at(packed, 0), -1);
  EXPECT_EQ(int4_at(packed, 1), -8);
  EXPECT_EQ(int4_at(packed, 2), 1);
  EXPECT_EQ(int4_at(packed, 3), 7);
  const uint16_t scales[] = {f32_to_f16(0.5f), f32_to_f16(2.0f)};
  LinearWeight w;
  w.dtype = DType::U8;
  w.rows = 1;
  w.cols = 4;
  w.data = packed;
  w.group_size = 2;  // (the loader requires multiples of 16; the oracle takes any)
  w.group_scales = scales;
  EXPECT_EQ(w.at(0, 0), -0.5f);
  EXPECT_EQ(w.at(0, 1), -4.0f);
  EXPECT_EQ(w.at(0, 2), 2.0f);
  EXPECT_EQ(w.at(0, 3), 14.0f);
  EXPECT_EQ(w.bytes(), 2u + 2u * 2u);
}

TEST(IntKernels, DecodeIsExactForEveryByte) {
  // Rows holding every byte value; x one-hot at column c with the value 127 (quantized to
  // q = 127, scale exactly 1): y[r] = w[r][c] * 127, rounded once.
  for (int bits : {8, 4}) {
    const int64_t cols = bits == 8 ? 256 : 512, rows = 3;
    IntWeight tw = make_int_weight(bits, rows, cols, 32, 5);
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t b = 0; b < 256; ++b) tw.bytes[r * (bits == 8 ? 256 : 256) + b] = static_cast<uint8_t>(b + r);
    const LinearWeight& w = tw.view;
    std::vector<float> x(static_cast<size_t>(cols)), got(static_cast<size_t>(rows));
    for (const auto& [name, table] : fast_tables())
      for (int64_t c = 0; c < cols; ++c) {
        std::fill(x.begin(), x.end(), 0.0f);
        x[static_cast<size_t>(c)] = 127.0f;
        table->matmul_rows(w, x.data(), 1, cols, got.data(), rows, 0, rows);
        for (int64_t r = 0; r < rows; ++r)
          ASSERT_EQ(got[static_cast<size_t>(r)], static_cast<float>(127.0 * w.at(r, c)))
              << name << " bits " << bits << " row " << r << " col " << c;
      }
  }
}

TEST(IntKernels, MatmulRowsShapesGroupsTokenCounts) {
  struct Shape {
    int64_t rows, cols;
  };
  // Columns: one partial vector, a partial group, odd counts (int4's last byte half used),
  // a tail after whole groups, V3's and the default model's widths.
  const Shape shapes[] = {{1, 1}, {7, 7}, {5, 33}, {13, 64}, {9, 129}, {24, 576}, {5, 2051}, {29, 1100}};
  uint32_t seed = 1;
  for (int bits : {8, 4})
    for (int64_t group : {16, 32, 48, 64, 128, 192})  // 48, 192: groups straddling the blocks
      for (const Shape& s : shapes)
        for (int64_t n : {1, 2, 3, 5, 6, 7, 8, 9, 13, 37}) {  // the AVX-512 tiles: 6 tokens, then 1-5
          IntWeight tw = make_int_weight(bits, s.rows, s.cols, group, seed++);
          check_rows(tw.view, n, seed++);
        }
}

TEST(IntKernels, MatmulRowsBands) {
  // Bands starting at any row (the scales of the full tensor's row are used).
  uint32_t seed = 500;
  for (int bits : {8, 4}) {
    IntWeight tw = make_int_weight(bits, 300, 1031, 64, seed++);
    for (auto [first, rows] : {std::pair<int64_t, int64_t>{5, 129}, {127, 2}, {299, 1}, {64, 64}})
      for (int64_t n : {1, 4, 37}) check_rows(tw.view.row_band(first, rows), n, seed++);
  }
}

TEST(IntKernels, MatmulTransposedColumnRanges) {
  struct Case {
    int64_t rows, cols, c0, c1;
  };
  const Case cases[] = {{1, 1, 0, 1}, {128, 512, 0, 512}, {128, 512, 17, 81}, {127, 129, 3, 129}, {200, 40, 1, 39}};
  uint32_t seed = 900;
  for (int bits : {8, 4})
    for (const Case& c : cases)
      for (int64_t n : {1, 5, 37}) {
        IntWeight tw = make_int_weight(bits, c.rows, c.cols, 32, seed++);
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
          expect_close(got, want, tol, name + " transposed " + label(w, n) + " cols " + std::to_string(c.c0),
                       [&](size_t i) { return "token " + std::to_string(i / width) + " col " + std::to_string(i % width); });
        }
      }
}

TEST(IntKernels, SameBitsWhateverTheBatch) {
  // Token t's row of a product with n tokens (in tiles of 4 or 6 tokens, rows in bands, the
  // scale products precomputed where a block is one group: int8 at groups 64 and 128, int4 at
  // 128) equals the product with token t alone, bit for bit. Columns: one block, a partial
  // last block inside a run of 16 blocks (1100), one starting a run (2051).
  uint32_t seed = 1300;
  for (int bits : {8, 4})
    for (int64_t group : {32, 64, 128})
      for (int64_t cols : {64, 1100, 2051}) {
        IntWeight tw = make_int_weight(bits, 45, cols, group, seed++);
        const LinearWeight& w = tw.view;
        const int64_t n_max = 70;
        auto x = random_activations(n_max * cols, seed++);
        for (const auto& [name, table] : fast_tables()) {
          std::vector<float> single(static_cast<size_t>(n_max * w.rows));
          for (int64_t t = 0; t < n_max; ++t)
            table->matmul_rows(w, x.data() + t * cols, 1, cols, single.data() + t * w.rows, w.rows, 0, w.rows);
          for (int64_t n : {2, 7, 8, 9, 33, 70}) {
            std::vector<float> got(static_cast<size_t>(n * w.rows));
            table->matmul_rows(w, x.data(), n, cols, got.data(), w.rows, 0, w.rows);
            for (size_t i = 0; i < got.size(); ++i)
              ASSERT_EQ(std::memcmp(&got[i], &single[i], 4), 0)
                  << name << " " << label(w, n) << " token " << i / w.rows << " row " << i % w.rows;
          }
        }
      }
}

TEST(IntKernels, TransposedOneTokenSameBitsAsBatch) {
  // One token's transposed product (decode: W_UK^T q_nope) takes a path of its own where the
  // columns are whole vectors (accumulators in registers, no tile); a batch goes through the
  // tile. Both the same bits, for every column range, aligned or not.
  uint32_t seed = 1700;
  for (int bits : {8, 4})
    for (int64_t group : {32, 64, 128}) {
      IntWeight tw = make_int_weight(bits, 128, 512, group, seed++);  // one head's W_UK
      const LinearWeight& w = tw.view;
      const int64_t n = 5, C = w.cols;
      auto x = random_activations(n * w.rows, seed++);
      for (const auto& [name, table] : fast_tables()) {
        std::vector<float> batch(static_cast<size_t>(n * C));
        table->matmul_t_cols(w, x.data(), n, w.rows, batch.data(), C, 0, C);
        for (const auto& [c0, c1] : {std::pair<int64_t, int64_t>{0, C}, {64, 448}, {16, 272}, {3, 260}, {0, 17}}) {
          for (int64_t t = 0; t < n; ++t) {
            std::vector<float> one(static_cast<size_t>(c1 - c0), NAN);
            table->matmul_t_cols(w, x.data() + t * w.rows, 1, w.rows, one.data(), c1 - c0, c0, c1);
            for (int64_t j = 0; j < c1 - c0; ++j)
              ASSERT_EQ(std::memcmp(&one[j], &batch[t * C + c0 + j], 4), 0)
                  << name << " " << label(w, 1) << " cols " << c0 << ".." << c1 << " token " << t << " col " << c0 + j;
          }
        }
      }
    }
}

TEST(IntKernels, QuantizerErrorBounds) {
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.0f, 0.02f);
  const int64_t cols = 1000, group = 64;
  std::vector<float> x(cols);
  for (float& v : x) v = normal(rng);
  x[3] = 0.3f;  // an outlier in group 0
  std::fill(x.begin() + 128, x.begin() + 192, 0.0f);  // an all-zero group
  for (int bits : {8, 4}) {
    std::vector<uint8_t> q(static_cast<size_t>(bits == 8 ? cols : (cols + 1) / 2));
    std::vector<uint16_t> s(static_cast<size_t>((cols + group - 1) / group));
    quantize_int_row(x.data(), cols, group, bits, q.data(), s.data());
    LinearWeight w;
    w.dtype = bits == 8 ? DType::I8 : DType::U8;
    w.rows = 1;
    w.cols = cols;
    w.data = q.data();
    w.group_size = group;
    w.group_scales = s.data();
    EXPECT_EQ(s[2], 0) << "all-zero group";
    double err_plain = 0, err = 0;
    for (int64_t g0 = 0; g0 < cols; g0 += group) {
      const int64_t n = std::min(group, cols - g0);
      float amax = 0;
      for (int64_t i = 0; i < n; ++i) amax = std::max(amax, std::fabs(x[g0 + i]));
      const float scale = f16_to_f32(s[g0 / group]);
      for (int64_t i = 0; i < n; ++i) {
        const double d = std::fabs(static_cast<double>(w.at(0, g0 + i)) - x[g0 + i]);
        err += d * d;
        if (bits == 8) {
          // int8: amax / 127, rounding to nearest: half a step (plus the F16 scale's rounding
          // of amax, at most 2^-11 relative).
          EXPECT_LE(d, 0.5 * scale + amax * std::ldexp(1.0, -11) + 1e-12) << "col " << g0 + i;
        }
        const float plain = f16_to_f32(f32_to_f16(amax / 7));
        const double qp = plain > 0 ? std::clamp(std::nearbyint(x[g0 + i] / plain), -8.0f, 7.0f) * plain : 0.0;
        err_plain += (qp - x[g0 + i]) * (qp - x[g0 + i]);
      }
    }
    if (bits == 4) {
      EXPECT_LT(err, err_plain) << "the scale search must beat amax / 7";
    }
  }
}

TEST(IntKernels, QuantizerRoundsHalfToEven) {
  // amax 127 -> scale exactly 1: q = round_half_even(w), as docs/formats.md says.
  const float x[16] = {127, 0.5f, 1.5f, 2.5f, -0.5f, -1.5f, -2.5f, 3.49f, 126.5f, -126.5f, 0, 0, 0, 0, 0, 0};
  const int want[16] = {127, 0, 2, 2, 0, -2, -2, 3, 126, -126, 0, 0, 0, 0, 0, 0};
  uint8_t q[16];
  uint16_t s;
  quantize_int_row(x, 16, 16, 8, q, &s);
  EXPECT_EQ(f16_to_f32(s), 1.0f);
  for (int i = 0; i < 16; ++i) EXPECT_EQ(static_cast<int8_t>(q[i]), want[i]) << i;
}

TEST(IntKernels, ActivationQuantizerRoundsHalfToEvenPerGroup) {
  // Group 0: amax 127 -> s = 1, q = round_half_even(x). Group 1: amax 2 -> s = 2 / 127, each
  // q within half a step. Group 2: zeros -> s = 0. Group 3: an infinity -> s = NaN, q = 0.
  float x[64] = {127, 0.5f, 1.5f, 2.5f, -0.5f, -1.5f, -2.5f, 3.49f, 126.5f, -126.5f, -127, 0, 0, 0, 0, 0,
                 2, -2, 1, 0.3f, -0.7f, 1e-7f};
  x[48] = INFINITY;
  x[49] = 1;
  const int want0[11] = {127, 0, 2, 2, 0, -2, -2, 3, 126, -126, -127};
  int8_t q[64];
  float s[4];
  kernels::quantize_q8_row(x, 64, 16, q, s);
  EXPECT_EQ(s[0], 1.0f);
  for (int i = 0; i < 11; ++i) EXPECT_EQ(q[i], want0[i]) << i;
  EXPECT_EQ(s[1], 2.0f / 127);
  for (int i = 16; i < 32; ++i) {
    EXPECT_LE(std::fabs(q[i] * static_cast<double>(s[1]) - x[i]), 0.5 * s[1] * (1 + 1e-6)) << i;
    EXPECT_LE(std::abs(q[i]), 127);
  }
  EXPECT_EQ(q[16], 127);
  EXPECT_EQ(q[17], -127);
  EXPECT_EQ(s[2], 0.0f);
  for (int i = 32; i < 48; ++i) EXPECT_EQ(q[i], 0);
  EXPECT_TRUE(std::isnan(s[3]));
  for (int i = 48; i < 64; ++i) EXPECT_EQ(q[i], 0);
}

TEST(IntKernels, NonFiniteActivationsGiveNaN) {
  IntWeight tw = make_int_weight(8, 3, 100, 32, 77);
  auto x = random_activations(100, 78);
  x[40] = NAN;
  std::vector<float> y(3);
  for (const auto& [name, table] : fast_tables()) {
    table->matmul_rows(tw.view, x.data(), 1, 100, y.data(), 3, 0, 3);
    for (float v : y) EXPECT_TRUE(std::isnan(v)) << name;
  }
}

TEST(IntKernels, OracleWithinTheActivationQuantizationBoundOfTheFloatProduct) {
  // Independent of the oracle's own code: |y_q8 - sum w * x| <= sum_c |w_c| * s_g / 2 (each
  // activation moves by at most half its group's step), plus float rounding.
  uint32_t seed = 2000;
  for (int bits : {8, 4})
    for (int64_t group : {16, 64, 128}) {
      IntWeight tw = make_int_weight(bits, 17, 777, group, seed++);
      const LinearWeight& w = tw.view;
      const int64_t n = 3;
      auto x = random_activations(n * w.cols, seed++);
      std::vector<float> got(static_cast<size_t>(n * w.rows));
      oracle().matmul_rows(w, x.data(), n, w.cols, got.data(), w.rows, 0, w.rows);
      for (int64_t t = 0; t < n; ++t) {
        const float* xt = x.data() + t * w.cols;
        for (int64_t r = 0; r < w.rows; ++r) {
          double exact = 0, bound = 0, sum_abs = 0;
          for (int64_t c = 0; c < w.cols; ++c) {
            double amax = 0;
            for (int64_t k = c / group * group; k < std::min(w.cols, (c / group + 1) * group); ++k)
              amax = std::max(amax, std::fabs(static_cast<double>(xt[k])));
            exact += static_cast<double>(w.at(r, c)) * xt[c];
            bound += std::fabs(w.at(r, c)) * amax / 127 / 2;
            sum_abs += std::fabs(static_cast<double>(w.at(r, c)) * xt[c]);
          }
          EXPECT_LE(std::fabs(got[t * w.rows + r] - exact), bound * (1 + 1e-5) + sum_abs * 1e-6)
              << label(w, n) << " token " << t << " row " << r;
        }
      }
    }
}

TEST(IntKernels, VnniAndPlainAvx512GiveTheSameBits) {
  // The integer sums are exact on both, and the float steps are the same.
  if (!cpu_features().has_avx512_path() || !cpu_features().avx512_vnni) GTEST_SKIP() << "needs AVX512-VNNI";
  uint32_t seed = 3000;
  for (int bits : {8, 4})
    for (int64_t group : {16, 32, 64, 128, 192})
      for (int64_t cols : {64, 129, 2051}) {
        IntWeight tw = make_int_weight(bits, 21, cols, group, seed++);
        for (int64_t n : {1, 3, 9}) {
          auto x = random_activations(n * cols, seed++);
          std::vector<float> a(static_cast<size_t>(n * 21)), b(a.size());
          kernels::cpu::avx512_table().matmul_rows(tw.view, x.data(), n, cols, a.data(), 21, 0, 21);
          kernels::cpu::avx512_vnni_table().matmul_rows(tw.view, x.data(), n, cols, b.data(), 21, 0, 21);
          ASSERT_EQ(std::memcmp(a.data(), b.data(), a.size() * 4), 0) << label(tw.view, n);
        }
      }
}
