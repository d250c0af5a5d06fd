// Golden parity of the 16-lane kernels on machines without AVX-512: the "avx512-emulated"
// table computes bit for bit what the AVX-512 table computes (see vec_avx2x2.inl), so the
// model's logits through it must meet the same tolerance as every real path.

#include "../model/golden.h"
#include "kernel_test_util.h"
#include "model/model.h"

using namespace dsv3;
using namespace dsv3::test;

TEST(EmulatedAvx512, GoldenPrefillLogits) {
  if (!cpu_features().has_avx2_path()) GTEST_SKIP() << "needs AVX2";
  for (const char* name : {"tiny-v3", "tiny-v2"}) {
    kernels::set_active_table_for_testing(kernels::cpu::avx512_emulated_table());
    ModelOptions opt;
    opt.threads = 2;
    auto m = Model::load(fixtures() + "/" + name, opt);
    ASSERT_TRUE(m.ok()) << m.error().message();
    auto model = std::move(m).value();
    Golden golden = Golden::load(fixtures() + "/golden/" + name);
    auto prompts = golden.prompts();
    for (size_t i = 0; i < prompts.size(); ++i) {
      KVCache cache = model->new_cache();
      SequenceInput in{&cache, prompts[i], Logits::All};
      ForwardOutput out;
      ASSERT_TRUE(model->forward({&in, 1}, &out).ok());
      const auto d = max_abs_diff(out.logits, golden.f32("logits." + std::to_string(i)));
      EXPECT_LE(d.max_abs, 1e-3) << name << " prompt " << i << " worst at " << d.worst;
    }
  }
  (void)kernels::select_isa(kernels::best_isa());
}
