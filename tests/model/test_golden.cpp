// Golden parity against DeepSeek's reference (float32): logits at every position, greedy
// tokens decoded with the KV cache, MTP logits. Runs on every kernel path this CPU supports.

#include <gtest/gtest.h>

#include "golden.h"
#include "kernels/dispatch.h"
#include "model/model.h"

using namespace dsv3;
using dsv3::test::Golden;

namespace {

constexpr double kTol = 1e-3;  // the reference's float32 vs float64 spread is ~2e-5

// A checkpoint and the reference outputs for it: the fixtures (tests/fixtures), plus checkpoints of
// other configs made by the reference harness (tests/data/ref/README.md): V2 with q LoRA and
// group_limited_greedy, V3 with dims that are not multiples of 128, 5 heads, rope 32, 8
// groups, other YaRN parameters, MTP.
struct Case {
  std::string name;
  std::string model_dir;
  std::string golden;  // path prefix of the golden .json / .safetensors
  bool mtp;
};

std::vector<Case> cases() {
  const std::string fx = test::fixtures(), ref = std::string(DSV3_SOURCE_DIR) + "/tests/data/ref/";
  return {{"tiny_v3", fx + "/tiny-v3", fx + "/golden/tiny-v3", true},
          {"tiny_v2", fx + "/tiny-v2", fx + "/golden/tiny-v2", false},
          {"ref_v2_lora_glg", ref + "v2-lora-glg", ref + "v2-lora-glg/golden", false},
          {"ref_v3_odd", ref + "v3-odd", ref + "v3-odd/golden", true}};
}

struct Param {
  Case c;
  kernels::Isa isa;
};

std::string param_name(const testing::TestParamInfo<Param>& p) {
  return p.param.c.name + "_" + kernels::isa_name(p.param.isa);
}

std::vector<Param> params() {
  std::vector<Param> out;
  for (const Case& c : cases())
    for (kernels::Isa isa : kernels::supported_isas()) out.push_back({c, isa});
  return out;
}

class GoldenParity : public testing::TestWithParam<Param> {
 protected:
  void SetUp() override {
    ASSERT_TRUE(kernels::select_isa(GetParam().isa).ok());
    ModelOptions opt;
    opt.threads = 2;
    opt.load_mtp = GetParam().c.mtp;
    auto m = Model::load(GetParam().c.model_dir, opt);
    ASSERT_TRUE(m.ok()) << m.error().message();
    model = std::move(m).value();
    golden = Golden::load(GetParam().c.golden);
  }
  void TearDown() override { (void)kernels::select_isa(kernels::best_isa()); }

  std::vector<float> prefill_logits(const std::vector<int32_t>& prompt, std::vector<float>* hidden = nullptr) {
    KVCache cache = model->new_cache();
    SequenceInput in{&cache, prompt, Logits::All};
    ForwardOutput out;
    EXPECT_TRUE(model->forward({&in, 1}, &out, hidden != nullptr).ok());
    if (hidden) *hidden = out.hidden;
    return out.logits;
  }

  std::unique_ptr<Model> model;
  Golden golden;
};

}  // namespace

TEST_P(GoldenParity, PrefillLogitsEveryPosition) {
  auto prompts = golden.prompts();
  for (size_t i = 0; i < prompts.size(); ++i) {
    auto got = prefill_logits(prompts[i]);
    auto want = golden.f32("logits." + std::to_string(i));
    auto d = test::max_abs_diff(got, want);
    RecordProperty("max_abs_prompt" + std::to_string(i), std::to_string(d.max_abs));
    if (std::getenv("DSV3_TEST_VERBOSE")) std::printf("prompt %zu max_abs %.3g\n", i, d.max_abs);
    EXPECT_LE(d.max_abs, kTol) << "prompt " << i << ": worst at position " << d.worst / model->vocab_size()
                               << " token " << d.worst % model->vocab_size();
  }
}

TEST_P(GoldenParity, NaiveAttentionMatchesToo) {
  model->set_attention(AttentionImpl::Naive);
  auto prompts = golden.prompts();
  for (size_t i = 0; i < prompts.size(); ++i) {
    auto d = test::max_abs_diff(prefill_logits(prompts[i]), golden.f32("logits." + std::to_string(i)));
    EXPECT_LE(d.max_abs, kTol) << "prompt " << i;
  }
}

TEST_P(GoldenParity, GreedyDecodeWithCache) {
  auto prompts = golden.prompts();
  for (size_t i = 0; i < prompts.size(); ++i)
    EXPECT_EQ(test::greedy_decode(*model, prompts[i], 12), golden.greedy(i)) << "prompt " << i;
}

TEST_P(GoldenParity, DecodeMatchesPrefillAtEveryPosition) {
  auto prompts = golden.prompts();
  const int64_t V = model->vocab_size();
  for (size_t i = 0; i < prompts.size(); ++i) {
    auto want = prefill_logits(prompts[i]);
    KVCache cache = model->new_cache();
    for (size_t p = 0; p < prompts[i].size(); ++p) {
      std::vector<int32_t> one = {prompts[i][p]};
      SequenceInput in{&cache, one, Logits::Last};
      ForwardOutput out;
      ASSERT_TRUE(model->forward({&in, 1}, &out).ok());
      std::vector<float> row(want.begin() + p * V, want.begin() + (p + 1) * V);
      EXPECT_LE(test::max_abs_diff(out.logits, row).max_abs, kTol) << "prompt " << i << " position " << p;
    }
  }
}

TEST_P(GoldenParity, MtpLogits) {
  if (!GetParam().c.mtp) {
    // No MTP layers: asking for them is a clear load error, not a crash.
    ModelOptions opt;
    opt.load_mtp = true;
    auto m = Model::load(GetParam().c.model_dir, opt);
    ASSERT_FALSE(m.ok());
    EXPECT_NE(m.error().message().find("num_nextn_predict_layers"), std::string::npos) << m.error().message();
    return;
  }
  ASSERT_TRUE(model->has_mtp());
  const auto& tok = golden.meta["mtp_tokens"];
  ASSERT_FALSE(tok.empty());
  const int64_t V = model->vocab_size();
  for (auto it = tok.begin(); it != tok.end(); ++it) {
    std::vector<int32_t> t = it->get<std::vector<int32_t>>();
    std::vector<float> hidden;
    prefill_logits(t, &hidden);
    const int64_t n = static_cast<int64_t>(t.size()) - 1;
    KVCache mtp_cache = model->new_mtp_cache();
    std::vector<float> got(static_cast<size_t>(n * V));
    ASSERT_TRUE(model->mtp_forward(hidden.data(), std::span<const int32_t>(t).subspan(1), &mtp_cache, got.data()).ok());
    auto d = test::max_abs_diff(got, golden.f32("mtp_logits." + it.key()));
    if (std::getenv("DSV3_TEST_VERBOSE")) std::printf("mtp %s max_abs %.3g\n", it.key().c_str(), d.max_abs);
    EXPECT_LE(d.max_abs, kTol) << "mtp prompt " << it.key() << " row " << d.worst / V;
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, GoldenParity, testing::ValuesIn(params()), param_name);

// forward() and mtp_forward() check their tokens with one batch assembly: the same refusals,
// the MTP's named as such, and no cache advanced by a refused step.
TEST(ModelInputs, ForwardAndMtpRefuseTheSameInputs) {
  ModelOptions opt;
  opt.threads = 2;
  opt.load_mtp = true;
  opt.max_context = 8;
  auto m = Model::load(test::fixtures() + "/tiny-v3", opt);
  ASSERT_TRUE(m.ok()) << m.error().message();
  const Model& model = **m;
  const std::vector<float> hidden(static_cast<size_t>(9 * model.config().hidden_size), 0.5f);
  std::vector<float> logits(static_cast<size_t>(9 * model.vocab_size()));
  auto refusals = [&](const std::vector<int32_t>& tokens) {
    KVCache cache = model.new_cache(), mtp_cache = model.new_mtp_cache();
    SequenceInput in{&cache, tokens, Logits::Last};
    ForwardOutput out;
    Status main = model.forward({&in, 1}, &out);
    Status mtp = model.mtp_forward(hidden.data(), tokens, &mtp_cache, logits.data());
    EXPECT_EQ(cache.length(), 0);
    EXPECT_EQ(mtp_cache.length(), 0);
    EXPECT_FALSE(main.ok());
    EXPECT_FALSE(mtp.ok());
    if (main.ok() || mtp.ok()) return std::pair<std::string, std::string>{};
    return std::pair{main.error().message(), mtp.error().message()};
  };
  const auto [vocab_main, vocab_mtp] = refusals({3, 1024, 5});
  EXPECT_NE(vocab_main.find("token id 1024 is outside the vocabulary [0, 1024)"), std::string::npos) << vocab_main;
  EXPECT_EQ(vocab_mtp, "MTP module: " + vocab_main);
  const auto [long_main, long_mtp] = refusals({1, 2, 3, 4, 5, 6, 7, 8, 9});
  EXPECT_NE(long_main.find("context length exceeded: 9 tokens, the limit is 8"), std::string::npos) << long_main;
  EXPECT_EQ(long_mtp, "MTP module: " + long_main);
}

// --no-mmap and --mlock change where the weights live, not what they are: every golden prompt
// gives the goldens, and the same bits as the mapped weights.
TEST(GoldenLoad, WeightsReadIntoMemoryAndLockedGiveTheGoldens) {
  for (const Case& c : cases()) {
    ModelOptions mapped_opt, read_opt;
    mapped_opt.threads = read_opt.threads = 2;
    read_opt.read_into_memory = true;
    read_opt.lock_memory = true;  // a warning where the memory-lock limit is too small: the same bits
    auto mapped = Model::load(c.model_dir, mapped_opt);
    auto read = Model::load(c.model_dir, read_opt);
    ASSERT_TRUE(mapped.ok() && read.ok()) << c.name;
    const Golden golden = Golden::load(c.golden);
    auto prompts = golden.prompts();
    for (size_t i = 0; i < prompts.size(); ++i) {
      std::vector<float> logits[2];
      for (int k = 0; k < 2; ++k) {
        const Model& m = k == 0 ? **mapped : **read;
        KVCache cache = m.new_cache();
        SequenceInput in{&cache, prompts[i], Logits::All};
        ForwardOutput out;
        ASSERT_TRUE(m.forward({&in, 1}, &out).ok());
        logits[k] = out.logits;
      }
      EXPECT_LE(test::max_abs_diff(logits[1], golden.f32("logits." + std::to_string(i))).max_abs, kTol)
          << c.name << " prompt " << i;
      EXPECT_EQ(logits[0], logits[1]) << c.name << " prompt " << i;
    }
  }
}
