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

Stored stored_as(const TensorSpec& s, MixFormat format, int64_t group_size) {
  const uint64_t rows = static_cast<uint64_t>(s.shape[0]), cols = s.shape.size() == 2 ? static_cast<uint64_t>(s.shape[1]) : 1;
  const uint64_t groups = (cols + static_cast<uint64_t>(group_size) - 1) / static_cast<uint64_t>(group_size);
  Stored st{DType::BF16};
  switch (format) {
    case MixFormat::Bf16: st.bytes = rows * cols * 2; break;
    case MixFormat::Fp8:
      st.dtype = DType::F8_E4M3;
      st.bytes = rows * cols;
      st.scale_bytes = ((rows + 127) / 128) * ((cols + 127) / 128) * 4;
      break;
    case MixFormat::Int8:
      st.dtype = DType::I8;
      st.bytes = rows * cols;
      st.scale_bytes = rows * groups * 2;
      break;
    case MixFormat::Int4:
      st.dtype = DType::U8;
      st.bytes = rows * ((cols + 1) / 2);
      st.scale_bytes = rows * groups * 2;
      break;
  }
  return st;
}

ModelFootprint compute(const ModelConfig& c, const Checkpoint* ck, const WeightMix* mix, int64_t group_size);

}  // namespace

ModelFootprint compute_footprint(const ModelConfig& c, const Checkpoint* ck) { return compute(c, ck, nullptr, 0); }

ModelFootprint compute_footprint(const ModelConfig& c, const WeightMix& mix, int64_t group_size) {
  return compute(c, nullptr, &mix, group_size);
}

std::vector<WeightMix> standard_mixes() {
  const std::string head = checkpoint_name("head.weight");
  // The output heads (lm_head, the MTP layers' shared_head.head): products, not lookups.
  auto is_head = [head](const TensorSpec& s) {
    return s.role == TensorRole::Embedding && (s.name == head || s.name.find("shared_head.head") != std::string::npos);
  };
  auto mix = [is_head](MixFormat routed, MixFormat other, MixFormat heads) {
    return [=](const TensorSpec& s) {
      if (s.role == TensorRole::Linear) return s.routed_expert ? routed : other;
      if (is_head(s)) return heads;
      return MixFormat::Bf16;
    };
  };
  return {{"fp8", "as published: projections FP8 e4m3 (128x128 block scales), the rest BF16",
           mix(MixFormat::Fp8, MixFormat::Fp8, MixFormat::Bf16)},
          {"int8", "every projection and the heads int8", mix(MixFormat::Int8, MixFormat::Int8, MixFormat::Int8)},
          {"int4-experts", "routed experts int4; attention, shared experts, dense layers and the heads int8",
           mix(MixFormat::Int4, MixFormat::Int8, MixFormat::Int8)},
          {"int4", "every projection int4, the heads int8", mix(MixFormat::Int4, MixFormat::Int4, MixFormat::Int8)}};
}

namespace {

ModelFootprint compute(const ModelConfig& c, const Checkpoint* ck, const WeightMix* mix, int64_t group_size) {
  ModelFootprint f;
  f.dtypes_from_checkpoint = ck != nullptr;
  if (mix) f.mix = mix->name;
  const std::vector<TensorSpec> specs = model_tensor_specs(c);
  const std::string embed = checkpoint_name("embed.weight"), head = checkpoint_name("head.weight");

  uint64_t routed_bytes = 0, mtp_routed_bytes = 0;
  for (const TensorSpec& s : specs) {
    const uint64_t n = shape_numel(s.shape);
    Stored st = mix ? stored_as(s, mix->format(s), group_size) : assumed(s, c);
    if (mix && s.role == TensorRole::RouterBias) st = assumed(s, c);
    if (mix && s.shape.size() != 2 && s.role != TensorRole::RouterBias) st = stored_as(s, MixFormat::Bf16, 1);
    if (ck) {
      if (const TensorRef* t = ck->find(s.name)) {
        st = Stored{t->dtype, t->nbytes, 0};
        if (t->dtype == DType::F8_E4M3)
          if (const TensorRef* sc = ck->find(scale_name(s.name))) st.scale_bytes = sc->nbytes;
        if (t->dtype == DType::I8 || t->dtype == DType::U8)
          if (const TensorRef* sc = ck->find(s.name + "_scale")) st.scale_bytes = sc->nbytes;
      } else {
        ++f.tensors_missing;
      }
    }
    // One row of a 2-D tensor with its share of the scales (embedding lookups).
    st.row_bytes = s.shape.size() == 2 ? (st.bytes + st.scale_bytes) / static_cast<uint64_t>(s.shape[0]) : st.bytes;
    const uint64_t bytes = st.bytes + st.scale_bytes;
    if (!ck) {
      f.bytes_by_dtype[dtype_name(st.dtype)] += st.bytes;
      if (st.scale_bytes)
        f.bytes_by_dtype[dtype_name(st.dtype == DType::I8 || st.dtype == DType::U8 ? DType::F16 : DType::F32)] +=
            st.scale_bytes;
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

}  // namespace
}  // namespace dsv3
