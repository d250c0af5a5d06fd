#pragma once
// The model's tensors, listed once. bind_model_weights() walks the architecture the config
// describes and asks a WeightBinder for every tensor by its model.py name and expected shape;
// the binder looks it up under its checkpoint name. The same walk serves three purposes:
//   - binding: views into the mapped checkpoint (FP8 with its scales, BF16, F16, F32);
//   - validation: every missing, mis-shaped or wrongly typed tensor is collected and reported
//     together, naming tensor, expected and actual;
//   - listing (no checkpoint): the tensor specs `inspect` counts parameters from.

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "base/result.h"
#include "format/checkpoint.h"
#include "format/model_config.h"
#include "model/partition.h"
#include "tensor/linear_weight.h"

namespace dsv3 {

class ThreadPool;

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

// The weights in DeepSeek model.py's names, module for module, so that the layer code reads
// like model.py. Each field's comment names its tensor in the checkpoint (HuggingFace
// layout); checkpoint_name() below is the one place that maps the two (inference/convert.py's
// `mapping`). Shapes are [out, in].

struct MlpWeights {  // model.py MLP and Expert: w2(silu(w1(x)) * w3(x))
  LinearWeight w1;  // gate_proj [inter, dim]
  LinearWeight w2;  // down_proj [dim, inter]
  LinearWeight w3;  // up_proj   [inter, dim]
};

// DeepSeek-V3.2's lightning indexer (model.py Indexer; checkpoint: self_attn.indexer, names
// kept as they are). Empty (rows 0) in models without one.
struct IndexerWeights {
  LinearWeight wq_b;                // wq_b [index_n_heads * index_head_dim, q_lora_rank]
  LinearWeight wk;                  // wk [index_head_dim, dim]
  std::vector<float> k_norm;        // k_norm.weight [index_head_dim] (a LayerNorm)
  std::vector<float> k_norm_bias;   // k_norm.bias [index_head_dim]
  LinearWeight weights_proj;        // weights_proj [index_n_heads, dim]
};

struct MlaWeights {  // model.py MLA; checkpoint: self_attn
  LinearWeight wq;             // q_proj [n_heads * qk_head_dim, dim], when q_lora_rank is 0
  LinearWeight wq_a;           // q_a_proj [q_lora_rank, dim]
  std::vector<float> q_norm;   // q_a_layernorm [q_lora_rank]
  LinearWeight wq_b;           // q_b_proj [n_heads * qk_head_dim, q_lora_rank]
  LinearWeight wkv_a;          // kv_a_proj_with_mqa [kv_lora_rank + qk_rope_head_dim, dim]
  std::vector<float> kv_norm;  // kv_a_layernorm [kv_lora_rank]
  LinearWeight wkv_b;          // kv_b_proj [n_heads * (qk_nope_head_dim + v_head_dim), kv_lora_rank]
  LinearWeight wo;             // o_proj [dim, n_heads * v_head_dim]
  IndexerWeights indexer;      // indexer (deepseek_v32 only)
};

struct GateWeights {  // model.py Gate; checkpoint: mlp.gate
  LinearWeight weight;      // mlp.gate.weight [n_routed_experts, dim]
  std::vector<float> bias;  // mlp.gate.e_score_correction_bias [n_routed_experts]; empty without one
};

struct MoeWeights {  // model.py MoE; checkpoint: mlp
  GateWeights gate;
  std::vector<MlpWeights> experts;          // mlp.experts.{e}, inter = moe_intermediate_size
  std::optional<MlpWeights> shared_experts;  // mlp.shared_experts, inter = moe_intermediate_size * n_shared_experts
};

struct BlockWeights {  // model.py Block; checkpoint: model.layers.{i}
  std::vector<float> attn_norm;  // input_layernorm [dim]
  std::vector<float> ffn_norm;   // post_attention_layernorm [dim]
  MlaWeights attn;               // self_attn
  std::variant<MlpWeights, MoeWeights> ffn;  // mlp: dense below first_k_dense_replace, else MoE
};

// A Multi-Token-Prediction layer, which drafts the token after next from the main model's
// hidden state and the next token's embedding (model.py has none, so its names are the
// checkpoint's); checkpoint: model.layers.{num_hidden_layers + k}.
struct MtpWeights {
  LinearWeight embed;           // embed_tokens [vocab, dim]; equals the main embedding in released checkpoints
  std::vector<float> enorm;     // enorm [dim]: for the next token's embedding
  std::vector<float> hnorm;     // hnorm [dim]: for the main model's hidden state
  LinearWeight eh_proj;         // eh_proj [dim, 2 * dim]
  BlockWeights block;           // self_attn, mlp and both layernorms of the same layer
  struct {
    std::vector<float> norm;    // shared_head.norm [dim]
    LinearWeight head;          // shared_head.head [vocab, dim]; equals lm_head in released checkpoints
  } shared_head;
};

// Copies of column slices: a RowParallelLinear's share (wo, w2 split across ranks) is not a
// band of rows of the stored tensor, so it is copied out of the mapping at load.
struct SliceStore {
  std::vector<std::unique_ptr<float[]>> buffers;
  uint64_t bytes = 0;
  // Planning only (inspect --ranks): slices get their shape and dtype but no data, and no copy.
  bool plan_only = false;
  float* allocate(size_t floats);
};

struct ModelWeights {  // model.py Transformer
  LinearWeight embed;                // model.embed_tokens [vocab, dim]
  std::vector<BlockWeights> layers;  // model.layers.{i}
  std::vector<float> norm;           // model.norm [dim]
  LinearWeight head;                 // lm_head [vocab, dim]; embed itself when tie_word_embeddings
  std::vector<MtpWeights> mtp;       // empty unless requested and present
  SliceStore slices;                 // column slices of this rank's share (split across ranks)
};

// The checkpoint's name of a model.py parameter, as DeepSeek's inference/convert.py renames
// them the other way: "layers.3.attn.wq_a.weight" -> "model.layers.3.self_attn.q_a_proj.weight",
// "layers.3.ffn.gate.bias" -> "model.layers.3.mlp.gate.e_score_correction_bias",
// "head.weight" -> "lm_head.weight". A component that convert.py does not rename (layers,
// experts, the MTP layer's enorm, ...) keeps its spelling, and so does everything under a
// V3.2 indexer ("layers.3.attn.indexer.wq_b.weight" -> "model.layers.3.self_attn.indexer.wq_b.weight").
std::string checkpoint_name(std::string_view model_name);

// One defect found while binding: the tensor it concerns and a message naming expected vs actual.
struct BindProblem {
  std::string tensor;
  std::string message;
};

class WeightBinder {
 public:
  // With a checkpoint: binds and validates. Without (nullptr): only records specs.
  WeightBinder(const Checkpoint* checkpoint, const ModelConfig& config);

  // Each takes a model.py module name ("layers.3.attn.wq_a") and binds its parameters under
  // their checkpoint names (checkpoint_name).
  // A Linear's weight, and for FP8 its block scales (model.py `scale`: weight_scale_inv).
  // `shares_with`: the model.py module whose weight this one equals in released checkpoints.
  LinearWeight linear(const std::string& module, int64_t rows, int64_t cols, TensorRole role = TensorRole::Linear,
                      const std::string& shares_with = "");
  // An RMSNorm's weight in float32 (all ones when missing, which is reported).
  std::vector<float> norm(const std::string& module, int64_t dim);
  // A Gate's bias in float32 (all zeros when missing, which is reported).
  std::vector<float> bias(const std::string& module, int64_t dim);
  // A LayerNorm's bias in float32 (all zeros when missing, which is reported).
  std::vector<float> layer_norm_bias(const std::string& module, int64_t dim);
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
  // A small tensor (norm weight, router bias) in float32; `fallback` fills it when missing.
  std::vector<float> vector_f32(const std::string& name, int64_t dim, TensorRole role, float fallback);
  void problem(const std::string& tensor, const std::string& msg) { problems_.push_back({tensor, msg}); }
  // I8 / U8 weights: their F16 group scales (`{weight}_scale`), checked against the config.
  void bind_group_scales(const std::string& weight_name, LinearWeight& w);

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
// `with_mtp` (and the config declares them). With a `partition`, only that rank's share is
// bound (partition.h): the other ranks' routed experts are not looked up at all, split
// tensors are views of (or, by columns, copies of) this rank's part.
ModelWeights bind_model_weights(WeightBinder& binder, const ModelConfig& config, bool with_mtp,
                                const Partition* partition = nullptr, bool plan_only = false);

// Calls fn(weight) for every linear weight (and embedding) the model holds, once per tensor
// (a tied head, the MTP layer's shared embedding and head are visited once).
void for_each_linear(const ModelWeights& weights, const std::function<void(const LinearWeight&)>& fn);

// Maps every page of the linear weights (and embeddings) this model holds into the process
// now, split over the pool's threads (base/mapped_file.h: prefault_pages). Without it the
// first forward pass takes a page fault per 4 KB of weights it touches (and, under a
// hypervisor that shadows page tables, a trip to it per page): on moonlight-8l (5.2 GB) the
// first 512-token prefill ran at half the speed of the next ones, and a fresh server's first
// short request took 4x as long as the next ones.
void prefault_weights(const ModelWeights& weights, ThreadPool& pool);

// Locks every page of the linear weights (and embeddings) this model holds in memory
// (base/mapped_file.h: lock_pages); returns the bytes locked. On an error, what was locked
// before it stays locked (until the model is destroyed and its files unmapped).
Result<uint64_t> lock_weights(const ModelWeights& weights);

// Tensor specs of the whole checkpoint the config describes (main model and MTP layers).
std::vector<TensorSpec> model_tensor_specs(const ModelConfig& config);

}  // namespace dsv3
