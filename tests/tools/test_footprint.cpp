// Parameter counts and byte footprints: DeepSeek's published figures from the published
// configs (V3: 671B + 14B MTP, ~37B active per token), and on real (make-random) checkpoints
// the counts equal what the files hold, checked with an independent classification of the
// stored tensor names.

#include <gtest/gtest.h>

#include <regex>

#include "format/checkpoint.h"
#include "model/footprint.h"
#include "test_util.h"
#include "tools/make_random.h"

using namespace dsv3;
using dsv3::test::TempDir;

namespace {

ModelConfig published(const std::string& name) {
  auto text = dsv3::test::read_file(dsv3::test::fixtures() + "/configs/" + name);
  return parse_model_config(parse_json(text, name).value(), name).value();
}

OrderedJson v3_config() {
  return parse_ordered_json(dsv3::test::read_file(dsv3::test::fixtures() + "/configs/deepseek-v3.json"), "v3").value();
}

// DeepSeek-V3 cut to a few small layers: every tensor kind of the real model (q LoRA, dense
// and MoE layers, shared expert, router bias, MTP layer), FP8 with partial 128-blocks.
OrderedJson small_v3_config() {
  OrderedJson c = v3_config();
  EXPECT_TRUE(apply_config_overrides(c, {"num_hidden_layers=4", "first_k_dense_replace=1", "vocab_size=1000",
                                         "hidden_size=320", "intermediate_size=704", "moe_intermediate_size=96",
                                         "n_routed_experts=16", "num_experts_per_tok=4", "n_group=4", "topk_group=2",
                                         "num_attention_heads=4", "q_lora_rank=192", "kv_lora_rank=160"})
                  .ok());
  return c;
}

}  // namespace

TEST(Footprint, DeepSeekV3PublishedFigures) {
  const ModelConfig c = published("deepseek-v3.json");
  const ModelFootprint f = compute_footprint(c, nullptr);
  // "671B total, 37B activated for each token" + "14B MTP module weights" (11.5B unique).
  EXPECT_GT(f.params.main, 668e9);
  EXPECT_LT(f.params.main, 674e9);
  EXPECT_GT(f.params.active_per_token, 36e9);
  EXPECT_LT(f.params.active_per_token, 38.5e9);
  EXPECT_GT(f.params.mtp_unique, 11.0e9);
  EXPECT_LT(f.params.mtp_unique, 12.0e9);
  EXPECT_GT(f.params.mtp_with_shared, 13.0e9);
  EXPECT_LT(f.params.mtp_with_shared, 14.5e9);
  EXPECT_EQ(f.params.embedding, 129280ull * 7168);
  EXPECT_EQ(f.params.head, 129280ull * 7168);
  EXPECT_EQ(f.params.mtp_with_shared - f.params.mtp_unique, 2 * 129280ull * 7168);
  // ~36-37 GB of weights per decoded token at FP8 (one embedding row, not the table).
  EXPECT_GT(f.decode_bytes_per_token, 35e9);
  EXPECT_LT(f.decode_bytes_per_token, 39e9);
  EXPECT_FALSE(f.dtypes_from_checkpoint);
  EXPECT_GT(f.bytes_by_dtype.at("F8_E4M3"), 600e9);
  // KV cache: 61 layers x (512 + 64) values.
  EXPECT_EQ(f.kv_values_per_token, 61 * 576);
  EXPECT_EQ(f.kv_bytes_per_token_bf16, 61u * 576 * 2);
  EXPECT_EQ(f.kv_bytes_per_token_f32, 61u * 576 * 4);
}

TEST(Footprint, DeepSeekV2LitePublishedFigures) {
  const ModelFootprint f = compute_footprint(published("deepseek-v2-lite.json"), nullptr);
  EXPECT_GT(f.params.main, 15.5e9);  // "15.7B total"
  EXPECT_LT(f.params.main, 16.0e9);
  // "2.4B activated", which DeepSeek counts without the embedding table.
  EXPECT_GT(f.params.active_per_token - f.params.embedding, 2.3e9);
  EXPECT_LT(f.params.active_per_token - f.params.embedding, 2.6e9);
  EXPECT_EQ(f.params.mtp_with_shared, 0u);
  EXPECT_EQ(f.bytes_by_dtype.count("F8_E4M3"), 0u);  // no quantization_config: BF16 assumed
}

TEST(Footprint, CountsEqualTheTensorsInTheFiles) {
  TempDir t;
  MakeRandomOptions opt;
  opt.out_dir = t.path();
  opt.seed = 1;
  opt.shard_bytes = 8'000'000;
  ThreadPool pool(2);
  ASSERT_TRUE(make_random_checkpoint(small_v3_config(), opt, pool).ok());
  const ModelConfig c = load_model_config(t.path()).value();
  auto ck = Checkpoint::open(t.path()).value();
  ASSERT_GT(ck->shards().size(), 1u);
  const ModelFootprint f = compute_footprint(c, ck.get());
  EXPECT_TRUE(f.dtypes_from_checkpoint);
  EXPECT_EQ(f.tensors_missing, 0u);

  // Independent oracle: classify the stored names with the HF naming scheme.
  const std::regex layer_re(R"(model\.layers\.(\d+)\.(.*))");
  uint64_t main = 0, mtp = 0, routed = 0, main_bytes = 0, routed_bytes = 0, mtp_bytes = 0;
  std::map<std::string, uint64_t> by_dtype;
  for (const auto& [name, ref] : ck->tensors()) {
    by_dtype[dtype_name(ref.dtype)] += ref.nbytes;
    std::smatch m;
    const bool in_layer = std::regex_match(name, m, layer_re);
    const bool is_mtp = in_layer && std::stoll(m[1]) >= c.num_hidden_layers;
    const bool is_routed = in_layer && m[2].str().rfind("mlp.experts.", 0) == 0;
    (is_mtp ? mtp_bytes : main_bytes) += ref.nbytes;
    if (is_routed && !is_mtp) routed_bytes += ref.nbytes;
    if (name.find("_scale_inv") != std::string::npos) continue;  // scales are not parameters
    (is_mtp ? mtp : main) += ref.numel();
    if (is_routed && !is_mtp) routed += ref.numel();
  }
  EXPECT_EQ(f.params.main, main);
  EXPECT_EQ(f.params.mtp_with_shared, mtp);
  EXPECT_EQ(f.params.routed_experts, routed);
  EXPECT_EQ(f.params.active_per_token, main - routed + routed * 4 / 16);
  EXPECT_EQ(f.params.mtp_unique, mtp - 2 * 1000 * 320);  // its embedding and head copies
  EXPECT_EQ(f.bytes_by_dtype, by_dtype);
  EXPECT_EQ(f.main_bytes, main_bytes);
  EXPECT_EQ(f.mtp_bytes, mtp_bytes);
  // Per decoded token: everything of the main model but the routed experts (4 of 16 taken)
  // and the embedding table (one BF16 row).
  const uint64_t embed_bytes = ck->find("model.embed_tokens.weight")->nbytes;
  EXPECT_EQ(f.decode_bytes_per_token, main_bytes - routed_bytes - embed_bytes + 320 * 2 + routed_bytes * 4 / 16);

  // Config alone (weights absent) predicts the same stored bytes for a make-random checkpoint.
  const ModelFootprint g = compute_footprint(c, nullptr);
  EXPECT_EQ(g.params.main, f.params.main);
  EXPECT_EQ(g.bytes_by_dtype, f.bytes_by_dtype);
  EXPECT_EQ(g.decode_bytes_per_token, f.decode_bytes_per_token);
}

TEST(Footprint, TiedEmbeddingIsReadWholeAsTheHead) {
  OrderedJson cfg = small_v3_config();
  ASSERT_TRUE(apply_config_overrides(cfg, {"tie_word_embeddings=true", "num_nextn_predict_layers=0"}).ok());
  const ModelConfig c = parse_model_config(parse_json(cfg.dump(), "c").value(), "c").value();
  const ModelFootprint f = compute_footprint(c, nullptr);
  EXPECT_EQ(f.params.head, 0u);
  OrderedJson untied = small_v3_config();
  ASSERT_TRUE(apply_config_overrides(untied, {"num_nextn_predict_layers=0"}).ok());
  const ModelFootprint u = compute_footprint(parse_model_config(parse_json(untied.dump(), "c").value(), "c").value(), nullptr);
  // Untied: one embedding row plus the separate head; tied: the table itself is the head.
  EXPECT_EQ(f.decode_bytes_per_token + 320 * 2, u.decode_bytes_per_token);
}
