// Configs beyond the fixtures, on make-random checkpoints: the absorbed and naive attention
// forms agree, prefill and token-by-token decode agree, chunked prefill equals one pass, and
// a sequence's logits do not depend on what else is in the batch.

#include <gtest/gtest.h>

#include "golden.h"
#include "model/model.h"
#include "tools/make_random.h"

using namespace dsv3;

namespace {

struct ConfigCase {
  std::string name;
  std::string base;  // fixture config
  std::vector<std::string> sets;
};

std::vector<ConfigCase> config_cases() {
  return {
      {"v3_odd_dims_more_layers", "tiny-v3/config.json",
       {"hidden_size=200", "num_attention_heads=6", "qk_rope_head_dim=24", "qk_nope_head_dim=20", "v_head_dim=28",
        "kv_lora_rank=100", "q_lora_rank=72", "num_hidden_layers=5", "first_k_dense_replace=2", "n_group=2",
        "topk_group=1", "num_experts_per_tok=3", "moe_intermediate_size=100", "intermediate_size=300"}},
      {"v2_q_lora_group_limited", "tiny-v2/config.json",
       {"q_lora_rank=96", "topk_method=\"group_limited_greedy\"", "n_group=4", "topk_group=2", "routed_scaling_factor=16"}},
      {"v3_no_rope_scaling_moe_every_2nd_tied", "tiny-v3/config.json",
       {"rope_scaling=null", "moe_layer_freq=2", "num_hidden_layers=4", "first_k_dense_replace=0",
        "tie_word_embeddings=true", "num_nextn_predict_layers=0", "n_group=1", "topk_group=1"}},
      {"v3_block_64x32", "tiny-v3/config.json", {"quantization_config.weight_block_size=[64,32]", "hidden_size=160"}},
  };
}

class ConfigVariants : public testing::TestWithParam<ConfigCase> {
 protected:
  static std::vector<float> run(const Model& m, const std::vector<int32_t>& tokens) {
    KVCache cache = m.new_cache();
    SequenceInput in{&cache, tokens, Logits::All};
    ForwardOutput out;
    EXPECT_TRUE(m.forward({&in, 1}, &out).ok());
    return out.logits;
  }
  void SetUp() override {
    OrderedJson cfg = parse_ordered_json(test::read_file(test::fixtures() + "/" + GetParam().base), "c").value();
    ASSERT_TRUE(apply_config_overrides(cfg, GetParam().sets).ok());
    MakeRandomOptions opt;
    opt.out_dir = dir.path();
    opt.seed = 17;
    ThreadPool pool(2);
    auto st = make_random_checkpoint(cfg, opt, pool);
    ASSERT_TRUE(st.ok()) << st.error().message();
    ModelOptions mo;
    mo.threads = 2;
    auto m = Model::load(dir.path(), mo);
    ASSERT_TRUE(m.ok()) << m.error().message();
    model = std::move(m).value();
    for (int i = 0; i < 23; ++i) prompt.push_back((i * 37 + 11) % 1024);
  }
  test::TempDir dir;
  std::unique_ptr<Model> model;
  std::vector<int32_t> prompt;
};

}  // namespace

TEST_P(ConfigVariants, NaiveAndAbsorbedAttentionAgree) {
  auto absorbed = run(*model, prompt);
  model->set_attention(AttentionImpl::Naive);
  auto naive = run(*model, prompt);
  EXPECT_LE(test::max_abs_diff(absorbed, naive).max_abs, 1e-3);
}

TEST_P(ConfigVariants, PrefillDecodeAndChunksAgree) {
  const int64_t V = model->vocab_size();
  auto one_pass = run(*model, prompt);
  // token by token
  KVCache cache = model->new_cache();
  for (size_t p = 0; p < prompt.size(); ++p) {
    std::vector<int32_t> one = {prompt[p]};
    SequenceInput in{&cache, one, Logits::Last};
    ForwardOutput out;
    ASSERT_TRUE(model->forward({&in, 1}, &out).ok());
    std::vector<float> want(one_pass.begin() + p * V, one_pass.begin() + (p + 1) * V);
    ASSERT_LE(test::max_abs_diff(out.logits, want).max_abs, 1e-3) << "position " << p;
  }
  // two chunks (10 + 13)
  KVCache chunked = model->new_cache();
  std::vector<int32_t> a(prompt.begin(), prompt.begin() + 10), b(prompt.begin() + 10, prompt.end());
  ForwardOutput out;
  SequenceInput first{&chunked, a, Logits::All};
  ASSERT_TRUE(model->forward({&first, 1}, &out).ok());
  SequenceInput second{&chunked, b, Logits::All};
  ASSERT_TRUE(model->forward({&second, 1}, &out).ok());
  std::vector<float> tail(one_pass.begin() + 10 * V, one_pass.end());
  EXPECT_LE(test::max_abs_diff(out.logits, tail).max_abs, 1e-3);
}

TEST_P(ConfigVariants, BatchInvariance) {
  // The same prompt alone and inside a batch with two other sequences: bit-identical logits.
  auto alone = run(*model, prompt);
  std::vector<int32_t> other1 = {5, 6, 7, 8, 9}, other2 = {100};
  KVCache c0 = model->new_cache(), c1 = model->new_cache(), c2 = model->new_cache();
  SequenceInput batch[3] = {{&c1, other1, Logits::All}, {&c0, prompt, Logits::All}, {&c2, other2, Logits::Last}};
  ForwardOutput out;
  ASSERT_TRUE(model->forward(batch, &out).ok());
  const int64_t V = model->vocab_size();
  std::vector<float> got(out.logits.begin() + out.first_row[1] * V,
                         out.logits.begin() + (out.first_row[1] + static_cast<int64_t>(prompt.size())) * V);
  EXPECT_EQ(test::max_abs_diff(got, alone).max_abs, 0.0);
}

INSTANTIATE_TEST_SUITE_P(MakeRandom, ConfigVariants, testing::ValuesIn(config_cases()),
                         [](const testing::TestParamInfo<ConfigCase>& p) { return p.param.name; });
