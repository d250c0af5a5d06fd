#pragma once
// What a model costs: parameter counts, bytes by dtype, weight bytes read per decoded token
// and KV cache bytes per token, computed from the config's tensor list (model_tensor_specs)
// and, when a checkpoint is given, the dtypes it actually stores. `dsv3 inspect` prints
// these; `dsv3 bench` divides measured memory bandwidth by decode_bytes_per_token.
//
// Conventions, those of DeepSeek's published sizes (671B total, 37B active per token):
//   - Parameters are tensor elements; FP8 block scales are not parameters (their bytes count).
//   - Active per token = everything except routed experts, plus num_experts_per_tok /
//     n_routed_experts of the routed experts; the embedding and head are included (DeepSeek's
//     "37B active" includes them).
//   - Weight bytes read per decoded token: what one decode step of the main model touches at
//     the stored dtype, scales included: all active weights, except that the embedding table
//     contributes one row (a lookup, not a product) unless it doubles as the tied head.

#include <cstdint>
#include <map>
#include <string>

#include "format/checkpoint.h"
#include "format/model_config.h"

namespace dsv3 {

struct ParamCounts {
  uint64_t main = 0;              // main model: embedding, layers, final norm, head
  uint64_t active_per_token = 0;  // main, routed experts at num_experts_per_tok / n_routed_experts
  uint64_t routed_experts = 0;    // all routed-expert parameters of the main model
  uint64_t embedding = 0;         // model.embed_tokens
  uint64_t head = 0;              // lm_head (0 when tie_word_embeddings)
  uint64_t mtp_unique = 0;        // MTP layers without the embedding and head they share
  uint64_t mtp_with_shared = 0;   // MTP layers as stored, counting their embedding and head copies
};

struct ModelFootprint {
  ParamCounts params;
  // True when bytes use the checkpoint's stored dtypes; false when assumed from the config
  // (projections FP8 e4m3 + F32 block scales if quantization_config is present, else BF16;
  // router bias F32; everything else BF16).
  bool dtypes_from_checkpoint = false;
  uint64_t tensors_missing = 0;   // spec'd tensors absent from the checkpoint (bytes assumed)

  std::map<std::string, uint64_t> bytes_by_dtype;  // dtype name -> bytes (all tensors, MTP and scales incl.)
  uint64_t total_bytes = 0;
  uint64_t main_bytes = 0;        // main-model tensors with their scales
  uint64_t mtp_bytes = 0;         // MTP tensors with their scales, as stored

  uint64_t decode_bytes_per_token = 0;      // main model, one decoded token
  uint64_t mtp_decode_bytes_per_token = 0;  // extra per token drafted by the MTP layers
  // The parts of a step's reads: what every step reads whatever its tokens (attention, norms,
  // routers, shared experts, dense layers, head; the main model's and the MTP layers'), and
  // one routed expert of one layer (a step reads it once if any token chose it).
  uint64_t decode_fixed_bytes = 0, mtp_fixed_bytes = 0;
  uint64_t routed_expert_bytes = 0;

  int64_t kv_values_per_token = 0;          // num_hidden_layers x (kv_lora_rank + qk_rope_head_dim)
  uint64_t kv_bytes_per_token_f32 = 0;      // dsv3's cache (float32)
  uint64_t kv_bytes_per_token_bf16 = 0;     // the same cache in BF16 (the reference's dtype)
  uint64_t mtp_kv_bytes_per_token_f32 = 0;  // the MTP layers' own caches (float32)
  // V3.2: the indexer's keys, num_hidden_layers x (index_head_dim FP8 bytes + a float32
  // scale) per token; included in both kv_bytes_per_token figures (the reference keeps them
  // in FP8 too).
  uint64_t index_key_bytes_per_token = 0;
};

// Computes the footprint of the model `config` describes. With `checkpoint` (may be null),
// bytes follow the stored dtype of each tensor present; parameter counts come from the
// config alone either way.
ModelFootprint compute_footprint(const ModelConfig& config, const Checkpoint* checkpoint);

}  // namespace dsv3
