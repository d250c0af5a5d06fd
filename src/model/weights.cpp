#include "model/weights.h"

#include <cmath>
#include <cstring>

namespace dsv3 {

namespace {

std::string shape_str(const std::vector<int64_t>& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

// Converts a small stored vector to float32 (norm weights, biases).
std::vector<float> to_f32(const TensorRef& t) {
  std::vector<float> out(t.numel());
  for (size_t i = 0; i < out.size(); ++i) {
    switch (t.dtype) {
      case DType::F32: { float f; std::memcpy(&f, t.data + 4 * i, 4); out[i] = f; break; }
      case DType::BF16: { uint16_t h; std::memcpy(&h, t.data + 2 * i, 2); out[i] = bf16_to_f32(h); break; }
      case DType::F16: { uint16_t h; std::memcpy(&h, t.data + 2 * i, 2); out[i] = f16_to_f32(h); break; }
      default: out[i] = 0;
    }
  }
  return out;
}

bool dtype_ok(TensorRole role, DType t) {
  switch (role) {
    case TensorRole::Linear:
    case TensorRole::LinearBf16: return is_float_weight_dtype(t);
    case TensorRole::Embedding: return is_float_weight_dtype(t);
    case TensorRole::Norm:
    case TensorRole::RouterBias: return t == DType::F32 || t == DType::BF16 || t == DType::F16;
  }
  return false;
}

const char* role_dtypes(TensorRole role) {
  switch (role) {
    case TensorRole::Linear:
    case TensorRole::LinearBf16:
    case TensorRole::Embedding: return "F8_E4M3, BF16, F16 or F32";
    default: return "F32, BF16 or F16";
  }
}

}  // namespace

WeightBinder::WeightBinder(const Checkpoint* checkpoint, const ModelConfig& config) : ck_(checkpoint), config_(config) {}

const TensorRef* WeightBinder::lookup(const std::string& name, const std::vector<int64_t>& shape, TensorRole role,
                                     const std::string& shares_with) {
  specs_.push_back({name, shape, role, mtp_, routed_expert_, shares_with});
  if (!ck_) return nullptr;
  const TensorRef* t = ck_->find(name);
  if (!t) {
    missing_.push_back(name);
    return nullptr;
  }
  used_.insert(name);
  if (!dtype_ok(role, t->dtype)) {
    problem(name, "tensor '" + name + "': dtype " + dtype_name(t->dtype) + " is not supported here (expected " +
            role_dtypes(role) + ")");
    return nullptr;
  }
  if (t->shape != shape) {
    problem(name, "tensor '" + name + "': shape " + shape_str(t->shape) + " does not match the config, expected " +
            shape_str(shape));
    return nullptr;
  }
  return t;
}

LinearWeight WeightBinder::linear(const std::string& name, int64_t rows, int64_t cols, TensorRole role,
                                  const std::string& shares_with) {
  LinearWeight w;
  w.rows = rows;
  w.cols = cols;
  const std::string wname = name + ".weight";
  const TensorRef* t = lookup(wname, {rows, cols}, role, shares_with);
  if (!t) return w;
  w.dtype = t->dtype;
  w.data = t->data;
  if (t->dtype != DType::F8_E4M3) {
    if (ck_->find(name + ".weight_scale_inv")) used_.insert(name + ".weight_scale_inv");
    return w;
  }
  // FP8: block scales, block size from quantization_config (128x128 when the config has none).
  w.block_rows = config_.quantization_config ? config_.quantization_config->block_rows : 128;
  w.block_cols = config_.quantization_config ? config_.quantization_config->block_cols : 128;
  const std::string sname = name + ".weight_scale_inv";
  const TensorRef* s = ck_->find(sname);
  std::vector<int64_t> sshape = {(rows + w.block_rows - 1) / w.block_rows, (cols + w.block_cols - 1) / w.block_cols};
  if (!s) {
    problem(sname, "tensor '" + wname + "' is F8_E4M3 but '" + sname +
            "' is missing (FP8 weights need their block scales; is this a partial download?)");
    return w;
  }
  used_.insert(sname);
  if (s->dtype != DType::F32) {
    problem(sname, "tensor '" + sname + "': dtype " + dtype_name(s->dtype) + ", expected F32");
    return w;
  }
  if (s->shape != sshape) {
    problem(sname, "tensor '" + sname + "': shape " + shape_str(s->shape) + ", expected " + shape_str(sshape) +
            str_f(" for a [%lld, %lld] weight in %lldx%lld blocks", static_cast<long long>(rows),
                  static_cast<long long>(cols), static_cast<long long>(w.block_rows),
                  static_cast<long long>(w.block_cols)));
    return w;
  }
  // Scales must be finite and positive (W28): a cheap scan, 1/16384 of the weight bytes.
  const float* sc = reinterpret_cast<const float*>(s->data);
  for (uint64_t i = 0; i < s->numel(); ++i) {
    if (!std::isfinite(sc[i]) || sc[i] <= 0.0f) {
      problem(sname, "tensor '" + sname + str_f("': scale %g at index %llu is not a finite positive number", sc[i],
                                         static_cast<unsigned long long>(i)));
      return w;
    }
  }
  w.scale_inv = sc;
  return w;
}

std::vector<float> WeightBinder::norm(const std::string& name, int64_t dim) {
  const TensorRef* t = lookup(name, {dim}, TensorRole::Norm);
  if (!t) return std::vector<float>(static_cast<size_t>(dim), 1.0f);
  std::vector<float> v = to_f32(*t);
  for (size_t i = 0; i < v.size(); ++i)
    if (!std::isfinite(v[i])) {
      problem(name, "tensor '" + name + str_f("': value at index %zu is not finite", i));
      break;
    }
  return v;
}

std::vector<float> WeightBinder::bias(const std::string& name, int64_t dim) {
  const TensorRef* t = lookup(name, {dim}, TensorRole::RouterBias);
  if (!t) return std::vector<float>(static_cast<size_t>(dim), 0.0f);
  std::vector<float> v = to_f32(*t);
  for (size_t i = 0; i < v.size(); ++i)
    if (!std::isfinite(v[i])) {
      problem(name, "tensor '" + name + str_f("': value at index %zu is not finite", i));
      break;
    }
  return v;
}

Status WeightBinder::finish() const {
  if (missing_.empty() && problems_.empty()) return {};
  std::string msg;
  if (!missing_.empty()) {
    msg += str_f("%zu required tensor(s) missing: ", missing_.size());
    for (size_t i = 0; i < missing_.size() && i < 20; ++i) msg += (i ? ", " : "") + missing_[i];
    if (missing_.size() > 20) msg += str_f(", ... and %zu more", missing_.size() - 20);
  }
  for (size_t i = 0; i < problems_.size() && i < 20; ++i) msg += (msg.empty() ? "" : "; ") + problems_[i].message;
  if (problems_.size() > 20) msg += str_f("; ... and %zu more problems", problems_.size() - 20);
  return Error(msg);
}

namespace {

MlpWeights bind_mlp(WeightBinder& b, const std::string& p, int64_t hidden, int64_t inter) {
  MlpWeights m;
  m.gate_proj = b.linear(p + ".gate_proj", inter, hidden);
  m.up_proj = b.linear(p + ".up_proj", inter, hidden);
  m.down_proj = b.linear(p + ".down_proj", hidden, inter);
  return m;
}

DecoderLayerWeights bind_layer(WeightBinder& b, const ModelConfig& c, int64_t i) {
  const std::string p = "model.layers." + std::to_string(i);
  const int64_t hidden = c.hidden_size, heads = c.num_attention_heads;
  DecoderLayerWeights l;
  l.input_layernorm = b.norm(p + ".input_layernorm.weight", hidden);
  l.post_attention_layernorm = b.norm(p + ".post_attention_layernorm.weight", hidden);
  AttentionWeights& a = l.self_attn;
  const std::string ap = p + ".self_attn";
  if (c.has_q_lora()) {
    a.q_a_proj = b.linear(ap + ".q_a_proj", c.q_lora_rank, hidden);
    a.q_a_layernorm = b.norm(ap + ".q_a_layernorm.weight", c.q_lora_rank);
    a.q_b_proj = b.linear(ap + ".q_b_proj", heads * c.qk_head_dim(), c.q_lora_rank);
  } else {
    a.q_proj = b.linear(ap + ".q_proj", heads * c.qk_head_dim(), hidden);
  }
  a.kv_a_proj_with_mqa = b.linear(ap + ".kv_a_proj_with_mqa", c.kv_lora_rank + c.qk_rope_head_dim, hidden);
  a.kv_a_layernorm = b.norm(ap + ".kv_a_layernorm.weight", c.kv_lora_rank);
  a.kv_b_proj = b.linear(ap + ".kv_b_proj", heads * (c.qk_nope_head_dim + c.v_head_dim), c.kv_lora_rank);
  a.o_proj = b.linear(ap + ".o_proj", hidden, heads * c.v_head_dim);
  if (c.is_moe_layer(i)) {
    MoeWeights m;
    m.gate = b.linear(p + ".mlp.gate", c.n_routed_experts, hidden, TensorRole::LinearBf16);
    if (c.has_router_bias()) m.e_score_correction_bias = b.bias(p + ".mlp.gate.e_score_correction_bias", c.n_routed_experts);
    b.set_routed_expert(true);
    for (int64_t e = 0; e < c.n_routed_experts; ++e)
      m.experts.push_back(bind_mlp(b, p + ".mlp.experts." + std::to_string(e), hidden, c.moe_intermediate_size));
    b.set_routed_expert(false);
    if (c.n_shared_experts > 0)
      m.shared_experts = bind_mlp(b, p + ".mlp.shared_experts", hidden, c.moe_intermediate_size * c.n_shared_experts);
    l.moe = std::move(m);
  } else {
    l.mlp = bind_mlp(b, p + ".mlp", hidden, c.intermediate_size);
  }
  return l;
}

}  // namespace

ModelWeights bind_model_weights(WeightBinder& b, const ModelConfig& c, bool with_mtp) {
  ModelWeights w;
  w.embed_tokens = b.linear("model.embed_tokens", c.vocab_size, c.hidden_size, TensorRole::Embedding);
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) w.layers.push_back(bind_layer(b, c, i));
  w.norm = b.norm("model.norm.weight", c.hidden_size);
  w.lm_head = c.tie_word_embeddings ? w.embed_tokens
                                    : b.linear("lm_head", c.vocab_size, c.hidden_size, TensorRole::Embedding);
  if (with_mtp) {
    b.set_mtp(true);
    for (int64_t k = 0; k < c.num_nextn_predict_layers; ++k) {
      const int64_t i = c.num_hidden_layers + k;
      const std::string p = "model.layers." + std::to_string(i);
      MtpLayerWeights m;
      m.embed_tokens = b.linear(p + ".embed_tokens", c.vocab_size, c.hidden_size, TensorRole::Embedding,
                                "model.embed_tokens.weight");
      m.enorm = b.norm(p + ".enorm.weight", c.hidden_size);
      m.hnorm = b.norm(p + ".hnorm.weight", c.hidden_size);
      m.eh_proj = b.linear(p + ".eh_proj", c.hidden_size, 2 * c.hidden_size, TensorRole::LinearBf16);
      m.layer = bind_layer(b, c, i);
      m.shared_head_norm = b.norm(p + ".shared_head.norm.weight", c.hidden_size);
      m.shared_head_head = b.linear(p + ".shared_head.head", c.vocab_size, c.hidden_size, TensorRole::Embedding,
                                    c.tie_word_embeddings ? "model.embed_tokens.weight" : "lm_head.weight");
      w.mtp.push_back(std::move(m));
    }
    b.set_mtp(false);
  }
  return w;
}

std::vector<TensorSpec> model_tensor_specs(const ModelConfig& config) {
  WeightBinder b(nullptr, config);
  bind_model_weights(b, config, /*with_mtp=*/true);
  return b.specs();
}

}  // namespace dsv3
