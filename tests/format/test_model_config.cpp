// config.json handling: unreadable files, unsupported architectures, missing or invalid fields,
// both rope_scaling spellings, quantization_config; every error names the file or field.
#include <gtest/gtest.h>

#include "format/model_config.h"
#include "test_util.h"

using namespace dsv3;

namespace {

Json load_fixture_config(const std::string& rel) {
  return parse_json(dsv3::test::read_file(dsv3::test::fixtures() + "/" + rel), rel).value();
}

std::string error_of(const Json& j) {
  auto r = parse_model_config(j, "config.json");
  return r.ok() ? "" : r.error().message();
}

}  // namespace

TEST(ModelConfig, PublishedConfigsParse) {
  auto v3 = parse_model_config(load_fixture_config("configs/deepseek-v3.json"), "v3").value();
  EXPECT_EQ(v3.hidden_size, 7168);
  EXPECT_EQ(v3.q_lora_rank, 1536);
  EXPECT_EQ(v3.n_group, 8);
  EXPECT_EQ(v3.topk_method, TopkMethod::NoauxTc);
  EXPECT_EQ(v3.scoring_func, ScoringFunc::Sigmoid);
  ASSERT_TRUE(v3.quantization_config.has_value());
  EXPECT_EQ(v3.quantization_config->block_rows, 128);
  ASSERT_TRUE(v3.rope_scaling.has_value());
  EXPECT_EQ(v3.rope_scaling->factor, 40);
  EXPECT_TRUE(v3.is_moe_layer(3));
  EXPECT_FALSE(v3.is_moe_layer(2));
  EXPECT_EQ(v3.num_nextn_predict_layers, 1);
  // m = 0.1 * 1.0 * ln(40) + 1; scale = 192^-0.5 * m^2
  double m = 0.1 * std::log(40.0) + 1.0;
  EXPECT_NEAR(v3.softmax_scale(), m * m / std::sqrt(192.0), 1e-12);

  auto lite = parse_model_config(load_fixture_config("configs/deepseek-v2-lite.json"), "lite").value();
  EXPECT_EQ(lite.q_lora_rank, 0);
  EXPECT_FALSE(lite.has_q_lora());
  EXPECT_EQ(lite.topk_method, TopkMethod::Greedy);
  EXPECT_FALSE(lite.quantization_config.has_value());
  EXPECT_EQ(lite.n_group, 1);
}

TEST(ModelConfig, UnsupportedArchitecture) {
  Json j = load_fixture_config("tiny-v3/config.json");
  j["model_type"] = "llama";
  EXPECT_NE(error_of(j).find("unsupported architecture"), std::string::npos);
  j.erase("model_type");
  EXPECT_NE(error_of(j).find("'model_type'"), std::string::npos);
}

TEST(ModelConfig, MissingFieldNamed) {
  for (const char* field : {"hidden_size", "kv_lora_rank", "num_attention_heads", "qk_rope_head_dim", "vocab_size",
                            "q_lora_rank", "n_routed_experts", "topk_method", "scoring_func", "rms_norm_eps"}) {
    Json j = load_fixture_config("tiny-v3/config.json");
    j.erase(field);
    std::string e = error_of(j);
    EXPECT_NE(e.find(std::string("'") + field + "'"), std::string::npos) << field << ": " << e;
  }
  // group_limited_greedy needs its groups spelled out.
  Json j = load_fixture_config("tiny-v2/config.json");
  j["topk_method"] = "group_limited_greedy";
  j.erase("n_group");
  EXPECT_NE(error_of(j).find("'n_group'"), std::string::npos);
}

TEST(ModelConfig, InvalidValues) {
  auto with = [](const char* key, Json v) {
    Json j = load_fixture_config("tiny-v3/config.json");
    j[key] = v;
    return error_of(j);
  };
  EXPECT_NE(with("num_attention_heads", 0).find("num_attention_heads"), std::string::npos);
  EXPECT_NE(with("hidden_size", -5).find("hidden_size"), std::string::npos);
  EXPECT_NE(with("n_group", 3).find("n_group"), std::string::npos);  // 16 % 3 != 0
  EXPECT_NE(with("topk_group", 5).find("topk_group"), std::string::npos);
  EXPECT_NE(with("num_experts_per_tok", 17).find("num_experts_per_tok"), std::string::npos);
  EXPECT_NE(with("rms_norm_eps", 0).find("rms_norm_eps"), std::string::npos);
  EXPECT_NE(with("rms_norm_eps", -1e-6).find("rms_norm_eps"), std::string::npos);
  EXPECT_NE(with("hidden_size", "256").find("hidden_size"), std::string::npos);
  EXPECT_NE(with("hidden_size", 256.5).find("hidden_size"), std::string::npos);
  EXPECT_NE(with("scoring_func", "relu").find("scoring_func"), std::string::npos);
  EXPECT_NE(with("topk_method", "random").find("topk_method"), std::string::npos);
  EXPECT_NE(with("qk_rope_head_dim", 15).find("qk_rope_head_dim"), std::string::npos);
}

TEST(ModelConfig, RopeScalingSpellings) {
  Json j = load_fixture_config("tiny-v3/config.json");
  Json rs = j["rope_scaling"];
  rs.erase("type");
  rs["rope_type"] = "yarn";
  j.erase("rope_scaling");
  j["rope_parameters"] = rs;
  auto c = parse_model_config(j, "c");
  ASSERT_TRUE(c.ok()) << c.error().message();
  EXPECT_TRUE(c->rope_scaling.has_value());

  Json k = load_fixture_config("tiny-v3/config.json");
  k["rope_scaling"]["type"] = "dynamic-ntk";
  EXPECT_NE(error_of(k).find("rope_scaling.type"), std::string::npos);
  k = load_fixture_config("tiny-v3/config.json");
  k["rope_scaling"]["factor"] = 0;
  EXPECT_NE(error_of(k).find("factor"), std::string::npos);
  k = load_fixture_config("tiny-v3/config.json");
  k["rope_scaling"].erase("original_max_position_embeddings");
  EXPECT_NE(error_of(k).find("original_max_position_embeddings"), std::string::npos);
  k = load_fixture_config("tiny-v3/config.json");
  k["rope_scaling"] = nullptr;
  auto none = parse_model_config(k, "c");
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->rope_scaling.has_value());
}

TEST(ModelConfig, QuantizationConfig) {
  Json j = load_fixture_config("tiny-v3/config.json");
  j["quantization_config"]["fmt"] = "e5m2";
  EXPECT_NE(error_of(j).find("fmt"), std::string::npos);
  j = load_fixture_config("tiny-v3/config.json");
  j["quantization_config"]["weight_block_size"] = {64, 32};
  auto c = parse_model_config(j, "c").value();  // other block sizes are handled generically
  EXPECT_EQ(c.quantization_config->block_rows, 64);
  EXPECT_EQ(c.quantization_config->block_cols, 32);
  j["quantization_config"]["weight_block_size"] = {128};
  EXPECT_NE(error_of(j).find("weight_block_size"), std::string::npos);
}

TEST(ModelConfig, EosIntOrList) {
  Json j = load_fixture_config("tiny-v3/config.json");
  j["eos_token_id"] = Json::array({1, 2});
  auto c = parse_model_config(j, "c").value();
  EXPECT_EQ(c.eos_token_ids, (std::vector<int64_t>{1, 2}));
  j["eos_token_id"] = 5000;
  EXPECT_NE(error_of(j).find("eos_token_id"), std::string::npos);
}

TEST(ModelConfig, FileErrorsNamed) {
  dsv3::test::TempDir t;
  auto r = load_model_config(t.path());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("config.json"), std::string::npos);
  dsv3::test::write_file(t / "config.json", "{\n \"model_type\": \"deepseek_v3\",\n}");
  r = load_model_config(t.path());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("line 3"), std::string::npos) << r.error().message();
}
