// The weight structs speak DeepSeek model.py's names; checkpoint_name() maps them to the
// checkpoint's. These tests hold that mapping against DeepSeek's inference/convert.py, which
// renames the other way, restated here as its own algorithm and table.

#include <gtest/gtest.h>

#include <map>
#include <string>

#include "format/model_config.h"
#include "model/weights.h"
#include "test_util.h"

using namespace dsv3;

namespace {

// inference/convert.py: the checkpoint name of a layer or top-level tensor -> model.py's.
std::string convert_py_name(std::string name) {
  static const std::map<std::string, std::string> mapping = {
      {"embed_tokens", "embed"}, {"input_layernorm", "attn_norm"}, {"post_attention_layernorm", "ffn_norm"},
      {"q_proj", "wq"},          {"q_a_proj", "wq_a"},             {"q_a_layernorm", "q_norm"},
      {"q_b_proj", "wq_b"},      {"kv_a_proj_with_mqa", "wkv_a"},  {"kv_a_layernorm", "kv_norm"},
      {"kv_b_proj", "wkv_b"},    {"o_proj", "wo"},                 {"gate", "gate"},
      {"gate_proj", "w1"},       {"down_proj", "w2"},              {"up_proj", "w3"},
      {"norm", "norm"},          {"lm_head", "head"},
  };
  auto replace = [&](const std::string& from, const std::string& to) {
    if (size_t at = name.find(from); at != std::string::npos) name.replace(at, from.size(), to);
  };
  if (name.starts_with("model.")) name = name.substr(6);
  replace("self_attn", "attn");
  replace("mlp", "ffn");
  replace("weight_scale_inv", "scale");
  replace("e_score_correction_bias", "bias");
  // key = name.split(".")[-2], renamed by the mapping
  const size_t last = name.rfind('.'), before = name.rfind('.', last - 1);
  const size_t begin = before == std::string::npos ? 0 : before + 1;
  const std::string key = name.substr(begin, last - begin);
  EXPECT_TRUE(mapping.count(key)) << "convert.py has no mapping for " << key;
  if (mapping.count(key)) name.replace(begin, key.size(), mapping.at(key));
  return name;
}

void expect_round_trip(const std::string& fixture) {
  auto config = load_model_config(test::fixtures() + "/" + fixture);
  ASSERT_TRUE(config.ok()) << config.error().message();
  int checked = 0;
  for (const TensorSpec& spec : model_tensor_specs(*config)) {
    if (spec.mtp) continue;  // convert.py drops the MTP layer (model.py has none)
    std::vector<std::string> names = {spec.name};
    if (spec.role == TensorRole::Linear) names.push_back(spec.name + "_scale_inv");
    for (const std::string& name : names) {
      EXPECT_EQ(checkpoint_name(convert_py_name(name)), name);
      ++checked;
    }
  }
  EXPECT_GT(checked, 30);
}

}  // namespace

TEST(WeightNames, CheckpointNameUndoesConvertPyWithQLora) { expect_round_trip("tiny-v3"); }

TEST(WeightNames, CheckpointNameUndoesConvertPyWithPlainQ) { expect_round_trip("tiny-v2"); }

TEST(WeightNames, Examples) {
  EXPECT_EQ(checkpoint_name("embed.weight"), "model.embed_tokens.weight");
  EXPECT_EQ(checkpoint_name("head.weight"), "lm_head.weight");
  EXPECT_EQ(checkpoint_name("norm.weight"), "model.norm.weight");
  EXPECT_EQ(checkpoint_name("layers.0.attn.wkv_a.scale"), "model.layers.0.self_attn.kv_a_proj_with_mqa.weight_scale_inv");
  EXPECT_EQ(checkpoint_name("layers.5.ffn.gate.bias"), "model.layers.5.mlp.gate.e_score_correction_bias");
  EXPECT_EQ(checkpoint_name("layers.5.ffn.experts.17.w2.weight"), "model.layers.5.mlp.experts.17.down_proj.weight");
  EXPECT_EQ(checkpoint_name("layers.5.ffn.shared_experts.w3.weight"), "model.layers.5.mlp.shared_experts.up_proj.weight");
  // The MTP layer: names model.py does not have keep the checkpoint's spelling; its block's are mapped.
  EXPECT_EQ(checkpoint_name("layers.61.embed.weight"), "model.layers.61.embed_tokens.weight");
  EXPECT_EQ(checkpoint_name("layers.61.eh_proj.weight"), "model.layers.61.eh_proj.weight");
  EXPECT_EQ(checkpoint_name("layers.61.hnorm.weight"), "model.layers.61.hnorm.weight");
  EXPECT_EQ(checkpoint_name("layers.61.shared_head.head.weight"), "model.layers.61.shared_head.head.weight");
  EXPECT_EQ(checkpoint_name("layers.61.shared_head.norm.weight"), "model.layers.61.shared_head.norm.weight");
  EXPECT_EQ(checkpoint_name("layers.61.attn.wq_b.weight"), "model.layers.61.self_attn.q_b_proj.weight");
}
