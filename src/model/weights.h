#pragma once
// The model's tensors, listed once. bind_model_weights() walks the architecture the config
// describes and asks a WeightBinder for every tensor by its checkpoint name and expected
// shape. The same walk serves three purposes:
//   - binding: views into the mapped checkpoint (FP8 with its scales, BF16, F16, F32);
//   - validation: every missing, mis-shaped or wrongly typed tensor is collected and reported
//     together, naming tensor, expected and actual;
//   - listing (no checkpoint): the tensor specs `inspect` counts parameters from.

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "base/result.h"
#include "format/checkpoint.h"
#include "format/model_config.h"
#include "tensor/linear_weight.h"

namespace dsv3 {

enum class TensorRole {
  Linear,      // projection weight: F8_E4M3 (+ weight_scale_inv), BF16, F16 or F32
  LinearBf16,  // same, but BF16 in the released checkpoints (router gate, MTP eh_proj)
  Embedding,   // token embedding / output head rows: BF16, F16 or F32 (FP8 accepted for the head)
  Norm,        // RMSNorm weight, converted to float32 at load
  RouterBias,  // e_score_correction_bias, converted to float32 at load
};

struct TensorSpec {
  std::string name;             // checkpoint name, e.g. model.layers.3.mlp.gate.weight
  std::vector<int64_t> shape;
  TensorRole role;
  bool mtp = false;             // belongs to a Multi-Token-Prediction layer
  bool routed_expert = false;   // part of a routed expert (active for num_experts_per_tok of n_routed_experts)
  // For MTP tensors that equal a main-model tensor in released checkpoints (the MTP
  // embedding and head): that tensor's name.
  std::string shares_with;
};

struct MlpWeights {  // down(silu(gate(x)) * up(x))
  LinearWeight gate_proj, up_proj, down_proj;
};

struct AttentionWeights {
  LinearWeight q_proj;                   // when q_lora_rank is 0
  LinearWeight q_a_proj, q_b_proj;       // with q LoRA
  std::vector<float> q_a_layernorm;      // [q_lora_rank]
  LinearWeight kv_a_proj_with_mqa;       // [kv_lora + rope, hidden]
  std::vector<float> kv_a_layernorm;     // [kv_lora]
  LinearWeight kv_b_proj;                // [heads * (nope + v), kv_lora]
  LinearWeight o_proj;                   // [hidden, heads * v]
};

struct MoeWeights {
  LinearWeight gate;                     // router [n_routed, hidden]
  std::vector<float> e_score_correction_bias;  // [n_routed] (noaux_tc only)
  std::vector<MlpWeights> experts;
  std::optional<MlpWeights> shared_experts;
};

struct DecoderLayerWeights {
  std::vector<float> input_layernorm, post_attention_layernorm;
  AttentionWeights self_attn;
  std::optional<MlpWeights> mlp;   // dense layer
  std::optional<MoeWeights> moe;   // MoE layer
};

struct MtpLayerWeights {
  LinearWeight embed_tokens;             // equals the main embedding in released checkpoints
  std::vector<float> enorm, hnorm;
  LinearWeight eh_proj;                  // [hidden, 2 * hidden]
  DecoderLayerWeights layer;
  std::vector<float> shared_head_norm;
  LinearWeight shared_head_head;         // [vocab, hidden]
};

struct ModelWeights {
  LinearWeight embed_tokens;             // [vocab, hidden]
  std::vector<DecoderLayerWeights> layers;
  std::vector<float> norm;
  LinearWeight lm_head;                  // [vocab, hidden]
  std::vector<MtpLayerWeights> mtp;      // empty unless requested and present
};

// One defect found while binding: the tensor it concerns and a message naming expected vs actual.
struct BindProblem {
  std::string tensor;
  std::string message;
};

class WeightBinder {
 public:
  // With a checkpoint: binds and validates. Without (nullptr): only records specs.
  WeightBinder(const Checkpoint* checkpoint, const ModelConfig& config);

  LinearWeight linear(const std::string& name, int64_t rows, int64_t cols, TensorRole role = TensorRole::Linear,
                      const std::string& shares_with = "");
  std::vector<float> norm(const std::string& name, int64_t dim);
  std::vector<float> bias(const std::string& name, int64_t dim);
  void set_mtp(bool mtp) { mtp_ = mtp; }
  void set_routed_expert(bool routed) { routed_expert_ = routed; }

  const std::vector<TensorSpec>& specs() const { return specs_; }
  const std::set<std::string>& used() const { return used_; }
  // Every required tensor absent from the checkpoint, and every other defect, in walk order
  // (for reports that list them all; finish() abbreviates).
  const std::vector<std::string>& missing() const { return missing_; }
  const std::vector<BindProblem>& problems() const { return problems_; }
  // All problems found, as one error (missing names: first 20 and a count).
  Status finish() const;

 private:
  const TensorRef* lookup(const std::string& name, const std::vector<int64_t>& shape, TensorRole role,
                          const std::string& shares_with = "");
  void problem(const std::string& tensor, const std::string& msg) { problems_.push_back({tensor, msg}); }

  const Checkpoint* ck_;
  const ModelConfig& config_;
  bool mtp_ = false;
  bool routed_expert_ = false;
  std::vector<TensorSpec> specs_;
  std::set<std::string> used_;
  std::vector<std::string> missing_;
  std::vector<BindProblem> problems_;
};

// Walks the architecture, binding (or listing) every tensor. MTP layers are included when
// `with_mtp` (and the config declares them).
ModelWeights bind_model_weights(WeightBinder& binder, const ModelConfig& config, bool with_mtp);

// Tensor specs of the whole checkpoint the config describes (main model and MTP layers).
std::vector<TensorSpec> model_tensor_specs(const ModelConfig& config);

}  // namespace dsv3
