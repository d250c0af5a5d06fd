// The bf16 dot-product matmul math (kernels/matmul_math.h, cpu/avx512_bf16_dot.cpp): its
// e4m3 -> bf16 conversion against the e4m3 table, its products against the scalar oracle
// with a bf16 tolerance, batch invariance within the mode, and its deviation on DeepSeek's
// goldens against the deviation of DeepSeek's own bfloat16 run (the goldens' bf16_vs_f32).
// Skipped on CPUs without AVX512-BF16, where the mode is refused (tested too).

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "../model/golden.h"
#include "base/thread_pool.h"
#include "kernel_test_util.h"
#include "kernels/cpu/bf16_dot.h"
#include "kernels/matmul_math.h"
#include "kernels/ops.h"
#include "model/model.h"

using namespace dsv3;
using namespace dsv3::test;

namespace {

bool bf16_supported() { return kernels::matmul_math_supported(kernels::MatmulMath::Bf16); }

struct Bf16Math : testing::Test {
  void SetUp() override {
    if (!bf16_supported()) GTEST_SKIP() << "this CPU lacks AVX512-BF16";
    ASSERT_TRUE(kernels::set_matmul_math(kernels::MatmulMath::Bf16).ok());
  }
  void TearDown() override { (void)kernels::set_matmul_math(kernels::MatmulMath::Exact); }
};

}  // namespace

TEST(MatmulMath, ParsesAndRefusesWhatThisCpuLacks) {
  EXPECT_EQ(kernels::parse_matmul_math("exact").value(), kernels::MatmulMath::Exact);
  EXPECT_EQ(kernels::parse_matmul_math("bf16").value(), kernels::MatmulMath::Bf16);
  EXPECT_FALSE(kernels::parse_matmul_math("int4").ok());
  EXPECT_EQ(kernels::matmul_math(), kernels::MatmulMath::Exact);  // the default
  const Status s = kernels::set_matmul_math(kernels::MatmulMath::Bf16);
  EXPECT_EQ(s.ok(), bf16_supported());
  if (!s.ok()) {
    EXPECT_NE(s.error().message().find("AVX512-BF16"), std::string::npos) << s.error().message();
  }
  ASSERT_TRUE(kernels::set_matmul_math(kernels::MatmulMath::Exact).ok());
}

TEST_F(Bf16Math, E4m3ToBf16IsExactForEveryByte) {
  // The decode places the byte's bits in a bf16: e4m3 * 2^-120 exactly, subnormal e4m3
  // values as bf16 denormals (which the dot product may read as zero; see below).
  uint8_t bytes[256];
  uint16_t even[128], odd[128];
  for (int i = 0; i < 256; ++i) bytes[i] = static_cast<uint8_t>(i);
  for (int i = 0; i < 256; i += 64) kernels::cpu::e4m3_to_bf16_x64(bytes + i, even + i / 2, odd + i / 2);
  for (int i = 0; i < 256; ++i) {
    if (e4m3_is_nan(static_cast<uint8_t>(i))) continue;
    const uint16_t bits = i % 2 ? odd[i / 2] : even[i / 2];
    EXPECT_EQ(std::ldexp(static_cast<double>(bf16_to_f32(bits)), 120), e4m3_to_f32(static_cast<uint8_t>(i)))
        << "byte 0x" << std::hex << i;
    EXPECT_EQ(bits >> 15, static_cast<unsigned>(i >> 7)) << "sign of byte 0x" << std::hex << i;
  }
}

TEST_F(Bf16Math, MatchesOracleWithinBf16Rounding) {
  // Rounding x * s to bf16 (8 significant bits, to nearest) moves each product by at most
  // 2^-8 relative; the f32 sums add the usual depth * 2^-24 (each lane: two additions per 32
  // columns, then the hsum tree); subnormal e4m3 weights (the test's random bytes have 1 in
  // 16) may count as zero.
  struct Case {
    int64_t full_rows, first_row, rows, cols, block_cols;
  };
  const Case cases[] = {
      {300, 5, 129, 576, 128},  // a band across scale blocks, K a multiple of 32
      {17, 0, 17, 129, 128},    // K with a partial vector and a partial scale block
      {64, 0, 64, 1100, 128},   // more than two column blocks of the tile
      {40, 3, 30, 200, 24},     // scale blocks that split vectors
      {1, 0, 1, 32, 128},
  };
  uint32_t seed = 500;
  ThreadPool pool(2);
  for (const Case& c : cases)
    for (int64_t n : {1, 5, 6, 7, 13, 50, 97}) {
      TestWeight tw = make_weight(DType::F8_E4M3, c.full_rows, c.cols, seed++, 128, c.block_cols);
      const LinearWeight w = tw.view.row_band(c.first_row, c.rows);
      auto x = random_activations(n * c.cols, seed++);
      std::vector<float> want(static_cast<size_t>(n * c.rows)), got(want.size(), NAN);
      kernels::ref::table().matmul_rows(w, x.data(), n, c.cols, want.data(), c.rows, 0, c.rows);
      kernels::matmul(pool, w, x.data(), n, got.data());
      std::vector<double> tol(want.size());
      for (int64_t t = 0; t < n; ++t)
        for (int64_t r = 0; r < c.rows; ++r) {
          double s = 0, subnormal = 0;
          for (int64_t k = 0; k < c.cols; ++k) {
            const double term = std::fabs(w.at(r, k) * x[t * c.cols + k]);
            s += term;
            if ((w.row_ptr(r)[k] & 0x78) == 0) subnormal += term;
          }
          tol[t * c.rows + r] = std::ldexp(1.0, -8) * s + tolerance(c.cols / 16 + 8, s) + subnormal;
        }
      expect_close(got, want, tol, "rows " + std::to_string(c.rows) + " cols " + std::to_string(c.cols) + " n=" + std::to_string(n),
                   [&](size_t i) { return "token " + std::to_string(i / c.rows) + " row " + std::to_string(i % c.rows); });
    }
}

TEST_F(Bf16Math, TheModeIsTakenAndBf16WeightsStayExact) {
  // FP8: the result differs from the float32 kernels (the activations' rounding shows); BF16
  // weights (router, head): bit-identical to the float32 kernels of the active table.
  ThreadPool pool(2);
  const int64_t n = 9;
  for (DType dtype : {DType::F8_E4M3, DType::BF16}) {
    TestWeight tw = make_weight(dtype, 96, 256, 41);
    auto x = random_activations(n * 256, 42);
    std::vector<float> bf16(static_cast<size_t>(n * 96)), exact(bf16.size());
    kernels::matmul(pool, tw.view, x.data(), n, bf16.data());
    ASSERT_TRUE(kernels::set_matmul_math(kernels::MatmulMath::Exact).ok());
    kernels::matmul(pool, tw.view, x.data(), n, exact.data());
    ASSERT_TRUE(kernels::set_matmul_math(kernels::MatmulMath::Bf16).ok());
    const bool same = std::memcmp(bf16.data(), exact.data(), sizeof(float) * bf16.size()) == 0;
    EXPECT_EQ(same, dtype == DType::BF16) << dtype_name(dtype);
  }
}

TEST_F(Bf16Math, BatchInvariantWithinTheMode) {
  // Each token alone on one thread, against all tokens together on 1-3 threads, through
  // matmul and through matmul_batch (the experts' products), over a band across scale blocks.
  TestWeight tw = make_weight(DType::F8_E4M3, 400, 700, 7);
  const LinearWeight w = tw.view.row_band(3, 350);
  const int64_t n = 61;  // more than one token block (48), and a partial register tile
  auto x = random_activations(n * w.cols, 8);
  std::vector<float> alone(static_cast<size_t>(n * w.rows));
  ThreadPool one(1);
  for (int64_t t = 0; t < n; ++t) kernels::matmul(one, w, x.data() + t * w.cols, 1, alone.data() + t * w.rows);
  for (int threads = 1; threads <= 3; ++threads) {
    ThreadPool pool(threads);
    std::vector<float> y(alone.size()), yb(alone.size());
    kernels::matmul(pool, w, x.data(), n, y.data());
    EXPECT_EQ(std::memcmp(y.data(), alone.data(), sizeof(float) * y.size()), 0) << "matmul, threads=" << threads;
    kernels::MatmulJob job{w, x.data(), n, w.cols, yb.data(), w.rows, false};
    kernels::matmul_batch(pool, {&job, 1});
    EXPECT_EQ(std::memcmp(yb.data(), alone.data(), sizeof(float) * yb.size()), 0) << "matmul_batch, threads=" << threads;
  }
}

namespace {

// Per golden prompt, what DeepSeek's goldens record for their bf16 run: the largest logit
// difference, the largest KL divergence of a position's distribution and the share of
// positions whose top token agrees, all against the float32 reference.
struct Spread {
  double max_abs = 0, max_kl = 0, top1_agree = 0;
};

Spread spread_of(const std::vector<float>& got, const std::vector<float>& want, int64_t V) {
  Spread s;
  const int64_t rows = static_cast<int64_t>(want.size()) / V;
  int agree = 0;
  for (int64_t r = 0; r < rows; ++r) {
    const float* g = got.data() + r * V;
    const float* w = want.data() + r * V;
    auto log_softmax = [V](const float* l) {
      const double mx = *std::max_element(l, l + V);
      double z = 0;
      for (int64_t i = 0; i < V; ++i) z += std::exp(l[i] - mx);
      std::vector<double> out(static_cast<size_t>(V));
      for (int64_t i = 0; i < V; ++i) out[i] = l[i] - mx - std::log(z);
      return out;
    };
    const auto lg = log_softmax(g), lw = log_softmax(w);
    double kl = 0;  // KL(reference || this)
    for (int64_t i = 0; i < V; ++i) kl += std::exp(lw[i]) * (lw[i] - lg[i]);
    s.max_kl = std::max(s.max_kl, kl);
    for (int64_t i = 0; i < V; ++i) s.max_abs = std::max(s.max_abs, std::fabs(static_cast<double>(g[i]) - w[i]));
    agree += std::max_element(g, g + V) - g == std::max_element(w, w + V) - w;
  }
  s.top1_agree = rows ? static_cast<double>(agree) / rows : 1.0;
  return s;
}

}  // namespace

TEST_F(Bf16Math, GoldenDeviationWithinDeepSeeksOwnBf16Run) {
  // DeepSeek's bf16 run against its float32 one (tiny-v3's goldens): max_abs 0.060 / 1.00 /
  // 2.68, max KL 1.3e-4 / 0.060 / 0.24, top-1 agreement 1.0 / 0.86 / 0.88 on the three
  // prompts. The bf16 mode, measured when written (Zen 5, 2 threads): max_abs 0.020 / 1.01 /
  // 1.67, max KL 1.8e-5 / 0.060 / 0.12, top-1 agreement 1.0 / 0.86 / 0.95. The large moves
  // are near-tied router choices (random weights) that flip under any bf16 rounding: prompt 1
  // moves as much in DeepSeek's run. Held here: over the three prompts together, no larger than DeepSeek's bf16 run (largest
  // max_abs and KL, lowest agreement), each prompt within 1.5x of its own figure, and every
  // prompt visibly off the float32 path's ~1e-5 (the mode was taken).
  ModelOptions opt;
  opt.threads = 2;
  auto m = Model::load(fixtures() + "/tiny-v3", opt);
  ASSERT_TRUE(m.ok()) << m.error().message();
  auto model = std::move(m).value();
  const int64_t V = model->vocab_size();
  Golden golden = Golden::load(test::fixtures() + "/golden/tiny-v3");
  const auto prompts = golden.prompts();
  const Json& theirs = golden.meta["bf16_vs_f32"];
  ASSERT_EQ(theirs.size(), prompts.size());
  Spread ours_all, theirs_all{0, 0, 1};
  for (size_t i = 0; i < prompts.size(); ++i) {
    KVCache cache = model->new_cache();
    SequenceInput in{&cache, prompts[i], Logits::All};
    ForwardOutput out;
    ASSERT_TRUE(model->forward({&in, 1}, &out).ok());
    const Spread ours = spread_of(out.logits, golden.f32("logits." + std::to_string(i)), V);
    const Spread ref{theirs[i]["max_abs"].get<double>(), theirs[i]["max_kl"].get<double>(),
                     theirs[i]["top1_agree"].get<double>()};
    std::printf("prompt %zu (%zu tokens): bf16 mode max_abs %.4f, max KL %.2e, top-1 %.3f | DeepSeek bf16 run %.4f, "
                "%.2e, %.3f\n",
                i, prompts[i].size(), ours.max_abs, ours.max_kl, ours.top1_agree, ref.max_abs, ref.max_kl,
                ref.top1_agree);
    RecordProperty("bf16_max_abs_prompt" + std::to_string(i), std::to_string(ours.max_abs));
    RecordProperty("bf16_max_kl_prompt" + std::to_string(i), std::to_string(ours.max_kl));
    EXPECT_GE(ours.max_abs, 2e-3) << "prompt " << i << ": no bf16 rounding visible; is the mode taken?";
    EXPECT_LE(ours.max_abs, 1.5 * ref.max_abs) << "prompt " << i;
    EXPECT_LE(ours.max_kl, 1.5 * ref.max_kl) << "prompt " << i;
    EXPECT_GE(ours.top1_agree, ref.top1_agree - 1e-6) << "prompt " << i;  // theirs went through float32
    ours_all = {std::max(ours_all.max_abs, ours.max_abs), std::max(ours_all.max_kl, ours.max_kl),
                std::min(i == 0 ? 1.0 : ours_all.top1_agree, ours.top1_agree)};
    theirs_all = {std::max(theirs_all.max_abs, ref.max_abs), std::max(theirs_all.max_kl, ref.max_kl),
                  std::min(theirs_all.top1_agree, ref.top1_agree)};
  }
  EXPECT_LE(ours_all.max_abs, theirs_all.max_abs);
  EXPECT_LE(ours_all.max_kl, theirs_all.max_kl);
  EXPECT_GE(ours_all.top1_agree, theirs_all.top1_agree - 1e-6);
}
