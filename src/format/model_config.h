#pragma once
// config.json of a DeepSeek-V2/V3-family checkpoint, key for key in HuggingFace spelling.
// Options that select behaviour become enums here, decided once at load; nothing downstream
// infers a variant from a size or a name. Derived values live in member functions.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/json.h"
#include "base/result.h"

namespace dsv3 {

enum class ScoringFunc { Sigmoid, Softmax };
enum class TopkMethod { Greedy, GroupLimitedGreedy, NoauxTc };

const char* scoring_func_name(ScoringFunc f);
const char* topk_method_name(TopkMethod m);

struct YarnRopeScaling {
  double factor = 1.0;
  int64_t original_max_position_embeddings = 0;
  double beta_fast = 32.0;
  double beta_slow = 1.0;
  double mscale = 1.0;
  double mscale_all_dim = 1.0;
};

struct QuantizationConfig {
  std::string quant_method;  // "fp8"
  std::string fmt;           // "e4m3"
  int64_t block_rows = 128;  // weight_block_size[0]
  int64_t block_cols = 128;  // weight_block_size[1]
  std::string activation_scheme;
  std::string scale_fmt;     // V3.1: "ue8m0" (activation scales; weights unaffected)
};

struct ModelConfig {
  std::string model_type;  // deepseek_v2 | deepseek_v3 | deepseek_v32
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;      // dense layers
  int64_t moe_intermediate_size = 0;  // each routed expert
  int64_t num_hidden_layers = 0;
  int64_t num_nextn_predict_layers = 0;  // MTP layers, at indices num_hidden_layers + k
  int64_t num_attention_heads = 0;
  int64_t q_lora_rank = 0;  // 0: plain q_proj (config null)
  int64_t kv_lora_rank = 0;
  int64_t qk_nope_head_dim = 0;
  int64_t qk_rope_head_dim = 0;
  int64_t v_head_dim = 0;
  int64_t n_routed_experts = 0;  // 0: every layer dense (config null)
  int64_t n_shared_experts = 0;
  int64_t num_experts_per_tok = 0;
  int64_t n_group = 1;
  int64_t topk_group = 1;
  int64_t first_k_dense_replace = 0;
  int64_t moe_layer_freq = 1;
  double routed_scaling_factor = 1.0;
  bool norm_topk_prob = false;
  ScoringFunc scoring_func = ScoringFunc::Softmax;
  TopkMethod topk_method = TopkMethod::Greedy;
  double rms_norm_eps = 1e-6;
  double rope_theta = 10000.0;
  std::optional<YarnRopeScaling> rope_scaling;  // only yarn exists in this family
  int64_t max_position_embeddings = 0;
  bool tie_word_embeddings = false;
  std::optional<int64_t> bos_token_id;
  std::vector<int64_t> eos_token_ids;  // int or list in the file
  std::optional<QuantizationConfig> quantization_config;
  // DeepSeek-V3.2 sparse attention (model_type deepseek_v32): the lightning indexer of every
  // layer scores all earlier tokens with index_n_heads heads of index_head_dim, and each
  // query attends to the index_topk best. 0 when the model has no indexer.
  int64_t index_n_heads = 0;
  int64_t index_head_dim = 0;
  int64_t index_topk = 0;
  // The indexer's FP8 activation scales: "ue8m0" rounds them up to a power of two, "" keeps
  // amax / 448. Top-level scale_fmt, else quantization_config.scale_fmt (where published
  // V3.1 / V3.2 configs carry it).
  std::string scale_fmt;

  // Derived values.
  int64_t qk_head_dim() const { return qk_nope_head_dim + qk_rope_head_dim; }
  bool has_q_lora() const { return q_lora_rank > 0; }
  // HF rule: MoE from first_k_dense_replace on, every moe_layer_freq-th layer.
  bool is_moe_layer(int64_t layer) const {
    return n_routed_experts > 0 && layer >= first_k_dense_replace && layer % moe_layer_freq == 0;
  }
  // The router's correction bias exists (and is required) exactly for noaux_tc.
  bool has_router_bias() const { return topk_method == TopkMethod::NoauxTc; }
  // YaRN attention factor: (nope+rope)^-0.5 * m^2 with m = 0.1 * mscale_all_dim * ln(factor) + 1.
  double softmax_scale() const;
  // Latent KV cache values per token per layer.
  int64_t kv_cache_dim() const { return kv_lora_rank + qk_rope_head_dim; }
  bool has_indexer() const { return index_topk > 0; }
  // The indexer's key cache per token per layer: index_head_dim e4m3 bytes (0 without one);
  // each such row has one float32 scale besides.
  int64_t index_key_dim() const { return has_indexer() ? index_head_dim : 0; }
};

// Parses and validates config.json contents; errors name the field ("config.json: field
// 'hidden_size': ..."). `where` is the file path used in messages.
Result<ModelConfig> parse_model_config(const Json& j, const std::string& where);
// Reads <dir>/config.json.
Result<ModelConfig> load_model_config(const std::string& dir);

}  // namespace dsv3
