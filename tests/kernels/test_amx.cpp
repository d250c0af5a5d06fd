// The opt-in AMX path (kernels/amx.h) through its emulated tiles, which run the same packing
// and loop as the hardware tiles with TDPBF16PS's arithmetic: against the oracle with a
// bf16 tolerance, batch invariance within the mode, and its deviation on the goldens.

#include <cstdio>

#include "../model/golden.h"
#include "base/thread_pool.h"
#include "kernel_test_util.h"
#include "kernels/amx.h"
#include "kernels/cpu/amx_tiles.h"
#include "kernels/ops.h"
#include "model/model.h"

using namespace dsv3;
using namespace dsv3::test;

namespace {

struct EmulatedAmx : testing::Test {
  void SetUp() override { ASSERT_TRUE(kernels::set_amx_mode(kernels::AmxMode::Emulated).ok()); }
  void TearDown() override { (void)kernels::set_amx_mode(kernels::AmxMode::Off); }
};

}  // namespace

TEST(Amx, HardwareModeRefusedWithoutAmx) {
  const CpuFeatures& f = cpu_features();
  if (f.amx_bf16 && f.amx_tile && f.has_avx512_path()) GTEST_SKIP() << "this CPU has AMX";
  EXPECT_FALSE(kernels::set_amx_mode(kernels::AmxMode::Hardware).ok());
  EXPECT_EQ(kernels::amx_mode(), kernels::AmxMode::Off);
}

TEST_F(EmulatedAmx, MatchesOracleWithinBf16Rounding) {
  // Rounding x to bf16 moves each product by at most 2^-9 relative; the f32 sums add the
  // usual depth * 2^-24 (depth: K products in sequence plus one fold per scale block).
  struct Case {
    DType dtype;
    int64_t full_rows, first_row, rows, cols;
  };
  const Case cases[] = {{DType::F8_E4M3, 300, 5, 129, 576}, {DType::F8_E4M3, 17, 0, 17, 129},
                        {DType::BF16, 40, 0, 40, 200},       {DType::F8_E4M3, 1, 0, 1, 32}};
  uint32_t seed = 300;
  ThreadPool pool(2);
  for (const Case& c : cases)
    for (int64_t n : {1, 5, 17, 37}) {
      TestWeight tw = make_weight(c.dtype, c.full_rows, c.cols, seed++);
      const LinearWeight w = tw.view.row_band(c.first_row, c.rows);
      auto x = random_activations(n * c.cols, seed++);
      std::vector<float> want(static_cast<size_t>(n * c.rows)), got(want.size(), NAN);
      kernels::ref::table().matmul_rows(w, x.data(), n, c.cols, want.data(), c.rows, 0, c.rows);
      kernels::cpu::amx_matmul_emulated(pool, w, x.data(), n, c.cols, got.data(), c.rows);
      std::vector<double> tol(want.size());
      for (int64_t t = 0; t < n; ++t)
        for (int64_t r = 0; r < c.rows; ++r) {
          double s = 0;
          for (int64_t k = 0; k < c.cols; ++k) s += std::fabs(w.at(r, k) * x[t * c.cols + k]);
          tol[t * c.rows + r] = std::ldexp(1.0, -9) * s + tolerance(c.cols + c.cols / 32, s);
        }
      expect_close(got, want, tol, std::string(dtype_name(c.dtype)) + " n=" + std::to_string(n),
                   [&](size_t i) { return "token " + std::to_string(i / c.rows) + " row " + std::to_string(i % c.rows); });
    }
}

TEST_F(EmulatedAmx, BatchInvariantWithinTheMode) {
  TestWeight tw = make_weight(DType::F8_E4M3, 200, 300, 7);
  const LinearWeight w = tw.view.row_band(3, 150);
  const int64_t n = 37;
  auto x = random_activations(n * w.cols, 8);
  std::vector<float> alone(static_cast<size_t>(n * w.rows));
  ThreadPool one(1);
  for (int64_t t = 0; t < n; ++t) kernels::matmul(one, w, x.data() + t * w.cols, 1, alone.data() + t * w.rows);
  for (int threads = 1; threads <= 3; ++threads) {
    ThreadPool pool(threads);
    std::vector<float> y(alone.size());
    kernels::matmul(pool, w, x.data(), n, y.data());
    EXPECT_EQ(std::memcmp(y.data(), alone.data(), sizeof(float) * y.size()), 0) << "threads=" << threads;
  }
}

TEST_F(EmulatedAmx, GoldenDeviationIsReported) {
  // bf16 activations are a lower-precision mode: this measures how far the tiny-v3 logits
  // move from the float32 reference (the f32 path stays within 1e-3). Measured: ~2e-2 where
  // routing is unchanged, whole units where a perturbed hidden state flips a (float32)
  // router's expert choice in a later layer (random tiny weights have near-tied experts).
  // Hence the mode is opt-in. Printed for the report; the bound only catches a broken path.
  ModelOptions opt;
  opt.threads = 2;
  auto m = Model::load(fixtures() + "/tiny-v3", opt);
  ASSERT_TRUE(m.ok()) << m.error().message();
  auto model = std::move(m).value();
  Golden golden = Golden::load(test::fixtures() + "/golden/tiny-v3");
  auto prompts = golden.prompts();
  double worst = 0;
  for (size_t i = 0; i < prompts.size(); ++i) {
    KVCache cache = model->new_cache();
    SequenceInput in{&cache, prompts[i], Logits::All};
    ForwardOutput out;
    ASSERT_TRUE(model->forward({&in, 1}, &out).ok());
    const double d = max_abs_diff(out.logits, golden.f32("logits." + std::to_string(i))).max_abs;
    std::printf("AMX (emulated, bf16 activations) vs golden logits, prompt %zu: max_abs %.3g\n", i, d);
    RecordProperty("amx_max_abs_prompt" + std::to_string(i), std::to_string(d));
    worst = std::max(worst, d);
  }
  EXPECT_LT(worst, 10.0) << "bf16 activations moved the logits far more than rounding and routing flips explain";
}
