#include "model/footprint.h"

#include "model/weights.h"
#include "tensor/shape.h"

namespace dsv3 {
namespace {

// A tensor as it is (or would be) stored: its bytes and those of its FP8 scales.
struct Stored {
  DType dtype;
  uint64_t bytes = 0;        // the tensor itself
  uint64_t scale_bytes = 0;  // its weight_scale_inv (FP8 only)
  uint64_t row_bytes = 0;    // one row of a 2-D tensor (embedding lookups)
};

Stored assumed(const TensorSpec& s, const ModelConfig& c) {
  Stored st{DType::BF16};
  if (s.role == TensorRole::RouterBias) st.dtype = DType::F32;
  if (s.role == TensorRole::Linear && c.quantization_config) {
    st.dtype = DType::F8_E4M3;
    const uint64_t br = static_cast<uint64_t>(c.quantization_config->block_rows);
    const uint64_t bc = static_cast<uint64_t>(c.quantization_config->block_cols);
    const uint64_t rows = static_cast<uint64_t>(s.shape[0]), cols = static_cast<uint64_t>(s.shape[1]);
    st.scale_bytes = ((rows + br - 1) / br) * ((cols + bc - 1) / bc) * 4;
  }
  st.bytes = shape_numel(s.shape) * static_cast<uint64_t>(dtype_size(st.dtype));
  return st;
}

std::string scale_name(const std::string& weight_name) { return weight_name + "_scale_inv"; }

}  // namespace

ModelFootprint compute_footprint(const ModelConfig& c, const Checkpoint* ck) {
  ModelFootprint f;
  f.dtypes_from_checkpoint = ck != nullptr;
  const std::vector<TensorSpec> specs = model_tensor_specs(c);
  const std::string embed = checkpoint_name("embed.weight"), head = checkpoint_name("head.weight");

  uint64_t routed_bytes = 0, mtp_routed_bytes = 0;
  for (const TensorSpec& s : specs) {
    const uint64_t n = shape_numel(s.shape);
    Stored st = assumed(s, c);
    if (ck) {
      if (const TensorRef* t = ck->find(s.name)) {
        st = Stored{t->dtype, t->nbytes, 0};
        if (t->dtype == DType::F8_E4M3)
          if (const TensorRef* sc = ck->find(scale_name(s.name))) st.scale_bytes = sc->nbytes;
      } else {
        ++f.tensors_missing;
      }
    }
    st.row_bytes = s.shape.size() == 2 ? static_cast<uint64_t>(s.shape[1]) * dtype_size(st.dtype) : st.bytes;
    const uint64_t bytes = st.bytes + st.scale_bytes;
    if (!ck) {
      f.bytes_by_dtype[dtype_name(st.dtype)] += st.bytes;
      if (st.scale_bytes) f.bytes_by_dtype[dtype_name(DType::F32)] += st.scale_bytes;
    }
    // An embedding table is read one row per token, unless it is also the (tied) head.
    const bool embedding_table = s.name == embed || s.shares_with == embed;
    const bool lookup_only = embedding_table && !c.tie_word_embeddings;
    const uint64_t read = lookup_only ? st.row_bytes : bytes;

    if (s.mtp) {
      f.mtp_bytes += bytes;
      f.params.mtp_with_shared += n;
      if (s.shares_with.empty()) f.params.mtp_unique += n;
      if (s.routed_expert) mtp_routed_bytes += read;
      else f.mtp_decode_bytes_per_token += read;
      continue;
    }
    f.main_bytes += bytes;
    f.params.main += n;
    if (s.name == embed) f.params.embedding += n;
    if (s.name == head) f.params.head += n;
    if (s.routed_expert) {
      f.params.routed_experts += n;
      routed_bytes += read;
    } else {
      f.decode_bytes_per_token += read;
    }
  }
  // Each token visits num_experts_per_tok of the n_routed_experts experts in every MoE layer;
  // all experts of a layer have the same shape, so the fraction applies to the sums.
  const uint64_t k = static_cast<uint64_t>(c.num_experts_per_tok);
  const uint64_t n_routed = static_cast<uint64_t>(c.n_routed_experts > 0 ? c.n_routed_experts : 1);
  f.params.active_per_token = f.params.main - f.params.routed_experts + f.params.routed_experts * k / n_routed;
  f.decode_fixed_bytes = f.decode_bytes_per_token;
  f.mtp_fixed_bytes = f.mtp_decode_bytes_per_token;
  int64_t moe_layers = 0;
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) moe_layers += c.is_moe_layer(l);
  if (moe_layers > 0) f.routed_expert_bytes = routed_bytes / (static_cast<uint64_t>(moe_layers) * n_routed);
  f.decode_bytes_per_token += routed_bytes * k / n_routed;
  f.mtp_decode_bytes_per_token += mtp_routed_bytes * k / n_routed;

  if (ck) {
    for (const auto& [name, t] : ck->tensors()) f.bytes_by_dtype[dtype_name(t.dtype)] += t.nbytes;
  }
  for (const auto& [dtype, bytes] : f.bytes_by_dtype) f.total_bytes += bytes;

  f.kv_values_per_token = c.num_hidden_layers * c.kv_cache_dim();
  f.kv_bytes_per_token_f32 = static_cast<uint64_t>(f.kv_values_per_token) * 4;
  f.kv_bytes_per_token_bf16 = static_cast<uint64_t>(f.kv_values_per_token) * 2;
  f.mtp_kv_bytes_per_token_f32 = static_cast<uint64_t>(c.num_nextn_predict_layers * c.kv_cache_dim()) * 4;
  if (c.has_indexer()) {
    f.index_key_bytes_per_token = static_cast<uint64_t>(c.num_hidden_layers * (c.index_key_dim() + 4));
    f.kv_bytes_per_token_f32 += f.index_key_bytes_per_token;
    f.kv_bytes_per_token_bf16 += f.index_key_bytes_per_token;
    f.mtp_kv_bytes_per_token_f32 += static_cast<uint64_t>(c.num_nextn_predict_layers * (c.index_key_dim() + 4));
  }
  return f;
}

}  // namespace dsv3
