// make-random: its checkpoints load and validate, FP8 bytes dequantize to within e4m3
// rounding of the drawn values, output is deterministic per seed.

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "format/checkpoint.h"
#include "model/model.h"
#include "test_util.h"
#include "tools/make_random.h"

using namespace dsv3;
using dsv3::test::TempDir;

namespace {

OrderedJson tiny_config() {
  return parse_ordered_json(dsv3::test::read_file(dsv3::test::fixtures() + "/tiny-v3/config.json"), "c").value();
}

void make(const OrderedJson& config, const std::string& out, uint64_t seed, uint64_t shard_bytes = 1ull << 40,
          const char* dtype = nullptr) {
  MakeRandomOptions opt;
  opt.out_dir = out;
  opt.seed = seed;
  opt.shard_bytes = shard_bytes;
  if (dtype) opt.dtype = dtype;
  ThreadPool pool(2);
  auto st = make_random_checkpoint(config, opt, pool);
  ASSERT_TRUE(st.ok()) << st.error().message();
}

// Half the spacing of e4m3 values around |x| (x in quantized units).
double e4m3_half_ulp(double x) {
  double a = std::fabs(x);
  if (a < std::ldexp(1.0, -6)) return std::ldexp(1.0, -10);
  return std::ldexp(1.0, static_cast<int>(std::floor(std::log2(a))) - 4);
}

}  // namespace

TEST(MakeRandom, LoadsAndUsesEveryTensor) {
  TempDir t;
  make(tiny_config(), t.path(), 5);
  ModelOptions opt;
  opt.load_mtp = true;
  opt.threads = 2;
  auto m = Model::load(t.path(), opt);
  ASSERT_TRUE(m.ok()) << m.error().message();
  // Every tensor in the files is one the model binds (nothing stray, nothing missing).
  auto ck = Checkpoint::open(t.path()).value();
  ModelConfig c = (*m)->config();
  WeightBinder binder(ck.get(), c);
  bind_model_weights(binder, c, true);
  ASSERT_TRUE(binder.finish().ok());
  EXPECT_EQ(binder.used().size(), ck->tensors().size());
  // index total_size = bytes of all tensors
  auto index = parse_json(dsv3::test::read_file(t / "model.safetensors.index.json"), "i").value();
  uint64_t total = 0;
  for (const auto& [n, ref] : ck->tensors()) total += ref.nbytes;
  EXPECT_EQ(index["metadata"]["total_size"].get<uint64_t>(), total);
}

TEST(MakeRandom, Fp8BytesDequantizeToTheDrawnValues) {
  TempDir t;
  OrderedJson cfg = tiny_config();
  ASSERT_TRUE(apply_config_overrides(cfg, {"hidden_size=200"}).ok());  // partial 128-blocks
  make(cfg, t.path(), 9);
  auto ck = Checkpoint::open(t.path()).value();
  ModelConfig c = load_model_config(t.path()).value();
  int checked = 0;
  for (const TensorSpec& spec : model_tensor_specs(c)) {
    if (spec.role != TensorRole::Linear) continue;
    const TensorRef* w = ck->find(spec.name);
    const TensorRef* s = ck->find(spec.name + "_scale_inv");
    ASSERT_NE(w, nullptr);
    ASSERT_NE(s, nullptr) << spec.name;
    ASSERT_EQ(w->dtype, DType::F8_E4M3);
    RandomTensor plan = random_plan_for(spec);
    std::vector<float> drawn(static_cast<size_t>(plan.rows * plan.cols));
    draw_random_rows(plan, 9, 0, plan.rows, drawn.data());
    const float* scales = reinterpret_cast<const float*>(s->data);
    const int64_t scale_cols = s->shape[1];
    for (int64_t r = 0; r < plan.rows; ++r)
      for (int64_t col = 0; col < plan.cols; ++col) {
        float scale = scales[(r / 128) * scale_cols + col / 128];
        double v = drawn[r * plan.cols + col];
        double deq = static_cast<double>(e4m3_to_f32(w->data[r * plan.cols + col])) * scale;
        ASSERT_LE(std::fabs(deq - v), e4m3_half_ulp(v / scale) * scale * (1 + 1e-6) + 1e-30)
            << spec.name << " [" << r << ", " << col << "]";
      }
    // The largest value of each block hits the top of the e4m3 range (scale = amax / 448).
    ++checked;
  }
  EXPECT_GT(checked, 20);
}

TEST(MakeRandom, DeterministicPerSeedAndSharded) {
  TempDir a, b, c;
  make(tiny_config(), a.path(), 3, 2'000'000);
  make(tiny_config(), b.path(), 3, 2'000'000);
  make(tiny_config(), c.path(), 4, 2'000'000);
  int shards = 0;
  for (const auto& e : std::filesystem::directory_iterator(a.path())) {
    std::string name = e.path().filename();
    if (name.find(".safetensors") == std::string::npos) continue;
    EXPECT_EQ(dsv3::test::read_file(e.path()), dsv3::test::read_file(b / name)) << name;
    if (name.rfind("model-", 0) == 0) {
      ++shards;
      EXPECT_NE(dsv3::test::read_file(e.path()), dsv3::test::read_file(c / name)) << name;
    }
  }
  EXPECT_GT(shards, 2);
  ModelOptions opt;
  opt.threads = 1;
  EXPECT_TRUE(Model::load(a.path(), opt).ok());
}

TEST(MakeRandom, Bf16AndOverrides) {
  TempDir t;
  OrderedJson cfg = tiny_config();
  ASSERT_TRUE(apply_config_overrides(cfg, {"num_hidden_layers=2", "rope_scaling.factor=8", "q_lora_rank=null"}).ok());
  make(cfg, t.path(), 1, 1ull << 40, "bf16");
  ModelConfig c = load_model_config(t.path()).value();
  EXPECT_EQ(c.num_hidden_layers, 2);
  EXPECT_EQ(c.rope_scaling->factor, 8);
  EXPECT_FALSE(c.has_q_lora());
  EXPECT_FALSE(c.quantization_config.has_value());
  auto ck = Checkpoint::open(t.path()).value();
  EXPECT_EQ(ck->find("model.layers.0.self_attn.q_proj.weight")->dtype, DType::BF16);
  EXPECT_EQ(ck->find("model.layers.0.self_attn.q_proj.weight_scale_inv"), nullptr);

  OrderedJson bad = tiny_config();
  EXPECT_FALSE(apply_config_overrides(bad, {"novalue"}).ok());
  ASSERT_TRUE(apply_config_overrides(bad, {"num_attention_heads=0"}).ok());
  MakeRandomOptions opt;
  opt.out_dir = t / "x";
  ThreadPool pool(1);
  auto st = make_random_checkpoint(bad, opt, pool);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message().find("num_attention_heads"), std::string::npos);
}

TEST(MakeRandom, CommandLine) {
  TempDir t;
  auto r = dsv3::test::run_dsv3("make-random --config " + dsv3::test::fixtures() + "/configs/deepseek-v2-lite.json --out " +
                                (t / "m") + " --set num_hidden_layers=2 --set vocab_size=512 --set hidden_size=128 "
                                "--set intermediate_size=256 --set moe_intermediate_size=64 --set n_routed_experts=8 "
                                "--set num_attention_heads=2 --set kv_lora_rank=64 --set bos_token_id=0 --set eos_token_id=1 --seed 2");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto g = dsv3::test::run_dsv3("generate --model " + (t / "m") + " --tokens 0,1,2 -n 4 --temperature 0 --ids --ignore-eos");
  EXPECT_EQ(g.exit_code, 0) << g.err;
  auto bad = dsv3::test::run_dsv3("make-random --config " + (t / "none.json") + " --out " + (t / "n"));
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.err.find("none.json"), std::string::npos);
}
